// Drawing in the model worker (OffscreenCanvas, www/surfaces.js): the same pixels as the native decode in
// both wasm builds, the same as the page's own drawing where canvases cannot be transferred, no drawing
// on the main thread, and both canvases drawing again after the worker restarts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, useServerAndBrowser, openExplorer, canvasPixels, canvasChanged, stripIsolation } from './harness.mjs';

const REFERENCE = join(ROOT, 'target', 'web', 'reference-digits.json');

const session = useServerAndBrowser();

/** Counts, on the main thread, putImageData calls on the main image's and the grid's canvases. */
function countMainThreadDraws() {
  window.mainThreadDraws = 0;
  const put = CanvasRenderingContext2D.prototype.putImageData;
  CanvasRenderingContext2D.prototype.putImageData = function (...args) {
    if (['image', 'grid-canvas'].includes(this.canvas.id)) window.mainThreadDraws++;
    return put.apply(this, args);
  };
}

/** Opens the page in a fresh context: `isolated` picks the threaded build; `fallback` hides OffscreenCanvas transfer. */
async function open({ isolated = true, fallback = false } = {}) {
  const context = await session.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const requested = [];
  context.on('request', (request) => requested.push(new URL(request.url()).pathname));
  if (!isolated) await stripIsolation(context, session.server.url);
  await context.addInitScript(countMainThreadDraws);
  if (fallback) await context.addInitScript(() => delete HTMLCanvasElement.prototype.transferControlToOffscreen);
  const { page, errors } = await openExplorer(context, session.server.url);
  await gridShown(page, 0);
  return { context, page, errors, requested };
}

/** Waits until the page has shown a grid later than serial `after`. */
function gridShown(page, after) {
  return page.waitForFunction((n) => Number(document.getElementById('grid-canvas').dataset.serial) > n, after, { timeout: 30_000 });
}

const gridSerial = (page) => page.evaluate(() => Number(document.getElementById('grid-canvas').dataset.serial));

/** Asks the page's decoder for the reference grid; returns whether the reply had pixels, and what the canvas shows. */
async function referenceGrid(page, grid) {
  const reply = await page.evaluate(async (g) => {
    const tile = await window.explorer.decoder.grid({
      baseZ: g.base_z, xDim: g.x_dim, yDim: g.y_dim, xMin: g.x_min, xMax: g.x_max, yMin: g.y_min, yMax: g.y_max, cols: g.cols, rows: g.rows,
    });
    if (tile.rgba) { // the page draws, as main.js's grid view would
      const canvas = document.getElementById('grid-canvas');
      [canvas.width, canvas.height] = [tile.width, tile.height];
      canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(tile.rgba), tile.width, tile.height), 0, 0);
    }
    return { hasPixels: 'rgba' in tile, width: tile.width, height: tile.height };
  }, grid);
  return { ...reply, shown: await canvasPixels(page, '#grid-canvas') };
}

