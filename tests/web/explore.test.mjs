// The exploring views in real headless Chromium with the shipped models: encoding (atlas, drawing pad,
// picture), the ELBO terms, interpolation, the class map, the URL hash, projector mode, keyboard, layout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { useServerAndBrowser, openExplorer, screenshotPath, canvasGray, pickGalleryImage } from './harness.mjs';

const session = useServerAndBrowser();

/**
 * Per-image reconstruction BCE (nats, -log p(x | z = mu)) above which an atlas image does not count as
 * reconstructed. Measured on the shipped atlases (997 digits, 1000 fashion images): the largest value
 * was 283 (digits, median 86) and 447 (fashion, median 213). Scoring each image against the
 * reconstruction of an image of another class gives a median of 606 (digits) and 835 (fashion). The
 * bounds sit just above the worst real image and far below a wrong reconstruction.
 */
const RECON_BOUND = { digits: 300, fashion: 460 };
/**
 * Pixels (of 784) that must change by more than 32 gray levels along each traversal row, end to end.
 * With the shipped digits model the rows gave 205 to 266; a dim that did nothing would give 0.
 */
const MIN_CHANGED_PIXELS = 100;

/** Opens the page (optionally at a hash) and waits until the hash is applied and the atlas is in. */
async function openReady(query = '', hash = '') {
  const { page, errors } = await openExplorer(session.browser, session.server.url, { query: `${query}${hash}` });
  await page.waitForFunction(() => {
    const { dataset } = document.body;
    return dataset.hashApplied === 'true' && dataset.explore === 'ready' && window.explorer.store.get().atlas;
  });
  return { page, errors };
}

/** Encodes two atlas images as A and B, and waits for the strip of the first view's A and B to be replaced. */
async function chooseEndpoints(page, [first, second]) {
  await pickGalleryImage(page, first);
  await page.getByRole('button', { name: 'Use as A' }).click();
  await pickGalleryImage(page, second);
  const drawn = await page.evaluate(() => document.getElementById('interp-strip').dataset.serial ?? '');
  await page.getByRole('button', { name: 'Use as B' }).click();
  await page.waitForFunction((before) => {
    const { a, b, encoded } = window.explorer.store.get();
    return a && b?.every((v, i) => v === encoded.mu[i]) && document.getElementById('interp-strip').dataset.serial !== before;
  }, drawn);
}

/** Waits for the strip to show the current A, B, steps and path, and returns its gray levels. */
async function settledStrip(page) {
  await page.waitForFunction(() => {
    const { steps } = window.explorer.store.get();
    const strip = document.getElementById('interp-strip');
    return strip.dataset.steps === String(steps) && strip.width === steps * 28;
  });
  await page.waitForTimeout(300);
  return canvasGray(page, '#interp-strip');
}

/** Cell i of a strip read by canvasGray, as 28x28 gray levels. */
function stripCell(strip, i) {
  const cell = [];
  for (let y = 0; y < 28; y++) cell.push(...strip.gray.slice(y * strip.width + i * 28, y * strip.width + i * 28 + 28));
  return cell;
}

