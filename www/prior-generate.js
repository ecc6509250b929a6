// "Generate": N seeded draws z ~ N(0, I), decoded as a strip: the generative model with no input image.

import { standardNormals } from './latent.js';
import { takeSeed, watchSeedField } from './seed-field.js';
import { drawSampleStrip, offerSampleCounts } from './sample-strip.js';

/** Wires the Generate button, its count and seed to a strip; generates at once for each model loaded. */
export function mountPriorGenerate({ button, countSelect, seedInput, strip, caption }, store, decoder, onError) {
  offerSampleCounts(countSelect);
  seedInput.value = '1';
  watchSeedField(seedInput);
  let serial = 0;
  let shownSeed = null; // the seed of the draws on screen

  async function generate(seed) {
    const { model } = store.get();
    if (!model) return;
    const n = Number(countSelect.value);
    const z = standardNormals(seed, n * model.meta.latent_dim);
    const mine = ++serial;
    try {
      const result = await decoder.decode(z, n, 'generate');
      if (!result || mine !== serial || store.get().model !== model) return;
      drawSampleStrip(strip, result.pixels, n, model.meta.width, model.meta.height);
      shownSeed = seed;
      Object.assign(strip.dataset, { seed: String(seed), n: String(n), serial: String(mine) });
      caption.textContent = `${n} draws z ~ N(0, I), prior seed ${seed}. None of them is an encoding of an image.`;
    } catch (error) {
      onError(`Generating from the prior failed: ${error.message}`);
    }
  }

  /** Generates with the field's seed, then shows the next one there, so that a click generates anew. */
  function generateFromField() {
    const seed = takeSeed(seedInput);
    if (seed === null) return;
    generate(seed);
  }

  button.addEventListener('click', generateFromField);
  // A new count or a new model keeps the seed on screen: the first draws stay the same z.
  const again = () => (shownSeed === null ? generateFromField() : generate(shownSeed));
  countSelect.addEventListener('change', again);
  store.subscribe((state, changed) => {
    if (changed.has('model') && state.model) again();
  });
  if (store.get().model) generateFromField();
}
