// The two wasm builds: the threaded one (www/pkg-threads, both cores) must give the same pixels as the
// single-thread one (www/pkg), and a page that is not cross-origin isolated must still work on one thread.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, openExplorer, stripIsolation } from './harness.mjs';

const session = useServerAndBrowser();

test('the threaded build with its pool decodes exactly what the single-thread build decodes', async () => {
  const page = await session.browser.newPage();
  await page.goto(`${session.server.url}www/style.css`); // any page from the server: it is cross-origin isolated
  const result = await page.evaluate(async () => {
    const bytes = new Uint8Array(await (await fetch('/weights/digits.safetensors')).arrayBuffer());
    const single = await import('/www/pkg/vae_explorer.js');
    const threaded = await import('/www/pkg-threads/vae_explorer.js');
    await single.default();
    await threaded.default();
    await threaded.initThreadPool(2);
    const pooled = threaded.useThreadPool();
    const [a, b] = [single.Model.load(bytes), threaded.Model.load(bytes)];
    const z = new Float32Array(300 * 8).map((_, i) => 2.5 * Math.sin(0.37 * i));
    const base = new Float32Array(8).fill(0.1);
    const same = (x, y) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
    return {
      isolated: crossOriginIsolated,
      singleHasPool: typeof single.initThreadPool === 'function',
      pooled,
      decode: same(a.decode(z, 300), b.decode(z, 300)),
      grid: same(a.decode_grid(base, 0, 1, -3, 3, -2, 2, 32, 32), b.decode_grid(base, 0, 1, -3, 3, -2, 2, 32, 32)),
      odd: same(a.decode_grid(base, 2, 5, -1, 1, -1, 1, 7, 5), b.decode_grid(base, 2, 5, -1, 1, -1, 1, 7, 5)),
    };
  });
  await page.close();
  assert.deepEqual(result, { isolated: true, singleHasPool: false, pooled: true, decode: true, grid: true, odd: true });
});

test('a page that is not cross-origin isolated loads the single-thread build and draws', async () => {
  const context = await session.browser.newContext();
  await stripIsolation(context, session.server.url);
  const requested = [];
  context.on('request', (request) => requested.push(new URL(request.url()).pathname));
  const { page, errors } = await openExplorer(context, session.server.url);
  await page.waitForFunction(() => Number(document.getElementById('grid-canvas').dataset.serial) > 0);
  const isolated = await page.evaluate(() => crossOriginIsolated);
  // The page may still be loading its later modules: let their routes end quietly with the context.
  await context.unrouteAll({ behavior: 'ignoreErrors' });
  await context.close();
  assert.equal(isolated, false);
  assert.ok(requested.includes('/www/pkg/vae_explorer_bg.wasm.gz'), 'the single-thread wasm is loaded');
  assert.ok(!requested.some((path) => path.startsWith('/www/pkg-threads/')), 'the threaded build is not touched');
  assert.deepEqual(errors, []);
});
