// A strip of N decoded samples, shared by "Sample from q(z|x)" and "Generate": the counts offered and the layout.

import { drawIntensities, tileIntensities } from './image-view.js';

/** Sample counts offered, and the one each view starts with. */
const SAMPLE_COUNTS = [4, 8, 16, 32, 64];
const DEFAULT_COUNT = 8;
/** A strip wraps after this many decodes. */
const COLUMNS = 8;

/** Fills a count select with the counts offered, showing the default. */
export function offerSampleCounts(select) {
  for (const n of SAMPLE_COUNTS) select.append(new Option(String(n), String(n)));
  select.value = String(DEFAULT_COUNT);
}

/** Draws `n` decoded images (intensities, one after another) as a strip that wraps after COLUMNS. */
export function drawSampleStrip(canvas, pixels, n, width, height) {
  const { sheet, sheetWidth, sheetHeight } = tileIntensities(pixels, n, Math.min(n, COLUMNS), width, height);
  drawIntensities(canvas, sheet, sheetWidth, sheetHeight);
}
