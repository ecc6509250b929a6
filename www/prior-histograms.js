// The prior against the encodings: for each latent dim, a histogram of the atlas images' mu (the means of
// the aggregate posterior) drawn over the prior's N(0, 1) density. A dim the model does not use is a spike at 0.

import { markHighlightedDim, pointsAtDim } from './dim-highlight.js';

/** Bins of this width, centred on multiples of it, so that 0 is the middle of a bin. */
const BIN_WIDTH = 0.25;
/** The histograms span -4.125 to 4.125 (33 bins); a mu beyond falls into the end bin on its side. */
const LOW = -4.125;
const BINS = 33;
/** The y axis tops out at 1.5 times the N(0, 1) density's peak; a taller bar is cut there and labelled. */
const MAX_DENSITY = 0.6;

/** The bin counts of `values` (every value counts once; beyond the ends, in the end bins). */
export function binCounts(values) {
  const counts = new Array(BINS).fill(0);
  for (const v of values) counts[Math.min(BINS - 1, Math.max(0, Math.floor((v - LOW) / BIN_WIDTH)))] += 1;
  return counts;
}

/** The population variance of `values`: Cov_x(E_q[z_u]) for one dim, as `eval` computes it. */
function variance(values) {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  return values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
}

const normalDensity = (x) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

/** Draws one histogram: bars for the density of `counts`, the N(0, 1) density as a line. */
function drawHistogram(canvas, counts, total) {
  const context = canvas.getContext('2d');
  const { width, height } = canvas;
  const [top, bottom] = [10, height - 14];
  const toX = (value) => ((value - LOW) / (BINS * BIN_WIDTH)) * width;
  const toY = (density) => bottom - (Math.min(density, MAX_DENSITY) / MAX_DENSITY) * (bottom - top);
  context.clearRect(0, 0, width, height);
  context.font = '10px system-ui, sans-serif';
  context.textAlign = 'center';
  counts.forEach((count, i) => {
    if (!count) return;
    const density = count / (total * BIN_WIDTH);
    const [left, right] = [toX(LOW + i * BIN_WIDTH), toX(LOW + (i + 1) * BIN_WIDTH)];
    context.fillStyle = '#5b8fb0';
    context.fillRect(left + 0.5, toY(density), right - left - 1, bottom - toY(density));
    if (density > MAX_DENSITY) {
      context.fillStyle = '#1f2328';
      context.fillText(String(count), (left + right) / 2, top - 1);
    }
  });
  context.strokeStyle = '#1f2328';
  context.lineWidth = 1.5;
  context.beginPath();
  for (let px = 0; px <= width; px += 2) {
    const y = toY(normalDensity(LOW + (px / width) * BINS * BIN_WIDTH));
    if (px === 0) context.moveTo(px, y);
    else context.lineTo(px, y);
  }
  context.stroke();
  context.fillStyle = '#646a73';
  context.fillRect(0, bottom, width, 1);
  for (const tick of [-3, 0, 3]) context.fillText(tick === 0 ? '0' : `${tick < 0 ? '\u2212' : ''}${Math.abs(tick)}`, toX(tick), height - 2);
}

/** Builds one histogram per dim from the store's atlas, and marks the highlighted dim. */
export function mountPriorHistograms(container, store) {
  let figures = [];
  const markFigures = markHighlightedDim(store, () => figures);

  function render(state) {
    const { atlas, model } = state;
    figures = [];
    if (!atlas || !model) {
      container.replaceChildren();
      return;
    }
    if (!atlas.count) {
      const note = document.createElement('p');
      note.className = 'muted small';
      note.textContent = 'This model file has no atlas of test images, so there are no encodings to set against the prior.';
      container.replaceChildren(note);
      return;
    }
    const dims = model.meta.latent_dim;
    figures = Array.from({ length: dims }, (_, d) => {
      const mu = Array.from({ length: atlas.count }, (_, i) => atlas.mu[i * dims + d]);
      const counts = binCounts(mu);
      const spread = variance(mu);
      const unused = !(spread > model.activeUnitThreshold);
      const figure = document.createElement('figure');
      figure.className = unused ? 'unused' : '';
      figure.tabIndex = 0;
      figure.dataset.dim = String(d);
      const canvas = document.createElement('canvas');
      [canvas.width, canvas.height] = [240, 110];
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', `z${d + 1}: histogram of the ${atlas.count} test images\u2019 \u03bc against the N(0, 1) density${unused ? '; unused, a spike at 0' : ''}`);
      canvas.dataset.counts = JSON.stringify(counts);
      drawHistogram(canvas, counts, atlas.count);
      const caption = document.createElement('figcaption');
      caption.textContent = `z${d + 1} \u00b7 Var \u03bc ${spread.toFixed(unused ? 4 : 2)}${unused ? ' \u00b7 unused' : ''}`;
      figure.append(canvas, caption);
      pointsAtDim(figure, d, store);
      return figure;
    });
    container.replaceChildren(...figures);
    markFigures();
  }

  store.subscribe((state, changed) => {
    if (changed.has('atlas') || changed.has('model')) render(state);
  });
  render(store.get());
}
