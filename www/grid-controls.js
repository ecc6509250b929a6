// The grid's settings: which dims the axes sweep, how many cells per side, and how far they reach.

import { formatValue, gridRange } from './latent.js';

/** Grid sizes offered (cells per side). */
export const GRID_SIZES = [8, 12, 16, 20, 24, 32];
/** Ranges offered, in standard deviations either side of the mean. */
export const GRID_SPANS = [1, 1.5, 2, 2.5, 3];

/**
 * Wires the four selects to `store.grid`; choosing the other axis's dim swaps the two axes. Sizes over
 * the model's `maxGridSide` (large images: the grid image would exceed the wasm build's output budget)
 * are disabled, and `note` says why.
 */
export function mountGridControls({ xSelect, ySelect, sizeSelect, spanSelect, xLabel, yLabel, note }, store) {
  for (const size of GRID_SIZES) sizeSelect.append(new Option(`${size} \u00d7 ${size}`, String(size)));
  for (const span of GRID_SPANS) spanSelect.append(new Option(`\u00b1${span} \u03c3`, String(span)));
  let builtFor = 0;

  function setGrid(patch) {
    store.update({ grid: { ...store.get().grid, ...patch } });
  }

  xSelect.addEventListener('change', () => {
    const { xDim, yDim } = store.get().grid;
    const next = Number(xSelect.value);
    setGrid(next === yDim ? { xDim: next, yDim: xDim } : { xDim: next });
  });
  ySelect.addEventListener('change', () => {
    const { xDim, yDim } = store.get().grid;
    const next = Number(ySelect.value);
    setGrid(next === xDim ? { yDim: next, xDim: yDim } : { yDim: next });
  });
  sizeSelect.addEventListener('change', () => setGrid({ size: Number(sizeSelect.value) }));
  spanSelect.addEventListener('change', () => setGrid({ span: Number(spanSelect.value) }));

  function render(state) {
    if (!state.model || !state.grid) {
      note.hidden = true;
      return;
    }
    const dims = state.model.meta.latent_dim;
    if (builtFor !== dims) {
      for (const select of [xSelect, ySelect]) {
        select.replaceChildren(...Array.from({ length: dims }, (_, d) => new Option(`z${d + 1}`, String(d))));
      }
      builtFor = dims;
    }
    const { width, height } = state.model.meta;
    const cap = state.model.maxGridSide;
    for (const option of sizeSelect.options) option.disabled = Number(option.value) > cap;
    const largest = Math.max(...GRID_SIZES.filter((size) => size <= cap));
    note.hidden = cap >= GRID_SIZES.at(-1);
    note.textContent = note.hidden ? '' : `Grids are at most ${largest} \u00d7 ${largest} for ${width}\u00d7${height} images: a larger one would not fit the browser model\u2019s memory.`;
    xSelect.value = String(state.grid.xDim);
    ySelect.value = String(state.grid.yDim);
    sizeSelect.value = String(state.grid.size);
    spanSelect.value = String(state.grid.span);
    const { xDim, yDim, span } = state.grid;
    const range = (dim) => {
      const r = gridRange(state.model.meta, dim, span);
      return `${formatValue(r.min)} \u2026 ${formatValue(r.max)}`;
    };
    xLabel.textContent = `z${xDim + 1} \u2192  ${range(xDim)}`;
    yLabel.textContent = `z${yDim + 1} \u2192  ${range(yDim)}`;
  }

  store.subscribe((state, changed) => {
    if (changed.has('grid') || changed.has('model')) render(state);
  });
  render(store.get());
}
