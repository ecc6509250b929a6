// Optimises www/pkg's wasm with binaryen's wasm-opt (the npm build; Debian's breaks the module in Chromium),
// and keeps the result only if it decodes the shipped digits model exactly as the original module does;
// otherwise keeps the original. A missing wasm-opt is an error (run npm ci). Then writes the module's
// gzip'd copy, vae_explorer_bg.wasm.gz, which the page loads (www/wasm-build.js) on any host.
//
//   node tools/wasm-opt.mjs [www/pkg]     (make build runs it after wasm-bindgen)

import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, statSync, rmSync, writeFileSync } from 'node:fs';
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
const WEIGHTS = resolve('weights/digits.safetensors');

const sizes = (file) => {
  const bytes = readFileSync(file);
  return `${(bytes.length / 1024).toFixed(0)} KB raw, ${(gzipSync(bytes, { level: 9 }).length / 1024).toFixed(0)} KB gzip`;
};

/** What a module computes from the shipped digits model: a batch decode (above the row block), a grid and encodings. */
async function outputs(file) {
  // The threaded build's worker helper listens on `self` when imported; Node has no `self`.
  globalThis.self ??= new EventTarget();
  // A fresh import per module: the bindings keep their instance in module state.
  const bindings = await import(`${pathToFileURL(join(pkg, 'vae_explorer.js'))}?check=${file}`);
  bindings.initSync({ module: readFileSync(file) });
  const model = bindings.Model.load(new Uint8Array(readFileSync(WEIGHTS)));
  const n = 100;
  const z = Float32Array.from({ length: n * model.latent_dim }, (_, i) => Math.sin(i * 0.7) * 2.5);
  const pixels = model.decode(z, n);
  const out = [pixels, model.decode_grid(z.subarray(0, model.latent_dim), 0, 1, -3, 3, -3, 3, 12, 12), model.encode(pixels)];
  model.free();
  return out;
}

/** True when `candidate` computes exactly what `reference` does (same engine, same instructions' results). */
async function same(reference, candidate) {
  const [want, got] = [await outputs(reference), await outputs(candidate)];
  return want.every((w, i) => w.length > 0 && w.length === got[i].length && w.every((v, j) => Object.is(v, got[i][j])));
}

try {
  statSync(wasmOpt);
} catch {
  console.error(`wasm-opt: ${wasmOpt} is missing: run npm ci`);
  process.exit(1);
}

console.log(`wasm-opt: before ${sizes(wasm)}`);
execFileSync(wasmOpt, ['-O3', ...FEATURES, wasm, '-o', optimised], { stdio: 'inherit' });
let ok = false;
try {
  ok = await same(wasm, optimised);
  if (!ok) console.log('wasm-opt: the optimised module decodes differently from the original');
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
// Level 9 and no timestamp (Node's gzip writes none), so that the same module gives the same bytes.
writeFileSync(`${wasm}.gz`, gzipSync(readFileSync(wasm), { level: 9 }));
