// The β-VAE lab in headless Chromium: real training on the digits pack in the lab's worker, on the
// project's trainer compiled to wasm. Small models (hidden width 64) keep each run to a few seconds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, canvasGray, canvasPixels, useServerAndBrowser, openExplorer, stripIsolation } from './harness.mjs';

const session = useServerAndBrowser();
const EVAL = join(ROOT, 'target', 'release', 'eval');
const OUT = join(ROOT, 'target', 'web');

/** The lab's panel, where its fields and buttons are found by their accessible names. */
const lab = (page) => page.locator('#lab-root');

/** Opens the page with the lab, and waits for its first model. */
async function openLab(browser = session.browser) {
  const { page, errors } = await openExplorer(browser, session.server.url);
  await page.click('#lab-open summary');
  await page.waitForSelector('#lab-root[data-ready="true"]', { timeout: 30_000 });
  return { page, errors };
}

/** A browser context whose pages are cross-origin isolated (the lab's threaded build) or not (one thread). */
async function labContext(isolated) {
  const context = await session.browser.newContext();
  if (!isolated) await stripIsolation(context, session.server.url);
  return context;
}

/** How many threads the lab trains on, as its worker reported. */
const labThreads = (page) => page.evaluate(() => Number(document.getElementById('lab-root').dataset.threads));

/** Types settings into the lab's fields (by their accessible names) and presses Reset. */
async function resetWith(page, settings) {
  for (const [label, value] of Object.entries(settings)) {
    await lab(page).getByLabel(label, { exact: true }).fill(String(value));
  }
  const resets = await page.evaluate(() => Number(document.getElementById('lab-root').dataset.resets));
  await lab(page).getByRole('button', { name: 'Reset' }).click();
  await page.waitForFunction((n) => Number(document.getElementById('lab-root').dataset.resets) > n, resets);
}

