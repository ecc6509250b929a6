// The latent grid: a canvas showing a 2-D sweep of decoded images, a marker at the current z,
// and pointer and keyboard input that picks a cell (the two swept dims jump to its centre values).

import { cellLatent } from './latent.js';

/**
 * Wires the grid canvas and its marker; `onPick(x, y)` receives the picked cell's latent values, and
 * `onSettle()` is called when a pick ends (the pointer lifts, or after a key).
 */
export function mountGrid({ canvas, marker, onPick, onSettle }) {
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

  canvas.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    dragging = true;
    canvas.setPointerCapture(event.pointerId);
    pickAt(event);
  });
  canvas.addEventListener('pointermove', (event) => {
    if (dragging) pickAt(event);
  });
  const stop = () => {
    if (dragging && params) onSettle();
    dragging = false;
  };
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointercancel', stop);

  const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  canvas.addEventListener('keydown', (event) => {
    const move = moves[event.key];
    if (!move || !params) return;
    event.preventDefault();
    const col = Math.min(params.cols - 1, Math.max(0, cell.col + move[0]));
    const row = Math.min(params.rows - 1, Math.max(0, cell.row + move[1]));
    pick(col, row);
    onSettle();
  });

  return {
    /** Shows a decoded grid image (RGBA, as the worker returns it) and remembers what it shows. */
    draw(result, gridParams) {
      if (canvas.width !== result.width || canvas.height !== result.height) {
        canvas.width = result.width;
        canvas.height = result.height;
      }
      const rgba = new Uint8ClampedArray(result.rgba.buffer, result.rgba.byteOffset, result.rgba.length);
      canvas.getContext('2d').putImageData(new ImageData(rgba, result.width, result.height), 0, 0);
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
