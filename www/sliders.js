// The z1..zN sliders: one native range input per latent dim, each with its value beside it.

import { formatValue, sliderRange } from './latent.js';
import { withDim } from './state.js';
import { markHighlightedDim } from './dim-highlight.js';

/** Builds the sliders for the current model and keeps them in step with the store. */
export function mountSliders(container, store) {
  let rows = [];
  let builtFor = null;

  function build(meta) {
    container.replaceChildren();
    rows = meta.latent_mean.map((_, dim) => {
      const id = `z${dim + 1}`;
      const row = document.createElement('div');
      row.className = 'slider-row';
      const label = document.createElement('label');
      label.htmlFor = `slider-${id}`;
      label.textContent = id;
      const input = document.createElement('input');
      input.type = 'range';
      input.id = `slider-${id}`;
      const { min, max } = sliderRange(meta, dim);
      input.min = String(min);
      input.max = String(max);
      input.step = 'any';
      input.addEventListener('input', () => {
        store.update({ z: withDim(store.get().z, dim, Number(input.value)), lastSeed: null });
      });
      const output = document.createElement('output');
      output.htmlFor = input.id;
      output.className = 'slider-value';
      // The slider itself reads its value out (aria-valuetext); an <output> is a live region, which would flood a drag.
      output.setAttribute('aria-hidden', 'true');
      row.append(label, input, output);
      container.append(row);
      return { row, input, output };
    });
  }

  function render(state) {
    if (!state.model) return;
    if (builtFor !== state.model.meta) {
      build(state.model.meta);
      builtFor = state.model.meta;
    }
    state.z.forEach((value, dim) => {
      const { input, output } = rows[dim];
      // A drag moves one dim: the others' rows stay as they are.
      if (rows[dim].shown === value) return;
      rows[dim].shown = value;
      // Leave the thumb alone while the user drags it: its own value is already right.
      if (Number(input.value) !== value) input.value = String(value);
      output.value = formatValue(value);
      input.setAttribute('aria-valuetext', output.value);
    });
  }

  const markRows = markHighlightedDim(store, () => rows.map(({ row }) => row));
  store.subscribe((state, changed) => {
    if (changed.has('z') || changed.has('model')) render(state);
    if (changed.has('model')) markRows();
  });
  render(store.get());
}
