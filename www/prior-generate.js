// "Generate": N seeded draws z ~ N(0, I), decoded as a strip: the generative model with no input image.

import { drawIntensities, tileIntensities } from './image-view.js';
import { standardNormals } from './latent.js';
import { nextSeed, readSeedField, watchSeedField } from './seed-field.js';

/** Draw counts offered, and the one a model starts with. */
const COUNTS = [4, 8, 16, 32, 64];
const DEFAULT_COUNT = 8;
/** The strip wraps after this many decodes. */
const COLUMNS = 8;

/** Wires the Generate button, its count and seed to a strip; generates at once for each model loaded. */
export function mountPriorGenerate({ button, countSelect, seedInput, strip, caption }, store, decoder, onError) {
  for (const n of COUNTS) countSelect.append(new Option(String(n), String(n)));
  countSelect.value = String(DEFAULT_COUNT);
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
      const { width, height } = model.meta;
      const columns = Math.min(n, COLUMNS);
      const { sheet, sheetWidth, sheetHeight } = tileIntensities(result.pixels, n, columns, width, height);
      drawIntensities(strip, sheet, sheetWidth, sheetHeight);
      strip.style.setProperty('--columns', String(columns));
      shownSeed = seed;
      Object.assign(strip.dataset, { seed: String(seed), n: String(n), serial: String(mine) });
      caption.textContent = `${n} draws z ~ N(0, I), prior seed ${seed}. None of them is an encoding of an image.`;
    } catch (error) {
      onError(`Generating from the prior failed: ${error.message}`);
    }
  }

  /** Generates with the field's seed, then shows the next one there, so that a click generates anew. */
  function generateFromField() {
    const seed = readSeedField(seedInput);
    if (seed === null) return;
    seedInput.value = String(nextSeed(seed));
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