/** Moves the beta slider to the stop with value `beta`. */
async function setBeta(page, beta) {
  await page.evaluate(async (b) => {
    const { BETA_STEPS } = await import('/www/lab.js');
    const input = document.getElementById('lab-beta');
    input.value = String(BETA_STEPS.indexOf(b));
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, beta);
}

/** Presses a button and waits until training stops; returns why it stopped. */
async function runUntilStopped(page, button) {
  await page.evaluate(() => delete document.getElementById('lab-root').dataset.stopped);
  await lab(page).getByRole('button', { name: button, exact: true }).click();
  await page.waitForFunction(() => document.getElementById('lab-root').dataset.stopped, null, { timeout: 90_000 });
  return page.evaluate(() => document.getElementById('lab-root').dataset.stopped);
}

/** The lab's per-epoch records and its running training losses. */
function labState(page) {
  return page.evaluate(async () => {
    const { state } = await window.explorer.lab;
    return { epochs: state.epochs, running: state.running.map((r) => r.loss), trainLoss: [...state.trainLoss.entries()] };
  });
}

/** How many pixels of a canvas are not blank. */
async function inkedPixels(page, selector) {
  const { data } = await canvasPixels(page, selector);
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
  return n;
}

const SMALL = { 'hidden width': 64, 'latent dims': 8, 'batch size': 128, seed: 7 };

/** The page's lab workers (www/lab-worker.js) that are still alive. */
const labWorkers = (page) => page.workers().filter((w) => new URL(w.url()).pathname === '/www/lab-worker.js');

/** Resolves when `worker` has ended; fails after `ms`. */
function workerEnded(worker, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the lab worker still runs ${ms} ms after closing`)), ms);
    worker.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Waits until a lab mounted after a close has its first model (closing left the status "closed"). */
function labMountedAgain(page) {
  return page.waitForFunction(() => {
    const { status, ready } = document.getElementById('lab-root').dataset;
    return status === 'idle' && ready === 'true';
  }, null, { timeout: 30_000 });
}

/** Presses Train and waits until `epochs` epochs are reported. */
async function trainUntilEpoch(page, epochs) {
  await lab(page).getByRole('button', { name: 'Train', exact: true }).click();
  await page.waitForFunction((n) => Number(document.getElementById('lab-root').dataset.epochs) >= n, epochs, { timeout: 60_000 });
}

/** What the lab (or, once closed, `window.closedLab`) has reported: epochs and running losses counted, the progress line, the table's rows. */
function reported(page) {
  return page.evaluate(async () => {
    const { state } = (await window.explorer.lab) ?? window.closedLab;
    const root = document.getElementById('lab-root');
    return {
      epochs: state.epochs.length,
      running: state.running.length,
      progress: root.querySelector('#lab-progress-text').textContent,
      rows: root.querySelectorAll('#lab-table tr').length,
    };
  });
}

/** Moves latent slider z3 and waits until the explorer's grid is decoded again. */
async function explorerDecodes(page) {
  const serial = () => page.evaluate(() => Number(document.getElementById('grid-canvas').dataset.serial));
  const before = await serial();
  const slider = page.getByRole('slider', { name: 'z3', exact: true });
  await slider.fill(String(Number(await slider.inputValue()) === 1 ? -1 : 1));
  await page.waitForFunction((n) => Number(document.getElementById('grid-canvas').dataset.serial) > n, before);
}

test('training in the page lowers the held-out -ELBO, and the curves, KL bars and map show it', async () => {
  const { page, errors } = await openLab();
  await resetWith(page, { ...SMALL, epochs: 3 });
  const blankCurves = await inkedPixels(page, '#lab-curves');
  assert.equal(await runUntilStopped(page, 'Train'), 'done');
  const { epochs, running } = await labState(page);
  assert.equal(epochs.length, 3);
  assert.ok(epochs[2].neg_elbo < epochs[0].neg_elbo, `-ELBO per epoch: ${epochs.map((e) => e.neg_elbo)}`);
  assert.ok(epochs[0].neg_elbo < 250, `after one epoch: ${epochs[0].neg_elbo}`);
  assert.ok(running.length >= 3 * 70 && running.at(-1) < running[0], 'running training loss falls');
  assert.ok((await inkedPixels(page, '#lab-curves')) > blankCurves + 200, 'the curves are drawn');
  assert.ok((await inkedPixels(page, '#lab-kl')) > 500, 'the KL bars are drawn');
  assert.ok((await inkedPixels(page, '#lab-map')) > 2000, 'the class map is drawn');
  const rows = await page.locator('#lab-table tr').count();
  assert.equal(rows, 3);
  const progress = await page.locator('#lab-progress-text').textContent();
  assert.match(progress, /^epoch 3 of 3, .* images\/s/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('with beta = 8 fewer dims stay active than with beta = 1 (same seed and epochs)', async () => {
  const { page } = await openLab();
  const active = {};
  for (const beta of [1, 8]) {
    await setBeta(page, beta);
    await resetWith(page, { ...SMALL, 'batch size': 32, epochs: 10 });
    assert.equal(await runUntilStopped(page, 'Train'), 'done');
    const { epochs } = await labState(page);
    active[beta] = epochs.at(-1).active;
  }
  assert.ok(active[8] < active[1], `active dims: beta 1 -> ${active[1]}, beta 8 -> ${active[8]}`);
  await page.close();
});

for (const isolated of [false, true]) {
  const build = isolated ? 'the threaded build' : 'the single-thread build';
  test(`the same seed gives the same first epoch, and pause then train equals an uninterrupted run (${build})`, async () => {
    const context = await labContext(isolated);
    const { page } = await openLab(context);
    assert.equal(await labThreads(page), isolated ? await page.evaluate(() => navigator.hardwareConcurrency) : 1);
    const firstEpoch = async () => {
      await resetWith(page, { ...SMALL, epochs: 2 });
      assert.equal(await runUntilStopped(page, 'Step'), 'step');
      return (await labState(page)).trainLoss[0][1];
    };
    const [a, b] = [await firstEpoch(), await firstEpoch()];
    assert.equal(a, b);

    await resetWith(page, { ...SMALL, epochs: 4 });
    assert.equal(await runUntilStopped(page, 'Train'), 'done');
    const whole = await labState(page);

    await resetWith(page, { ...SMALL, epochs: 4 });
    await page.evaluate(() => delete document.getElementById('lab-root').dataset.stopped);
    await lab(page).getByRole('button', { name: 'Train', exact: true }).click();
    await page.waitForFunction(() => document.getElementById('lab-progress').value > 0.1);
    await lab(page).getByRole('button', { name: 'Pause' }).click();
    await page.waitForFunction(() => document.getElementById('lab-root').dataset.stopped);
    assert.equal(await page.evaluate(() => document.getElementById('lab-root').dataset.stopped), 'paused');
    const paused = await labState(page);
    assert.ok(paused.running.length < whole.running.length, 'the pause came before the end');
    assert.equal(await runUntilStopped(page, 'Train'), 'done');
    const resumed = await labState(page);
    assert.deepEqual(resumed.running, whole.running);
    assert.deepEqual(resumed.epochs, whole.epochs);
    await context.close();
  });
}

test('Pause then Train at once leaves one run: it ends done, with each batch trained once', async () => {
  const { page, errors } = await openLab();
  await resetWith(page, { ...SMALL, epochs: 2 });
  await page.evaluate(() => delete document.getElementById('lab-root').dataset.stopped);
  await lab(page).getByRole('button', { name: 'Train', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('lab-progress').value > 0.2);
  await page.evaluate(() => {
    document.getElementById('lab-pause').click();
    document.getElementById('lab-train').disabled = false; // pressed before the page hears of the pause
    document.getElementById('lab-train').click();
  });
  await page.waitForFunction(() => document.getElementById('lab-root').dataset.stopped === 'done', null, { timeout: 60_000 });
  await page.waitForTimeout(500); // a second loop, if there were one, would report after the first
  const root = await page.evaluate(() => ({ ...document.getElementById('lab-root').dataset }));
  assert.equal(root.stopped, 'done');
  assert.equal(root.status, 'idle');
  const { epochs, running } = await labState(page);
  assert.deepEqual(epochs.map((e) => e.epoch), [1, 2]);
  const perEpoch = Number((await page.locator('#lab-progress-text').textContent()).match(/batch \d+ of (\d+)/)[1]);
  assert.equal(running.length, 2 * perEpoch);
  assert.deepEqual(errors, []);
  await page.close();
});

test('"Download model" gives a file the native eval reads within 1 nat; "Use in explorer" decodes it in the grid', async () => {
  assert.ok(existsSync(EVAL), `${EVAL} (make test-web builds it)`);
  const { page, errors } = await openLab();
  await resetWith(page, { ...SMALL, epochs: 2 });
  assert.equal(await runUntilStopped(page, 'Train'), 'done');
  const pageFigure = (await labState(page)).epochs.at(-1).neg_elbo;

  const [download] = await Promise.all([page.waitForEvent('download'), lab(page).getByRole('button', { name: 'Download model' }).click()]);
  mkdirSync(OUT, { recursive: true });
  const file = join(OUT, 'lab-model.safetensors');
  await download.saveAs(file);
  const printed = execFileSync(EVAL, [file, '--iw-samples', '0'], { cwd: ROOT, encoding: 'utf8' });
  const evalFigure = Number(printed.match(/test -ELBO\s+([\d.]+)/)[1]);
  assert.ok(Math.abs(evalFigure - pageFigure) <= 1, `eval ${evalFigure} vs page ${pageFigure}`);

  const serial = await page.evaluate(() => Number(document.getElementById('grid-canvas').dataset.serial));
  await lab(page).getByRole('button', { name: 'Use in explorer' }).click();
  await page.waitForFunction(() => window.explorer.store.get().model?.name.startsWith('lab-digits'));
  await page.waitForFunction((s) => Number(document.getElementById('grid-canvas').dataset.serial) > s, serial);
  const meta = await page.evaluate(() => window.explorer.store.get().model.meta);
  assert.match(meta.training.command, /^vae-explorer lab .*--hidden 64 .*--seed 7/);
  assert.ok(Math.abs(meta.metrics.neg_elbo - pageFigure) < 1e-9 * pageFigure, `${meta.metrics.neg_elbo} vs ${pageFigure}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a diverging learning rate stops with a message and keeps the last good weights; bad settings are refused', async () => {
  const { page } = await openLab();
  await resetWith(page, { ...SMALL, 'hidden width': 32, 'batch size': 64, 'learning rate': 10, epochs: 5 });
  assert.equal(await runUntilStopped(page, 'Train'), 'diverged');
  assert.match(await page.locator('#lab-message').textContent(), /diverged.*last good step/);
  // The kept weights are usable: they export and load in the explorer.
  await lab(page).getByRole('button', { name: 'Use in explorer' }).click();
  await page.waitForFunction(() => window.explorer.store.get().model?.name.startsWith('lab-digits'));

  await lab(page).getByLabel('hidden width', { exact: true }).fill('abc');
  await lab(page).getByLabel('latent dims', { exact: true }).fill('17');
  await lab(page).getByRole('button', { name: 'Reset' }).click();
  await page.waitForFunction(() => document.getElementById('lab-hidden-error').textContent !== '');
  assert.match(await page.locator('#lab-hidden-error').textContent(), /must be a number/);
  assert.match(await page.locator('#lab-latent_dim-error').textContent(), /between 2 and 16/);
  assert.equal(await lab(page).getByLabel('latent dims', { exact: true }).getAttribute('aria-invalid'), 'true');
  // A live setting is checked when it changes.
  await lab(page).getByLabel('learning rate', { exact: true }).fill('fast');
  await lab(page).getByLabel('learning rate', { exact: true }).dispatchEvent('change');
  await page.waitForFunction(() => document.getElementById('lab-lr-error').textContent !== '');
  assert.match(await page.locator('#lab-lr-error').textContent(), /learning rate must be a number/);
  await page.close();
});

