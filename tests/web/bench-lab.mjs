// The β-VAE lab's benchmark: prints figures, asserts nothing beyond its set-up.
//
//   node tests/web/bench-lab.mjs          (make bench-lab builds first and runs it)
//
// 1. The lab with its default settings on digits, trained from the Train click for LAB_SECONDS
//    (default 125), twice: in a cross-origin isolated page (its threaded build, www/pkg-lab-threads,
//    both cores) and in one that is not (www/pkg-lab, one thread). Each: the held-out -ELBO of the last epoch finished
//    by 30 s and by 120 s of wall-clock time, images/s, the main thread's tasks over 50 ms (CPU time
//    from a Chromium trace, and wall time from PerformanceObserver "longtask") and the explorer's
//    decode round trips while the lab trains.
// 2. TensorFlow.js 4.22 (wasm backend, SIMD) training the same 784-400-8 VAE, loss and batch (128)
//    on the same digits in the same page, with as many threads as the lab had there: images/s over
//    timed steps after a warm-up.
// 3. The native trainer on the same model and batch (target/release/bench_train on 9,003
//    Fashion-MNIST images, the digits split's size), with 2 threads and with 1.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { ROOT, stripIsolation, withServerAndBrowser } from './harness.mjs';
import { mainThreadTasks } from './trace.mjs';

const LAB_SECONDS = Number(process.env.LAB_SECONDS ?? 125);
const TFJS_STEPS = Number(process.env.TFJS_STEPS ?? 60);

const packageDir = (name) => join(ROOT, 'node_modules', name);
const MOUNTS = {
  '/bench/tfjs/': join(packageDir('@tensorflow/tfjs'), 'dist'),
  '/bench/tfjs-wasm/': join(packageDir('@tensorflow/tfjs-backend-wasm'), 'dist'),
};
const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm' };
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin' };

