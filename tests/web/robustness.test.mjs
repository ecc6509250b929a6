// Valid but hostile models opened through the page's file input (each one works, or is refused with a
// clear message), a worker that traps or fails and is restarted, and the model picker's entries.
//
// The corpus is built here, written to target/web/hostile/ and opened from there by path.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, useServerAndBrowser, openExplorer, canvasPixels, canvasChanged } from './harness.mjs';
import { writeSafetensors } from './safetensors.mjs';

const CORPUS = join(ROOT, 'target', 'web', 'hostile');
/** Console text that would mean the wasm panicked or trapped. */
const PANIC = /panicked|unreachable|RuntimeError|wasm trap|memory access out of bounds/i;

/** Bytes of one tensor's values in `dtype` (F32, F64 or F16, whose values are stored as given halves). */
function tensorBytes(dtype, n, value) {
  if (dtype === 'F16') {
    // Small values only: f16 with exponent 0b01011 (about 0.03..0.06), the sign and mantissa varying.
    return new Uint8Array(Uint16Array.from({ length: n }, () => 0x2c00 | (Math.floor((value() + 0.5) * 0x3ff) & 0x83ff)).buffer);
  }
  const values = (dtype === 'F64' ? Float64Array : Float32Array).from({ length: n }, value);
  return new Uint8Array(values.buffer);
}

/** A valid weights file (docs/FORMAT.md) of the given shape, with seeded small random weights. */
function modelFile({ width, height, latent, encoderHidden = [], decoderHidden = [], activation = 'relu', dtype = 'F32', classes = 10, atlas = 0 }) {
  let state = 12345;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const tensors = [];
  const dense = (name, fanIn, fanOut) => {
    const scale = 4 / Math.sqrt(fanIn);
    tensors.push({ name: `${name}.weight`, dtype, shape: [fanOut, fanIn], data: tensorBytes(dtype, fanOut * fanIn, () => random() * scale) });
    tensors.push({ name: `${name}.bias`, dtype, shape: [fanOut], data: tensorBytes(dtype, fanOut, () => random() * 0.1) });
  };
  const pixels = width * height;
  let fanIn = pixels;
  for (const [i, h] of encoderHidden.entries()) {
    dense(`encoder.hidden.${i}`, fanIn, h);
    fanIn = h;
  }
  dense('encoder.mu', fanIn, latent);
  dense('encoder.logvar', fanIn, latent);
  fanIn = latent;
  for (const [i, h] of decoderHidden.entries()) {
    dense(`decoder.hidden.${i}`, fanIn, h);
    fanIn = h;
  }
  dense('decoder.out', fanIn, pixels);
  if (atlas) {
    tensors.push({ name: 'atlas.pixels', dtype: 'U8', shape: [atlas, height, width], data: Uint8Array.from({ length: atlas * pixels }, () => Math.floor((random() + 0.5) * 256)) });
    tensors.push({ name: 'atlas.labels', dtype: 'U8', shape: [atlas], data: Uint8Array.from({ length: atlas }, (_, i) => i % classes) });
    tensors.push({ name: 'atlas.mu', dtype: 'F32', shape: [atlas, latent], data: tensorBytes('F32', atlas * latent, () => random() * 4) });
  }
  const meta = {
    format_version: 1,
    dataset: 'hostile',
    class_names: Array.from({ length: classes }, (_, c) => `class ${c}`),
    width,
    height,
    latent_dim: latent,
    encoder_hidden: encoderHidden,
    decoder_hidden: decoderHidden,
    activation,
    likelihood: 'bernoulli',
    latent_mean: Array(latent).fill(0),
    latent_std: Array(latent).fill(1),
  };
  return writeSafetensors({ metadata: { vae_explorer: JSON.stringify(meta) }, tensors });
}

