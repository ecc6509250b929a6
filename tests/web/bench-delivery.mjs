// Delivery benchmarks in headless Chromium: what a first visit downloads and waits for. Prints figures;
// asserts nothing.
//
//   node tests/web/bench-delivery.mjs        (make bench-web builds first; it writes target/bench-dist/)
//
// Every load is a first visit (a new browser context: no HTTP cache, no service worker) unless said:
// - bytes before the first decoded image, as served (gzip where the server compresses: tools/serve.py
//   does, python3 -m http.server does not), counted from Playwright's request sizes (the encoded body
//   and the headers) for each request of the page or its workers that started before the first image,
//   except the encoder part, which the worker asks for once it has drawn that image;
// - navigation to the first decoded image (the page's `first-image` mark), median of 8 loads, from
//   tools/serve.py (make serve) and from dist/ on python3 -m http.server, in a tab that has shown
//   another site's page for SETTLE_MS; and, for comparison, in a tab that navigates the moment it opens;
// - the same under Chromium's network emulation: 10 Mbit/s down, 5 up, 40 ms round trip;
// - a second visit with the network off (dist/, after one visit has let the service worker keep the files).
// Targets: <= 1.2 MB before the first image, <= 250 ms on localhost, <= 1.5 s at 10 Mbit/s, <= 250 ms offline.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, launchChromium, startPlainServer, startServer, waitForAsync } from './harness.mjs';

const LOADS = 8;
/**
 * How long each new tab idles on a page of another site before it follows a link to the explorer, as a
 * visitor's open browser does. A tab that navigates the moment it opens shares the cores with its own
 * start-up: 100-140 ms more on this machine (also printed, "in a new tab"). The other site matters: from
 * a fresh tab's blank page, a page without COOP reuses that page's process while one with COOP
 * (`make serve`) must start another, 36-53 ms more here; arriving from another site, both start one.
 */
const SETTLE_MS = 2000;
const ELSEWHERE = 'data:text/html,<title>another site</title>';
const SCHOOL_WIFI = { offline: false, latency: 40, downloadThroughput: 10e6 / 8, uploadThroughput: 5e6 / 8 };

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * One load in `context`: { ms, bytes, files } up to the first image (bytes only for requests that started
 * before it). Playwright's request events include the workers' requests (the wasm, the bindings), which a
 * CDP session on the page does not see; the network emulation of that session applies to them too.
 */
async function load(context, url, network, settle = SETTLE_MS) {
  const page = await context.newPage();
  if (settle) {
    await page.goto(ELSEWHERE);
    await page.waitForTimeout(settle);
  }
  if (network) {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', network);
  }
  const requests = [];
  page.on('requestfinished', (request) => requests.push(request));
  await page.goto(url, { waitUntil: 'commit' }); // the first image is the mark, not the load event
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  const { ms, wall, encoderParts } = await page.evaluate(() => {
    const mark = performance.getEntriesByName('first-image')[0].startTime;
    const models = JSON.parse(document.getElementById('shipped-models').textContent);
    const encoderParts = models.map((model) => new URL(model.encoder, document.baseURI).href);
    return { ms: mark, wall: performance.timeOrigin + mark, encoderParts };
  });
  await page.waitForTimeout(network ? 3000 : 500); // let the requests begun before the image finish
  let bytes = 0;
  const files = [];
  for (const request of requests) {
    // The worker asks for the encoder part once it has drawn the first image, which the page marks a
    // frame later: that request may start before the mark, but the image did not wait for it.
    if (request.timing().startTime > wall || encoderParts.includes(request.url())) continue;
    const { responseBodySize, responseHeadersSize } = await request.sizes(); // as sent: encoded, headers too
    const size = responseBodySize + responseHeadersSize;
    bytes += size;
    files.push([new URL(request.url()).pathname, size]);
  }
  await page.close();
  return { ms, bytes, files };
}

async function firstVisits(browser, url, network, settle) {
  const runs = [];
  for (let i = 0; i < LOADS; i++) {
    const context = await browser.newContext();
    runs.push(await load(context, url, network, settle));
    await context.close();
  }
  return runs;
}

function report(label, runs, target) {
  const ms = runs.map((r) => r.ms);
  console.log(
    `${label}: first image median ${median(ms).toFixed(0)} ms (runs ${ms.map((t) => t.toFixed(0)).join(', ')}; target <= ${target}); ` +
      `before it ${(median(runs.map((r) => r.bytes)) / 1e6).toFixed(3)} MB as served (target <= 1.2)`,
  );
}

const dist = join(ROOT, 'target', 'bench-dist');
execFileSync('node', [join(ROOT, 'tools', 'dist.mjs'), '--out', dist], { stdio: 'inherit' });
const browser = await launchChromium();
const serve = await startServer();
const plain = await startPlainServer(dist);
try {
  const served = await firstVisits(browser, serve.url);
  report('make serve (tools/serve.py: isolation headers, gzip)', served, 250);
  console.log(
    '  requests before the first image (first load): ' +
      served[0].files.sort((a, b) => b[1] - a[1]).map(([path, n]) => `${path} ${(n / 1000).toFixed(0)} kB`).join(', '),
  );
  report('dist/ on python3 -m http.server (no headers, no gzip)', await firstVisits(browser, plain.url), 250);
  report('  the same in a new tab (it navigates the moment it opens), make serve', await firstVisits(browser, serve.url, null, 0), 250);
  report('  the same in a new tab, dist/', await firstVisits(browser, plain.url, null, 0), 250);
  report('make serve at 10 Mbit/s, 40 ms RTT', await firstVisits(browser, serve.url, SCHOOL_WIFI), 1500);
  report('dist/ at 10 Mbit/s, 40 ms RTT', await firstVisits(browser, plain.url, SCHOOL_WIFI), 1500);

  // Second visits with the network off: one online visit lets the service worker keep the files.
  const offline = [];
  for (let i = 0; i < LOADS; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(plain.url);
    await waitForAsync(page, async () => {
      if (!navigator.serviceWorker.controller) return false;
      const keys = await (await caches.open('vae-explorer-models')).keys();
      return keys.filter((request) => request.url.includes('/weights/digits.')).length === 2;
    }, null, { timeout: 60_000, what: 'the service worker caching the digits model' });
    await page.close();
    await context.setOffline(true);
    offline.push(await load(context, plain.url));
    await context.close();
  }
  const ms = offline.map((r) => r.ms);
  console.log(`second visit, network off (dist/): first image median ${median(ms).toFixed(0)} ms (runs ${ms.map((t) => t.toFixed(0)).join(', ')}; target <= 250)`);
} finally {
  await browser.close();
  await serve.stop();
  await plain.stop();
}
