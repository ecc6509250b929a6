// Optimises www/pkg's wasm with binaryen's wasm-opt (the npm build; Debian's breaks the module in Chromium),
// and keeps the result only if it still instantiates and answers a call; otherwise keeps the original.
//
//   node tools/wasm-opt.mjs [www/pkg]     (make build runs it after wasm-bindgen)

import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, statSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const FEATURES = [
  '--enable-bulk-memory', '--enable-sign-ext', '--enable-nontrapping-float-to-int',
  '--enable-mutable-globals', '--enable-reference-types', '--enable-multivalue', '--enable-simd',
  '--enable-relaxed-simd', '--enable-threads',
];

const pkg = resolve(process.argv[2] ?? 'www/pkg');
const wasm = join(pkg, 'vae_explorer_bg.wasm');
const optimised = join(pkg, 'vae_explorer_bg.opt.wasm');
const wasmOpt = resolve('node_modules/.bin/wasm-opt');

const sizes = (file) => {
  const bytes = readFileSync(file);
  return `${(bytes.length / 1024).toFixed(0)} KB raw, ${(gzipSync(bytes, { level: 9 }).length / 1024).toFixed(0)} KB gzip`;
};

/** True when the module instantiates through the generated bindings and rejects a bad file cleanly. */
async function works(file) {
  // The threaded build's worker helper listens on `self` when imported; Node has no `self`.
  globalThis.self ??= new EventTarget();
  // A fresh import per check: the bindings keep their instance in module state.
  const bindings = await import(`${pathToFileURL(join(pkg, 'vae_explorer.js'))}?check=${Date.now()}`);
  bindings.initSync({ module: readFileSync(file) });
  try {
    bindings.Model.load(new Uint8Array([1, 2, 3]));
  } catch (error) {
    return /safetensors/.test(String(error.message));
  }
  return false;
}

try {
  statSync(wasmOpt);
} catch {
  console.log(`wasm-opt: ${wasmOpt} is missing (run npm ci); keeping the unoptimised module (${sizes(wasm)})`);
  process.exit(0);
}

console.log(`wasm-opt: before ${sizes(wasm)}`);
execFileSync(wasmOpt, ['-O3', ...FEATURES, wasm, '-o', optimised], { stdio: 'inherit' });
let ok = false;
try {
  ok = await works(optimised);
} catch (error) {
  console.log(`wasm-opt: the optimised module fails: ${error.message}`);
}
if (ok) {
  renameSync(optimised, wasm);
  console.log(`wasm-opt: after  ${sizes(wasm)}`);
} else {
  rmSync(optimised, { force: true });
  console.log('wasm-opt: keeping the unoptimised module');
}
