// The set-up every browser test and benchmark shares: the static server (tools/serve.py) on a free
// port, headless Chromium, the page opened and ready, and the folder that screenshots go to.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

/** The project root (two levels above this file). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the tests save screenshots: target/screenshots/, or SCREENSHOT_DIR (make screenshots gives docs/). */
export const SCREENSHOT_DIR = resolve(ROOT, process.env.SCREENSHOT_DIR ?? join('target', 'screenshots'));

/** Flags that keep headless Chromium quiet and working as root on a closed network. */
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

/** Runs tools/serve.py with these command-line arguments; returns the child process. */
export function spawnServer(args, options = {}) {
  return spawn('python3', [join(ROOT, 'tools', 'serve.py'), ...args], options);
}

/** Starts the server on a free port; resolves to { url, stop }. `weightsDir` is served as /weights/. */
export function startServer({ weightsDir } = {}) {
  const args = ['--port', '0'];
  if (weightsDir) args.push('--weights', weightsDir);
  const child = spawnServer(args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return announcedServer(child, /serving (http:\/\/\S+)/);
}

/** Serves `dir` with `python3 -m http.server` on a free port: a plain static host, no special headers; resolves to { url, stop }. */
export function startPlainServer(dir) {
  const child = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', dir], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return announcedServer(child, /\((http:\/\/127\.0\.0\.1:\d+\/)\)/);
}

/** Resolves to { url, stop } once `child` prints a line matching `pattern` (its group 1 is the URL). */
function announcedServer(child, pattern) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error('the server did not start within 10 s')), 10_000);
    child.on('exit', (code) => reject(new Error(`the server exited with code ${code}`)));
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      const match = seen.match(pattern);
      if (!match) return;
      clearTimeout(timer);
      const stop = () =>
        new Promise((done) => {
          if (child.exitCode !== null) return done();
          child.once('exit', done);
          child.kill('SIGTERM');
        });
      resolve({ url: match[1], stop });
    });
  });
}

/** Launches the system's Chromium (never a downloaded one). */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
}

/** The system's Chromium with its profile in `dir`: a normal profile, not incognito, for what Chromium allows only there (installing an app). */
export function launchChromiumWithProfile(dir) {
  return chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
}

/** One server for a test file, started before its tests and stopped after; fills in the returned object. */
export function useServer(options) {
  const session = { server: null };
  before(async () => {
    session.server = await startServer(options);
  });
  after(() => session.server?.stop());
  return session;
}

/** One server and one Chromium for a test file, as useServer does; `options` go to startServer. */
export function useServerAndBrowser(options) {
  const session = useServer(options);
  before(async () => {
    session.browser = await launchChromium();
  });
  after(() => session.browser?.close());
  return session;
}

/** For scripts (the benchmarks): runs `job({ server, browser })`, then stops both, whatever happened. */
export async function withServerAndBrowser(job) {
  const server = await startServer();
  let browser = null;
  try {
    browser = await launchChromium();
    return await job({ server, browser });
  } finally {
    await browser?.close();
    await server.stop();
  }
}

/** Strips the isolation headers from everything `url`'s server sends in `context`: a page that is not cross-origin isolated. */
export async function stripIsolation(context, url) {
  await context.route(`${url}**`, async (route) => {
    const response = await route.fetch();
    const headers = { ...response.headers() };
    delete headers['cross-origin-opener-policy'];
    delete headers['cross-origin-embedder-policy'];
    await route.fulfill({ response, headers });
  });
}

/** Opens the page and waits until the first decoded image is on screen; collects console errors. */
export async function openExplorer(browser, url, { query = '' } = {}) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${url}${query}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  return { page, errors };
}

/**
 * Opens the page in a fresh browser context, with touch emulation (a phone's or tablet's input) or
 * `reducedMotion` if asked, and waits until the exploring views and the atlas are ready.
 */
