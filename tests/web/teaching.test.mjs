// The views that teach the seed post's three steps, in real headless Chromium with the shipped models and a
// model file the test makes: samples from q(z|x), generating from the prior, the prior against the
// encodings, the ELBO written out with the wasm model's numbers, and the first view before any click.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, useServerAndBrowser, openExplorer, screenshotPath, canvasGray, pickGalleryImage } from './harness.mjs';
import { parseSafetensors, writeSafetensors, f32Values } from './safetensors.mjs';

const session = useServerAndBrowser();

/** A number as the page prints it (a true minus sign, maybe a plus) back to a number. */
const readNumber = (text) => Number(text.trim().replace('\u2212', '-').replace('+', ''));

/** Half a unit in the last digit of a printed number: how far the shown value may be from the true one. */
function halfUnit(text) {
  const decimals = text.trim().split('.')[1]?.length ?? 0;
  return 0.5 * 10 ** -decimals;
}

/** Opens the page and waits until the first view is complete: samples drawn for the encoded image, formula typeset. */
async function openReady(query = '', hash = '') {
  const { page, errors } = await openExplorer(session.browser, session.server.url, { query: `${query}${hash}` });
  await page.waitForFunction(() => document.body.dataset.explore === 'ready' && window.explorer.store.get().atlas, null, { timeout: 30_000 });
  await settledSamples(page);
  return { page, errors };
}

/** Waits until the samples on screen and their table belong to the encoded image. */
async function settledSamples(page) {
  await page.waitForFunction(() => {
    const { encoded, samples } = window.explorer.store.get();
    const strip = document.getElementById('posterior-strip');
    return encoded && samples?.of === encoded && strip.dataset.seed === String(samples.seed) && strip.dataset.n === String(samples.n)
      && document.querySelectorAll('#posterior-table tr[data-row="z"]').length === samples.n;
  }, null, { timeout: 20_000 });
  // The view renders after the store changes; let the last render land.
  await page.waitForTimeout(150);
}

/** Brings the formula panel on screen (it typesets only there) and waits until it shows the current image. */
async function settledFormula(page) {
  await settledSamples(page);
  await page.locator('#formula').scrollIntoViewIfNeeded();
  await page.waitForFunction(() => document.getElementById('formula').dataset.state === 'current', null, { timeout: 20_000 });
}

/** The encoded image and its samples, as the store holds them (the wasm model's values). */
function storeSamples(page) {
  return page.evaluate(() => {
    const { encoded, samples, model } = window.explorer.store.get();
    return {
      mu: encoded.mu, logvar: encoded.logvar, pixels: Array.from(encoded.pixels), source: encoded.source,
      seed: samples.seed, n: samples.n, z: samples.z, eps: samples.eps, recon: samples.recon, dims: model.meta.latent_dim,
    };
  });
}

/** The sample table's shown text: per sample k, its z row and eps row (cells after the row label). */
function shownTable(page) {
  return page.evaluate(() => {
    const row = (name, k) => [...document.querySelectorAll(`#posterior-table tr[data-row="${name}"][data-k="${k}"] td`)].map((cell) => cell.textContent);
    const count = document.querySelectorAll('#posterior-table tr[data-row="z"]').length;
    return Array.from({ length: count }, (_, k) => ({ z: row('z', k), eps: row('eps', k) }));
  });
}

/** Cell i of a strip of 28x28 images read by canvasGray (wrapped rows of `columns`), as gray levels. */
function cellOf(strip, i, columns) {
  const [left, top] = [(i % columns) * 28, Math.floor(i / columns) * 28];
  const cell = [];
  for (let y = 0; y < 28; y++) cell.push(...strip.gray.slice((top + y) * strip.width + left, (top + y) * strip.width + left + 28));
  return cell;
}

const sumAbsDiff = (x, y) => x.reduce((s, v, i) => s + Math.abs(v - y[i]), 0);

/** Mean over pixels of the variance across images: how much a set of decodes differs. */
function spread(cells) {
  let total = 0;
  for (let p = 0; p < cells[0].length; p++) {
    const values = cells.map((cell) => cell[p] / 255);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    total += values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
  }
  return total / cells[0].length;
}

