// The class map: every atlas image's mu on the grid's two axes, marked by class (colour and shape), with
// the current z, the grid's window, the prior's rings and the A-B path; a click, or the arrow keys and
// Enter, load an image. One class can be highlighted.

import { gridRange, interpolationPoints } from './latent.js';
import { RING_SIGMAS, ringInView } from './prior-rings.js';
import { DISTINCT_CLASS_STYLES, drawClassMarker } from './palette.js';
import { className, describeMap, describePoint } from './describe.js';
import { oncePerFrame } from './frame.js';

/** The map spans mean +- this many std on each axis; points beyond sit on the edge. */
const MAP_SPAN = 4;

/** The colour of the points of the classes that are not highlighted. */
const FADED = '#d5d8dc';

/** How near (in CSS pixels) a click must be to a point to load it: a finger covers more than a mouse pointer. */
const PICK_RADIUS = { mouse: 12, touch: 24 };

/** The map's view of the grid's two axes: mean +- MAP_SPAN std on each. */
export function mapView(meta, { xDim, yDim }) {
  const x = gridRange(meta, xDim, MAP_SPAN);
  const y = gridRange(meta, yDim, MAP_SPAN);
  return { xDim, yDim, xMin: x.min, xMax: x.max, yMin: y.min, yMax: y.max };
}

