// The decoder against TensorFlow.js (wasm backend, SIMD) and ONNX Runtime Web (wasm), in headless Chromium.
//
//   node tests/web/bench-peers.mjs          (make bench-web builds first and runs it)
//
// Every runtime runs the shipped digits decoder. The set-up converts the weights file for the peers
// (ONNX written here, read back and compared bit for bit; tfjs tensors from the same arrays), then
// checks every runtime's output against a float64 reference and against this project's decoder to
// 1e-4 before anything is timed. Per batch, rounds interleave the runtimes in rotating order; the
// figure is the median over rounds of the mean ms per call, including reading the pixels back into JS.
// Each runtime runs in its own worker (this project's as in the page; a rayon pool can only wait for its
// threads off the main thread), and the peers run on the page too, with the same set-up code
// (tests/web/peer-runtimes.js). Two ways of timing, each the same for every runtime:
//  - in its worker: the loop of calls runs inside each runtime's worker;
//  - from the page: the peers on the page, ours from the page with the round trip to its worker (the
//    page posts z, the worker decodes and transfers the pixels back).
// A grid's tiles are the decode of its cells plus their RGBA tiling (ours fused in the kernel, the peers'
// in tileGray: one 32-bit store per pixel, rows in order); a grid frame from the page adds the round
// trip and putImageData.
// Two page loads: every runtime on one thread, then every runtime on all cores (there the peers run on
// the page only: ORT's thread workers do not start from a worker in this harness).
// Prints figures; asserts nothing beyond the correctness checks, which stop the run.

import { readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { ROOT, withServerAndBrowser } from './harness.mjs';
import { readDecoder, referenceDecode, decoderToOnnx, checkOnnx } from './peer-models.mjs';

const WEIGHTS = join(ROOT, 'weights', 'digits.safetensors');
const BATCHES = [1, 256, 1024];
const GRIDS = [16, 32];
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const TOLERANCE = 1e-4;

const decoder = readDecoder(WEIGHTS);
const onnx = decoderToOnnx(decoder);
const checkedValues = checkOnnx(onnx, decoder);
console.log(
  `conversion: ${decoder.layers.map((l) => `${l.in}-${l.out}`).join(', ')}; ONNX ${(onnx.length / 1e6).toFixed(2)} MB, ` +
    `${checkedValues} values read back equal to the weights file`,
);

const packageDir = (name) => join(ROOT, 'node_modules', name);
const version = (name) => JSON.parse(readFileSync(join(packageDir(name), 'package.json'), 'utf8')).version;
const MOUNTS = {
  '/bench/tfjs/': join(packageDir('@tensorflow/tfjs'), 'dist'),
  '/bench/tfjs-wasm/': join(packageDir('@tensorflow/tfjs-backend-wasm'), 'dist'),
  '/bench/ort/': join(packageDir('onnxruntime-web'), 'dist'),
};
const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

const SAFETENSORS_MODULE = readFileSync(join(ROOT, 'tests', 'web', 'safetensors.mjs'));
const PEER_RUNTIMES = readFileSync(join(ROOT, 'tests', 'web', 'peer-runtimes.js'));

/** Serves the peers' npm files, the ONNX model, the safetensors reader and a blank page under /bench/, with the isolation headers. */
async function routeBench(page, origin) {
  await page.context().route(`${origin}bench/**`, async (route) => {
    const path = new URL(route.request().url()).pathname;
    const headers = { ...ISOLATION };
    if (path === '/bench/ours-worker.js') return route.fulfill({ body: OURS_WORKER, contentType: 'text/javascript', headers });
    if (path === '/bench/peer-worker.js') return route.fulfill({ body: PEER_WORKER, contentType: 'text/javascript', headers });
    if (path === '/bench/peer-runtimes.js') return route.fulfill({ body: PEER_RUNTIMES, contentType: 'text/javascript', headers });
    if (path === '/bench/page.html') return route.fulfill({ body: '<!doctype html><title>bench</title>', contentType: 'text/html', headers });
    if (path === '/bench/decoder.onnx') return route.fulfill({ body: onnx, contentType: 'application/octet-stream', headers });
    if (path === '/bench/safetensors.mjs') return route.fulfill({ body: SAFETENSORS_MODULE, contentType: 'text/javascript', headers });
    const prefix = Object.keys(MOUNTS).find((p) => path.startsWith(p));
    const file = prefix && join(MOUNTS[prefix], path.slice(prefix.length));
    if (!file || file.includes('..')) return route.fulfill({ status: 404, headers });
    try {
      return route.fulfill({ body: readFileSync(file), contentType: TYPES[extname(file)] ?? 'application/octet-stream', headers });
    } catch {
      return route.fulfill({ status: 404, headers });
    }
  });
}

/** The message protocol of every runtime's worker: `ask(op, args)` resolves to the worker's answer. */
const WORKER_PROTOCOL = `
self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    const result = await ops[op](args);
    self.postMessage({ id, result }, result?.buffer ? [result.buffer] : []);
  } catch (error) {
    self.postMessage({ id, error: String(error?.stack ?? error) });
  }
};
/** ms per call over \`reps\` calls of \`run(r)\`, timed inside this worker. */
async function timeCalls(reps, run) {
  const start = performance.now();
  for (let r = 0; r < reps; r++) await run(r);
  return (performance.now() - start) / reps;
}
let inputs = [];
let gridInputs = [];`;

/**
 * This project's decoder in a module worker, as in the page: `init`, `decode`, `time` (ms per call over
 * reps), `grid` (one frame's RGBA) and `timeGrid`.
 */
const OURS_WORKER = `
import { decoderPoolSize, shouldUseThreadedBuild } from '/www/wasm-build.js';
let model;
const ops = {
  async init({ threads, bytes }) {
    const threaded = threads > 1 && shouldUseThreadedBuild();
    const pkg = await import(threaded ? '/www/pkg-threads/vae_explorer.js' : '/www/pkg/vae_explorer.js');
    await pkg.default();
    if (threaded) {
      await pkg.initThreadPool(decoderPoolSize(threads)); // as the explorer's worker does
      pkg.useThreadPool();
    }
    model = pkg.Model.load(bytes);
    return { meta: model.metadata(), threads: threaded ? threads : 1 };
  },
  decode: ({ z, n }) => model.decode(z, n),
  setInputs: ({ zs, grids }) => void ([inputs, gridInputs] = [zs, grids]),
  time: ({ n, reps }) => timeCalls(reps, (r) => model.decode(inputs[r % inputs.length], n)),
  grid: ({ side, base }) => model.decode_grid(base, 0, 1, -3, 3, -3, 3, side, side),
  timeGrid: ({ side, reps }) => timeCalls(reps, (r) => ops.grid({ side, base: gridInputs[r % gridInputs.length].base })),
};
${WORKER_PROTOCOL}`;

/**
 * A peer (TF.js or ORT, named by the query) in a module worker, with the same operations as ours. ORT's
 * threads need its ES module (a classic worker fails to start them); TF.js ships a classic script, run here
 * as one, as the page's <script> tag does.
 */
const PEER_WORKER = `
const name = new URL(self.location.href).searchParams.get('runtime');
const runScript = async (src) => (0, eval)(await (await fetch(src)).text());
let runtime;
let meta;
const ops = {
  async init(config) {
    if (name === 'ort') self.ort = await import('/bench/ort/ort.wasm.min.mjs');
    else for (const src of ['/bench/tfjs/tf.min.js', '/bench/tfjs-wasm/tf-backend-wasm.min.js']) await runScript(src);
    await runScript('/bench/peer-runtimes.js');
    meta = config.meta;
    runtime = await self.peerRuntimes[name](config);
    return runtime.info;
  },
  decode: ({ z, n }) => runtime.decode(z, n),
  setInputs: ({ zs, grids }) => void ([inputs, gridInputs] = [zs, grids]),
  time: ({ n, reps }) => timeCalls(reps, (r) => runtime.decode(inputs[r % inputs.length], n)),
  grid: async ({ side, z }) => self.tileGray(await runtime.decode(z, side * side), side, meta.width, meta.height),
  timeGrid: ({ side, reps }) => timeCalls(reps, (r) => ops.grid({ side, z: gridInputs[r % gridInputs.length].z })),
};
${WORKER_PROTOCOL}`;

/**
 * Runs in the page: starts the three runtimes in their own workers and the two peers on the page too,
 * checks every output, then times them.
 */
async function pageBench({ threads, batches, grids, rounds, tolerance, checkRows }) {
  const loadScript = (src) =>
    new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.append(script);
    });
  const bytes = new Uint8Array(await (await fetch('/weights/digits.safetensors')).arrayBuffer());
  const onnx = new Uint8Array(await (await fetch('/bench/decoder.onnx')).arrayBuffer());

  /** A worker with the bench protocol: `ask(op, args)` resolves to its answer. */
  const startWorker = (url, options) => {
    const worker = new Worker(url, options);
    const waiting = new Map();
    let nextId = 0;
    worker.onmessage = ({ data: { id, result, error } }) => {
      const { resolve, reject } = waiting.get(id);
      waiting.delete(id);
      if (error) reject(new Error(`${url}: ${error}`));
      else resolve(result);
    };
    worker.onerror = (event) => console.error(`${url}: ${event.message}`);
    return (op, args = {}) =>
      new Promise((resolve, reject) => {
        waiting.set(++nextId, { resolve, reject });
        worker.postMessage({ id: nextId, op, args });
      });
  };

  // This project: the wasm builds the page ships (www/pkg-threads with its thread pool for more than one
  // thread), in a module worker as in the page.
  const workers = { candle: startWorker('/bench/ours-worker.js', { type: 'module' }) };
  const started = await workers.candle('init', { threads, bytes: bytes.slice() });
  const meta = JSON.parse(started.meta);
  const pixels = meta.width * meta.height;
  const latent = meta.latent_dim;

  // The layers, read independently of the project's loader: the tests' safetensors reader.
  const { parseSafetensors, f32Values } = await import('/bench/safetensors.mjs');
  const weightsFile = parseSafetensors(bytes);
  const widths = [latent, ...meta.decoder_hidden, pixels];
  const layers = meta.decoder_hidden
    .map((_, j) => `decoder.hidden.${j}`)
    .concat('decoder.out')
    .map((name, i) => ({ in: widths[i], out: widths[i + 1], weight: f32Values(weightsFile, `${name}.weight`), bias: f32Values(weightsFile, `${name}.bias`) }));
  const peerConfig = {
    tfjs: { layers, threads, wasmPaths: '/bench/tfjs-wasm/', meta },
    ort: { onnx, threads, wasmPaths: '/bench/ort/', meta },
  };

  // The peers in their own workers, and on the page (the same set-up code, tests/web/peer-runtimes.js).
  // On more than one thread they stay on the page only: ORT's thread workers, started from a worker,
  // fail to load here (their requests are not routed to the bench's files).
  const peerInfo = {};
  const peersInWorkers = threads === 1;
  for (const name of peersInWorkers ? ['tfjs', 'ort'] : []) {
    workers[name] = startWorker(`/bench/peer-worker.js?runtime=${name}`, { type: 'module' });
    peerInfo[name] = await workers[name]('init', peerConfig[name]);
  }
  for (const src of ['/bench/tfjs/tf.min.js', '/bench/tfjs-wasm/tf-backend-wasm.min.js', '/bench/peer-runtimes.js']) await loadScript(src);
  window.ort = await import('/bench/ort/ort.wasm.min.mjs');
  const onPage = {};
  for (const name of ['tfjs', 'ort']) onPage[name] = await window.peerRuntimes[name](peerConfig[name]);
  const names = Object.keys(workers);

  const latents = (n, salt = 0) => {
    const z = new Float32Array(n * latent);
    for (let i = 0; i < n; i++) {
      for (let d = 0; d < latent; d++) {
        z[i * latent + d] = meta.latent_mean[d] + 2.5 * meta.latent_std[d] * Math.sin(1.3 * i + 0.7 * d + salt);
      }
    }
    return z;
  };
  // Grid frames: the same cells as the page's grid.
  const { cellLatent } = await import('/www/latent.js');
  const gridZ = (side, base) => {
    const cells = { xMin: -3, xMax: 3, yMin: -3, yMax: 3, cols: side, rows: side };
    const z = new Float32Array(side * side * latent);
    for (let row = 0; row < side; row++) {
      for (let col = 0; col < side; col++) {
        const at = (row * side + col) * latent;
        const { x, y } = cellLatent(cells, col, row);
        z.set(base, at);
        z[at] = x;
        z[at + 1] = y;
      }
    }
    return z;
  };

  // Every way each runtime runs: `decode(z, n)` and a grid `frame(side, base)` (RGBA); ours only through its worker.
  const decoders = { 'candle worker': (z, n) => workers.candle('decode', { z, n }) };
  const framers = {
    'candle worker': async (side, base) => new Uint8ClampedArray((await workers.candle('grid', { side, base })).buffer),
  };
  for (const name of ['tfjs', 'ort']) {
    if (peersInWorkers) {
      decoders[`${name} worker`] = (z, n) => workers[name]('decode', { z, n });
      framers[`${name} worker`] = async (side, base) => new Uint8ClampedArray((await workers[name]('grid', { side, z: gridZ(side, base) })).buffer);
    }
    decoders[`${name} page`] = (z, n) => onPage[name].decode(z, n);
    framers[`${name} page`] = async (side, base) => window.tileGray(await onPage[name].decode(gridZ(side, base), side * side), side, meta.width, meta.height);
  }

  // Correctness first: every runtime, in every place, against this project's decoder.
  const checks = {};
  const firstRows = {};
  for (const n of batches) {
    const z = latents(n);
    const expected = await decoders['candle worker'](z, n);
    for (const [name, decode] of Object.entries(decoders)) {
      const out = await decode(z, n);
      if (out.length !== n * pixels) throw new Error(`${name}: ${out.length} values for batch ${n}`);
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - expected[i]));
      checks[`${name} batch ${n}`] = worst;
      if (!(worst <= tolerance)) throw new Error(`${name} differs from the project's decoder by ${worst} at batch ${n}`);
      if (n >= checkRows && !firstRows[name]) firstRows[name] = Array.from(out.subarray(0, checkRows * pixels));
    }
  }
  for (const side of grids) {
    const base = Float32Array.from(meta.latent_mean);
    const expected = await framers['candle worker'](side, base);
    for (const [name, frame] of Object.entries(framers)) {
      const theirs = await frame(side, base);
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(expected[i] - theirs[i]));
      checks[`${name} grid ${side}x${side} (gray levels)`] = worst;
      if (worst > 1) throw new Error(`${name}: the ${side}x${side} grid differs by ${worst} gray levels`);
    }
  }

  // Timing: interleaved rounds, rotating which runtime goes first; a warm-up round is not counted.
  // A job runs `reps` calls and resolves to ms per call.
  const perCall = (run) => async (reps) => {
    const start = performance.now();
    for (let r = 0; r < reps; r++) await run(r);
    return (performance.now() - start) / reps;
  };
  const timeRounds = async (jobs, reps) => {
    const samples = Object.fromEntries(Object.keys(jobs).map((k) => [k, []]));
    const order = Object.keys(jobs);
    for (let round = 0; round <= rounds; round++) {
      for (let j = 0; j < order.length; j++) {
        const name = order[(round + j) % order.length];
        const ms = await jobs[name](reps);
        if (round > 0) samples[name].push(ms);
      }
    }
    const median = (xs) => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    };
    return Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, median(xs)]));
  };
  const canvas = document.createElement('canvas');
  document.body.append(canvas);
  const context = canvas.getContext('2d');
  const draw = (rgba, side) => {
    const [w, h] = [side * meta.width, side * meta.height];
    if (canvas.width !== w) [canvas.width, canvas.height] = [w, h];
    context.putImageData(new ImageData(rgba, w, h), 0, 0);
  };
  const figures = {};
  for (const n of batches) {
    const zs = Array.from({ length: 4 }, (_, salt) => latents(n, salt));
    for (const name of names) await workers[name]('setInputs', { zs });
    // Timed inside each runtime's worker; then from the page: ours with the round trip to its worker, the peers on the page.
    const inWorker = Object.fromEntries(names.map((name) => [name, (reps) => workers[name]('time', { n, reps })]));
    const page = {
      candle: perCall((r) => decoders['candle worker'](zs[r % 4], n)),
      tfjs: perCall((r) => onPage.tfjs.decode(zs[r % 4], n)),
      ort: perCall((r) => onPage.ort.decode(zs[r % 4], n)),
    };
    const reps = n === 1 ? 200 : n <= 256 ? 8 : 3;
    if (peersInWorkers) figures[`decode, batch ${n}, each in its worker`] = await timeRounds(inWorker, reps);
    figures[`decode, batch ${n}, from the page (ours: round trip)`] = await timeRounds(page, reps);
  }
  for (const side of grids) {
    const bases = Array.from({ length: 4 }, (_, salt) => latents(1, salt + 10));
    const frameInputs = bases.map((base) => ({ base, z: gridZ(side, base) }));
    for (const name of names) await workers[name]('setInputs', { zs: [], grids: frameInputs });
    const inWorker = Object.fromEntries(names.map((name) => [name, (reps) => workers[name]('timeGrid', { side, reps })]));
    const page = {
      candle: perCall(async (r) => draw(await framers['candle worker'](side, bases[r % 4]), side)),
      tfjs: perCall(async (r) => draw(await framers['tfjs page'](side, bases[r % 4]), side)),
      ort: perCall(async (r) => draw(await framers['ort page'](side, bases[r % 4]), side)),
    };
    const reps = side <= 16 ? 6 : 2;
    if (peersInWorkers) figures[`grid ${side}x${side}: decode + RGBA tiles, each in its worker`] = await timeRounds(inWorker, reps);
    figures[`grid ${side}x${side} frame from the page (ours: round trip; + putImageData)`] = await timeRounds(page, reps);
  }
  return {
    figures,
    checks,
    firstRows,
    isolated: crossOriginIsolated,
    cores: navigator.hardwareConcurrency,
    peerInfo,
    pageInfo: { tfjs: onPage.tfjs.info, ort: onPage.ort.info },
    ourThreads: started.threads,
  };
}

