// Page-level benchmarks in headless Chromium. Prints figures; asserts nothing.
//
//   node tests/web/bench.mjs        (make bench-web builds first)
//
// Reports: wasm size (raw, gzip), the worker's decode time for a 16x16 grid and for one image (median
// of many), and long tasks (>50 ms) on the main thread and grid frames per second while a slider is
// dragged over a 16x16 and a 32x32 grid. Targets: grid <= 16 ms, wasm <= 250 KB gzip, no long tasks
// while dragging. What a first visit downloads and waits for is bench-delivery.mjs's.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, withServerAndBrowser, openExplorer } from './harness.mjs';

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (ms) => `${ms.toFixed(2)} ms`;

for (const build of ['pkg', 'pkg-threads']) {
  const wasm = readFileSync(join(ROOT, 'www', build, 'vae_explorer_bg.wasm'));
  const gzipKB = gzipSync(wasm, { level: 9 }).length / 1000;
  console.log(`wasm size, www/${build}: ${(wasm.length / 1000).toFixed(0)} kB raw, ${gzipKB.toFixed(0)} kB gzip (target <= 250)`);
}

await withServerAndBrowser(async ({ server, browser }) => {
  const context = await browser.newContext();
  await context.addInitScript(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.longTasks.push({ start: entry.startTime, ms: entry.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  const { page } = await openExplorer(context, server.url);

  const decodeTimes = await page.evaluate(async () => {
    const { store, decoder } = window.explorer;
    const { z } = store.get();
    const grid = { baseZ: z, xDim: 0, yDim: 1, xMin: -3, xMax: 3, yMin: -3, yMax: 3, cols: 16, rows: 16 };
    const run = async (count, call) => {
      const inWorker = [];
      const roundTrip = [];
      for (let i = 0; i < count; i++) {
        const start = performance.now();
        const result = await call(i);
        roundTrip.push(performance.now() - start);
        inWorker.push(result.ms);
      }
      return { inWorker, roundTrip };
    };
    // Vary z a little per call so that nothing can be cached anywhere.
    const single = await run(400, (i) => decoder.decode(z.map((v, d) => v + (d === 2 ? (i % 50) / 100 : 0))));
    const grid16 = await run(60, (i) => decoder.grid({ ...grid, baseZ: z.map((v, d) => v + (d === 2 ? i / 100 : 0)) }));
    return { single, grid16, isolated: crossOriginIsolated };
  });
  const med = (xs) => median(xs.slice(xs.length / 5)); // drop the first fifth: warm-up
  console.log(
    `16x16 grid decode: median ${fmt(med(decodeTimes.grid16.inWorker))} in the worker, ` +
      `${fmt(med(decodeTimes.grid16.roundTrip))} round trip (target <= 16)`,
  );
  console.log(
    `batch-1 decode: median ${fmt(med(decodeTimes.single.inWorker))} in the worker, ` +
      `${fmt(med(decodeTimes.single.roundTrip))} round trip (timer ${decodeTimes.isolated ? 'fine: cross-origin isolated' : 'coarse'})`,
  );
  console.log(
    `first calls after load (cold code): batch-1 ${fmt(decodeTimes.single.inWorker[0])}, grid ${fmt(decodeTimes.grid16.inWorker[0])}`,
  );

  // Drag z3's thumb back and forth for about 4 seconds, at roughly display rate, with a 16x16 and a 32x32 grid.
  const slider = page.getByRole('slider', { name: 'z3' });
  const box = await slider.boundingBox();
  const y = box.y + box.height / 2;
  for (const size of ['16', '32']) {
    await page.selectOption('#grid-size', size);
    await page.waitForTimeout(500);
    const drawnBefore = await page.evaluate(() => Number(document.getElementById('grid-canvas').dataset.serial));
    const dragStart = await page.evaluate(() => performance.now());
    await page.mouse.move(box.x + box.width / 2, y);
    await page.mouse.down();
    let moves = 0;
    for (let i = 0; i < 240; i++) {
      const t = (Math.sin(i / 12) + 1) / 2;
      await page.mouse.move(box.x + 4 + t * (box.width - 8), y);
      moves++;
      await page.waitForTimeout(16);
    }
    await page.mouse.up();
    const dragEnd = await page.evaluate(() => performance.now());
    await page.waitForTimeout(300);
    const drag = await page.evaluate((since) => {
      const tasks = window.longTasks.filter((t) => t.start >= since);
      return { tasks, grids: Number(document.getElementById('grid-canvas').dataset.serial) };
    }, dragStart);
    const seconds = (dragEnd - dragStart) / 1000;
    const grids = drag.grids - drawnBefore;
    console.log(
      `dragging z3 over a ${size}x${size} grid for ${seconds.toFixed(1)} s (${(moves / seconds).toFixed(0)} pointer moves/s): ` +
        `${(grids / seconds).toFixed(1)} grid frames/s (${grids} drawn); ${drag.tasks.length} long tasks on the main thread` +
        `${drag.tasks.length ? ` (${drag.tasks.map((t) => t.ms.toFixed(0)).join(', ')} ms)` : ''} (target: no long tasks)`,
    );
  }
});