test('the lab trains on both cores (www/pkg-lab-threads) where the page is isolated, on one (www/pkg-lab) where not, to the same epoch within rounding; the explorer\'s builds carry no trainer', async () => {
  const firstEpoch = async (isolated) => {
    const context = await labContext(isolated);
    const requested = [];
    context.on('request', (request) => requested.push(new URL(request.url()).pathname));
    const { page } = await openLab(context);
    await resetWith(page, { ...SMALL, epochs: 1 });
    assert.equal(await runUntilStopped(page, 'Step'), 'step');
    const { epochs } = await labState(page);
    assert.equal(epochs.length, 1);
    const threads = await labThreads(page);
    assert.match(await page.locator('#lab-progress-text').textContent(), threads === 1 ? / on one thread / : new RegExp(` on ${threads} threads `));
    return { context, page, requested, threads, epoch: epochs[0] };
  };
  const single = await firstEpoch(false);
  const threaded = await firstEpoch(true);
  assert.ok(single.requested.includes('/www/pkg-lab/vae_explorer_bg.wasm.gz'), 'not isolated: the lab loads www/pkg-lab');
  assert.ok(!single.requested.some((path) => path.startsWith('/www/pkg-lab-threads/')), 'not isolated: no threaded lab build');
  assert.equal(single.threads, 1);
  assert.ok(threaded.requested.includes('/www/pkg-lab-threads/vae_explorer_bg.wasm.gz'), 'isolated: the lab loads www/pkg-lab-threads');
  assert.equal(threaded.threads, await threaded.page.evaluate(() => navigator.hardwareConcurrency));
  for (const key of ['neg_elbo', 'recon', 'kl']) {
    const [a, b] = [single.epoch[key], threaded.epoch[key]];
    assert.ok(Math.abs(a - b) <= 0.01 + 1e-4 * Math.abs(a), `${key}: ${a} on one thread, ${b} on ${threaded.threads}`);
  }
  const exports = await threaded.page.evaluate(async () => {
    const builds = ['pkg', 'pkg-threads', 'pkg-lab', 'pkg-lab-threads'];
    return Object.fromEntries(await Promise.all(builds.map(async (b) => [b, Object.keys(await import(`/www/${b}/vae_explorer.js`))])));
  });
  for (const build of ['pkg-lab', 'pkg-lab-threads']) {
    assert.ok(exports[build].includes('Lab') && exports[build].includes('Model'), `${build}: ${exports[build].join()}`);
  }
  assert.ok(exports['pkg-lab-threads'].includes('initThreadPool'), exports['pkg-lab-threads'].join());
  for (const build of ['pkg', 'pkg-threads']) {
    assert.ok(exports[build].includes('Model'), `${build}: ${exports[build].join()}`);
    assert.ok(!exports[build].includes('Lab') && !exports[build].includes('labLimits'), `${build}: ${exports[build].join()}`);
  }
  await single.context.close();
  await threaded.context.close();
});

