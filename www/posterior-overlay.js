// q(z|x) over a view of two latent dims (the grid or the class map): its 1 and 2 sigma ellipses about mu,
// the samples drawn from it as points, and, for a highlighted dim on one of the two axes, its mu +- sigma band.

import { ellipseInView } from './prior-rings.js';
import { sigmaOf } from './latent.js';

const SVG = 'http://www.w3.org/2000/svg';

/** The ellipses drawn, in q(z|x)'s standard deviations. */
const ELLIPSE_SIGMAS = [1, 2];

/** An SVG element with attributes. */
function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text) element.textContent = text;
  return element;
}

/**
 * Lays an SVG over `frame`, in front of its canvas and behind `before` (a marker that stays on top).
 * `viewOf(state)` gives the latent window shown: { xDim, yDim, xMin, xMax, yMin, yMax }.
 */
export function mountPosteriorOverlay(frame, { before = null, viewOf }, store) {
  const svg = svgElement('svg', { class: 'posterior-overlay', viewBox: '0 0 100 100', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  frame.insertBefore(svg, before);

  function draw() {
    const state = store.get();
    const { encoded, samples, model, grid } = state;
    if (!model || !grid || !encoded) {
      svg.replaceChildren();
      return;
    }
    const view = viewOf(state);
    const { xDim, yDim } = view;
    const sigma = sigmaOf(encoded.logvar);
    const at = (k) => ellipseInView({ x: encoded.mu[xDim], y: encoded.mu[yDim], rx: k * sigma[xDim], ry: k * sigma[yDim] }, view);
    const parts = [];
    const dim = state.highlightDim;
    if (dim === xDim || dim === yDim) {
      const { cx, cy, rx, ry } = at(1);
      const band = dim === xDim
        ? { x: 100 * (cx - rx), y: 0, width: 200 * rx, height: 100 }
        : { x: 0, y: 100 * (cy - ry), width: 100, height: 200 * ry };
      parts.push(svgElement('rect', { ...band, class: 'posterior-band', 'data-dim': dim }));
    } else if (dim !== null) {
      parts.push(svgElement('text', { x: 2, y: 6, class: 'posterior-note' }, `z${dim + 1} is not on these axes`));
    }
    for (const k of ELLIPSE_SIGMAS) {
      const { cx, cy, rx, ry } = at(k);
      parts.push(svgElement('ellipse', {
        cx: 100 * cx, cy: 100 * cy, rx: 100 * rx, ry: 100 * ry,
        class: `posterior-ellipse sigma-${k}`, 'data-sigma': k, 'vector-effect': 'non-scaling-stroke',
      }));
    }
    if (samples?.of === encoded) {
      const dims = model.meta.latent_dim;
      for (let k = 0; k < samples.n; k++) {
        const { cx, cy } = ellipseInView({ x: samples.z[k * dims + xDim], y: samples.z[k * dims + yDim] }, view);
        // A cross, not a dot, so that a sample never looks like an atlas point; drawn dark, then light on top.
        const d = `M ${100 * cx - 1.4} ${100 * cy} h 2.8 M ${100 * cx} ${100 * cy - 1.4} v 2.8`;
        parts.push(svgElement('path', { d, class: 'posterior-sample-under', 'vector-effect': 'non-scaling-stroke' }));
        parts.push(svgElement('path', { d, class: 'posterior-sample', 'data-k': k, 'vector-effect': 'non-scaling-stroke' }));
      }
    }
    svg.replaceChildren(...parts);
  }

  store.subscribe((state, changed) => {
    if (['encoded', 'samples', 'grid', 'model', 'highlightDim'].some((key) => changed.has(key))) draw();
  });
  draw();
}
