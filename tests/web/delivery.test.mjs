// Classroom delivery: the decoder part first, a user's own whole file, the `make dist` folder on a plain
// static server (one thread, then two through the service worker), offline visits, updates, and the
// app's install to a home screen.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize } from 'node:path';
import { ROOT, launchChromium, launchChromiumWithProfile, openExplorer, startPlainServer, useServer, waitForAsync } from './harness.mjs';

const session = useServer();
let browser = null;
before(async () => {
  browser = await launchChromium();
});
after(() => browser?.close());

const WORK = join(ROOT, 'target', 'web-delivery');

/** Writes a dist folder into target/ with tools/dist.mjs (`weights` from another folder when given). */
function writeDist(out, weights) {
  execFileSync('node', [join(ROOT, 'tools', 'dist.mjs'), '--out', out, ...(weights ? ['--weights', weights] : [])], { stdio: 'pipe' });
}

/** Waits until a service worker controls the page and has cached the model files the page opened. */
async function waitForOffline(page, files) {
  await page.waitForFunction(() => Boolean(navigator.serviceWorker.controller), null, { timeout: 30_000 });
  await waitForAsync(page, async (names) => {
    const cache = await caches.open('vae-explorer-models');
    const keys = (await cache.keys()).map((request) => new URL(request.url).pathname);
    return names.every((name) => keys.some((key) => key.endsWith(`/weights/${name}`)));
  }, files, { what: `the service worker caching ${files.join(', ')}` });
}

const gridSerial = (page) => page.evaluate(() => Number(document.getElementById('grid-canvas').dataset.serial));

