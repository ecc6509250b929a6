// The latent grid: a canvas showing a 2-D sweep of decoded images, a marker at the current z,
// and pointer and keyboard input that picks a cell (the two swept dims jump to its centre values).

import { cellLatent } from './latent.js';
import { drawRgba } from './image-view.js';

/**
 * Wires the grid canvas and its marker; `onPick(x, y)` receives the picked cell's latent values, and
 * `onSettle()` is called when a pick ends (the pointer lifts, or after a key).
 */
export function mountGrid({ canvas: firstCanvas, marker, onPick, onSettle }) {
  let canvas = null; // the element listened on: replaced after a worker restart (surfaces.js)
  let params = null; // the parameters of the grid on screen
  let cell = { col: 0, row: 0 };
  let dragging = false;

  function pickAt(event) {
    if (!params) return;
    const rect = canvas.getBoundingClientRect();
    const fx = (event.clientX - rect.left) / rect.width;
    const fy = (event.clientY - rect.top) / rect.height;
    const col = Math.min(params.cols - 1, Math.max(0, Math.floor(fx * params.cols)));
    const row = Math.min(params.rows - 1, Math.max(0, Math.floor(fy * params.rows)));
    pick(col, row);
  }

  function pick(col, row) {
    cell = { col, row };
    const { x, y } = cellLatent(params, col, row);
    onPick(x, y);
  }

  const stop = () => {
    if (dragging && params) onSettle();
    dragging = false;
  };
  const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  function listen(element) {
    canvas = element;
    dragging = false;
    element.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      dragging = true;
      element.setPointerCapture(event.pointerId);
      pickAt(event);
    });
    element.addEventListener('pointermove', (event) => {
      if (dragging) pickAt(event);
    });
    element.addEventListener('pointerup', stop);
    element.addEventListener('pointercancel', stop);
    element.addEventListener('keydown', (event) => {
      const move = moves[event.key];
      if (!move || !params) return;
      event.preventDefault();
      const col = Math.min(params.cols - 1, Math.max(0, cell.col + move[0]));
      const row = Math.min(params.rows - 1, Math.max(0, cell.row + move[1]));
      pick(col, row);
      onSettle();
    });
  }
  listen(firstCanvas);

  return {
    /** Listens on `element` instead: the fresh grid canvas that replaced the old one. */
    adopt: listen,

    /**
     * Remembers the grid on screen, and shows it if the page draws it (a reply with `rgba`); without
     * `rgba` the model worker has drawn it on the canvas itself.
     */
    draw(result, gridParams) {
      if (result.rgba) drawRgba(canvas, result.rgba, result.width, result.height);
      params = gridParams;
    },

    /** Moves the marker to the current z's position in the swept plane (clamped to the edge). */
    mark(x, y, p) {
      const fx = (x - p.xMin) / (p.xMax - p.xMin);
      const fy = (p.yMax - y) / (p.yMax - p.yMin);
      const inside = fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1;
      const clamp = (f) => Math.min(1, Math.max(0, f));
      marker.style.left = `${clamp(fx) * 100}%`;
      marker.style.top = `${clamp(fy) * 100}%`;
      marker.classList.toggle('outside', !inside);
      marker.hidden = false;
      cell = {
        col: Math.min(p.cols - 1, Math.floor(clamp(fx) * p.cols)),
        row: Math.min(p.rows - 1, Math.floor(clamp(fy) * p.rows)),
      };
    },
  };
}