/** The corpus: each file's name, how to make it, and a pattern its refusal must match if it is refused. */
const CORPUS_FILES = [
  { name: 'latent16-2x2.safetensors', spec: { width: 2, height: 2, latent: 16, encoderHidden: [8], decoderHidden: [3] } },
  { name: 'latent64-no-hidden-6x5.safetensors', spec: { width: 6, height: 5, latent: 64 } },
  { name: 'latent1.safetensors', spec: { width: 28, height: 28, latent: 1, encoderHidden: [16], decoderHidden: [16], atlas: 20 } },
  { name: 'image-20x12.safetensors', spec: { width: 20, height: 12, latent: 4, encoderHidden: [32], decoderHidden: [32], atlas: 30 } },
  { name: 'image-300x300.safetensors', spec: { width: 300, height: 300, latent: 3 } },
  { name: 'image-1024x1024.safetensors', spec: { width: 1024, height: 1024, latent: 2 } },
  { name: 'tanh-f64.safetensors', spec: { width: 28, height: 28, latent: 5, encoderHidden: [24], decoderHidden: [24, 7], activation: 'tanh', dtype: 'F64', atlas: 40 } },
  { name: 'classes-200.safetensors', spec: { width: 28, height: 28, latent: 4, encoderHidden: [16], decoderHidden: [16], classes: 200, atlas: 400 } },
  // 200 MB of F16 weights that would take over 1 GB as f32 in wasm: Model.load refuses it by size.
  {
    name: 'too-big-for-wasm.safetensors',
    spec: { width: 1024, height: 1024, latent: 1, decoderHidden: [100], dtype: 'F16' },
    refusal: /this model needs about \d+\.\d MB of memory to run, over the 1024\.0 MB the browser build has/,
  },
];
/** A sparse file over the page's 512 MB cap: refused before it is read. */
const OVERSIZED = 'oversized.safetensors';

before(() => {
  rmSync(CORPUS, { recursive: true, force: true });
  mkdirSync(CORPUS, { recursive: true });
  for (const { name, spec } of CORPUS_FILES) writeFileSync(join(CORPUS, name), modelFile(spec));
  const fd = openSync(join(CORPUS, OVERSIZED), 'w');
  ftruncateSync(fd, 600 * 2 ** 20);
  closeSync(fd);
});
const session = useServerAndBrowser();

/** Every console message and page error, of the page and its workers. */
function collectConsole(page) {
  const seen = [];
  page.on('console', (message) => seen.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => seen.push(`pageerror: ${error}`));
  return seen;
}

/** Opens `name` from the corpus through the file input; resolves to { loaded, message }. */
async function openModelFile(page, name) {
  await page.locator('#model-file').setInputFiles(join(CORPUS, name));
  const outcome = await page.waitForFunction(
    (name) => {
      const message = document.getElementById('message');
      if (window.explorer.store.get().model?.name === name) return { loaded: true };
      if (!message.hidden && message.textContent.includes(`Could not load \u201c${name}\u201d`)) return { loaded: false, message: message.textContent };
      return null;
    },
    name,
    { timeout: 120_000 },
  );
  return outcome.jsonValue();
}

/** Waits until the image and (for 2+ dims) the grid on screen are this model's, decoded; returns the grid's size. */
async function decodedViews(page) {
  return (await page.waitForFunction(
    () => {
      const { model, grid } = window.explorer.store.get();
      const { width, height } = model.meta;
      const image = document.getElementById('image');
      if (image.width !== width || image.height !== height) return null;
      if (!grid) return { size: 0 };
      const canvas = document.getElementById('grid-canvas');
      return canvas.width === grid.size * width && canvas.height === grid.size * height ? { size: grid.size } : null;
    },
    null,
    { timeout: 120_000 },
  )).jsonValue();
}