const maxDiff = (a, b) => {
  assert.equal(a.length, b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
};

/** The reference grid, written natively by make test-web. */
function reference() {
  assert.ok(existsSync(REFERENCE), `${REFERENCE} is missing: run make test-web (it writes it natively first)`);
  return JSON.parse(readFileSync(REFERENCE, 'utf8')).grid;
}

for (const isolated of [true, false]) {
  const build = isolated ? 'threaded' : 'single-thread';
  test(`the ${build} build draws the grid in the worker, within 1 gray level of the native decode`, async (t) => {
    const grid = reference();
    const { context, page, errors, requested } = await open({ isolated });
    assert.equal(await page.evaluate(() => crossOriginIsolated), isolated);
    const threadsLoaded = requested.some((path) => path.startsWith('/www/pkg-threads/') && path.endsWith('.wasm.gz'));
    assert.equal(threadsLoaded, isolated, `the ${build} wasm is the one loaded`);
    assert.deepEqual(await page.evaluate(() => [window.explorer.decoder.drawsOn('grid'), window.explorer.decoder.drawsOn('image')]), [true, true]);
    const { hasPixels, width, height, shown } = await referenceGrid(page, grid);
    assert.equal(hasPixels, false, 'the grid reply carries no pixels');
    assert.deepEqual([shown.width, shown.height], [width, height]);
    const diff = maxDiff(shown.data, grid.rgba);
    t.diagnostic(`${build}: max |shown - native| ${diff} gray levels`);
    assert.ok(diff <= 1, `the grid shown differs from the native one by ${diff} gray levels`);
    assert.deepEqual(errors, []);
    await context.unrouteAll({ behavior: 'ignoreErrors' });
    await context.close();
  });
}

test('without OffscreenCanvas the page draws the same grid and the same image; with it the main thread draws neither', async (t) => {
  const grid = reference();
  const pages = {};
  for (const fallback of [false, true]) {
    const opened = await open({ fallback });
    const { page } = opened;
    const serial = await gridSerial(page);
    // A slider move redraws both: the image and the grid (z5 is not swept).
    const before = (await canvasPixels(page, '#image')).data;
    const z5 = page.getByRole('slider', { name: 'z5', exact: true });
    await z5.fill(await z5.getAttribute('min'));
    await gridShown(page, serial);
    await canvasChanged(page, '#image', before);
    const transferred = await page.evaluate(() => {
      try {
        document.getElementById('grid-canvas').getContext('2d');
        return false;
      } catch (error) {
        return error.name === 'InvalidStateError'; // a placeholder of an OffscreenCanvas has no context here
      }
    });
    pages[fallback ? 'fallback' : 'offscreen'] = {
      ...opened,
      transferred,
      drawsOn: await page.evaluate(() => window.explorer.decoder.drawsOn('grid')),
      draws: await page.evaluate(() => window.mainThreadDraws),
      image: await canvasPixels(page, '#image'),
      grid: await canvasPixels(page, '#grid-canvas'),
    };
  }
  const { offscreen, fallback } = pages;
  assert.deepEqual([offscreen.transferred, offscreen.drawsOn], [true, true], 'the offscreen page transferred its grid canvas');
  assert.equal(offscreen.draws, 0, 'the offscreen page drew on the main thread');
  assert.deepEqual([fallback.transferred, fallback.drawsOn], [false, false], 'the fallback page kept its canvases');
  assert.ok(fallback.draws >= 4, `the fallback page drew ${fallback.draws} times on the main thread`);
  assert.deepEqual(fallback.image, offscreen.image, 'the same main image');
  assert.deepEqual([fallback.grid.width, fallback.grid.height], [offscreen.grid.width, offscreen.grid.height]);
  const pageDiff = maxDiff(fallback.grid.data, offscreen.grid.data);
  assert.ok(pageDiff <= 1, `the two pages' grids differ by ${pageDiff} gray levels`);
  const fallbackReference = await referenceGrid(fallback.page, grid);
  assert.equal(fallbackReference.hasPixels, true, 'the fallback grid reply carries its pixels');
  const diff = maxDiff(fallbackReference.shown.data, grid.rgba);
  t.diagnostic(`fallback: max |shown - native| ${diff}, between the pages ${pageDiff} gray levels`);
  assert.ok(diff <= 1, `the fallback grid differs from the native one by ${diff} gray levels`);
  for (const { context, errors } of [offscreen, fallback]) {
    assert.deepEqual(errors, []);
    await context.close();
  }
});

test('the first image comes with the model\u2019s load: drawn while every decode request is held back, the same as the decoded one', async () => {
  for (const fallback of [false, true]) {
    const context = await session.browser.newContext({ viewport: { width: 1280, height: 900 } });
    if (fallback) await context.addInitScript(() => delete HTMLCanvasElement.prototype.transferControlToOffscreen);
    await context.addInitScript(() => {
      window.decodesHeld = 0;
      const post = Worker.prototype.postMessage;
      Worker.prototype.postMessage = function (message, ...rest) {
        if (message?.kind === 'decode') return void window.decodesHeld++;
        return post.call(this, message, ...rest);
      };
    });
    const page = await context.newPage();
    await page.goto(session.server.url);
    await page.waitForFunction(() => performance.getEntriesByName('first-image').length === 1, null, { timeout: 20_000 });
    const shown = await canvasPixels(page, '#image');
    const held = await page.evaluate(() => window.decodesHeld);
    await context.close();
    const normal = await open({ fallback });
    const decoded = await canvasPixels(normal.page, '#image');
    const mode = fallback ? 'without OffscreenCanvas' : 'drawn in the worker';
    assert.ok(held > 0, `${mode}: the page asked for no decode to hold back`);
    assert.ok(shown.data.some((v, i) => i % 4 !== 3 && v > 0), `${mode}: the image is blank`);
    assert.deepEqual(shown, decoded, `${mode}: the first image differs from the decode of the latent mean`);
    assert.deepEqual(normal.errors, []);
    await normal.context.close();
  }
});

test('after the worker crashes, fresh canvases take the old ones\u2019 place and both draw again; the grid still takes keys', async () => {
  const { context, page } = await open();
  await page.evaluate(() => {
    window.oldCanvases = ['image', 'grid-canvas'].map((id) => document.getElementById(id));
  });
  const crashed = await page.evaluate(() => window.explorer.decoder.crashForTest().then(() => 'resolved', (error) => error.message));
  assert.match(crashed, /the model worker stopped/);
  await page.getByText(/it was restarted and the Digits \(MNIST\) model reloaded/).waitFor({ timeout: 30_000 });
  const fresh = await page.evaluate(() => window.oldCanvases.map((old) => {
    const canvas = document.getElementById(old.id);
    return { replaced: canvas !== old && !old.isConnected, count: document.querySelectorAll(`#${old.id}`).length, label: canvas.getAttribute('aria-label') === old.getAttribute('aria-label') };
  }));
  assert.deepEqual(fresh, [{ replaced: true, count: 1, label: true }, { replaced: true, count: 1, label: true }]);
  // Both draw: something shows, and a slider move changes it.
  const inked = async (id) => (await canvasPixels(page, `#${id}`)).data.some((v, i) => i % 4 === 0 && v > 128);
  await page.waitForFunction(() => document.getElementById('grid-canvas').width > 0);
  assert.ok(await inked('image'), 'the image is drawn after the restart');
  assert.ok(await inked('grid-canvas'), 'the grid is drawn after the restart');
  const [image, grid, serial] = [(await canvasPixels(page, '#image')).data, (await canvasPixels(page, '#grid-canvas')).data, await gridSerial(page)];
  const z5 = page.getByRole('slider', { name: 'z5', exact: true });
  await z5.fill(await z5.getAttribute('max'));
  await gridShown(page, serial);
  await canvasChanged(page, '#image', image, 30_000);
  await canvasChanged(page, '#grid-canvas', grid, 30_000);
  assert.equal(await page.evaluate(() => window.mainThreadDraws), 0, 'still drawn in the worker');
  // The grid's keyboard input is bound to the fresh canvas.
  const x = await page.evaluate(() => { const { z, grid: g } = window.explorer.store.get(); return z[g.xDim]; });
  await page.locator('#grid-canvas').focus();
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction((old) => { const { z, grid: g } = window.explorer.store.get(); return z[g.xDim] !== old; }, x);
  await context.close();
});

test('the grid\u2019s Download PNG holds the frame the worker drew', async () => {
  const { context, page } = await open();
  await page.waitForFunction(() => document.body.dataset.explore === 'ready'); // the buttons are wired
  const shown = await canvasPixels(page, '#grid-canvas');
  assert.ok(shown.data.some((v, i) => i % 4 === 0 && v > 128), 'the grid shows digits');
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#grid-png').click()]);
  const bytes = readFileSync(await download.path());
  const png = await page.evaluate(async (b) => {
    const bitmap = await createImageBitmap(new Blob([new Uint8Array(b)], { type: 'image/png' }));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context2d = canvas.getContext('2d');
    context2d.drawImage(bitmap, 0, 0);
    return { width: canvas.width, height: canvas.height, data: Array.from(context2d.getImageData(0, 0, canvas.width, canvas.height).data) };
  }, Array.from(bytes));
  assert.deepEqual([png.width, png.height], [shown.width * 2, shown.height * 2]);
  let diff = 0; // each pixel drawn 2x2: its top-left copy against the canvas
  for (let y = 0; y < shown.height; y++) {
    for (let x = 0; x < shown.width; x++) {
      diff = Math.max(diff, Math.abs(png.data[(2 * y * png.width + 2 * x) * 4] - shown.data[(y * shown.width + x) * 4]));
    }
  }
  assert.equal(diff, 0, `the PNG differs from the canvas by up to ${diff} gray levels`);
  await context.close();
});