for (const model of ['digits', 'fashion']) {
  test(`${model}: an encoded atlas image is reconstructed closely, and its ELBO terms add up`, async () => {
    const { page, errors } = await openReady(`?model=${model}`);
    for (const k of [0, 5, 37]) {
      await pickGalleryImage(page, k);
      await page.waitForFunction(() => document.getElementById('encoded-reconstruction').dataset.serial);
      const checked = await page.evaluate(async () => {
        const { store, decoder } = window.explorer;
        const { encoded } = store.get();
        // Independently of the wasm ELBO: BCE from the decoded intensities, KL from mu and logvar.
        const { pixels } = await decoder.decode(encoded.mu, 1, 'test');
        let bce = 0;
        encoded.pixels.forEach((x, i) => {
          const p = Math.min(1 - 1e-6, Math.max(1e-6, pixels[i]));
          bce -= x * Math.log(p) + (1 - x) * Math.log(1 - p);
        });
        const kl = encoded.mu.map((m, d) => 0.5 * (m * m + Math.exp(encoded.logvar[d]) - 1 - encoded.logvar[d]));
        return { terms: encoded.terms, bce, kl, rows: document.querySelectorAll('#elbo-dims tr').length };
      });
      const { terms } = checked;
      assert.ok(terms.recon < RECON_BOUND[model], `image ${k}: reconstruction BCE ${terms.recon} >= ${RECON_BOUND[model]}`);
      assert.ok(Math.abs(terms.recon - checked.bce) < 0.01 * terms.recon + 0.5, `BCE ${terms.recon} vs ${checked.bce} from the intensities`);
      terms.klPerDim.forEach((kl, d) => assert.ok(Math.abs(kl - checked.kl[d]) < 1e-4 * (1 + kl), `KL of z${d + 1}`));
      const sum = terms.klPerDim.reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(terms.kl - sum) < 1e-3, `total KL ${terms.kl} vs the sum of dims ${sum}`);
      assert.equal(checked.rows, 8, 'one row of mu, sigma and KL per dim');
    }
    await page.getByRole('button', { name: /Send μ to the sliders/ }).click();
    const { z, mu } = await page.evaluate(() => ({ z: window.explorer.store.get().z, mu: window.explorer.store.get().encoded.mu }));
    assert.deepEqual(z, mu);
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('the strip starts and ends with the decodes of mu_A and mu_B, and the screenshot is saved', async () => {
  const { page, errors } = await openReady();
  await chooseEndpoints(page, [3, 130]);
  const strip = await settledStrip(page);
  const steps = await page.evaluate(() => window.explorer.store.get().steps);
  assert.equal(steps, 10, 'ten steps by default');
  const ends = await page.evaluate(async () => {
    const { store, decoder } = window.explorer;
    const { a, b } = store.get();
    const gray = async (z) => Array.from((await decoder.decode(z, 1, 'test')).pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
    return { a: await gray(a), b: await gray(b) };
  });
  const maxDiff = (x, y) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
  // One gray level of slack: a batch decode may round differently from a single one at a level's edge.
  assert.ok(maxDiff(stripCell(strip, 0), ends.a) <= 1, 'the first step is the decode of mu_A');
  assert.ok(maxDiff(stripCell(strip, steps - 1), ends.b) <= 1, 'the last step is the decode of mu_B');
  assert.ok(maxDiff(ends.a, ends.b) > 50, 'A and B look different');

  // The picture: from the class map's panel down to the end of the strip, in page coordinates.
  await page.evaluate(() => window.scrollTo(0, 0));
  const region = await page.evaluate(() => {
    const top = document.querySelector('[aria-labelledby="map-title"]').getBoundingClientRect().top + window.scrollY;
    const bottom = document.querySelector('[aria-labelledby="interp-title"]').getBoundingClientRect().bottom + window.scrollY;
    return { top, bottom };
  });
  await page.screenshot({
    path: screenshotPath('screenshot-interpolation.png'),
    fullPage: true,
    clip: { x: 0, y: region.top - 12, width: 1280, height: region.bottom - region.top + 24 },
  });
  assert.deepEqual(errors, []);
  await page.close();
});

test('slerp and lerp differ in the middle and agree at the ends; a click on a step sends it to the sliders', async () => {
  const { page } = await openReady();
  await chooseEndpoints(page, [1, 200]);
  const linear = await settledStrip(page);
  await page.getByLabel('path').selectOption('slerp');
  await page.waitForFunction(() => window.explorer.store.get().path === 'slerp');
  const before = JSON.stringify(linear.gray);
  const deadline = Date.now() + 30_000;
  while (JSON.stringify((await canvasGray(page, '#interp-strip')).gray) === before) {
    assert.ok(Date.now() < deadline, 'the strip did not change to slerp');
    await page.waitForTimeout(50);
  }
  const spherical = await settledStrip(page);
  const diff = (x, y) => x.reduce((s, v, i) => s + Math.abs(v - y[i]), 0);
  const middle = diff(stripCell(linear, 5), stripCell(spherical, 5));
  assert.ok(middle > 28 * 28 * 2, `the middle steps differ by only ${middle} gray levels in all`);
  assert.ok(diff(stripCell(linear, 0), stripCell(spherical, 0)) <= 28 * 28, 'the first steps agree');

  // Step 4 of 10 on the spherical path, written out here independently of the page.
  const { a, b } = await page.evaluate(() => window.explorer.store.get());
  const norm = (v) => Math.hypot(...v);
  const omega = Math.acos(a.reduce((s, v, i) => s + v * b[i], 0) / (norm(a) * norm(b)));
  const t = 4 / 9;
  const expected = a.map((v, i) => (Math.sin((1 - t) * omega) * v + Math.sin(t * omega) * b[i]) / Math.sin(omega));
  const box = await page.locator('#interp-strip').boundingBox();
  await page.locator('#interp-strip').click({ position: { x: (4.5 * box.width) / 10, y: box.height / 2 } });
  const z = await page.evaluate(() => window.explorer.store.get().z);
  z.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-9, `z${i + 1} = ${v}, expected ${expected[i]}`));

  // The scrubber decodes the point at t, and play moves it.
  await page.getByLabel('position between A and B').fill('500');
  const preview = await canvasGray(page, '#interp-preview');
  assert.ok(new Set(preview.gray).size > 5, 'the scrubber preview is not blank');
  await page.getByRole('button', { name: 'Play' }).click();
  await page.waitForFunction(() => Number(document.getElementById('interp-scrub').value) !== 500);
  await page.getByRole('button', { name: 'Pause' }).click();
  await page.close();
});

test('a URL round trip restores the model, z, axes, grid settings, A and B exactly', async () => {
  const { page } = await openReady('?model=fashion');
  await chooseEndpoints(page, [2, 60]);
  // Values with long decimal expansions, as dragging produces.
  await page.evaluate(() => {
    const { store } = window.explorer;
    store.update({ z: [0.1 + 0.2, -1 / 3, Math.PI / 7, 1e-7, -2.5, 0.123456789012345, 1.5, -0.75] });
  });
  await page.getByLabel('X axis').selectOption('z4');
  await page.getByLabel('Y axis').selectOption('z7');
  await page.getByLabel('grid size').selectOption('12');
  await page.getByLabel('range').selectOption('2.5');
  await page.getByLabel('steps').selectOption('16');
  await page.getByLabel('path').selectOption('slerp');
  await page.waitForFunction(() => location.hash.includes('path=slerp') && location.hash.includes('steps=16'));
  const saved = await page.evaluate(() => {
    const { z, a, b, grid, steps, path, model } = window.explorer.store.get();
    return { url: location.href, z, a, b, grid, steps, path, model: model.name };
  });
  await page.close();

  const reopened = await session.browser.newPage({ viewport: { width: 1280, height: 900 } });
  await reopened.goto(saved.url);
  await reopened.waitForFunction(() => document.body.dataset.hashApplied === 'true');
  const restored = await reopened.evaluate(() => {
    const { z, a, b, grid, steps, path, model } = window.explorer.store.get();
    return { z, a, b, grid, steps, path, model: model.name };
  });
  const { url, ...expected } = saved;
  assert.deepEqual(restored, expected);
  assert.equal(await reopened.locator('#message').isHidden(), true, 'no message for a valid link');
  await reopened.close();
});

test('bad hash values are ignored with a message, and the rest of the link still applies', async () => {
  const cases = [
    ['z=NaN,0,0,0,0,0,0,0', /z: “NaN” is not a number/],
    ['z=Infinity,0,0,0,0,0,0,0', /z: “Infinity” is not a number/],
    ['a=1e308,0,0,0,0,0,0,0', /a: “1e308” is beyond ±10/],
    ['b=1,2,3', /b has 3 values; this model needs 8/],
    ['model=cats', /model “cats” is not one of digits, fashion/],
    ['size=1000', /size: “1000” is not one of/],
    ['y=9', /y: dim 9 does not exist/],
    ['x=2', /x and y are both z2/], // y stays z2, as y=9 was ignored
    ['steps=-4', /steps: “-4” is not a whole number/],
  ];
  const hash = `#${cases.map(([part]) => part).join('&')}&span=2`;
  const { page, errors } = await openReady('', hash);
  const message = await page.locator('#message').textContent();
  for (const [part, pattern] of cases) assert.match(message, pattern, `${part} is reported`);
  const state = await page.evaluate(() => {
    const { z, a, b, grid, steps, model, atlas } = window.explorer.store.get();
    const other = atlas.labels.findIndex((label) => label !== atlas.labels[0]);
    const mu = (i) => Array.from(atlas.mu.subarray(i * 8, (i + 1) * 8));
    return { z, a, b, grid, steps, model: model.name, mean: model.meta.latent_mean, firstA: mu(0), firstB: mu(other) };
  });
  assert.equal(state.model, 'digits');
  assert.deepEqual(state.z, state.mean, 'z stays at the mean');
  // The link's a and b were refused, so A and B are the first view's: two atlas images of different classes.
  assert.deepEqual(state.a, state.firstA);
  assert.deepEqual(state.b, state.firstB);
  assert.deepEqual(state.grid, { xDim: 0, yDim: 1, size: 16, span: 2 }, 'only the valid span applied');
  assert.equal(state.steps, 10);
  assert.ok(state.z.every(Number.isFinite));
  assert.deepEqual(errors, []);
  await page.close();
});

test('a stroke on the drawing pad gives a finite encoding and a reconstruction that is not blank', async () => {
  const { page, errors } = await openReady();
  const pad = page.locator('#pad');
  await pad.scrollIntoViewIfNeeded();
  const box = await pad.boundingBox();
  // A "7": a bar across the top, then a diagonal down to the bottom left.
  const at = (fx, fy) => [box.x + fx * box.width, box.y + fy * box.height];
  await page.mouse.move(...at(0.25, 0.2));
  await page.mouse.down();
  for (const [fx, fy] of [[0.5, 0.2], [0.75, 0.2], [0.6, 0.5], [0.45, 0.8]]) await page.mouse.move(...at(fx, fy), { steps: 6 });
  await page.mouse.up();
  await page.waitForFunction(() => window.explorer.store.get().encoded?.source === 'your drawing');
  await page.waitForFunction(() => document.getElementById('encoded-reconstruction').dataset.serial);
  const encoded = await page.evaluate(() => window.explorer.store.get().encoded);
  assert.ok([...encoded.mu, ...encoded.logvar, encoded.terms.recon, encoded.terms.kl].every(Number.isFinite));
  // The model input follows the MNIST recipe: ink inside a 20x20 box, centre of mass near (14, 14).
  const input = Object.values(encoded.pixels);
  let [mass, cx, cy, rows, cols] = [0, 0, 0, new Set(), new Set()];
  input.forEach((v, i) => {
    mass += v;
    cx += v * ((i % 28) + 0.5);
    cy += v * (Math.floor(i / 28) + 0.5);
    if (v > 0.1) {
      rows.add(Math.floor(i / 28));
      cols.add(i % 28);
    }
  });
  assert.ok(Math.abs(cx / mass - 14) <= 0.5 && Math.abs(cy / mass - 14) <= 0.5, `centre of mass (${cx / mass}, ${cy / mass})`);
  assert.ok(Math.max(rows.size, cols.size) <= 20 && Math.max(rows.size, cols.size) >= 19, `ink spans ${cols.size}x${rows.size}`);
  const reconstruction = await canvasGray(page, '#encoded-reconstruction');
  assert.ok(Math.max(...reconstruction.gray) > 128, 'the reconstruction has bright strokes');
  assert.ok(reconstruction.gray.filter((v) => v > 64).length > 20, 'more than a few bright pixels');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a picture with a light background is inverted and encoded; a file that is not an image is refused', async () => {
  const { page } = await openReady();
  // A dark "1" on white, 300x200 pixels, as a PNG made by the browser itself.
  const png = await page.evaluate(async () => {
    const canvas = new OffscreenCanvas(300, 200);
    const context = canvas.getContext('2d');
    context.fillStyle = '#f4f1ea';
    context.fillRect(0, 0, 300, 200);
    context.fillStyle = '#202020';
    context.fillRect(140, 30, 22, 140);
    const blob = await canvas.convertToBlob({ type: 'image/png' });
    return Array.from(new Uint8Array(await blob.arrayBuffer()));
  });
  await page.locator('#picture-file').setInputFiles({ name: 'one.png', mimeType: 'image/png', buffer: Buffer.from(png) });
  await page.waitForFunction(() => window.explorer.store.get().encoded?.source.includes('one.png'));
  const encoded = await page.evaluate(() => window.explorer.store.get().encoded);
  assert.match(encoded.source, /inverted/);
  const input = Object.values(encoded.pixels);
  assert.ok(input[0] === 0 && Math.max(...input) > 0.9, 'light ink on black after inversion');
  await page.locator('#picture-file').setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture') });
  await page.getByText(/“notes.png” could not be read as an image/).waitFor();
  await page.close();
});

test('the class map has one point per atlas image, and a click on one loads its mu', async () => {
  for (const model of ['digits', 'fashion']) {
    const { page } = await openReady(`?model=${model}`);
    await page.waitForFunction(() => document.getElementById('class-map').dataset.points);
    const { points, count, legend, classes } = await page.evaluate(async () => {
      const { decoder, store } = window.explorer;
      const atlas = await decoder.atlas(); // read afresh from the model, not from the page's copy
      return {
        points: Number(document.getElementById('class-map').dataset.points),
        count: atlas.labels.length,
        legend: document.querySelectorAll('#map-legend li').length,
        classes: store.get().model.meta.class_names.length,
      };
    });
    assert.ok(count >= 997, `${model}: the atlas has ${count} images`);
    assert.equal(points, count, `${model}: one point per atlas image`);
    assert.equal(legend, classes, `${model}: one legend entry per class`);
    // The most isolated point inside the map, so that the click is unambiguous.
    const target = await page.evaluate(() => {
      const { atlas, model: m } = window.explorer.store.get();
      const [d, mean, std] = [m.meta.latent_dim, m.meta.latent_mean, m.meta.latent_std];
      const at = (i) => [0, 1].map((k) => (atlas.mu[i * d + k] - mean[k]) / std[k]);
      let [best, isolation] = [-1, -1];
      for (let i = 0; i < atlas.count; i++) {
        const [x, y] = at(i);
        if (Math.abs(x) > 3.5 || Math.abs(y) > 3.5) continue;
        let nearest = Infinity;
        for (let j = 0; j < atlas.count; j++) {
          if (j !== i) nearest = Math.min(nearest, Math.hypot(x - at(j)[0], y - at(j)[1]));
        }
        if (nearest > isolation) [best, isolation] = [i, nearest];
      }
      return best;
    });
    const point = await page.evaluate((i) => window.explorer.classMap.pointAt(i), target);
    await page.locator('#class-map').click({ position: point });
    await page.waitForFunction((i) => window.explorer.store.get().encoded?.source.startsWith(`test image #${i} `), target);
    const { z, mu } = await page.evaluate((i) => {
      const { z: current, atlas, model: m } = window.explorer.store.get();
      const d = m.meta.latent_dim;
      return { z: current, mu: Array.from(atlas.mu.subarray(i * d, (i + 1) * d)) };
    }, target);
    assert.deepEqual(z, mu);
    // The current z is marked where that point is.
    const ring = await page.locator('#map-marker').boundingBox();
    const frame = await page.locator('#class-map').boundingBox();
    const offset = Math.hypot(ring.x + ring.width / 2 - frame.x - point.x, ring.y + ring.height / 2 - frame.y - point.y);
    assert.ok(offset < 2, `the current-z marker is ${offset} px from the point`);
    await page.close();
  }
});

test('projector mode is large and high-contrast; arrow keys move the grid marker', async () => {
  const { page } = await openReady();
  const look = () => page.evaluate(() => {
    const body = getComputedStyle(document.body);
    const panel = getComputedStyle(document.querySelector('.panel'));
    const muted = getComputedStyle(document.querySelector('.muted'));
    return { font: parseFloat(body.fontSize), ink: body.color, muted: muted.color, border: panel.borderTopColor, image: document.getElementById('image').clientWidth };
  });
  const normal = await look();
  await page.getByRole('button', { name: 'Projector mode' }).click();
  const projector = await look();
  assert.equal(await page.getByRole('button', { name: 'Projector mode' }).getAttribute('aria-pressed'), 'true');
  assert.ok(projector.font >= normal.font * 1.25, `font ${normal.font} -> ${projector.font}`);
  assert.ok(projector.image > normal.image, 'the image is larger');
  assert.equal(projector.ink, 'rgb(0, 0, 0)');
  assert.equal(projector.muted, 'rgb(0, 0, 0)', 'secondary text is black too');
  assert.equal(projector.border, 'rgb(0, 0, 0)');

  // Each arrow key moves to the centre of the neighbouring cell, as a click there would.
  const grid = page.getByRole('img', { name: /latent grid/ });
  await grid.focus();
  const { z: before, meta } = await page.evaluate(() => window.explorer.store.get()).then((s) => ({ z: s.z, meta: s.model.meta }));
  const range = (d) => [meta.latent_mean[d] - 3 * meta.latent_std[d], meta.latent_mean[d] + 3 * meta.latent_std[d]];
  const [[xMin, xMax], [yMin, yMax]] = [range(0), range(1)];
  const col = Math.floor(((before[0] - xMin) / (xMax - xMin)) * 16);
  const row = Math.floor(((yMax - before[1]) / (yMax - yMin)) * 16);
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowUp');
  const after = await page.evaluate(() => window.explorer.store.get().z);
  const expectX = xMin + ((xMax - xMin) * (col + 1.5)) / 16;
  const expectY = yMax - ((yMax - yMin) * (row - 1 + 0.5)) / 16;
  assert.ok(Math.abs(after[0] - expectX) < 1e-5, `z1 ${after[0]}, expected ${expectX}`);
  assert.ok(Math.abs(after[1] - expectY) < 1e-5, `z2 ${after[1]}, expected ${expectY}`);
  await page.keyboard.press('ArrowLeft');
  const left = await page.evaluate(() => window.explorer.store.get().z);
  assert.ok(Math.abs(left[0] - (xMin + ((xMax - xMin) * (col + 0.5)) / 16)) < 1e-5, 'left goes back a cell');
  const marker = await page.locator('#grid-marker').boundingBox();
  const frame = await grid.boundingBox();
  const markerX = (marker.x + marker.width / 2 - frame.x) / frame.width;
  assert.ok(Math.abs(markerX - (col + 0.5) / 16) < 0.01, `the marker is at ${markerX} of the width`);
  await page.close();
});

test('at 1024 px wide nothing spills sideways, in normal and in projector mode', async () => {
  const { page } = await openReady();
  await page.setViewportSize({ width: 1024, height: 768 });
  for (const mode of ['normal', 'projector']) {
    if (mode === 'projector') await page.getByRole('button', { name: 'Projector mode' }).click();
    await page.waitForTimeout(200);
    const layout = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      rights: [...document.querySelectorAll('.panel, canvas, button, select, label, h1, p')].map((e) => e.getBoundingClientRect().right),
    }));
    assert.ok(layout.scroll <= 1024, `${mode}: the page is ${layout.scroll} px wide`);
    assert.ok(Math.max(...layout.rights) <= 1024, `${mode}: an element reaches ${Math.max(...layout.rights)} px`);
  }
  await page.close();
});

