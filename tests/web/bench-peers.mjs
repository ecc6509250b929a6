// The decoder against TensorFlow.js (wasm backend, SIMD) and ONNX Runtime Web (wasm), in headless Chromium.
//
//   node tests/web/bench-peers.mjs          (make bench-web builds first and runs it)
//
// Every runtime runs the shipped digits decoder. The set-up converts the weights file for the peers
// (ONNX written here, read back and compared bit for bit; tfjs tensors from the same arrays), then
// checks every runtime's output against a float64 reference and against this project's decoder to
// 1e-4 before anything is timed. Per batch, rounds interleave the runtimes in rotating order; the
// figure is the median over rounds of the mean ms per call, including reading the pixels back into JS.
// The grid frame is the whole job behind one grid redraw: z values, decode, RGBA and putImageData.
// This project's decoder runs in a module worker, as in the page (a rayon pool can only wait for its
// threads off the main thread): its decode figures are timed in the worker, its grid frames on the
// page, round trip included. The peers run on the page. Two page loads: every runtime on one thread,
// then every runtime on all cores.
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

/** Serves the peers' npm files, the ONNX model, the safetensors reader and a blank page under /bench/, with the isolation headers. */
async function routeBench(page, origin) {
  await page.route(`${origin}bench/**`, async (route) => {
    const path = new URL(route.request().url()).pathname;
    const headers = { ...ISOLATION };
    if (path === '/bench/ours-worker.js') return route.fulfill({ body: OURS_WORKER, contentType: 'text/javascript', headers });
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

/** This project's decoder in a module worker: `init`, then `decode`, `time` (ms per call over reps) and `grid`. */
const OURS_WORKER = `
import { shouldUseThreadedBuild } from '/www/wasm-build.js';
let model;
let inputs = [];
const ops = {
  async init({ threads, bytes }) {
    const threaded = threads > 1 && shouldUseThreadedBuild();
    const pkg = await import(threaded ? '/www/pkg-threads/vae_explorer.js' : '/www/pkg/vae_explorer.js');
    await pkg.default();
    if (threaded) {
      await pkg.initThreadPool(threads);
      pkg.useThreadPool();
    }
    model = pkg.Model.load(bytes);
    return { meta: model.metadata(), threads: threaded ? threads : 1 };
  },
  decode: ({ z, n }) => model.decode(z, n),
  setInputs: ({ zs }) => void (inputs = zs),
  time({ n, reps }) {
    const start = performance.now();
    for (let r = 0; r < reps; r++) model.decode(inputs[r % inputs.length], n);
    return (performance.now() - start) / reps;
  },
  grid: ({ side, base }) => model.decode_grid(base, 0, 1, -3, 3, -3, 3, side, side),
};
self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    const result = await ops[op](args);
    self.postMessage({ id, result }, result?.buffer ? [result.buffer] : []);
  } catch (error) {
    self.postMessage({ id, error: String(error?.stack ?? error) });
  }
};`;

/** Runs in the page: sets up the three runtimes, checks their outputs, then times them. */
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

  // This project: the wasm builds the page ships (www/pkg-threads with its thread pool for more than one
  // thread), in a module worker as in the page.
  const worker = new Worker('/bench/ours-worker.js', { type: 'module' });
  const waiting = new Map();
  let nextId = 0;
  worker.onmessage = ({ data: { id, result, error } }) => {
    const { resolve, reject } = waiting.get(id);
    waiting.delete(id);
    if (error) reject(new Error(`vae-explorer worker: ${error}`));
    else resolve(result);
  };
  const askOurWorker = (op, args = {}) =>
    new Promise((resolve, reject) => {
      waiting.set(++nextId, { resolve, reject });
      worker.postMessage({ id: nextId, op, args });
    });
  const started = await askOurWorker('init', { threads, bytes: bytes.slice() });
  const meta = JSON.parse(started.meta);
  const pixels = meta.width * meta.height;
  const latent = meta.latent_dim;

  // The layers, read independently of the project's loader: the tests' safetensors reader.
  const { parseSafetensors, f32Values } = await import('/bench/safetensors.mjs');
  const weightsFile = parseSafetensors(bytes);
  const tensorOf = (name) => f32Values(weightsFile, name);
  const names = meta.decoder_hidden.map((_, j) => `decoder.hidden.${j}`).concat('decoder.out');
  const widths = [latent, ...meta.decoder_hidden, pixels];

  // TensorFlow.js with the wasm backend.
  await loadScript('/bench/tfjs/tf.min.js');
  await loadScript('/bench/tfjs-wasm/tf-backend-wasm.min.js');
  const tf = window.tf;
  tf.wasm.setWasmPaths('/bench/tfjs-wasm/');
  if (threads === 1) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  else tf.wasm.setThreadsCount(threads);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not start');
  await tf.ready();
  // Weights go in as [in, out]: tfjs-backend-wasm 4.22's fused matMul adds the bias wrongly with
  // transposeB and more than one row (the output check below caught it).
  const tfLayers = names.map((name, i) => ({
    weight: tf.tidy(() => tf.tensor2d(tensorOf(`${name}.weight`), [widths[i + 1], widths[i]]).transpose()),
    bias: tf.tensor1d(tensorOf(`${name}.bias`)),
  }));
  const tfInfo = {
    version: tf.version.tfjs,
    simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    threads: tf.wasm.getThreadsCount(),
  };

  // ONNX Runtime Web with the wasm execution provider.
  const ort = await import('/bench/ort/ort.wasm.min.mjs');
  ort.env.wasm.wasmPaths = '/bench/ort/';
  ort.env.wasm.numThreads = threads;
  const onnxBytes = new Uint8Array(await (await fetch('/bench/decoder.onnx')).arrayBuffer());
  const session = await ort.InferenceSession.create(onnxBytes, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
  });

  const runtimes = {
    candle: (z, n) => askOurWorker('decode', { z, n }),
    tfjs: (z, n) => {
      const out = tf.tidy(() => {
        let h = tf.tensor2d(z, [n, latent]);
        tfLayers.forEach(({ weight, bias }, i) => {
          const last = i === tfLayers.length - 1;
          h = tf.fused.matMul({ a: h, b: weight, bias, activation: last ? 'sigmoid' : 'relu' });
        });
        return h;
      });
      const values = out.dataSync();
      out.dispose();
      return values;
    },
    ort: async (z, n) => (await session.run({ z: new ort.Tensor('float32', z, [n, latent]) })).pixels.data,
  };
  const runtimeNames = Object.keys(runtimes);

  const latents = (n, salt = 0) => {
    const z = new Float32Array(n * latent);
    for (let i = 0; i < n; i++) {
      for (let d = 0; d < latent; d++) {
        z[i * latent + d] = meta.latent_mean[d] + 2.5 * meta.latent_std[d] * Math.sin(1.3 * i + 0.7 * d + salt);
      }
    }
    return z;
  };

  // Correctness first: every runtime against this project's decoder on every batch, and rows for the reference.
  const checks = {};
  const firstRows = {};
  for (const n of batches) {
    const z = latents(n);
    const expected = await runtimes.candle(z, n);
    for (const name of runtimeNames) {
      const out = await runtimes[name](z, n);
      if (out.length !== n * pixels) throw new Error(`${name}: ${out.length} values for batch ${n}`);
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - expected[i]));
      checks[`${name} batch ${n}`] = worst;
      if (!(worst <= tolerance)) throw new Error(`${name} differs from the project's decoder by ${worst} at batch ${n}`);
      if (n >= checkRows && !firstRows[name]) firstRows[name] = Array.from(out.subarray(0, checkRows * pixels));
    }
  }

  // Grid frames: the same cells as the page's grid, tiled to RGBA and put on a canvas.
  const canvas = document.createElement('canvas');
  document.body.append(canvas);
  const context = canvas.getContext('2d');
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
  const tile = (values, side) => {
    const [w, h] = [meta.width, meta.height];
    const rgba = new Uint8ClampedArray(side * w * side * h * 4);
    const words = new Uint32Array(rgba.buffer);
    const stride = side * w;
    for (let cell = 0; cell < side * side; cell++) {
      const [row, col] = [Math.floor(cell / side), cell % side];
      for (let y = 0; y < h; y++) {
        const start = (row * h + y) * stride + col * w;
        const source = cell * pixels + y * w;
        for (let x = 0; x < w; x++) words[start + x] = 0xff000000 | (((values[source + x] * 255 + 0.5) | 0) * 0x010101);
      }
    }
    return rgba;
  };
  const frames = {
    candle: async (side, base) => new Uint8ClampedArray((await askOurWorker('grid', { side, base })).buffer),
  };
  for (const name of ['tfjs', 'ort']) frames[name] = async (side, base) => tile(await runtimes[name](gridZ(side, base), side * side), side);
  const draw = (rgba, side) => {
    const [w, h] = [side * meta.width, side * meta.height];
    if (canvas.width !== w) [canvas.width, canvas.height] = [w, h];
    context.putImageData(new ImageData(rgba, w, h), 0, 0);
  };
  for (const side of grids) {
    const base = Float32Array.from(meta.latent_mean);
    const expected = await frames.candle(side, base);
    for (const name of ['tfjs', 'ort']) {
      const theirs = await frames[name](side, base);
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
  const decodeMs = {};
  for (const n of batches) {
    const inputs = Array.from({ length: 4 }, (_, salt) => latents(n, salt));
    const jobs = Object.fromEntries(runtimeNames.map((name) => [name, perCall((r) => runtimes[name](inputs[r % 4], n))]));
    await askOurWorker('setInputs', { zs: inputs });
    jobs.candle = (reps) => askOurWorker('time', { n, reps }); // timed in the worker, like the page's decode figure
    decodeMs[n] = await timeRounds(jobs, n === 1 ? 200 : n <= 256 ? 8 : 3);
  }
  const frameMs = {};
  for (const side of grids) {
    const bases = Array.from({ length: 4 }, (_, salt) => latents(1, salt + 10));
    const jobs = Object.fromEntries(
      runtimeNames.map((name) => [name, perCall(async (r) => draw(await frames[name](side, bases[r % 4]), side))]),
    );
    frameMs[side] = await timeRounds(jobs, side <= 16 ? 6 : 2);
  }
  return {
    decodeMs,
    frameMs,
    checks,
    firstRows,
    isolated: crossOriginIsolated,
    cores: navigator.hardwareConcurrency,
    tfInfo,
    ortVersion: ort.env.versions?.web ?? 'unknown',
    ortThreads: ort.env.wasm.numThreads,
    ourThreads: started.threads,
  };
}

const fmtMs = (ms) => (ms < 1 ? ms.toFixed(3) : ms.toFixed(2));
const LABELS = { candle: 'vae-explorer (candle + kernel)', tfjs: 'TF.js wasm', ort: 'ORT web wasm' };

function printTable(title, result) {
  console.log(`\n${title}`);
  console.log(`| | ${Object.values(LABELS).join(' | ')} | fastest peer / ours |`);
  console.log(`|---|${'---|'.repeat(Object.keys(LABELS).length + 1)}`);
  const row = (label, ms) => {
    const peer = Math.min(ms.tfjs, ms.ort);
    console.log(`| ${label} | ${Object.keys(LABELS).map((k) => `${fmtMs(ms[k])} ms`).join(' | ')} | ${(peer / ms.candle).toFixed(2)}x |`);
  };
  for (const n of BATCHES) row(`decode, batch ${n}`, result.decodeMs[n]);
  for (const side of GRIDS) row(`grid frame ${side}x${side} (decode + RGBA + draw)`, result.frameMs[side]);
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
  for (const threads of [1, 2]) {
    const page = await browser.newPage();
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
      `threads: vae-explorer ${result.ourThreads}, TF.js ${result.tfInfo.version} ${result.tfInfo.threads} ` +
        `(SIMD ${result.tfInfo.simd ? 'on' : 'off'}), ORT web ${result.ortVersion} ${result.ortThreads}; ` +
        `cross-origin isolated: ${result.isolated}; ${result.cores} cores`,
      result,
    );
  }
  console.log(`\npackages: @tensorflow/tfjs ${version('@tensorflow/tfjs')}, @tensorflow/tfjs-backend-wasm ${version('@tensorflow/tfjs-backend-wasm')}, onnxruntime-web ${version('onnxruntime-web')}`);
});