export async function openInContext(browser, url, { viewport, touch = false, reducedMotion = 'no-preference', query = '' }) {
  const context = await browser.newContext({ viewport, hasTouch: touch, isMobile: touch, reducedMotion });
  const { page, errors } = await openExplorer(context, url, { query });
  await page.waitForFunction(() => document.body.dataset.explore === 'ready' && window.explorer.store.get().atlas);
  return { context, page, errors };
}

/** The path for screenshot `name` in SCREENSHOT_DIR, which it creates. */
export function screenshotPath(name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return join(SCREENSHOT_DIR, name);
}

/**
 * The RGBA bytes a canvas shows: { width, height, data } (data a plain array). Read through a scratch
 * canvas (drawImage), so that a canvas the model worker draws on (a transferred placeholder, which has
 * no context here) reads too; its frames reach the page a few animation frames after the worker's
 * reply, so this waits until two reads three frames apart agree (at most ~2 s).
 */
export function canvasPixels(page, selector) {
  return page.evaluate(async (sel) => {
    const canvas = document.querySelector(sel);
    const read = () => {
      const scratch = document.createElement('canvas');
      [scratch.width, scratch.height] = [canvas.width, canvas.height];
      const context = scratch.getContext('2d');
      context.drawImage(canvas, 0, 0);
      return { width: canvas.width, height: canvas.height, data: Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data) };
    };
    const frames = (n) => new Promise((done) => {
      const step = () => (n-- > 0 ? requestAnimationFrame(step) : done());
      step();
    });
    const same = (a, b) => a.width === b.width && a.height === b.height && a.data.every((v, i) => v === b.data[i]);
    let last = read();
    for (let tries = 0; tries < 40; tries++) {
      await frames(3);
      const now = read();
      if (same(now, last)) return now;
      last = now;
    }
    return last;
  }, selector);
}

/** The gray levels (red channel) of a canvas, read as canvasPixels reads it. */
export async function canvasGray(page, selector) {
  const { width, height, data } = await canvasPixels(page, selector);
  return { width, height, gray: data.filter((_, i) => i % 4 === 0) };
}

/** Waits (up to `timeout` ms) until a canvas shows other RGBA bytes than `before` (an array); returns them. */
export async function canvasChanged(page, selector, before, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const { data } = await canvasPixels(page, selector);
    if (data.length !== before.length || data.some((v, i) => v !== before[i])) return data;
    if (Date.now() > deadline) throw new Error(`${selector} did not change within ${timeout} ms`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

/** Waits (up to `timeout` ms) until the async `predicate` run in the page resolves truthy (page.waitForFunction takes a promise as truthy at once). */
export async function waitForAsync(page, predicate, arg, { timeout = 30_000, what = 'the condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    // A navigation (the page reloads when a new service worker takes over) ends one evaluation: try again.
    const held = await page.evaluate(predicate, arg).catch((error) => {
      if (/context was destroyed|navigat/i.test(error.message)) return false;
      throw error;
    });
    if (held) return;
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeout} ms`);
    await new Promise((done) => setTimeout(done, 200));
  }
}

/** Clicks gallery thumbnail k (in the sheet's order) and waits until that image is encoded. */
export async function pickGalleryImage(page, k) {
  // Scroll the gallery's box so that the thumbnail's row is in view, then click its centre.
  const box = await page.locator('#gallery').evaluate((c, row) => {
    const side = c.clientWidth / 12;
    c.parentElement.scrollTop = Math.max(0, (row - 1) * side);
    return { w: c.clientWidth, h: c.clientHeight, rows: c.height / 28 };
  }, Math.floor(k / 12));
  const cell = box.w / 12;
  await page.locator('#gallery').click({ position: { x: (k % 12 + 0.5) * cell, y: (Math.floor(k / 12) + 0.5) * (box.h / box.rows) } });
  await page.waitForFunction((n) => window.explorer.store.get().encoded?.source.startsWith(`test image #${n} `), k);
}