/** Clicks "Sample from q(z|x)" with `seed` typed into its field, and waits for those samples. */
async function sampleWithSeed(page, seed) {
  await page.getByLabel('ε seed').fill(String(seed));
  await page.getByRole('button', { name: 'Sample from q(z|x)' }).click();
  await page.waitForFunction((s) => window.explorer.store.get().samples?.seed === s, seed);
  await settledSamples(page);
}

for (const model of ['digits', 'fashion']) {
  test(`${model}: the first view shows an encoded atlas image, its samples, and an A-B strip of two classes`, async () => {
    const { page, errors } = await openReady(`?model=${model}`);
    const first = await page.evaluate(() => {
      const { encoded, a, b, atlas } = window.explorer.store.get();
      const find = (v) => [...Array(atlas.count).keys()].find((i) => v.every((x, d) => x === atlas.mu[i * v.length + d]));
      const [ia, ib] = [find(a), find(b)];
      return { source: encoded.source, ia, ib, labelA: atlas.labels[ia], labelB: atlas.labels[ib] };
    });
    assert.match(first.source, /^test image #0 /, 'the encode panel starts with the first atlas image');
    assert.ok(first.ia !== undefined && first.ib !== undefined, 'A and B are atlas encodings');
    assert.notEqual(first.labelA, first.labelB, 'A and B are of different classes');
    await page.waitForFunction(() => document.getElementById('interp-strip').dataset.serial);
    for (const canvas of ['#interp-strip', '#encoded-reconstruction', '#posterior-strip', '#posterior-at-mu']) {
      const { gray } = await canvasGray(page, canvas);
      assert.ok(Math.max(...gray) > 128 && gray.filter((v) => v > 64).length > 20, `${canvas} is drawn, not a black box`);
    }
    await page.waitForFunction(() => document.getElementById('generate-strip').dataset.serial);
    assert.ok(Math.max(...(await canvasGray(page, '#generate-strip')).gray) > 128, 'the prior samples are drawn');
    // Every new canvas says what it shows.
    const labels = await page.evaluate(() => ['posterior-strip', 'posterior-at-mu', 'generate-strip'].map((id) => document.getElementById(id).getAttribute('aria-label')));
    assert.deepEqual(labels, ['samples from q(z|x), decoded', 'the decode at mu, for comparison with the samples', 'samples from the prior N(0, I), decoded']);
    const histogramLabels = await page.locator('#aggregate canvas').evaluateAll((all) => all.map((c) => c.getAttribute('aria-label')));
    assert.equal(histogramLabels.length, 8);
    histogramLabels.forEach((label, d) => assert.match(label, new RegExp(`^z${d + 1}: histogram of the \\d+ test images’ μ against the N\\(0, 1\\) density`)));
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('a shared link keeps its own A and B over the first view’s', async () => {
  const a = [0.5, -1, 0.25, 1.5, -0.75, 0, 2, -2];
  const b = [-0.5, 1, -0.25, -1.5, 0.75, 0.1, -2, 2];
  const { page } = await openReady('', `#model=digits&a=${a.join(',')}&b=${b.join(',')}`);
  const state = await page.evaluate(() => ({ a: window.explorer.store.get().a, b: window.explorer.store.get().b }));
  assert.deepEqual(state, { a, b });
  await page.close();
});

test('samples from q(z|x) are z = mu + sigma eps, distinct, around mu, shown with their eps, and on the map and grid', async () => {
  const { page, errors } = await openReady();
  for (const [seed, count] of [[1, 8], [2, 64]]) {
    if (count !== 8) {
      await page.locator('#posterior-count').selectOption(String(count));
      await page.waitForFunction((n) => window.explorer.store.get().samples?.n === n, count);
    }
    await sampleWithSeed(page, seed);
    const s = await storeSamples(page);
    assert.equal(s.n, count);
    assert.equal(s.z.length, count * s.dims);
    const sigma = s.logvar.map((v) => Math.exp(0.5 * v));
    const zOf = (k) => s.z.slice(k * s.dims, (k + 1) * s.dims);
    for (let k = 1; k < count; k++) assert.notDeepEqual(zOf(k), zOf(0), `sample ${k + 1} differs from sample 1`);
    for (let d = 0; d < s.dims; d++) {
      const mean = Array.from({ length: count }, (_, k) => s.z[k * s.dims + d]).reduce((t, v) => t + v, 0) / count;
      const bound = (3 * sigma[d]) / Math.sqrt(count);
      assert.ok(Math.abs(mean - s.mu[d]) < bound, `seed ${seed}, z${d + 1}: sample mean ${mean} is ${Math.abs(mean - s.mu[d])} from mu ${s.mu[d]} (bound ${bound})`);
    }
    // What the table shows: each z as the wasm model returned it, and its eps equal to (z - mu) / sigma.
    const shown = await shownTable(page);
    assert.equal(shown.length, count);
    shown.forEach((row, k) => {
      for (let d = 0; d < s.dims; d++) {
        const z = s.z[k * s.dims + d];
        assert.ok(Math.abs(readNumber(row.z[d]) - z) <= halfUnit(row.z[d]) + 1e-9, `z #${k + 1}, dim ${d + 1}: shown ${row.z[d]}, is ${z}`);
        const eps = (z - s.mu[d]) / sigma[d];
        // z is a float32 from the wasm model, so (z - mu) / sigma carries its rounding, divided by sigma.
        const slack = halfUnit(row.eps[d]) + (1e-6 * (1 + Math.abs(z))) / sigma[d];
        assert.ok(Math.abs(readNumber(row.eps[d]) - eps) <= slack, `eps #${k + 1}, dim ${d + 1}: shown ${row.eps[d]}, (z - mu) / sigma is ${eps}`);
      }
    });
  }

  // The map and the grid show one cross per sample where its two swept dims put it, and q's 1 and 2 sigma ellipses.
  const geometry = await page.evaluate(() => {
    const read = (frame) => ({
      samples: [...document.querySelectorAll(`${frame} .posterior-sample`)].map((p) => p.getAttribute('d').match(/^M (\S+) (\S+)/).slice(1).map(Number)),
      ellipses: [...document.querySelectorAll(`${frame} .posterior-ellipse`)].map((e) => ['cx', 'cy', 'rx', 'ry'].map((k) => Number(e.getAttribute(k)))),
    });
    return { map: read('.map-frame'), grid: read('.grid-frame') };
  });
  const s = await storeSamples(page);
  const meta = await page.evaluate(() => window.explorer.store.get().model.meta);
  const sigma = s.logvar.map((v) => Math.exp(0.5 * v));
  for (const [name, span] of [['map', 4], ['grid', 3]]) {
    const range = (d) => [meta.latent_mean[d] - span * meta.latent_std[d], meta.latent_mean[d] + span * meta.latent_std[d]];
    const [[x0, x1], [y0, y1]] = [range(0), range(1)];
    const { samples, ellipses } = geometry[name];
    assert.equal(samples.length, s.n, `${name}: one cross per sample`);
    samples.forEach(([x, y], k) => {
      // A cross's path starts 1.4 units left of its centre.
      const want = [(100 * (s.z[k * s.dims] - x0)) / (x1 - x0), (100 * (y1 - s.z[k * s.dims + 1])) / (y1 - y0)];
      assert.ok(Math.abs(x + 1.4 - want[0]) < 1e-6 && Math.abs(y - want[1]) < 1e-6, `${name}: sample ${k + 1} at (${x + 1.4}, ${y}), expected ${want}`);
    });
    assert.equal(ellipses.length, 2, `${name}: the 1 and 2 sigma ellipses`);
    ellipses.forEach(([cx, cy, rx, ry], i) => {
      const k = i + 1;
      assert.ok(Math.abs(cx - (100 * (s.mu[0] - x0)) / (x1 - x0)) < 1e-6 && Math.abs(cy - (100 * (y1 - s.mu[1])) / (y1 - y0)) < 1e-6, `${name}: centred on mu`);
      assert.ok(Math.abs(rx - (100 * k * sigma[0]) / (x1 - x0)) < 1e-6 && Math.abs(ry - (100 * k * sigma[1]) / (y1 - y0)) < 1e-6, `${name}: ${k} sigma radii`);
    });
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test('the same seed gives the same samples, the next seed others; each is scored by the wasm model', async () => {
  const { page } = await openReady();
  await sampleWithSeed(page, 5);
  const first = await storeSamples(page);
  const firstStrip = await canvasGray(page, '#posterior-strip');
  assert.equal(await page.getByLabel('ε seed').inputValue(), '6', 'the field moves on to the next seed');
  await page.getByRole('button', { name: 'Sample from q(z|x)' }).click();
  await page.waitForFunction(() => window.explorer.store.get().samples?.seed === 6);
  await settledSamples(page);
  const next = await storeSamples(page);
  assert.notDeepEqual(next.z, first.z, 'seed 6 gives other samples');
  await sampleWithSeed(page, 5);
  const again = await storeSamples(page);
  assert.deepEqual(again.z, first.z, 'seed 5 again gives the same samples');
  assert.deepEqual(again.eps, first.eps);
  assert.deepEqual(await canvasGray(page, '#posterior-strip'), firstStrip, 'and the same strip');

  // Each sample's -log p(x|z), recomputed here from the decoded intensities, and the average shown.
  const check = await page.evaluate(async ({ z, pixels, n }) => {
    const { decoder } = window.explorer;
    const { pixels: decoded } = await decoder.decode(z, n, 'test');
    const bce = [];
    for (let k = 0; k < n; k++) {
      let sum = 0;
      pixels.forEach((x, i) => {
        const p = Math.min(1 - 1e-6, Math.max(1e-6, decoded[k * pixels.length + i]));
        sum -= x * Math.log(p) + (1 - x) * Math.log(1 - p);
      });
      bce.push(sum);
    }
    const shown = [...document.querySelectorAll('#posterior-recon strong')].map((e) => e.textContent);
    const perSample = [...document.querySelectorAll('#posterior-table tr[data-row="z"]')].map((row) => row.lastElementChild.textContent);
    return { bce, shown, perSample };
  }, again);
  again.recon.forEach((recon, k) => {
    assert.ok(Math.abs(recon - check.bce[k]) < 0.01 * recon + 0.5, `sample ${k + 1}: wasm ${recon}, from the intensities ${check.bce[k]}`);
    assert.equal(check.perSample[k], recon.toFixed(2), `sample ${k + 1}'s reconstruction as shown`);
  });
  const terms = await page.evaluate(() => window.explorer.store.get().encoded.terms);
  const average = again.recon.reduce((s, v) => s + v, 0) / again.n;
  assert.deepEqual(check.shown, [terms.recon.toFixed(2), average.toFixed(2)], 'the reconstruction at mu, then the average over the samples');
  assert.notEqual(check.shown[0], check.shown[1]);
  await page.close();
});

test('a wide q(z|x) gives varied decodes, a narrow one near-copies', async () => {
  const { page } = await openReady();
  // The atlas images whose q(z|x) is widest and narrowest on average over the dims, by the wasm encoder.
  const [wide, narrow] = await page.evaluate(async () => {
    const { store, decoder } = window.explorer;
    const { atlas, model } = store.get();
    const dims = model.meta.latent_dim;
    const { muLogvar } = await decoder.encode(Float32Array.from(atlas.pixels, (v) => v / 255));
    const logvar = muLogvar.subarray(atlas.count * dims);
    const width = (i) => logvar.subarray(i * dims, (i + 1) * dims).reduce((s, v) => s + Math.exp(0.5 * v), 0) / dims;
    const order = [...Array(atlas.count).keys()].sort((i, j) => width(j) - width(i));
    return [order[0], order[order.length - 1]];
  });
  const strips = {};
  for (const [name, index] of [['wide', wide], ['narrow', narrow]]) {
    await pickGalleryImage(page, index);
    await page.waitForFunction((i) => {
      const { encoded, samples } = window.explorer.store.get();
      return encoded.source.startsWith(`test image #${i} `) && samples?.of === encoded;
    }, index);
    await settledSamples(page);
    const strip = await canvasGray(page, '#posterior-strip');
    const { n, logvar } = await storeSamples(page);
    strips[name] = { spread: spread(Array.from({ length: n }, (_, k) => cellOf(strip, k, 8))), sigma: logvar.map((v) => Math.exp(0.5 * v)) };
  }
  const mean = (v) => v.reduce((s, x) => s + x, 0) / v.length;
  assert.ok(mean(strips.wide.sigma) > mean(strips.narrow.sigma), 'the images were ordered by sigma');
  // Measured on the digits atlas: 0.0011 for the widest q (mean sigma 0.28), 0.00053 for the narrowest (0.057).
  assert.ok(strips.wide.spread > 1.5 * strips.narrow.spread, `decodes vary ${strips.wide.spread} for the wide q, ${strips.narrow.spread} for the narrow one`);
  await page.close();
});

for (const model of ['digits', 'fashion']) {
  test(`${model}: Generate decodes distinct samples from the prior, the same again for the same seed`, async () => {
    const { page, errors } = await openReady(`?model=${model}`);
    const generate = async (seed) => {
      await page.getByLabel('prior seed').fill(String(seed));
      await page.getByRole('button', { name: 'Generate' }).click();
      await page.waitForFunction((s) => document.getElementById('generate-strip').dataset.seed === String(s), seed);
      return canvasGray(page, '#generate-strip');
    };
    const strip = await generate(3);
    assert.equal(strip.width, 8 * 28, 'eight draws by default');
    const cells = Array.from({ length: 8 }, (_, k) => cellOf(strip, k, 8));
    cells.forEach((cell, k) => {
      assert.ok(Math.max(...cell) > 128, `draw ${k + 1} is decoded, not blank`);
      for (let j = 0; j < k; j++) assert.ok(sumAbsDiff(cell, cells[j]) > 28 * 28 * 4, `draws ${j + 1} and ${k + 1} differ`);
    });
    assert.equal(await page.getByLabel('prior seed').inputValue(), '4', 'the field moves on to the next seed');
    assert.notDeepEqual((await generate(4)).gray, strip.gray);
    assert.deepEqual((await generate(3)).gray, strip.gray, 'the same seed decodes the same draws');
    assert.match(await page.locator('#generate-caption').textContent(), /8 draws z ~ N\(0, I\), prior seed 3/);
    assert.deepEqual(errors, []);
    await page.close();
  });
}

/** The histogram bin of each value, written out here: 33 bins of 0.25 from -4.125, the ends open. */
const binOf = (v) => Math.min(32, Math.max(0, Math.floor((v + 4.125) / 0.25)));

/** Each histogram's counts, whether it is marked unused, and the atlas read afresh from the model. */
function readHistograms(page) {
  return page.evaluate(async () => {
    const atlas = await window.explorer.decoder.atlas();
    const figures = [...document.querySelectorAll('#aggregate figure')].map((f) => ({
      counts: JSON.parse(f.querySelector('canvas').dataset.counts), unused: f.classList.contains('unused'), caption: f.querySelector('figcaption').textContent,
    }));
    return { figures, count: atlas.labels.length, mu: Array.from(atlas.mu) };
  });
}

test('each histogram counts every atlas image once, and no shipped dim is a spike', async () => {
  for (const model of ['digits', 'fashion']) {
    const { page } = await openReady(`?model=${model}`);
    const { figures, count, mu } = await readHistograms(page);
    assert.equal(figures.length, 8, `${model}: one histogram per dim`);
    figures.forEach(({ counts, unused }, d) => {
      assert.equal(counts.reduce((s, c) => s + c, 0), count, `${model} z${d + 1}: one count per atlas image`);
      const want = new Array(33).fill(0);
      for (let i = 0; i < count; i++) want[binOf(mu[i * 8 + d])] += 1;
      assert.deepEqual(counts, want, `${model} z${d + 1}: the counts of the atlas's mu`);
      assert.ok(Math.max(...counts) < count / 2, `${model} z${d + 1}: not a spike`);
      assert.equal(unused, false, `${model} z${d + 1} is in use (8/8 active units)`);
    });
    await page.close();
  }
});

test('a model file with a collapsed dim, opened by the user, shows it as a spike at 0, and every view works on it', async () => {
  // The shipped digits model with z3 switched off: its mean head gives 0 and its log-variance head 0 (sigma 1)
  // for every image, as a dim that the KL pulled onto the prior; the atlas's mu for z3 becomes 0 to match.
  const DIM = 2;
  const parsed = parseSafetensors(new Uint8Array(readFileSync(join(ROOT, 'weights', 'digits.safetensors'))));
  for (const head of ['encoder.mu', 'encoder.logvar']) {
    const weight = f32Values(parsed, `${head}.weight`);
    const inputs = weight.length / 8;
    weight.fill(0, DIM * inputs, (DIM + 1) * inputs);
    f32Values(parsed, `${head}.bias`)[DIM] = 0;
  }
  const atlasMu = f32Values(parsed, 'atlas.mu');
  for (let i = DIM; i < atlasMu.length; i += 8) atlasMu[i] = 0;
  const dir = join(ROOT, 'target', 'web');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'collapsed-z3.safetensors');
  writeFileSync(file, writeSafetensors(parsed));

  const { page, errors } = await openReady();
  await page.locator('#model-file').setInputFiles(file);
  await page.waitForFunction(() => window.explorer.store.get().model?.label?.includes('collapsed-z3'), null, { timeout: 20_000 });
  await page.waitForFunction(() => window.explorer.store.get().atlas);
  await settledSamples(page);

  const { figures, count } = await readHistograms(page);
  figures.forEach(({ counts, unused, caption }, d) => {
    assert.equal(counts.reduce((s, c) => s + c, 0), count, `z${d + 1}: one count per atlas image`);
    if (d === DIM) {
      assert.equal(counts[16], count, 'every mu of z3 is in the bin around 0');
      assert.equal(unused, true, 'z3 is marked unused');
      assert.match(caption, /unused/);
    } else {
      assert.ok(Math.max(...counts) < count / 2 && !unused, `z${d + 1} is still spread out`);
    }
  });
  // The other views on this file: z3's q(z|x) is the prior, so its samples are eps itself and its KL is 0.
  const s = await storeSamples(page);
  assert.match(s.source, /^test image #0 /, 'the first atlas image is encoded');
  for (let k = 0; k < s.n; k++) assert.equal(s.z[k * 8 + DIM], Math.fround(s.eps[k * 8 + DIM]), `sample ${k + 1}: z3 = eps`);
  await settledFormula(page);
  const klOfZ3 = await page.locator(`.formula-dims li[data-dim="${DIM}"] [data-term="kl-dim"]`).textContent();
  assert.equal(klOfZ3, '0.00');
  await page.waitForFunction(() => document.getElementById('generate-strip').dataset.serial);
  assert.deepEqual(errors, []);
  await page.close();
});

/** The formula panel's tagged numbers: the totals, and per dim its mu, sigma and KL. */
function shownFormula(page) {
  return page.evaluate(() => {
    const formula = document.getElementById('formula');
    const term = (root, name) => root.querySelector(`[data-term="${name}"]`).textContent;
    const totals = Object.fromEntries(['average', 'kl', 'neg-elbo', 'recon-at-mu', 'kl-sum'].map((name) => [name, term(formula, name)]));
    const dims = [...formula.querySelectorAll('.formula-dims li')].map((li) => ({ mu: term(li, 'mu'), sigma: term(li, 'sigma'), kl: term(li, 'kl-dim') }));
    return { totals, dims };
  });
}

/** Checks the formula panel against ELBO terms and samples asked of the wasm model afresh. */
async function checkFormula(page) {
  await settledFormula(page);
  const shown = await shownFormula(page);
  const wasm = await page.evaluate(async () => {
    const { store, decoder } = window.explorer;
    const { encoded, samples } = store.get();
    const [{ terms }, { muLogvar }, posterior] = await Promise.all([
      decoder.elbo(encoded.pixels), decoder.encode(encoded.pixels), decoder.posterior(encoded.pixels, samples.eps),
    ]);
    return { terms: Array.from(terms), muLogvar: Array.from(muLogvar), recon: Array.from(posterior.recon) };
  });
  const dims = shown.dims.length;
  const [recon, kl] = wasm.terms;
  const average = wasm.recon.reduce((s, v) => s + v, 0) / wasm.recon.length;
  const near = (text, value, what) => assert.ok(Math.abs(readNumber(text) - value) <= halfUnit(text) + 1e-6, `${what}: shown ${text}, the wasm model gives ${value}`);
  near(shown.totals['recon-at-mu'], recon, 'reconstruction at mu');
  near(shown.totals.kl, kl, 'KL');
  near(shown.totals['kl-sum'], kl, 'KL as the sum of dims');
  near(shown.totals.average, average, 'average reconstruction over the samples');
  near(shown.totals['neg-elbo'], average + kl, '-ELBO estimate');
  shown.dims.forEach((dim, d) => {
    const [mu, sigma] = [wasm.muLogvar[d], Math.exp(0.5 * wasm.muLogvar[dims + d])];
    near(dim.mu, mu, `mu of z${d + 1}`);
    assert.ok(Math.abs(readNumber(dim.sigma) - sigma) <= 5e-3 * sigma, `sigma of z${d + 1}: shown ${dim.sigma}, is ${sigma}`);
    near(dim.kl, wasm.terms[2 + d], `KL of z${d + 1}`);
    // The closed form from the numbers as shown, with the slack their rounding allows.
    const [m, s] = [readNumber(dim.mu), readNumber(dim.sigma)];
    const closed = 0.5 * (m * m + s * s - 1 - Math.log(s * s));
    const slack = halfUnit(dim.kl) + Math.abs(m) * halfUnit(dim.mu) + Math.abs(s - 1 / s) * halfUnit(dim.sigma) + 1e-9;
    assert.ok(Math.abs(closed - readNumber(dim.kl)) <= slack, `z${d + 1}: closed form ${closed} from the shown mu and sigma, KL shown ${dim.kl}`);
  });
  return shown;
}

test('the formula panel shows the wasm model’s ELBO terms, updates with the image, and points at a dim everywhere', async () => {
  const { page, errors } = await openReady();
  const before = await checkFormula(page);
  await pickGalleryImage(page, 37);
  await settledSamples(page);
  const after = await checkFormula(page);
  assert.notDeepEqual(after.totals, before.totals, 'the numbers follow the image');

  // Focus z3's line: its KL bar, slider and histogram are marked, and the map says it is not on its axes.
  const marked = () => page.evaluate(() => ({
    bars: [...document.querySelectorAll('#elbo-dims tr')].map((r) => r.classList.contains('highlighted')),
    sliders: [...document.querySelectorAll('#sliders .slider-row')].map((r) => r.classList.contains('highlighted')),
    histograms: [...document.querySelectorAll('#aggregate figure')].map((f) => f.classList.contains('highlighted')),
    formula: [...document.querySelectorAll('.formula-dims li')].map((li) => li.classList.contains('highlighted')),
    mapNote: document.querySelector('.map-frame .posterior-note')?.textContent ?? null,
    mapBand: document.querySelector('.map-frame .posterior-band')?.dataset.dim ?? null,
    gridBand: document.querySelector('.grid-frame .posterior-band')?.dataset.dim ?? null,
  }));
  const only = (d) => Array.from({ length: 8 }, (_, i) => i === d);
  await page.locator('.formula-dims li[data-dim="2"]').focus();
  let state = await marked();
  for (const view of ['bars', 'sliders', 'histograms', 'formula']) assert.deepEqual(state[view], only(2), `${view} mark z3`);
  assert.equal(state.mapNote, 'z3 is not on these axes');
  // Hover z1, on the map's x axis: the map and the grid show its mu +- sigma band.
  await page.locator('.formula-dims li[data-dim="0"]').hover();
  state = await marked();
  for (const view of ['bars', 'sliders', 'histograms', 'formula']) assert.deepEqual(state[view], only(0), `${view} mark z1`);
  assert.equal(state.mapBand, '0');
  assert.equal(state.gridBand, '0');
  await page.mouse.move(0, 0);
  await page.locator('#posterior-draw').focus();
  state = await marked();
  assert.deepEqual(state.bars, only(-1), 'nothing is marked once the pointer and focus have left');
  assert.equal(state.mapBand, null);
  assert.deepEqual(errors, []);
  await page.close();
});

test('screenshot of the teaching views: sampling from q(z|x) with the class map, and the ELBO with the prior', async () => {
  const { page, errors } = await openReady();
  // Panels below the first screen skip rendering until scrolled near (content-visibility): render them all.
  await page.addStyleTag({ content: '.panel.below { content-visibility: visible; }' });
  await settledFormula(page);
  await page.locator('.formula-dims li[data-dim="1"]').focus(); // z2, the map's y axis: its band shows
  const clipOf = (first, last) => page.evaluate(([a, b]) => {
    const top = document.querySelector(`[aria-labelledby="${a}"]`).getBoundingClientRect().top + window.scrollY;
    const bottom = Math.max(...[a, b].map((id) => document.querySelector(`[aria-labelledby="${id}"]`).getBoundingClientRect().bottom)) + window.scrollY;
    return { x: 0, y: top - 12, width: 1280, height: bottom - top + 24 };
  }, [first, last]);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: screenshotPath('screenshot-sampling.png'), fullPage: true, clip: await clipOf('encode-title', 'map-title') });
  await page.screenshot({ path: screenshotPath('screenshot-elbo.png'), fullPage: true, clip: await clipOf('formula-title', 'aggregate-title') });
  assert.deepEqual(errors, []);
  await page.close();
});