test('every hostile but valid model works or is refused clearly; then the shipped model decodes again, with no trap', async (t) => {
  const { page } = await openExplorer(session.browser, session.server.url);
  const seen = collectConsole(page);
  await page.waitForFunction(() => document.body.dataset.explore === 'ready');
  for (const { name, spec, refusal } of CORPUS_FILES) {
    const outcome = await openModelFile(page, name);
    if (refusal) {
      t.diagnostic(`${name}: refused: ${outcome.message}`);
      assert.ok(!outcome.loaded, `${name} should be refused`);
      assert.match(outcome.message, refusal, name);
      continue;
    }
    assert.ok(outcome.loaded, `${name} was refused: ${outcome.message}`);
    const { size } = await decodedViews(page);
    const state = await page.evaluate(() => {
      const { model, grid } = window.explorer.store.get();
      const message = document.getElementById('message');
      const note = document.getElementById('grid-note');
      const enabled = [...document.getElementById('grid-size').options].filter((o) => !o.disabled).map((o) => Number(o.value));
      return { maxGridSide: model.maxGridSide, grid, enabled, message: message.hidden ? '' : message.textContent, note: note.hidden ? '' : note.textContent };
    });
    t.diagnostic(`${name}: works; grid ${size} x ${size} (cap ${state.maxGridSide})${state.note ? `; note: ${state.note}` : ''}`);
    assert.doesNotMatch(state.message, /failed/i, `${name}: ${state.message}`);
    if (spec.latent < 2) assert.equal(state.grid, null, `${name}: no grid for one dim`);
    else assert.ok(size >= 1 && size <= state.maxGridSide, `${name}: grid ${size} within the cap ${state.maxGridSide}`);
    // Large images: the page caps the grid, and says why.
    if (spec.latent >= 2) assert.ok(state.enabled.length > 0 && state.enabled.every((s) => s <= state.maxGridSide), `${name}: sizes ${state.enabled}`);
    if (state.maxGridSide < 32) {
      const largest = Math.max(...state.enabled);
      assert.match(state.note, new RegExp(`at most ${largest} \u00d7 ${largest} for ${spec.width}\u00d7${spec.height} images: a larger one would not fit`), name);
    } else {
      assert.equal(state.note, '', name);
    }
    if (name === 'image-20x12.safetensors') {
      // The pad prepares its drawing at the model's size, in the default style ("fit": no key in the file).
      assert.equal(await page.evaluate(() => window.explorer.store.get().model.meta.preprocess), 'fit');
      const pad = page.locator('#pad');
      await pad.scrollIntoViewIfNeeded();
      const box = await pad.boundingBox();
      await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.6, { steps: 8 });
      await page.mouse.up();
      await page.waitForFunction(() => window.explorer.store.get().encoded?.source === 'your drawing');
      const encoded = await page.evaluate(() => {
        const { encoded } = window.explorer.store.get();
        return { length: encoded.pixels.length, finite: [...encoded.mu, encoded.terms.recon].every(Number.isFinite) };
      });
      assert.deepEqual(encoded, { length: 240, finite: true });
    }
  }
  // Over the cap: refused before it is read, and no entry is left in the picker.
  const outcome = await openModelFile(page, OVERSIZED);
  assert.ok(!outcome.loaded);
  assert.match(outcome.message, /the file is 600 MB; the page opens model files up to 512 MB/);
  assert.equal(await page.locator(`#model option[value="file:${OVERSIZED}"]`).count(), 0);

  // The shipped model decodes again.
  await page.getByLabel('model', { exact: true }).selectOption('digits');
  await page.waitForFunction(() => window.explorer.store.get().model?.name === 'digits');
  assert.equal((await decodedViews(page)).size, 16);
  const before = (await canvasPixels(page, '#image')).data;
  const z2 = page.getByRole('slider', { name: 'z2', exact: true });
  await z2.fill(await z2.getAttribute('max'));
  await canvasChanged(page, '#image', before, 30_000);
  assert.deepEqual(seen.filter((m) => PANIC.test(m) || m.startsWith('pageerror')), []);
  await page.close();
});

test('a wasm trap or a worker error restarts the worker: pending requests reject, the model reloads, the page decodes again', async () => {
  const { page } = await openExplorer(session.browser, session.server.url);
  for (const how of ['trap', 'worker error']) {
    const worker = page.workers().find((w) => w.url().endsWith('/www/worker.js'));
    assert.ok(worker, 'the model worker runs');
    const ended = new Promise((done) => worker.once('close', done));
    if (how === 'trap') {
      // Requests queued before the trap are answered; the trap and everything after it settle too.
      const settled = await page.evaluate(async () => {
        const { decoder, store } = window.explorer;
        const z = store.get().z;
        // The encoder part first: until it is in, encode waits outside the queue and the trap could pass it.
        await decoder.encode(new Float32Array(784));
        const requests = [
          decoder.decode(z, 1, 'probe-a'), decoder.encode(new Float32Array(784)), decoder.crashForTest(),
          decoder.decode(z, 1, 'probe-b'), decoder.elbo(new Float32Array(784)), decoder.decode(z, 1, 'probe-a'),
        ];
        const timeout = new Promise((done) => setTimeout(() => done('timeout'), 30_000));
        const results = await Promise.race([Promise.allSettled(requests), timeout]);
        if (results === 'timeout') return results;
        return results.map((r) => (r.status === 'rejected' ? `rejected: ${r.reason.message}` : r.value === null ? 'null' : 'ok'));
      });
      assert.notEqual(settled, 'timeout', 'a promise never settled');
      assert.deepEqual(settled.slice(0, 2), ['ok', 'ok'], JSON.stringify(settled));
      assert.match(settled[2], /^rejected: the model worker stopped: RuntimeError: memory access out of bounds/, JSON.stringify(settled));
      for (const result of settled.slice(3)) assert.match(result, /^(rejected: the model worker stopped|null$)/, JSON.stringify(settled));
    } else {
      // An uncaught error inside the worker, outside any request: the worker's `error` event.
      await worker.evaluate(() => setTimeout(() => { throw new Error('a deliberate uncaught error'); }, 0));
    }
    await ended; // the dead worker was ended
    await page.getByText(/The model worker stopped \(.*\); it was restarted and the Digits \(MNIST\) model reloaded\./).waitFor({ timeout: 30_000 });
    const start = (await canvasPixels(page, '#image')).data;
    const z3 = page.getByRole('slider', { name: 'z3', exact: true });
    await z3.fill(await z3.getAttribute(how === 'trap' ? 'max' : 'min'));
    await canvasChanged(page, '#image', start, 30_000);
  }
  await page.close();
});

