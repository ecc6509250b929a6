// Shared by the browser tests and the benchmark: the static server on a free port, and headless Chromium.

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

/** The project root (two levels above this file). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Flags that keep headless Chromium quiet and working as root on a closed network. */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

/** Starts tools/serve.py on a free port; resolves to { url, stop }. WEIGHTS_DIR overrides weights/. */
export function startServer() {
  const args = [join(ROOT, 'tools', 'serve.py'), '--port', '0'];
  if (process.env.WEIGHTS_DIR) args.push('--weights', process.env.WEIGHTS_DIR);
  const child = spawn('python3', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error('the server did not start within 10 s')), 10_000);
    child.on('exit', (code) => reject(new Error(`the server exited with code ${code}`)));
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      const match = seen.match(/serving (http:\/\/\S+)/);
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

/** One server and one Chromium for a test file, started before its tests and stopped after; fills in the returned object. */
export function useServerAndBrowser() {
  const session = { server: null, browser: null };
  before(async () => {
    session.server = await startServer();
    session.browser = await launchChromium();
  });
  after(async () => {
    await session.browser?.close();
    await session.server?.stop();
  });
  return session;
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
