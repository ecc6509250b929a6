// The class map: every atlas image's mu on the grid's two axes, coloured by class, with the current z,
// the grid's window, the prior's rings and the A-B path; a click loads the nearest image.

import { gridRange, interpolationPoints } from './latent.js';
import { RING_SIGMAS, ringInView } from './prior-rings.js';

/** The map spans mean +- this many std on each axis; points beyond sit on the edge. */
const MAP_SPAN = 4;

/** Ten distinguishable class colours (Okabe-Ito and Tableau hues), reused if there are more classes. */
const COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#1b1b1b'];

/** The colour of class `label`. */
function classColour(label) {
  return COLOURS[label % COLOURS.length];
}

/** The map's view of the grid's two axes: mean +- MAP_SPAN std on each. */
export function mapView(meta, { xDim, yDim }) {
  const x = gridRange(meta, xDim, MAP_SPAN);
  const y = gridRange(meta, yDim, MAP_SPAN);
  return { xDim, yDim, xMin: x.min, xMax: x.max, yMin: y.min, yMax: y.max };
}

/** Wires the map canvas and legend; `onPick(index)` gets the atlas index nearest a click. */
export function mountClassMap({ canvas, legend, marker }, store, onPick) {
  const context = canvas.getContext('2d');
  let atlas = null;
  let view = null; // { xDim, yDim, xMin, xMax, yMin, yMax }
  let pending = false;
  let layerKey = null; // what the drawn points, rings and path depend on

  const toCanvas = (x, y) => [
    ((x - view.xMin) / (view.xMax - view.xMin)) * canvas.width,
    ((view.yMax - y) / (view.yMax - view.yMin)) * canvas.height,
  ];
  const clampToCanvas = ([px, py]) => [
    Math.min(canvas.width - 2, Math.max(2, px)),
    Math.min(canvas.height - 2, Math.max(2, py)),
  ];

  /** Draws the points, the rings, the grid's window and the A-B path, when any of them changed. */
  function drawLayer() {
    const state = store.get();
    if (!atlas || !state.model || !state.grid) return;
    const key = [atlas, state.model, state.grid, state.a, state.b, state.path, state.steps];
    if (layerKey && key.every((part, i) => part === layerKey[i])) return;
    const { meta } = state.model;
    const { xDim, yDim } = state.grid;
    view = mapView(meta, state.grid);
    const scale = canvas.width / 360;
    context.fillStyle = '#fff';
    context.fillRect(0, 0, canvas.width, canvas.height);

    // The prior's rings, then the grid's window, under the points.
    context.lineWidth = 1.2 * scale;
    context.strokeStyle = '#9aa3ad';
    context.setLineDash([4 * scale, 4 * scale]);
    for (const sigma of RING_SIGMAS) {
      const ring = ringInView(sigma, view);
      context.beginPath();
      context.ellipse(ring.cx * canvas.width, ring.cy * canvas.height, ring.rx * canvas.width, ring.ry * canvas.height, 0, 0, 2 * Math.PI);
      context.stroke();
    }
    context.setLineDash([]);
    const gx = gridRange(meta, xDim, state.grid.span);
    const gy = gridRange(meta, yDim, state.grid.span);
    const [left, top] = toCanvas(gx.min, gy.max);
    const [right, bottom] = toCanvas(gx.max, gy.min);
    context.strokeStyle = '#2f6f8f';
    context.lineWidth = 1.5 * scale;
    context.strokeRect(left, top, right - left, bottom - top);

    const dims = meta.latent_dim;
    let drawn = 0;
    for (let i = 0; i < atlas.count; i++) {
      const [px, py] = clampToCanvas(toCanvas(atlas.mu[i * dims + xDim], atlas.mu[i * dims + yDim]));
      context.fillStyle = classColour(atlas.labels[i]);
      context.beginPath();
      context.arc(px, py, 2.4 * scale, 0, 2 * Math.PI);
      context.fill();
      drawn += 1;
    }
    canvas.dataset.points = String(drawn);

    if (state.a && state.b) {
      context.strokeStyle = '#000';
      context.lineWidth = 2 * scale;
      context.beginPath();
      for (const [k, point] of interpolationPoints(state.a, state.b, Math.max(state.steps, 24), state.path).entries()) {
        const [px, py] = clampToCanvas(toCanvas(point[xDim], point[yDim]));
        if (k === 0) context.moveTo(px, py);
        else context.lineTo(px, py);
      }
      context.stroke();
    }
    for (const [name, point] of [['A', state.a], ['B', state.b]]) {
      if (!point) continue;
      const [px, py] = clampToCanvas(toCanvas(point[xDim], point[yDim]));
      context.font = `bold ${13 * scale}px system-ui, sans-serif`;
      context.fillStyle = '#000';
      context.fillText(name, px + 5 * scale, py - 5 * scale);
      context.fillRect(px - 3 * scale, py - 3 * scale, 6 * scale, 6 * scale);
    }

    layerKey = key;
  }

  /** Moves the current-z marker (a DOM ring, so that dragging a slider never redraws the points). */
  function placeMarker() {
    const state = store.get();
    if (!view || !state.z.length) return;
    const [px, py] = clampToCanvas(toCanvas(state.z[view.xDim], state.z[view.yDim]));
    marker.style.left = `${(100 * px) / canvas.width}%`;
    marker.style.top = `${(100 * py) / canvas.height}%`;
    marker.hidden = false;
  }

  function draw() {
    pending = false;
    drawLayer();
    placeMarker();
  }

  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(draw);
  }

  function drawLegend(classNames) {
    legend.replaceChildren(
      ...classNames.map((name, i) => {
        const item = document.createElement('li');
        const swatch = document.createElement('span');
        swatch.className = 'swatch';
        swatch.style.background = classColour(i);
        item.append(swatch, document.createTextNode(name));
        return item;
      }),
    );
  }

  canvas.addEventListener('click', (event) => {
    if (!atlas || !view) return;
    const rect = canvas.getBoundingClientRect();
    const cx = ((event.clientX - rect.left) / rect.width) * canvas.width;
    const cy = ((event.clientY - rect.top) / rect.height) * canvas.height;
    const dims = store.get().model.meta.latent_dim;
    let best = -1;
    let bestDistance = (12 * canvas.width) / rect.width; // within 12 css px
    for (let i = 0; i < atlas.count; i++) {
      const [px, py] = clampToCanvas(toCanvas(atlas.mu[i * dims + view.xDim], atlas.mu[i * dims + view.yDim]));
      const distance = Math.hypot(px - cx, py - cy);
      if (distance < bestDistance) [best, bestDistance] = [i, distance];
    }
    if (best >= 0) onPick(best);
  });

  store.subscribe((state, changed) => {
    if (['grid', 'a', 'b', 'path', 'steps', 'model'].some((k) => changed.has(k))) schedule();
    else if (changed.has('z')) placeMarker();
  });

  return {
    /** Shows a new atlas ({ count, mu, labels }) and its class names. */
    show(nextAtlas, classNames) {
      atlas = nextAtlas;
      drawLegend(classNames);
      schedule();
    },
    /** The screen position of atlas image `index`, in CSS pixels relative to the canvas (for tests and tools). */
    pointAt(index) {
      const dims = store.get().model.meta.latent_dim;
      const [px, py] = clampToCanvas(toCanvas(atlas.mu[index * dims + view.xDim], atlas.mu[index * dims + view.yDim]));
      const rect = canvas.getBoundingClientRect();
      return { x: (px / canvas.width) * rect.width, y: (py / canvas.height) * rect.height };
    },
  };
}