async function routeTfjs(page, origin) {
  await page.context().route(`${origin}bench/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    const prefix = Object.keys(MOUNTS).find((p) => path.startsWith(p));
    const file = prefix && join(MOUNTS[prefix], path.slice(prefix.length));
    if (!file || file.includes('..')) return route.fulfill({ status: 404, headers: ISOLATION });
    return route.fulfill({ body: readFileSync(file), contentType: TYPES[extname(file)] ?? 'application/octet-stream', headers: ISOLATION });
  });
}

/** Opens the page (cross-origin isolated or not) and the lab, trains with the defaults for `seconds`; returns what was seen. */
async function runLab(browser, url, { seconds, isolated }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (!isolated) await stripIsolation(context, url);
  const page = await context.newPage();
  await routeTfjs(page, url);
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  await page.click('#lab-open summary');
  await page.waitForSelector('#lab-root[data-ready="true"]', { timeout: 60_000 });
  await browser.startTracing(page, { categories: ['toplevel'] });
  const result = await page.evaluate(async (secondsToRun) => {
    const root = document.getElementById('lab-root');
    const longTasks = [];
    new PerformanceObserver((list) => longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
    const times = [];
    new MutationObserver(() => times.push(performance.now())).observe(document.getElementById('lab-table'), { childList: true });
    const rates = [];
    new MutationObserver(() => rates.push(Number(root.dataset.imagesPerSecond))).observe(root, { attributes: true, attributeFilter: ['data-images-per-second'] });
    const start = performance.now();
    document.getElementById('lab-train').click();
    // The explorer's decodes while the lab trains: one slider-sized decode every 250 ms.
    const decodes = [];
    const { decoder, store } = window.explorer;
    const z = store.get().z;
    while (performance.now() - start < secondsToRun * 1000) {
      const t = performance.now();
      await decoder.decode(z, 1, 'bench');
      decodes.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 250));
    }
    document.getElementById('lab-pause').click();
    const { state } = await window.explorer.lab;
    return {
      threads: Number(root.dataset.threads),
      served: Number(root.dataset.served),
      epochs: state.epochs.map((e, i) => ({ ...e, seconds: (times[i] - start) / 1000 })),
      rates,
      longTasks,
      decodes,
    };
  }, seconds);
  result.mainThread = mainThreadTasks(JSON.parse(String(await browser.stopTracing())));
  return { page, result };
}

/** Runs in the page: TF.js training the lab's default VAE on the digits pack on `threads`; returns images/s. */
async function tfjsTraining({ steps, threads }) {
  const loadScript = (src) =>
    new Promise((resolve, reject) => {
      const script = Object.assign(document.createElement('script'), { src });
      script.onload = resolve;
      script.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.append(script);
    });
  await loadScript('/bench/tfjs/tf.min.js');
  await loadScript('/bench/tfjs-wasm/tf-backend-wasm.min.js');
  const tf = window.tf;
  tf.wasm.setWasmPaths('/bench/tfjs-wasm/');
  if (threads > 1) tf.wasm.setThreadsCount(threads);
  else tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not start');
  await tf.ready();
  const response = await fetch('/www/lab-data/digits.safetensors.gz');
  const bytes = new Uint8Array(await new Response(response.body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const [begin, end] = header['train.images'].data_offsets;
  const images = bytes.subarray(8 + headerLength + begin, 8 + headerLength + end);
  const [inDim, hidden, latent, batch] = [784, 400, 8, 128];
  const glorot = (rows, cols) => tf.variable(tf.randomUniform([rows, cols], -Math.sqrt(6 / (rows + cols)), Math.sqrt(6 / (rows + cols))));
  const zeros = (n) => tf.variable(tf.zeros([n]));
  const w = {
    e1: glorot(inDim, hidden), b1: zeros(hidden), eh: glorot(hidden, 2 * latent), bh: zeros(2 * latent),
    d1: glorot(latent, hidden), c1: zeros(hidden), d2: glorot(hidden, inDim), c2: zeros(inDim),
  };
  const optimizer = tf.train.adam(2e-3);
  const batches = Math.floor(images.length / inDim / batch);
  const xOf = (k) => tf.tensor2d(Float32Array.from(images.subarray(k * batch * inDim, (k + 1) * batch * inDim), (v) => v / 255), [batch, inDim]);
  const step = (k) => {
    const x = xOf(k % batches);
    const eps = tf.randomNormal([batch, latent]);
    const cost = optimizer.minimize(() => {
      const h = tf.relu(tf.add(tf.matMul(x, w.e1), w.b1));
      const head = tf.add(tf.matMul(h, w.eh), w.bh);
      const [mu, logvar] = tf.split(head, 2, 1);
      const z = tf.add(mu, tf.mul(tf.exp(tf.mul(logvar, 0.5)), eps));
      const g = tf.relu(tf.add(tf.matMul(z, w.d1), w.c1));
      const logits = tf.add(tf.matMul(g, w.d2), w.c2);
      // BCE with logits in its stable form, and the closed-form KL: the lab's loss.
      const bce = tf.sum(tf.add(tf.sub(tf.relu(logits), tf.mul(logits, x)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))));
      const kl = tf.mul(-0.5, tf.sum(tf.sub(tf.sub(tf.add(1, logvar), tf.square(mu)), tf.exp(logvar))));
      return tf.div(tf.add(bce, kl), batch);
    }, true);
    const loss = cost.dataSync()[0];
    tf.dispose([x, eps, cost]);
    return loss;
  };
  const losses = [];
  for (let k = 0; k < 5; k++) losses.push(step(k)); // warm-up
  const start = performance.now();
  for (let k = 5; k < 5 + steps; k++) losses.push(step(k));
  const seconds = (performance.now() - start) / 1000;
  const threadsUsed = tf.wasm.getThreadsCount();
  return { version: tf.version.tfjs, simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), threads: threadsUsed, imagesPerSecond: (steps * batch) / seconds, firstLoss: losses[0], lastLoss: losses.at(-1) };
}

function nativeImagesPerSecond(threads) {
  const out = execFileSync(join(ROOT, 'target', 'release', 'bench_train'), ['--hidden', '400', '--latent', '8', '--batch', '128', '--limit', '9003', '--epochs', '3'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, RAYON_NUM_THREADS: String(threads) },
  });
  const median = Number(out.match(/median: ([\d.]+) s\/epoch/)[1]);
  return 9003 / median;
}

const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
};

const at = (epochs, seconds) => epochs.filter((e) => e.seconds <= seconds).at(-1);

const threadsName = (n) => (n === 1 ? 'one thread' : `${n} threads`);

await withServerAndBrowser(async ({ server, browser }) => {
  const labRates = {};
  for (const isolated of [true, false]) {
    const run = await runLab(browser, server.url, { seconds: LAB_SECONDS, isolated });
    const r = run.result;
    const [e30, e120] = [at(r.epochs, 30), at(r.epochs, 120)];
    console.log(`lab, defaults (784-400-8, batch 128, lr 2e-3, beta 1), digits, ${isolated ? '' : 'not '}cross-origin isolated: ${threadsName(r.threads)}; digits pack ${(r.served / 1e6).toFixed(2)} MB as served`);
    for (const e of r.epochs) console.log(`  epoch ${e.epoch} at ${e.seconds.toFixed(1)} s: -ELBO ${e.neg_elbo.toFixed(2)} (recon ${e.recon.toFixed(2)}, KL ${e.kl.toFixed(2)}), ${e.active} active`);
    console.log(`  held-out -ELBO by 30 s: ${e30 ? `${e30.neg_elbo.toFixed(2)} (epoch ${e30.epoch})` : 'no epoch done'}; by 120 s: ${e120 ? `${e120.neg_elbo.toFixed(2)} (epoch ${e120.epoch})` : 'no epoch done'}`);
    const ips = median(r.rates);
    labRates[r.threads] = ips;
    console.log(`  images/s (median over slices): ${ips.toFixed(0)}`);
    const list = (tasks) => `${tasks.length}${tasks.length ? ` (${tasks.map((d) => d.toFixed(0)).join(', ')} ms)` : ''}`;
    const m = r.mainThread;
    console.log(`  main-thread tasks over 50 ms of CPU time (Chromium trace, tdur): ${list(m.long)} of ${m.tasks} tasks; the longest ${m.longest.toFixed(1)} ms; ${m.total.toFixed(1)} s of CPU in all`);
    console.log(`  main-thread long tasks over 50 ms of wall time (PerformanceObserver): ${list(r.longTasks)}`);
    console.log(`  explorer decodes while training: ${r.decodes.length}, median round trip ${median(r.decodes).toFixed(2)} ms, max ${Math.max(...r.decodes).toFixed(1)} ms`);
    try {
      const tfjs = await run.page.evaluate(tfjsTraining, { steps: TFJS_STEPS, threads: r.threads });
      console.log(`TF.js ${tfjs.version} wasm (SIMD ${tfjs.simd}, ${threadsName(tfjs.threads)}), same model, loss and batch, same page: ${tfjs.imagesPerSecond.toFixed(0)} images/s (loss ${tfjs.firstLoss.toFixed(1)} -> ${tfjs.lastLoss.toFixed(1)} over ${TFJS_STEPS + 5} steps)`);
      console.log(`  ours / TF.js: ${(ips / tfjs.imagesPerSecond).toFixed(2)}x`);
    } catch (error) {
      console.log(`TF.js training failed: ${error.message}`);
    }
    await run.page.context().close();
  }
  const threaded = Object.keys(labRates).map(Number).find((n) => n > 1);
  if (threaded) console.log(`lab, ${threaded} threads / one: ${(labRates[threaded] / labRates[1]).toFixed(2)}x`);

  const [native2, native1] = [nativeImagesPerSecond(2), nativeImagesPerSecond(1)];
  console.log(`native trainer, same model and batch: ${native2.toFixed(0)} images/s on 2 threads, ${native1.toFixed(0)} on 1`);
  console.log(`  lab / native: ${(labRates[1] / native1).toFixed(2)} on one thread${threaded ? `, ${(labRates[threaded] / native2).toFixed(2)} on ${threaded}` : ''}`);
});