test('a request built for the old model that reaches the worker after a new one loaded is not run: it resolves to null', async () => {
  const { page, errors } = await openExplorer(session.browser, session.server.url);
  await page.waitForFunction(() => document.body.dataset.explore === 'ready');
  // The shipped digits model has 8 latent dims and 28x28 images; this one 5 dims and 2x2 images.
  const other = modelFile({ width: 2, height: 2, latent: 5, encoderHidden: [8], decoderHidden: [3] });
  const outcome = await page.evaluate(async (bytes) => {
    const { decoder, store } = window.explorer;
    const { z } = store.get();
    const pixels = new Float32Array(28 * 28).fill(0.5);
    // Posted in one task, so all three reach the worker after the load and before the page reads its reply.
    const loading = decoder.load({ bytes: new Uint8Array(bytes).buffer });
    const stale = [decoder.decode(z, 1, 'stale-test'), decoder.encode(pixels), decoder.posterior(pixels, new Float32Array(8 * 2))];
    const settled = await Promise.allSettled([loading, ...stale]);
    const fresh = await decoder.decode(new Float32Array(5), 1, 'stale-test');
    return {
      loadedDims: settled[0].value?.meta.latent_dim,
      stale: settled.slice(1).map((s) => (s.status === 'fulfilled' ? s.value : `rejected: ${s.reason.message}`)),
      freshPixels: fresh?.pixels.length,
    };
  }, [...other]);
  assert.deepEqual(outcome, { loadedDims: 5, stale: [null, null, null], freshPixels: 4 });
  assert.deepEqual(errors, []);
  await page.close();
});

test('picking an earlier file entry loads it again; a file that can no longer be read is refused and its entry removed', async () => {
  const { page, errors } = await openExplorer(session.browser, session.server.url);
  const copy = join(CORPUS, 'picker-copy.safetensors');
  writeFileSync(copy, modelFile(CORPUS_FILES.find((f) => f.name.startsWith('tanh')).spec));
  assert.ok((await openModelFile(page, 'picker-copy.safetensors')).loaded);
  const picker = page.getByLabel('model', { exact: true });
  assert.equal(await picker.inputValue(), 'file:picker-copy.safetensors');
  await picker.selectOption('fashion');
  await page.waitForFunction(() => window.explorer.store.get().model?.name === 'fashion');
  await picker.selectOption('file:picker-copy.safetensors');
  await page.waitForFunction(() => window.explorer.store.get().model?.name === 'picker-copy.safetensors');
  assert.equal(await picker.inputValue(), 'file:picker-copy.safetensors');
  // Gone from disk: picking it again is refused with the reason, the entry goes, the model stays.
  await picker.selectOption('digits');
  await page.waitForFunction(() => window.explorer.store.get().model?.name === 'digits');
  rmSync(copy);
  await picker.selectOption('file:picker-copy.safetensors');
  await page.getByText(/Could not load \u201cpicker-copy.safetensors\u201d: the file could not be read \(.+\)\. The Digits \(MNIST\) model stays loaded\./).waitFor();
  assert.equal(await picker.inputValue(), 'digits');
  assert.equal(await page.locator('#model option[value="file:picker-copy.safetensors"]').count(), 0);
  assert.equal(await page.evaluate(() => window.explorer.store.get().model.name), 'digits');
  assert.deepEqual(errors, []);
  await page.close();
});