/** The modules `entry` imports statically, itself and transitively (paths from the project root). */
function staticImports(entry) {
  const found = new Set();
  const visit = (path) => {
    if (found.has(path)) return;
    found.add(path);
    const source = readFileSync(join(ROOT, path), 'utf8');
    for (const [, specifier] of source.matchAll(/^\s*import\s+(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) {
      visit(normalize(join(dirname(path), specifier)));
    }
  };
  visit(entry);
  return found;
}

test('index.html preloads every module www/main.js imports statically, and nothing else', () => {
  const html = readFileSync(join(ROOT, 'index.html'), 'utf8');
  const preloaded = [...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map(([, href]) => href);
  const graph = [...staticImports('www/main.js')].filter((path) => path !== 'www/main.js');
  assert.ok(graph.length > 10, `main.js's graph was read (${graph.length} modules)`);
  assert.deepEqual(preloaded.sort(), graph.sort());
});

test('the first image is drawn before the encoder part arrives; encoding works once it does', async () => {
  const context = await browser.newContext();
  let release;
  const held = new Promise((resolve) => (release = resolve));
  const heldUrls = [];
  await context.route('**/*.encoder.safetensors', async (route) => {
    heldUrls.push(new URL(route.request().url()).pathname);
    await held;
    await route.continue();
  });
  const { page, errors } = await openExplorer(context, session.server.url);
  // Drawn, and still waiting: the encoder part has been asked for and not delivered.
  await page.waitForFunction(() => Number(document.getElementById('grid-canvas').dataset.serial) > 0);
  await page.waitForTimeout(300);
  assert.deepEqual(heldUrls, ['/weights/digits.encoder.safetensors']);
  assert.equal(await page.evaluate(() => window.explorer.store.get().atlas), null, 'no atlas before its part arrives');
  const before = await gridSerial(page);
  await page.getByRole('slider', { name: 'z3' }).fill('1');
  await page.waitForFunction((n) => Number(document.getElementById('grid-canvas').dataset.serial) > n, before);
  release();
  await page.waitForFunction(() => window.explorer.store.get().atlas?.count === 997, null, { timeout: 20_000 });
  const encoded = await page.evaluate(async () => {
    const { decoder, store } = window.explorer;
    const { atlas } = store.get();
    const pixels = Float32Array.from(atlas.pixels.subarray(0, 784), (v) => v / 255);
    return Array.from((await decoder.encode(pixels)).muLogvar.slice(0, 8));
  });
  const stored = await page.evaluate(() => Array.from(window.explorer.store.get().atlas.mu.slice(0, 8)));
  encoded.forEach((v, i) => assert.ok(Math.abs(v - stored[i]) < 0.05, `mu[${i}]: ${v} vs the atlas's ${stored[i]}`));
  await context.close();
  assert.deepEqual(errors, []);
});

test("a user's own whole f32 file still loads and decodes", async () => {
  const { page, errors } = await openExplorer(browser, session.server.url);
  await page.locator('#model-file').setInputFiles(join(ROOT, 'weights', 'fashion.safetensors'));
  await page.waitForFunction(() => window.explorer.store.get().model?.name === 'fashion.safetensors');
  await page.waitForFunction(() => window.explorer.store.get().atlas?.count === 1000);
  assert.equal(await page.evaluate(() => window.explorer.store.get().model.meta.dataset), 'fashion');
  assert.equal(await page.getByRole('alert').isVisible(), false);
  await page.close();
  assert.deepEqual(errors, []);
});

test('a truncated decoder part, an inconsistent encoder part and a lone part are refused clearly', async () => {
  const decoderPart = readFileSync(join(ROOT, 'weights', 'digits.decoder.safetensors'));
  const context = await browser.newContext();
  await context.route('**/weights/digits.decoder.safetensors', (route) =>
    route.fulfill({ body: decoderPart.subarray(0, decoderPart.length - 1000), contentType: 'application/octet-stream' }),
  );
  const page = await context.newPage();
  await page.goto(session.server.url);
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /Could not load “Digits \(MNIST\)”: not a safetensors file.*truncated/);
  await context.close();

  // The fashion model's encoder part served for the digits model's: the two parts do not pair.
  const other = await browser.newContext();
  const fashionEncoder = readFileSync(join(ROOT, 'weights', 'fashion.encoder.safetensors'));
  await other.route('**/weights/digits.encoder.safetensors', (route) =>
    route.fulfill({ body: fashionEncoder, contentType: 'application/octet-stream' }),
  );
  const { page: mixed } = await openExplorer(other, session.server.url);
  await mixed.getByText(/test images failed: .*split model: the two parts come from different models/).waitFor();
  assert.equal(await mixed.evaluate(() => window.explorer.store.get().atlas), null);
  await other.close();

  // A part opened as a file of its own: load refuses it and says why.
  const { page: third } = await openExplorer(browser, session.server.url);
  await third.locator('#model-file').setInputFiles(join(ROOT, 'weights', 'digits.decoder.safetensors'));
  await third.getByText(/Could not load “digits.decoder.safetensors”: split model: this file is only the decoder part/).waitFor();
  await third.close();
});

test('dist/ on a plain static server: one thread first, then two through the service worker, then offline', async () => {
  const dist = join(WORK, 'dist');
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  writeDist(dist);
  const server = await startPlainServer(dist);
  const context = await browser.newContext();
  try {
    const requested = [];
    context.on('request', (request) => requested.push(new URL(request.url()).pathname));
    const { page, errors } = await openExplorer(context, server.url);
    // The page's modules travel bundled (tools/dist.mjs): none of those main.js imports is fetched on its own.
    const modules = [...new Set(requested.filter((path) => /^\/www\/[^/]+\.js$/.test(path)))];
    const unbundled = [...staticImports('www/main.js')].filter((path) => path !== 'www/main.js');
    assert.deepEqual(modules.filter((path) => unbundled.includes(path.slice(1))), [], `modules fetched: ${modules.join(', ')}`);
    assert.ok(modules.length <= 10, `${modules.length} module files before the page was ready: ${modules.join(', ')}`);
    const preloads = [...readFileSync(join(dist, 'index.html'), 'utf8').matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map(([, href]) => `/${href}`);
    assert.ok(preloads.length >= 2 && preloads.every((path) => modules.includes(path)), `preloads ${preloads.join(', ')}`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), false, 'http.server sends no isolation headers');
    assert.ok(requested.includes('/www/pkg/vae_explorer_bg.wasm.gz'));
    assert.ok(!requested.some((path) => path.endsWith('.wasm')), 'only the gzip\'d modules travel');
    // Open the fashion model too, so that both are kept (the link now names it: the reloads open it).
    await page.selectOption('#model', 'fashion');
    await page.waitForFunction(() => window.explorer.store.get().atlas?.count === 1000);
    await waitForOffline(page, ['digits.decoder.safetensors', 'digits.encoder.safetensors', 'fashion.decoder.safetensors', 'fashion.encoder.safetensors']);

    // Second visit: served by the service worker, with its headers: isolated, on the threaded build.
    requested.length = 0;
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'the service worker adds COOP/COEP');
    assert.ok(requested.includes('/www/pkg-threads/vae_explorer_bg.wasm.gz'), 'the threaded build is loaded');
    const threads = await page.evaluate(async () => {
      const { decoder, store } = window.explorer;
      const z = new Float32Array(256 * 8).map((_, i) => Math.sin(i));
      const result = await decoder.decode(z, 256);
      return { n: result.n, length: result.pixels.length, dataset: store.get().model.meta.dataset };
    });
    assert.deepEqual(threads, { n: 256, length: 256 * 784, dataset: 'fashion' });

    // Offline: reload, decode, move the grid, switch to the other model opened before.
    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
    const before = await gridSerial(page);
    await page.getByRole('slider', { name: 'z3' }).fill('1.5');
    await page.waitForFunction((n) => Number(document.getElementById('grid-canvas').dataset.serial) > n, before);
    await page.selectOption('#model', 'digits');
    await page.waitForFunction(() => window.explorer.store.get().model?.meta.dataset === 'digits');
    await page.waitForFunction(() => window.explorer.store.get().atlas?.count === 997);
    assert.equal(await page.getByRole('alert').isVisible(), false);
    await context.setOffline(false);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await server.stop();
  }
});

/** Serves `dir` as a host configured to send `.gz` files with `Content-Encoding: gzip` (the browser inflates them). */
function startEncodingServer(dir) {
  const server = createServer((request, response) => {
    const asked = normalize(decodeURIComponent(new URL(request.url, 'http://host').pathname)).replace(/^(\.\.[/\\])+/, '');
    const path = asked.endsWith('/') ? `${asked}index.html` : asked;
    let body;
    try {
      body = readFileSync(join(dir, path));
    } catch {
      response.writeHead(404).end();
      return;
    }
    const types = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.css': 'text/css' };
    const headers = { 'Content-Type': types[extname(path)] ?? 'application/octet-stream' };
    if (path.endsWith('.gz')) headers['Content-Encoding'] = 'gzip';
    response.writeHead(200, headers).end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${server.address().port}/`, stop: () => server.close() })));
}

test('a host that sends the gzip\'d wasm with Content-Encoding: gzip: the page still decodes', async () => {
  const dist = join(WORK, 'dist-encoding');
  mkdirSync(WORK, { recursive: true });
  writeDist(dist);
  const server = await startEncodingServer(dist);
  const context = await browser.newContext({ serviceWorkers: 'block' });
  try {
    const encodings = [];
    const requested = [];
    context.on('request', (request) => requested.push(new URL(request.url()).pathname));
    context.on('response', async (response) => {
      if (response.url().endsWith('.wasm.gz')) encodings.push((await response.allHeaders())['content-encoding']);
    });
    const { page, errors } = await openExplorer(context, server.url);
    await page.waitForFunction(() => Number(document.getElementById('grid-canvas').dataset.serial) > 0);
    assert.deepEqual(encodings, ['gzip'], 'the module arrived inflated by the browser');
    assert.ok(!requested.some((path) => path.endsWith('.wasm')), 'compiled from that response, with no fallback to the plain .wasm');
    const result = await page.evaluate(async () => (await window.explorer.decoder.decode(new Float32Array(8), 1)).pixels.length);
    assert.equal(result, 784);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    server.stop();
  }
});

test('the lab from dist/: its own build and the dataset it opened, online and then offline', async () => {
  const dist = join(WORK, 'dist-lab');
  writeDist(dist);
  const server = await startPlainServer(dist);
  const context = await browser.newContext();
  try {
    const { page, errors } = await openExplorer(context, server.url);
    await waitForOffline(page, ['digits.decoder.safetensors']);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    const requested = [];
    context.on('request', (request) => requested.push(new URL(request.url()).pathname));
    const openLab = async () => {
      await page.click('#lab-open summary');
      await page.waitForSelector('#lab-root[data-ready="true"]', { timeout: 60_000 });
    };
    await openLab();
    // The service worker makes the page cross-origin isolated here, so the lab runs its threaded build.
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    assert.ok(requested.includes('/www/pkg-lab-threads/vae_explorer_bg.wasm.gz'), 'the lab loads its own threaded build');
    assert.equal(await page.evaluate(() => Number(document.getElementById('lab-root').dataset.threads)), await page.evaluate(() => navigator.hardwareConcurrency));
    await waitForAsync(page, async () => {
      const keys = (await (await caches.open('vae-explorer-models')).keys()).map((request) => new URL(request.url).pathname);
      return keys.some((key) => key.endsWith('/www/lab-data/digits.safetensors.gz'));
    }, null, { what: 'the service worker caching the lab\'s dataset' });

    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
    await openLab();
    assert.equal(await page.evaluate(() => document.getElementById('lab-message').textContent), '');
    await context.setOffline(false);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await server.stop();
  }
});

test('after a shipped file changes, the next online visit uses the new one, never a mix', async () => {
  const dist = join(WORK, 'dist-update');
  const changed = join(WORK, 'changed-weights');
  rmSync(dist, { recursive: true, force: true });
  writeDist(dist);
  const server = await startPlainServer(dist);
  const context = await browser.newContext();
  try {
    const { page } = await openExplorer(context, server.url);
    await waitForOffline(page, ['digits.decoder.safetensors', 'digits.encoder.safetensors']);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.evaluate(() => window.explorer.store.get().model.meta.dataset), 'digits');

    // A new version of the folder, whose "digits" files now hold the fashion model.
    rmSync(changed, { recursive: true, force: true });
    mkdirSync(changed, { recursive: true });
    for (const part of ['decoder', 'encoder']) {
      cpSync(join(ROOT, 'weights', `fashion.${part}.safetensors`), join(changed, `digits.${part}.safetensors`));
      cpSync(join(ROOT, 'weights', `fashion.${part}.safetensors`), join(changed, `fashion.${part}.safetensors`));
    }
    writeDist(dist, changed);

    // The next visit finds the new service worker; when it takes over, the page reloads onto the new files.
    const loads = [];
    page.on('load', () => loads.push(Date.now()));
    await page.reload();
    await page.waitForFunction(() => window.explorer?.store.get().model?.meta.dataset === 'fashion', null, { timeout: 30_000 });
    await page.waitForFunction(() => window.explorer.store.get().atlas?.count === 1000, null, { timeout: 20_000 });
    const state = await page.evaluate(async () => {
      const cache = await caches.open('vae-explorer-models');
      return {
        name: window.explorer.store.get().model.name,
        classes: window.explorer.store.get().model.meta.class_names[0],
        alert: document.getElementById('message').hidden ? '' : document.getElementById('message').textContent,
        cached: (await cache.keys()).map((request) => new URL(request.url).pathname + new URL(request.url).search),
      };
    });
    assert.equal(state.name, 'digits');
    assert.equal(state.classes, 'T-shirt/top', 'the new encoder part came with the new decoder part');
    assert.equal(state.alert, '');
    // Only the new version's model files are kept.
    const revisions = new Set(state.cached.map((key) => key.split('?')[0]));
    assert.equal(revisions.size, state.cached.length, `one version of each file: ${state.cached.join(', ')}`);
  } finally {
    await context.close();
    await server.stop();
  }
});

/** A PNG's width and height, from its IHDR chunk. */
const pngSize = (bytes) => [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];

test('the explorer can be installed: Chromium reads its manifest and icons and finds nothing missing', async () => {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'www', 'manifest.json'), 'utf8'));
  for (const icon of manifest.icons) {
    const [width, height] = pngSize(readFileSync(join(ROOT, 'www', icon.src)));
    assert.equal(`${width}x${height}`, icon.sizes, `${icon.src} is the size the manifest says`);
  }
  const profile = join(WORK, 'install-profile');
  rmSync(profile, { recursive: true, force: true });
  mkdirSync(profile, { recursive: true });
  const context = await launchChromiumWithProfile(profile);
  try {
    const { page } = await openExplorer(context, session.server.url);
    const cdp = await context.newCDPSession(page);
    const found = await cdp.send('Page.getAppManifest');
    assert.equal(new URL(found.url).pathname, '/www/manifest.json');
    assert.deepEqual(found.errors, [], 'the manifest parses with no error');
    assert.deepEqual((await cdp.send('Page.getInstallabilityErrors')).installabilityErrors, [], 'installable');
    // The check is live: the same manifest with only its maskable icon is refused for want of an icon.
    await page.route('**/www/manifest.json', (route) => route.fulfill({ json: { ...manifest, icons: manifest.icons.filter((icon) => icon.purpose === 'maskable') } }));
    await page.reload();
    const refused = (await cdp.send('Page.getInstallabilityErrors')).installabilityErrors.map((error) => error.errorId);
    assert.ok(refused.includes('manifest-missing-suitable-icon'), `without its icons: ${refused.join(', ')}`);
  } finally {
    await context.close();
  }
});
