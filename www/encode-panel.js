// The encoded image: what went in, what the decoder makes of its mu, and where it can go next.

import { drawIntensities } from './image-view.js';

/** Wires the panel to the store: shows `state.encoded` and offers mu to the sliders, A and B; `onError(text)` reports failures. */
export function mountEncodePanel({ input, reconstruction, source, toSliders, toA, toB }, store, decoder, onError) {
  let serial = 0;

  toSliders.addEventListener('click', () => {
    const { encoded } = store.get();
    if (encoded) store.update({ z: encoded.mu.slice(), lastSeed: null });
  });
  toA.addEventListener('click', () => {
    const { encoded } = store.get();
    if (encoded) store.update({ a: encoded.mu.slice() });
  });
  toB.addEventListener('click', () => {
    const { encoded } = store.get();
    if (encoded) store.update({ b: encoded.mu.slice() });
  });

  async function render(state) {
    const { encoded, model } = state;
    for (const button of [toSliders, toA, toB]) button.disabled = !encoded;
    if (!encoded || !model) {
      source.textContent = 'Nothing encoded yet: pick an image, draw, or open a picture.';
      return;
    }
    const { width, height } = model.meta;
    source.textContent = encoded.source;
    drawIntensities(input, encoded.pixels, width, height);
    const mine = ++serial;
    const result = await decoder.decode(encoded.mu, 1, 'reconstruction');
    if (result && mine === serial) {
      drawIntensities(reconstruction, result.pixels, width, height);
      reconstruction.dataset.serial = String(mine);
    }
  }

  store.subscribe((state, changed) => {
    if (changed.has('encoded')) render(state).catch((error) => onError(`Decoding the reconstruction failed: ${error.message}`));
  });
  render(store.get());
}
