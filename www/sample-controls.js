// "Random from the prior" (seeded, so a demo repeats) and "Reset" (back to the mean of the data).

import { samplePrior } from './latent.js';
import { nextSeed, readSeedField, watchSeedField } from './seed-field.js';

/** Wires the two buttons and the seed field to the store. */
export function mountSampleControls({ randomButton, resetButton, seedInput, seedNote }, store) {
  randomButton.addEventListener('click', () => {
    const { model } = store.get();
    if (!model) return;
    const seed = readSeedField(seedInput);
    if (seed === null) return;
    // Show the next seed in the field, so clicking again gives a new sample; typing a seed repeats one.
    store.update({ z: samplePrior(model.meta, seed), lastSeed: seed, seed: nextSeed(seed) });
  });

  resetButton.addEventListener('click', () => {
    const { model } = store.get();
    if (model) store.update({ z: model.meta.latent_mean.slice(), lastSeed: null });
  });

  watchSeedField(seedInput);

  store.subscribe((state, changed) => {
    if (changed.has('seed')) seedInput.value = String(state.seed);
    if (changed.has('lastSeed')) {
      seedNote.textContent = state.lastSeed === null ? '' : `showing the sample for seed ${state.lastSeed}`;
    }
  });
  seedInput.value = String(store.get().seed);
}
