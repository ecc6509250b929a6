// Page-level benchmarks in headless Chromium. Prints figures; asserts nothing.
//
//   node tests/web/bench.mjs        (make bench-web builds first)
//
// Reports: wasm size (raw, gzip), the worker's decode time for a 16x16 grid and for one image (median
// of many), and, while a slider is driven faster than frames (an input event every 5 ms, from a
// worker's timer) over a 16x16 and a 32x32 grid: input events/s, grid frames drawn per second, the
// longest main-thread task in CPU ms (a Chromium trace) and long tasks (>50 ms of wall time). Targets:
// grid <= 16 ms, wasm <= 250 KB gzip, no long tasks while dragging. What a first visit downloads and waits for is bench-delivery.mjs's.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, withServerAndBrowser, openExplorer } from './harness.mjs';
import { mainThreadTasks } from './trace.mjs';

const DRAG_SECONDS = Number(process.env.DRAG_SECONDS ?? 4);

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
    const grid32 = await run(60, (i) => decoder.grid({ ...grid, cols: 32, rows: 32, baseZ: z.map((v, d) => v + (d === 2 ? i / 100 : 0)) }));
    return { single, grid16, grid32, isolated: crossOriginIsolated };
  });
  const med = (xs) => median(xs.slice(xs.length / 5)); // drop the first fifth: warm-up
  console.log(
    `16x16 grid decode: median ${fmt(med(decodeTimes.grid16.inWorker))} in the worker, ` +
      `${fmt(med(decodeTimes.grid16.roundTrip))} round trip (target <= 16)`,
  );
  console.log(
    `32x32 grid decode: median ${fmt(med(decodeTimes.grid32.inWorker))} in the worker, ` +
      `${fmt(med(decodeTimes.grid32.roundTrip))} round trip, drawn in the worker where it has the canvas (50 frames/s: 20 ms)`,
  );
  console.log(
    `batch-1 decode: median ${fmt(med(decodeTimes.single.inWorker))} in the worker, ` +
      `${fmt(med(decodeTimes.single.roundTrip))} round trip (timer ${decodeTimes.isolated ? 'fine: cross-origin isolated' : 'coarse'})`,
  );
  console.log(
    `first calls after load (cold code): batch-1 ${fmt(decodeTimes.single.inWorker[0])}, grid ${fmt(decodeTimes.grid16.inWorker[0])}`,
  );

  // Drive z3's slider faster than frames can come: an in-page `input` event every ~5 ms for DRAG_SECONDS,
  // with a 16x16 and a 32x32 grid. Frames are grid replies drawn (each sets the grid canvas's data-serial).
  // Each size is dragged twice: once untraced for the frame rate (tracing takes CPU from the page), then
  // under a Chromium trace for the longest main-thread task.
  const drag = (seconds) =>
    page.evaluate(async (seconds) => {
      const slider = document.getElementById('slider-z3');
      const canvas = document.getElementById('grid-canvas');
      let frames = 0;
      const observer = new MutationObserver((records) => (frames += records.length));
      observer.observe(canvas, { attributes: true, attributeFilter: ['data-serial'] });
      const [min, max] = [Number(slider.min), Number(slider.max)];
      // The clock is a small worker that ticks every 5 ms; the page sets the slider on each tick and
      // idles between, so that the driver takes no core from the decode (a spin loop here took one).
      const clock = new Worker(URL.createObjectURL(new Blob(['setInterval(() => postMessage(0), 5);'], { type: 'text/javascript' })));
      let inputs = 0;
      const start = performance.now();
      await new Promise((done) => {
        clock.onmessage = () => {
          if (performance.now() - start >= seconds * 1000) return done();
          const t = (Math.sin(inputs / 40) + 1) / 2;
          slider.value = String(min + t * (max - min));
          slider.dispatchEvent(new Event('input', { bubbles: true }));
          inputs++;
        };
      });
      clock.terminate();
      const elapsed = (performance.now() - start) / 1000;
      await new Promise((done) => setTimeout(done, 300)); // the last frame lands
      observer.disconnect();
      const tasks = window.longTasks.filter((t) => t.start >= start);
      return { elapsed, inputs, frames, tasks };
    }, seconds);
  for (const size of ['16', '32']) {
    await page.selectOption('#grid-size', size);
    await page.waitForTimeout(500);
    const untraced = await drag(DRAG_SECONDS);
    await browser.startTracing(page, { categories: ['toplevel'] });
    const traced = await drag(DRAG_SECONDS);
    const trace = mainThreadTasks(JSON.parse(String(await browser.stopTracing())));
    const longTasks = [...untraced.tasks, ...traced.tasks];
    console.log(
      `dragging z3 over a ${size}x${size} grid for ${untraced.elapsed.toFixed(1)} s: ${(untraced.inputs / untraced.elapsed).toFixed(0)} input events/s, ` +
        `${(untraced.frames / untraced.elapsed).toFixed(1)} grid frames/s (${untraced.frames} drawn, untraced; ` +
        `${(traced.frames / traced.elapsed).toFixed(1)} under the trace); ` +
        `longest main-thread task ${trace.longest.toFixed(1)} ms of CPU (Chromium trace); ` +
        `${longTasks.length} long tasks (wall time, both drags)${longTasks.length ? ` (${longTasks.map((t) => t.ms.toFixed(0)).join(', ')} ms)` : ''} (target: no long tasks)`,
    );
  }
});