test('closing the lab while it trains ends its worker; nothing more is reported, the explorer decodes, the lab opens again', async () => {
  const { page, errors } = await openLab();
  await resetWith(page, { ...SMALL, epochs: 50 });
  await trainUntilEpoch(page, 1);
  const [worker] = labWorkers(page);
  assert.ok(worker, 'the lab runs in its own worker');
  const ended = workerEnded(worker, 5_000);
  assert.equal(await page.evaluate(() => document.getElementById('lab-root').dataset.status), 'training');
  await page.evaluate(async () => (window.closedLab = await window.explorer.lab));
  await page.click('#lab-open summary');
  await ended;
  assert.equal(await page.evaluate(() => document.getElementById('lab-root').dataset.status), 'closed');
  assert.equal(labWorkers(page).length, 0);
  const atClose = await reported(page);
  await page.waitForTimeout(1_500);
  assert.deepEqual(await reported(page), atClose, 'no progress or epoch after the lab was closed');
  await explorerDecodes(page);

  // Opened again: a new worker, a new model, and it trains.
  await page.click('#lab-open summary');
  await labMountedAgain(page);
  assert.equal(labWorkers(page).length, 1);
  assert.deepEqual(await reported(page), { epochs: 0, running: 0, progress: 'a new model on digits; press Train', rows: 0 });
  await resetWith(page, { ...SMALL, epochs: 1 });
  assert.equal(await runUntilStopped(page, 'Step'), 'step');
  assert.equal((await reported(page)).epochs, 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test('closing the lab while it loads, then opening it again, leaves one worker and a lab that trains', async () => {
  const context = await session.browser.newContext();
  // Hold the digits pack until the lab has been closed, so that closing falls in the middle of loading.
  let release;
  const held = new Promise((resolve) => (release = resolve));
  await context.route('**/lab-data/digits.safetensors.gz', async (route) => {
    await held;
    await route.continue();
  });
  const { page, errors } = await openExplorer(context, session.server.url);
  await page.click('#lab-open summary');
  await page.waitForFunction(() => document.getElementById('lab-progress-text')?.textContent.startsWith('loading digits'));
  const [first] = labWorkers(page);
  const ended = workerEnded(first, 10_000);
  await page.click('#lab-open summary');
  await page.click('#lab-open summary');
  release();
  await ended;
  await labMountedAgain(page);
  assert.equal(labWorkers(page).length, 1);
  await resetWith(page, { ...SMALL, epochs: 1 });
  assert.equal(await runUntilStopped(page, 'Step'), 'step');
  assert.equal((await reported(page)).epochs, 1);
  assert.deepEqual(errors, []);
  await context.close();
});

test('switching datasets while training stops the old run: no digits epoch after it, and the fashion views come up', async () => {
  const { page, errors } = await openLab();
  await resetWith(page, { ...SMALL, epochs: 50 });
  await trainUntilEpoch(page, 1);
  const digitsOriginals = await canvasGray(page, '#lab-originals');
  const resets = await page.evaluate(() => Number(document.getElementById('lab-root').dataset.resets));
  await lab(page).getByLabel('dataset', { exact: true }).selectOption('fashion');
  await page.waitForFunction((n) => Number(document.getElementById('lab-root').dataset.resets) > n, resets, { timeout: 30_000 });
  const root = await page.evaluate(() => ({ ...document.getElementById('lab-root').dataset }));
  assert.equal(root.stopped, 'paused', 'the digits run reported that it stopped');
  assert.equal(root.status, 'idle');
  assert.ok(await lab(page).getByRole('button', { name: 'Train', exact: true }).isEnabled());
  assert.equal(await page.evaluate(async () => (await window.explorer.lab).state.dataset), 'fashion');
  // Nothing of the digits run comes after the switch.
  await page.waitForTimeout(1_500);
  assert.deepEqual(await reported(page), { epochs: 0, running: 0, progress: 'a new model on fashion; press Train', rows: 0 });
  // The views show the fashion model's held-out images.
  const fashionOriginals = await canvasGray(page, '#lab-originals');
  const changed = fashionOriginals.gray.filter((v, i) => Math.abs(v - digitsOriginals.gray[i]) > 64).length;
  assert.ok(changed > fashionOriginals.gray.length / 10, `${changed} of ${fashionOriginals.gray.length} pixels of the held-out strip changed`);
  // Training now runs on fashion, and every epoch reported is a fashion epoch.
  assert.equal(await runUntilStopped(page, 'Step'), 'step');
  const { epochs } = await labState(page);
  assert.deepEqual(epochs.map((e) => [e.dataset, e.epoch]), [['fashion', 1]]);
  assert.deepEqual(errors, []);
  await page.close();
});