test('the traversal strips show one row per dim, each changing along the row', async (t) => {
  const { page } = await openReady();
  await page.locator('#traversal').scrollIntoViewIfNeeded(); // they draw only while on screen
  await page.waitForFunction(() => document.getElementById('traversal').height === 8 * 28);
  const sheet = await canvasGray(page, '#traversal');
  for (let row = 0; row < 8; row++) {
    const cell = (col) => {
      const out = [];
      for (let y = 0; y < 28; y++) out.push(...sheet.gray.slice((row * 28 + y) * sheet.width + col * 28, (row * 28 + y) * sheet.width + col * 28 + 28));
      return out;
    };
    // A real change along the row: every step differs from the one before, and the ends differ in many pixels.
    for (let col = 1; col < 9; col++) {
      const [before, now] = [cell(col - 1), cell(col)];
      assert.ok(now.some((v, i) => v !== before[i]), `row z${row + 1}: cells ${col} and ${col + 1} are the same`);
    }
    const [first, last] = [cell(0), cell(8)];
    const changed = first.filter((v, i) => Math.abs(v - last[i]) > 32).length;
    t.diagnostic(`row z${row + 1}: ${changed} pixels change by more than 32 gray levels end to end`);
    assert.ok(changed >= MIN_CHANGED_PIXELS, `row z${row + 1}: only ${changed} pixels change by more than 32 gray levels from end to end`);
  }
  await page.close();
});

