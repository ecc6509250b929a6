// The explorer page in real headless Chromium: loading, sliders, grid, model switching, bad files,
// and wasm decode against native decode. Run with `make test-web` (it builds and writes the reference).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, useServerAndBrowser, openExplorer, screenshotPath, canvasPixels as shownPixels, canvasChanged } from './harness.mjs';

const REFERENCE = join(ROOT, 'target', 'web', 'reference-digits.json');

const session = useServerAndBrowser();

/** The RGBA bytes a canvas shows, as a plain array. */
async function canvasPixels(page, selector) {
  return (await shownPixels(page, selector)).data;
}

/** Waits until a canvas shows something other than `before`; returns the new pixels. */
const changedPixels = (page, selector, before) => canvasChanged(page, selector, before);

/** Waits until the grid on screen matches the current state (no decode in flight for it). */
async function gridSettled(page) {
  await page.waitForFunction(() => {
    const canvas = document.getElementById('grid-canvas');
    const { grid } = window.explorer.store.get();
    return canvas.dataset.serial && canvas.width === grid.size * 28;
  });
  await page.waitForTimeout(200);
}

const slider = (page, n) => page.getByRole('slider', { name: `z${n}`, exact: true });

test('the page loads the digits model with no console errors, and a screenshot is saved', async () => {
  const { page, errors } = await openExplorer(session.browser, session.server.url);
  await gridSettled(page);
  await assert.doesNotReject(page.getByText(/digits · 8-dim latent/).waitFor());
  assert.equal(await page.getByLabel('model', { exact: true }).inputValue(), 'digits');
  for (let n = 1; n <= 8; n++) assert.equal(await slider(page, n).count(), 1, `slider z${n}`);
  assert.equal(await page.getByRole('img', { name: /decoded image/ }).count(), 1);
  assert.equal(await page.getByRole('img', { name: /latent grid/ }).count(), 1);
  const image = await canvasPixels(page, '#image');
  assert.ok(new Set(image).size > 10, 'the decoded image is not blank');
  // A repeatable sample for the picture, so that it shows a clear digit and warm decode timings.
  await page.getByLabel('seed', { exact: true }).fill('7');
  await page.getByRole('button', { name: 'Random from the prior' }).click();
  await page.getByText('showing the sample for seed 7').waitFor();
  await gridSettled(page);
  await page.screenshot({ path: screenshotPath('screenshot.png') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('moving z3 changes the decoded image, and its value readout', async () => {
  const { page, errors } = await openExplorer(session.browser, session.server.url);
  const before = await canvasPixels(page, '#image');
  const max = Number(await slider(page, 3).getAttribute('max'));
  await slider(page, 3).fill(String(max));
  await changedPixels(page, '#image', before);
  const z3 = await page.evaluate(() => window.explorer.store.get().z[2]);
  assert.ok(Math.abs(z3 - max) < 1e-9, `z3 is ${z3}, expected ${max}`);
  assert.equal(await page.locator('output[for="slider-z3"]').textContent(), `+${max.toFixed(2)}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the grid renders N x N cells that are not all alike, for each size asked', async () => {
  const { page } = await openExplorer(session.browser, session.server.url);
  for (const size of [8, 16]) {
    await page.getByLabel('grid size').selectOption(String(size));
    await gridSettled(page);
    const { width, height } = await page.evaluate(() => {
      const c = document.getElementById('grid-canvas');
      return { width: c.width, height: c.height };
    });
    assert.equal(width, size * 28);
    assert.equal(height, size * 28);
    const rgba = await canvasPixels(page, '#grid-canvas');
    const cells = new Set();
    for (let row = 0; row < size; row++) {
      for (let col = 0; col < size; col++) {
        let cell = '';
        for (let y = 0; y < 28; y++) {
          for (let x = 0; x < 28; x++) cell += String.fromCharCode(rgba[((row * 28 + y) * width + col * 28 + x) * 4]);
        }
        cells.add(cell);
      }
    }
    assert.ok(cells.size >= (size * size * 3) / 4, `${size}x${size}: only ${cells.size} distinct cells`);
  }
  await page.close();
});

test('the grid redraws live when another slider moves', async () => {
  const { page } = await openExplorer(session.browser, session.server.url);
  await gridSettled(page);
  const before = await canvasPixels(page, '#grid-canvas');
  await slider(page, 5).fill(await slider(page, 5).getAttribute('min'));
  await changedPixels(page, '#grid-canvas', before);
  await page.close();
});

test('clicking a grid cell sets the two swept sliders to that cell’s values', async () => {
  const { page } = await openExplorer(session.browser, session.server.url);
  await page.getByLabel('X axis').selectOption('z3');
  await page.getByLabel('Y axis').selectOption('z6');
  await page.getByLabel('range').selectOption('2');
  await gridSettled(page);
  const meta = await page.evaluate(() => window.explorer.store.get().model.meta);
  const box = await page.getByRole('img', { name: /latent grid/ }).boundingBox();
  const size = 16;
  const [col, row] = [3, 11];
  await page.mouse.click(box.x + ((col + 0.5) * box.width) / size, box.y + ((row + 0.5) * box.height) / size);
  // Written out independently of the page: column centres from min to max, rows from max down to min.
  const span = (dim) => [meta.latent_mean[dim] - 2 * meta.latent_std[dim], meta.latent_mean[dim] + 2 * meta.latent_std[dim]];
  const [xMin, xMax] = span(2);
  const [yMin, yMax] = span(5);
  const expectX = xMin + ((xMax - xMin) * (col + 0.5)) / size;
  const expectY = yMax - ((yMax - yMin) * (row + 0.5)) / size;
  await page.waitForFunction((x) => Math.abs(Number(document.getElementById('slider-z3').value) - x) < 1e-4, expectX);
  assert.ok(Math.abs(Number(await slider(page, 3).inputValue()) - expectX) < 1e-4);
  assert.ok(Math.abs(Number(await slider(page, 6).inputValue()) - expectY) < 1e-4);
  // The other sliders stay where they were.
  assert.ok(Math.abs(Number(await slider(page, 1).inputValue()) - meta.latent_mean[0]) < 1e-6);
  await page.close();
});

test('switching the model works', async () => {
  const { page, errors } = await openExplorer(session.browser, session.server.url);
  await gridSettled(page);
  const image = await canvasPixels(page, '#image');
  const grid = await canvasPixels(page, '#grid-canvas');
  await page.getByLabel('model', { exact: true }).selectOption('fashion');
  await page.getByText(/fashion · 8-dim latent/).waitFor();
  await changedPixels(page, '#image', image);
  await changedPixels(page, '#grid-canvas', grid);
  const meta = await page.evaluate(() => window.explorer.store.get().model.meta);
  assert.equal(meta.dataset, 'fashion');
  assert.equal(Number(await slider(page, 1).getAttribute('max')).toFixed(5), (meta.latent_mean[0] + 3 * meta.latent_std[0]).toFixed(5));
  assert.deepEqual(errors, []);
  await page.close();
});

test('a link to the fashion model downloads only the fashion weights, by hash or by query', async () => {
  for (const query of ['#model=fashion', '?model=fashion']) {
    const page = await session.browser.newPage();
    const weights = [];
    page.on('request', (request) => {
      if (request.url().endsWith('.safetensors')) weights.push(new URL(request.url()).pathname);
    });
    await page.goto(`${session.server.url}${query}`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
    await page.getByText(/fashion · 8-dim latent/).waitFor();
    assert.equal(weights[0], '/weights/fashion.decoder.safetensors', query);
    assert.ok(weights.every((path) => path.startsWith('/weights/fashion.')), `${query}: ${weights}`);
    await page.close();
  }
});

test('a malformed file shows a readable error, and the old model stays loaded', async () => {
  const { page } = await openExplorer(session.browser, session.server.url);
  await page.locator('#model-file').setInputFiles({ name: 'broken.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('this is not a model') });
  const message = page.getByRole('alert');
  await message.waitFor();
  assert.match(await message.textContent(), /Could not load “broken.safetensors”: not a safetensors file.*Digits \(MNIST\) model stays loaded/);
  assert.equal(await page.getByLabel('model', { exact: true }).inputValue(), 'digits');

  // A real file cut short, dropped on the page, is refused the same way.
  const truncated = readFileSync(join(ROOT, 'weights', 'digits.safetensors')).subarray(0, 4096);
  await page.evaluate((bytes) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([new Uint8Array(bytes)], 'cut.safetensors'));
    document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, [...truncated]);
  await page.getByText(/Could not load “cut.safetensors”/).waitFor();

  // The digits model still decodes.
  const before = await canvasPixels(page, '#image');
  await slider(page, 2).fill(await slider(page, 2).getAttribute('max'));
  await changedPixels(page, '#image', before);
  assert.equal(await page.evaluate(() => window.explorer.store.get().model.meta.dataset), 'digits');
  await page.close();
});

test('Random from the prior repeats for the same seed', async () => {
  const { page } = await openExplorer(session.browser, session.server.url);
  await page.getByLabel('seed', { exact: true }).fill('42');
  await page.getByRole('button', { name: 'Random from the prior' }).click();
  const first = await page.evaluate(() => window.explorer.store.get().z);
  assert.equal(await page.getByLabel('seed', { exact: true }).inputValue(), '43');
  await page.getByRole('button', { name: 'Random from the prior' }).click();
  const second = await page.evaluate(() => window.explorer.store.get().z);
  assert.notDeepEqual(second, first);
  await page.getByLabel('seed', { exact: true }).fill('42');
  await page.getByRole('button', { name: 'Random from the prior' }).click();
  assert.deepEqual(await page.evaluate(() => window.explorer.store.get().z), first);
  await page.getByRole('button', { name: 'Reset' }).click();
  const { z, mean } = await page.evaluate(() => ({ z: window.explorer.store.get().z, mean: window.explorer.store.get().model.meta.latent_mean }));
  assert.deepEqual(z, mean);
  await page.close();
});

test('wasm decode, grid and encode equal the native ones', async (t) => {
  assert.ok(existsSync(REFERENCE), `${REFERENCE} is missing: run make test-web (it writes it natively first)`);
  const reference = JSON.parse(readFileSync(REFERENCE, 'utf8'));
  const { page } = await openExplorer(session.browser, session.server.url);
  await gridSettled(page); // so that no grid of the page's own lands on the canvas after this one
  const got = await page.evaluate(async ({ decode, grid, encode }) => {
    const { decoder } = window.explorer;
    const pixels = await decoder.decode(decode.z, decode.n);
    const tile = await decoder.grid({
      baseZ: grid.base_z, xDim: grid.x_dim, yDim: grid.y_dim, xMin: grid.x_min, xMax: grid.x_max,
      yMin: grid.y_min, yMax: grid.y_max, cols: grid.cols, rows: grid.rows,
    });
    const encoded = await decoder.encode(encode.pixels);
    // Drawn by the model worker on the grid canvas, so its reply has no pixels: they are read from the canvas.
    return { pixels: Array.from(pixels.pixels), offscreen: decoder.drawsOn('grid'), tileHasPixels: 'rgba' in tile, encoded: Array.from(encoded.muLogvar) };
  }, reference);
  assert.deepEqual([got.offscreen, got.tileHasPixels], [true, false], 'the grid is drawn in the model worker');
  const shown = await canvasPixels(page, '#grid-canvas');
  got.rgba = shown;
  const maxDiff = (a, b) => {
    assert.equal(a.length, b.length);
    return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  };
  assert.equal(got.pixels.length, reference.decode.n * 784);
  const decodeDiff = maxDiff(got.pixels, reference.decode.pixels);
  assert.ok(decodeDiff <= 1e-5, `decode differs by ${decodeDiff}`);
  // Grid: same layout, and gray levels equal (or one apart where a value sits on a rounding edge).
  const gridDiff = maxDiff(got.rgba, reference.grid.rgba);
  assert.ok(gridDiff <= 1, `grid differs by ${gridDiff} gray levels`);
  const encodeDiff = maxDiff(got.encoded, reference.encode.mu_logvar);
  t.diagnostic(`max |wasm - native|: decode ${decodeDiff}, grid ${gridDiff} gray levels, encode ${encodeDiff}`);
  assert.ok(encodeDiff <= 1e-4, `encode differs by ${encodeDiff}`);
  await page.close();
});

test('bad arguments give readable errors, not panics', async () => {
  const { page, errors } = await openExplorer(session.browser, session.server.url);
  const messages = await page.evaluate(async () => {
    const { decoder } = window.explorer;
    const grid = { baseZ: new Array(8).fill(0), xDim: 0, yDim: 1, xMin: -1, xMax: 1, yMin: -1, yMax: 1, cols: 4, rows: 4 };
    const attempts = [
      () => decoder.decode([1, 2, 3]),
      () => decoder.decode([0, 0, 0, 0, 0, 0, 0, NaN]),
      () => decoder.grid({ ...grid, yDim: 0 }),
      () => decoder.grid({ ...grid, xDim: 8 }),
      () => decoder.grid({ ...grid, cols: 1000 }),
      () => decoder.grid({ ...grid, xMin: 2 }),
      () => decoder.encode([0.5, 0.5]),
      () => decoder.posterior(new Array(784 * 2).fill(0), new Array(8).fill(0)),
      () => decoder.posterior(new Array(784).fill(0), [1, 2, 3]),
      () => decoder.posterior(new Array(784).fill(0), []),
      () => decoder.posterior(new Array(784).fill(0), [0, 0, NaN, 0, 0, 0, 0, 0]),
      () => decoder.posterior(new Array(784).fill(0), new Array(8 * 4097).fill(0)),
    ];
    const out = [];
    for (const attempt of attempts) {
      try {
        await attempt();
        out.push('no error');
      } catch (error) {
        out.push(error.message);
      }
    }
    // The model still works after all that.
    out.push((await decoder.decode(new Array(8).fill(0))).pixels.length);
    out.push((await decoder.posterior(new Array(784).fill(0), new Array(16).fill(0))).recon.length);
    return out;
  });
  assert.match(messages[0], /z has 3 values; 1 vectors of latent_dim 8 need 8/);
  assert.match(messages[1], /z\[7\] is NaN/);
  assert.match(messages[2], /two different dims/);
  assert.match(messages[3], /x_dim = 8 is out of range/);
  assert.match(messages[4], /cols = 1000/);
  assert.match(messages[5], /x range \[2, 1\]/);
  assert.match(messages[6], /positive multiple of 784/);
  assert.match(messages[7], /pixels has 1568 values; sample_posterior takes one image of 784/);
  assert.match(messages[8], /eps has 3 values; expected 1..=4096 vectors of latent_dim 8/);
  assert.match(messages[9], /eps has 0 values/);
  assert.match(messages[10], /eps\[2\] is NaN/);
  assert.match(messages[11], /eps has 32776 values/);
  assert.equal(messages[12], 784);
  assert.equal(messages[13], 2, 'sample_posterior still scores two samples');
  assert.deepEqual(errors, []);
  await page.close();
});