const fmtMs = (ms) => (ms < 1 ? ms.toFixed(3) : ms.toFixed(2));
const LABELS = { candle: 'vae-explorer (candle + kernel)', tfjs: 'TF.js wasm', ort: 'ORT web wasm' };

function printTable(title, result) {
  console.log(`\n${title}`);
  console.log(`| | ${Object.values(LABELS).join(' | ')} | fastest peer / ours |`);
  console.log(`|---|${'---|'.repeat(Object.keys(LABELS).length + 1)}`);
  for (const [label, ms] of Object.entries(result.figures)) {
    const peer = Math.min(ms.tfjs, ms.ort);
    console.log(`| ${label} | ${Object.keys(LABELS).map((k) => `${fmtMs(ms[k])} ms`).join(' | ')} | ${(peer / ms.candle).toFixed(2)}x |`);
  }
}

const checkRows = 4;
const reference = referenceDecode(decoder.layers, (() => {
  // The same first rows the page decodes for its checks (latents(n) with salt 0).
  const { latent_dim: latent, latent_mean: mean, latent_std: std } = decoder.meta;
  const z = new Float32Array(checkRows * latent);
  for (let i = 0; i < checkRows; i++) for (let d = 0; d < latent; d++) z[i * latent + d] = mean[d] + 2.5 * std[d] * Math.sin(1.3 * i + 0.7 * d);
  return z;
})(), checkRows);
await withServerAndBrowser(async ({ server, browser }) => {
  console.log(`Chromium ${browser.version()}; ${ROUNDS} interleaved rounds per figure (median of per-round means)`);
  for (const threads of (process.env.BENCH_THREADS ?? '1,2').split(',').map(Number)) {
    const page = await browser.newPage();
    page.on('console', (message) => process.env.BENCH_VERBOSE && console.log(`  [page] ${message.text()}`));
    await routeBench(page, server.url);
    await page.goto(`${server.url}bench/page.html`);
    const result = await page.evaluate(pageBench, {
      threads, batches: BATCHES, grids: GRIDS, rounds: ROUNDS, tolerance: TOLERANCE, checkRows,
    });
    await page.close();
    for (const [name, rows] of Object.entries(result.firstRows)) {
      let worst = 0;
      rows.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - reference[i]))));
      if (!(worst <= TOLERANCE)) throw new Error(`${name} differs from the float64 reference by ${worst}`);
      result.checks[`${name} vs float64 reference`] = worst;
    }
    const worstDecode = Math.max(...Object.entries(result.checks).filter(([k]) => k.includes('batch')).map(([, v]) => v));
    const worstReference = Math.max(...Object.entries(result.checks).filter(([k]) => k.includes('reference')).map(([, v]) => v));
    const worstGray = Math.max(...Object.entries(result.checks).filter(([k]) => k.includes('gray')).map(([, v]) => v));
    console.log(
      `\nchecks passed: outputs within ${worstDecode.toExponential(1)} of this project's decoder (batches ${BATCHES.join(', ')}), ` +
        `within ${worstReference.toExponential(1)} of a float64 reference; grids within ${worstGray} gray level(s)`,
    );
    printTable(
      `threads: vae-explorer ${result.ourThreads}; TF.js ${result.pageInfo.tfjs.version} ${result.peerInfo.tfjs?.threads ?? 'not run'} in its worker, ` +
        `${result.pageInfo.tfjs.threads} on the page (SIMD ${result.pageInfo.tfjs.simd ? 'on' : 'off'}); ORT web ${result.pageInfo.ort.version} ` +
        `${result.peerInfo.ort?.threads ?? 'not run'} in its worker, ${result.pageInfo.ort.threads} on the page; ` +
        `cross-origin isolated: ${result.isolated}; ${result.cores} cores`,
      result,
    );
  }
  console.log(`\npackages: @tensorflow/tfjs ${version('@tensorflow/tfjs')}, @tensorflow/tfjs-backend-wasm ${version('@tensorflow/tfjs-backend-wasm')}, onnxruntime-web ${version('onnxruntime-web')}`);
});