test('the image, the grid and the strip download as PNGs of the right size', async () => {
  const { page } = await openReady();
  await chooseEndpoints(page, [3, 130]);
  await settledStrip(page);
  const sizes = {};
  for (const [name, button] of [['vae-image.png', '#image-png'], ['vae-grid.png', '#grid-png'], ['vae-interpolation.png', '#strip-png']]) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator(button).click()]);
    assert.equal(download.suggestedFilename(), name);
    const bytes = readFileSync(await download.path());
    assert.deepEqual([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], `${name} is a PNG`);
    sizes[name] = [bytes.readUInt32BE(16), bytes.readUInt32BE(20)]; // the IHDR chunk's width and height
  }
  assert.deepEqual(sizes, {
    'vae-image.png': [280, 280], // 28x28, each pixel 10x10
    'vae-grid.png': [16 * 28 * 2, 16 * 28 * 2],
    'vae-interpolation.png': [10 * 28 * 4, 28 * 4],
  });
  await page.close();
});

test('the drawing pad takes touch input as well as a mouse', async () => {
  const context = await session.browser.newContext({ viewport: { width: 1280, height: 900 }, hasTouch: true });
  const { page } = await openExplorer(context, session.server.url);
  await page.waitForFunction(() => document.body.dataset.explore === 'ready');
  const pad = page.locator('#pad');
  await pad.scrollIntoViewIfNeeded();
  const box = await pad.boundingBox();
  // Real touch events through the browser's input pipeline: an "L" drawn with one finger.
  const cdp = await context.newCDPSession(page);
  const touch = (type, fx, fy) => cdp.send('Input.dispatchTouchEvent', {
    type,
    touchPoints: type === 'touchEnd' ? [] : [{ x: box.x + fx * box.width, y: box.y + fy * box.height }],
  });
  await touch('touchStart', 0.35, 0.2);
  for (let i = 1; i <= 10; i++) await touch('touchMove', 0.35, 0.2 + 0.06 * i);
  for (let i = 1; i <= 6; i++) await touch('touchMove', 0.35 + 0.05 * i, 0.8);
  await touch('touchEnd');
  await page.waitForFunction(() => window.explorer.store.get().encoded?.source === 'your drawing');
  const encoded = await page.evaluate(() => window.explorer.store.get().encoded);
  assert.ok(encoded.mu.every(Number.isFinite));
  const ink = Object.values(encoded.pixels).filter((v) => v > 0.5).length;
  assert.ok(ink > 20, `the touch stroke left ${ink} inked pixels`);
  await context.close();
});

test('the gallery can be used from the keyboard', async () => {
  const { page } = await openReady();
  await page.getByLabel('show').selectOption({ index: 3 }); // the third class only
  const wanted = await page.evaluate(() => {
    const { atlas } = window.explorer.store.get();
    return [...atlas.labels.keys()].filter((i) => atlas.labels[i] === 2);
  });
  await page.locator('#gallery').focus();
  for (const key of ['ArrowRight', 'ArrowRight', 'ArrowDown', 'ArrowLeft']) await page.keyboard.press(key);
  await page.keyboard.press('Enter');
  // Right twice, down one row of 12, left once: the 14th image of that class.
  await page.waitForFunction((n) => window.explorer.store.get().encoded?.source.startsWith(`test image #${n} `), wanted[13]);
  assert.equal(await page.locator('#gallery-cursor').isVisible(), true);
  await page.close();
});
