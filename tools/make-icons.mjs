// Draws the app icons (www/icons/*.png) from the product's own rendering: a 3x3 latent grid of the
// shipped digits model, decoded by the page's worker in headless Chromium, in white on the accent colour.
//
//   node tools/make-icons.mjs        (after make build; the PNGs are committed, so run it only to redraw them)

import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, withServerAndBrowser, openExplorer } from '../tests/web/harness.mjs';

const ICONS = [
  { file: 'icon-192.png', size: 192, inset: 0.08, corner: 0.18 },
  { file: 'icon-512.png', size: 512, inset: 0.08, corner: 0.18 },
  // Maskable: the platform cuts its own shape, so the background bleeds and the digits keep to the middle 70%.
  { file: 'icon-maskable-512.png', size: 512, inset: 0.15, corner: 0 },
];

await withServerAndBrowser(async ({ server, browser }) => {
  const { page } = await openExplorer(browser, server.url);
  const pngs = await page.evaluate(async (icons) => {
    const { decoder, store } = window.explorer;
    const { model } = store.get();
    const baseZ = model.meta.latent_mean;
    const [dx, dy] = [0, 1].map((d) => 1.6 * model.meta.latent_std[d]);
    const grid = await decoder.grid({
      baseZ, xDim: 0, yDim: 1, cols: 3, rows: 3,
      xMin: baseZ[0] - dx, xMax: baseZ[0] + dx, yMin: baseZ[1] - dy, yMax: baseZ[1] + dy,
    });
    // White where the digits are, transparent elsewhere.
    const tiles = new OffscreenCanvas(grid.width, grid.height);
    const image = new ImageData(grid.width, grid.height);
    for (let i = 0; i < grid.width * grid.height; i++) image.data.set([255, 255, 255, grid.rgba[4 * i]], 4 * i);
    tiles.getContext('2d').putImageData(image, 0, 0);
    const out = [];
    for (const { size, inset, corner } of icons) {
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = size;
      const context = canvas.getContext('2d');
      context.fillStyle = '#2f6f8f';
      context.beginPath();
      context.roundRect(0, 0, size, size, corner * size);
      context.fill();
      context.imageSmoothingQuality = 'high';
      const pad = inset * size;
      context.drawImage(tiles, pad, pad, size - 2 * pad, size - 2 * pad);
      out.push(canvas.toDataURL('image/png'));
    }
    return out;
  }, ICONS);
  const dir = join(ROOT, 'www', 'icons');
  mkdirSync(dir, { recursive: true });
  ICONS.forEach(({ file }, i) => {
    writeFileSync(join(dir, file), Buffer.from(pngs[i].split(',')[1], 'base64'));
    console.log(`wrote www/icons/${file}`);
  });
});