/** Wires the map canvas, its legend and highlight filter; `onPick(index)` loads atlas image `index`; `announce(text)` reads out the keyboard cursor. */
export function mountClassMap({ canvas, legend, marker, cursor, highlightSelect }, store, onPick, announce) {
  const context = canvas.getContext('2d');
  let atlas = null;
  let view = null; // { xDim, yDim, xMin, xMax, yMin, yMax }
  let positions = null; // each atlas point's canvas position, x then y, as drawn
  let pending = false;
  let layerKey = null; // what the drawn points, rings and path depend on
  let highlight = null; // the highlighted class, or null for all
  let at = -1; // the keyboard cursor's atlas index

  const toCanvas = (x, y) => [
    ((x - view.xMin) / (view.xMax - view.xMin)) * canvas.width,
    ((view.yMax - y) / (view.yMax - view.yMin)) * canvas.height,
  ];
  const clampToCanvas = ([px, py]) => [
    Math.min(canvas.width - 2, Math.max(2, px)),
    Math.min(canvas.height - 2, Math.max(2, py)),
  ];

  const shownClass = (i) => highlight === null || atlas.labels[i] === highlight;

  /** Draws the points, the rings, the grid's window and the A-B path, when any of them changed. */
  function drawLayer() {
    const state = store.get();
    if (!atlas || !state.model || !state.grid) return;
    const key = [atlas, state.model, state.grid, state.a, state.b, state.path, state.steps, highlight];
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
    positions = new Float32Array(2 * atlas.count);
    for (let i = 0; i < atlas.count; i++) {
      const [px, py] = clampToCanvas(toCanvas(atlas.mu[i * dims + xDim], atlas.mu[i * dims + yDim]));
      positions[2 * i] = px;
      positions[2 * i + 1] = py;
    }
    // With a class highlighted, the others are small gray dots under it.
    let drawn = 0;
    context.fillStyle = FADED;
    for (let i = 0; i < atlas.count; i++) {
      if (shownClass(i)) continue;
      context.beginPath();
      context.arc(positions[2 * i], positions[2 * i + 1], 2 * scale, 0, 2 * Math.PI);
      context.fill();
      drawn += 1;
    }
    const radius = (highlight === null ? 3.2 : 4) * scale;
    for (let i = 0; i < atlas.count; i++) {
      if (!shownClass(i)) continue;
      drawClassMarker(context, atlas.labels[i], positions[2 * i], positions[2 * i + 1], radius);
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

  /** The shown point nearest canvas position (cx, cy), within `radius` canvas pixels; -1 if none. */
  function nearestPoint(cx, cy, radius = Infinity) {
    let [best, bestDistance] = [-1, radius];
    for (let i = 0; i < atlas.count; i++) {
      if (!shownClass(i)) continue;
      const distance = Math.hypot(positions[2 * i] - cx, positions[2 * i + 1] - cy);
      if (distance < bestDistance) [best, bestDistance] = [i, distance];
    }
    return best;
  }

  /** The current z's position on the canvas. */
  const zOnCanvas = (z) => clampToCanvas(toCanvas(z[view.xDim], z[view.yDim]));

  const placeMarkerSoon = oncePerFrame(placeMarker);

  /** Moves the current-z marker (a DOM ring, so that dragging a slider never redraws the points), and keeps the text alternative current. */
  function placeMarker() {
    const state = store.get();
    if (!view || !positions || !state.z.length) return;
    const [px, py] = zOnCanvas(state.z);
    marker.style.left = `${(100 * px) / canvas.width}%`;
    marker.style.top = `${(100 * py) / canvas.height}%`;
    marker.hidden = false;
    let [nearest, nearestDistance] = [-1, Infinity];
    for (let i = 0; i < atlas.count; i++) {
      const distance = Math.hypot(positions[2 * i] - px, positions[2 * i + 1] - py);
      if (distance < nearestDistance) [nearest, nearestDistance] = [i, distance];
    }
    canvas.setAttribute('aria-label', describeMap(state.model.meta, {
      count: atlas.count, xDim: view.xDim, yDim: view.yDim, highlight, nearest, nearestLabel: atlas.labels[nearest],
    }));
  }

  /** Shows the keyboard cursor on atlas point `index` and reads it out. */
  function moveCursor(index) {
    at = index;
    cursor.hidden = index < 0;
    if (index < 0) return;
    cursor.style.left = `${(100 * positions[2 * index]) / canvas.width}%`;
    cursor.style.top = `${(100 * positions[2 * index + 1]) / canvas.height}%`;
    announce(describePoint(store.get().model.meta, atlas, index, [view.xDim, view.yDim]));
  }

  /** The shown point nearest the cursor in a direction (dx, dy): ahead of it, preferring points straight ahead. */
  function pointToward(dx, dy) {
    const [x0, y0] = [positions[2 * at], positions[2 * at + 1]];
    let [best, bestScore] = [-1, Infinity];
    for (let i = 0; i < atlas.count; i++) {
      if (i === at || !shownClass(i)) continue;
      const [ex, ey] = [positions[2 * i] - x0, positions[2 * i + 1] - y0];
      const ahead = ex * dx + ey * dy;
      if (ahead <= 0) continue;
      const score = ahead + 2 * Math.abs(ex * dy - ey * dx);
      if (score < bestScore) [best, bestScore] = [i, score];
    }
    return best;
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

  /** One legend entry per class, each with its marker, up to the number of distinct colour and shape pairs. */
  function drawLegend(classNames) {
    const ratio = window.devicePixelRatio || 1;
    const items = classNames.slice(0, DISTINCT_CLASS_STYLES).map((name, i) => {
      const item = document.createElement('li');
      const swatch = document.createElement('canvas');
      swatch.className = 'swatch-shape';
      swatch.width = swatch.height = Math.round(16 * ratio);
      swatch.setAttribute('aria-hidden', 'true');
      drawClassMarker(swatch.getContext('2d'), i, swatch.width / 2, swatch.height / 2, 5.5 * ratio);
      item.append(swatch, document.createTextNode(name));
      return item;
    });
    const more = classNames.length - items.length;
    if (more > 0) {
      const item = document.createElement('li');
      item.className = 'legend-more';
      item.textContent = `and ${more} more classes, whose marks repeat: highlight one to find it`;
      items.push(item);
    }
    legend.replaceChildren(...items);
  }

  function fillHighlight(classNames) {
    highlight = null;
    const meta = store.get().model.meta;
    highlightSelect.replaceChildren(
      new Option('all classes', 'all'),
      ...classNames.map((_, i) => new Option(className(meta, i), String(i))),
    );
  }

  highlightSelect.addEventListener('change', () => {
    highlight = highlightSelect.value === 'all' ? null : Number(highlightSelect.value);
    if (at >= 0 && !shownClass(at)) moveCursor(-1);
    schedule();
  });

  canvas.addEventListener('click', (event) => {
    if (!atlas || !positions) return;
    const rect = canvas.getBoundingClientRect();
    const cx = ((event.clientX - rect.left) / rect.width) * canvas.width;
    const cy = ((event.clientY - rect.top) / rect.height) * canvas.height;
    const radius = event.pointerType === 'touch' ? PICK_RADIUS.touch : PICK_RADIUS.mouse;
    const best = nearestPoint(cx, cy, (radius * canvas.width) / rect.width);
    if (best >= 0) onPick(best);
  });

  const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  canvas.addEventListener('keydown', (event) => {
    if (!atlas || !positions) return;
    if (at < 0 || !shownClass(at)) {
      if (!(event.key in moves)) return;
      moveCursor(nearestPoint(...zOnCanvas(store.get().z)));
    } else if (event.key in moves) {
      const next = pointToward(...moves[event.key]);
      if (next >= 0) moveCursor(next);
    } else if (event.key === 'Enter' || event.key === ' ') {
      onPick(at);
    } else {
      return;
    }
    event.preventDefault();
  });
  // The cursor starts at the point nearest the current z, when focus arrives by keyboard.
  canvas.addEventListener('focus', () => {
    if (atlas && positions && canvas.matches(':focus-visible')) moveCursor(nearestPoint(...zOnCanvas(store.get().z)));
  });
  canvas.addEventListener('blur', () => {
    cursor.hidden = true;
  });

  store.subscribe((state, changed) => {
    if (['grid', 'model'].some((k) => changed.has(k))) moveCursor(-1);
    if (['grid', 'a', 'b', 'path', 'steps', 'model'].some((k) => changed.has(k))) schedule();
    else if (changed.has('z')) placeMarkerSoon();
  });

  return {
    /** Shows a new atlas ({ count, mu, labels }) and its class names. */
    show(nextAtlas, classNames) {
      atlas = nextAtlas;
      positions = null;
      moveCursor(-1);
      drawLegend(classNames);
      fillHighlight(classNames);
      schedule();
    },
    /** The screen position of atlas image `index`, in CSS pixels relative to the canvas (for tests and tools). */
    pointAt(index) {
      const rect = canvas.getBoundingClientRect();
      return { x: (positions[2 * index] / canvas.width) * rect.width, y: (positions[2 * index + 1] / canvas.height) * rect.height };
    },
  };
}
