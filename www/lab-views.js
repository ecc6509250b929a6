// The lab's live views, each drawn from plain data: the curves, the KL bars, the class map and the
// image strips. Colours of classes come from palette.js, as on the explorer's map.

import { drawClassMarkers } from './palette.js';
import { drawIntensities, tileIntensities } from './image-view.js';

/** The curves' series: key in an epoch record, label and colour. */
export const CURVES = [
  { key: 'neg_elbo', label: '\u2212ELBO (held-out)', colour: '#1f4e9c' },
  { key: 'recon', label: 'reconstruction (held-out)', colour: '#2a9d4b' },
  { key: 'kl', label: 'KL (held-out)', colour: '#c0392b' },
  { key: 'train', label: 'training loss (running)', colour: '#777777' },
];

function fitCanvas(canvas) {
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  if (canvas.width !== width || canvas.height !== height) [canvas.width, canvas.height] = [width, height];
  const context = canvas.getContext('2d');
  context.clearRect(0, 0, width, height);
  return { context, width, height };
}

/**
 * Draws the held-out curves per epoch (`epochs`: { epoch, neg_elbo, recon, kl }) and the running
 * training loss (`running`: { x: fractional epoch, loss }) on one epoch axis, KL on its own scale.
 */
export function drawCurves(canvas, epochs, running) {
  const { context, width, height } = fitCanvas(canvas);
  const pad = { left: 44, right: 44, top: 10, bottom: 24 };
  const xMax = Math.max(1, ...epochs.map((e) => e.epoch), ...running.map((r) => r.x));
  const big = [...epochs.flatMap((e) => [e.neg_elbo, e.recon]), ...running.map((r) => r.loss)].filter(Number.isFinite);
  const kls = epochs.map((e) => e.kl).filter(Number.isFinite);
  // The first epochs' losses are far above the rest; a robust top keeps later changes visible.
  const sorted = [...big].sort((a, b) => a - b);
  const top = sorted.length ? sorted[Math.floor(0.9 * (sorted.length - 1))] * 1.1 : 1;
  const bottom = sorted.length ? Math.max(0, sorted[0] * 0.95) : 0;
  const klTop = Math.max(1, ...kls) * 1.1;
  const x = (v) => pad.left + ((width - pad.left - pad.right) * v) / xMax;
  const y = (v, hi, lo = 0) => {
    const t = (Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo || 1);
    return height - pad.bottom - t * (height - pad.top - pad.bottom);
  };
  context.font = '11px sans-serif';
  context.fillStyle = '#444';
  context.strokeStyle = '#bbb';
  context.strokeRect(pad.left, pad.top, width - pad.left - pad.right, height - pad.top - pad.bottom);
  context.fillText(top.toFixed(0), 2, pad.top + 10);
  context.fillText(bottom.toFixed(0), 2, height - pad.bottom);
  context.fillText(`KL ${klTop.toFixed(1)}`, width - pad.right + 2, pad.top + 10);
  context.fillText(`epoch ${xMax.toFixed(0)}`, width - pad.right - 50, height - 6);
  const line = (points, colour) => {
    if (!points.length) return;
    context.beginPath();
    points.forEach(([px, py], i) => (i ? context.lineTo(px, py) : context.moveTo(px, py)));
    context.strokeStyle = colour;
    context.lineWidth = 2;
    context.stroke();
    if (points.length === 1) context.fillRect(points[0][0] - 2, points[0][1] - 2, 4, 4);
  };
  for (const curve of CURVES) {
    const points =
      curve.key === 'train'
        ? running.map((r) => [x(r.x), y(r.loss, top, bottom)])
        : epochs.map((e) => [x(e.epoch), curve.key === 'kl' ? y(e.kl, klTop) : y(e[curve.key], top, bottom)]);
    context.fillStyle = curve.colour;
    line(points, curve.colour);
  }
}

/** Draws each dim's KL as a bar; inactive dims are hatched grey and labelled "off". */
export function drawKlBars(canvas, kl, inactive) {
  const { context, width, height } = fitCanvas(canvas);
  const top = Math.max(0.5, ...kl) * 1.1;
  const slot = width / Math.max(1, kl.length);
  context.font = '11px sans-serif';
  kl.forEach((value, d) => {
    const h = ((height - 32) * Math.max(0, value)) / top;
    const x0 = d * slot + slot * 0.15;
    context.fillStyle = inactive[d] ? '#bbbbbb' : '#1f4e9c';
    context.fillRect(x0, height - 18 - h, slot * 0.7, Math.max(1, h));
    context.fillStyle = '#222';
    context.fillText(`z${d}`, x0, height - 5);
    context.fillText(inactive[d] ? 'off' : value.toFixed(2), x0, height - 22 - h);
  });
}

/** The two dims with the most KL (the map's axes), most first. */
export function mapAxes(kl) {
  const order = kl.map((v, d) => [v, d]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  return [order[0][1], order[1][1]];
}

/** Plots each held-out encoding's mean on dims `axes`, marked by class, over [-4, 4] squared. */
export function drawClassMap(canvas, mu, labels, latent, axes) {
  const { context, width, height } = fitCanvas(canvas);
  const [a, b] = axes;
  const span = 4;
  context.strokeStyle = '#ddd';
  context.beginPath();
  context.moveTo(width / 2, 0);
  context.lineTo(width / 2, height);
  context.moveTo(0, height / 2);
  context.lineTo(width, height / 2);
  context.stroke();
  // One path per class: ten fills and strokes instead of one per encoding.
  const byClass = new Map();
  for (let i = 0; i < labels.length; i++) {
    if (!byClass.has(labels[i])) byClass.set(labels[i], []);
    byClass.get(labels[i]).push(((mu[i * latent + a] + span) / (2 * span)) * width, (1 - (mu[i * latent + b] + span) / (2 * span)) * height);
  }
  for (const [label, points] of [...byClass].sort((x, y) => x[0] - y[0])) drawClassMarkers(context, label, points, 3);
  context.fillStyle = '#222';
  context.font = '11px sans-serif';
  context.fillText(`z${a} \u2192`, width - 34, height / 2 - 4);
  context.fillText(`z${b} \u2191`, width / 2 + 4, 12);
}

/** Draws `count` images (intensities one after another) side by side on one canvas. */
export function drawStrip(canvas, pixels, count, width, height) {
  const { sheet, sheetWidth, sheetHeight } = tileIntensities(Float32Array.from(pixels), count, count, width, height);
  drawIntensities(canvas, sheet, sheetWidth, sheetHeight);
}
