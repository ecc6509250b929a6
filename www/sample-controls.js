// "Random from the prior" (seeded, so a demo repeats) and "Reset" (back to the mean of the data).

import { samplePrior } from './latent.js';

/** Largest seed accepted: seeds are 32-bit, as the PRNG uses them. */
const MAX_SEED = 0xffffffff;

/** Wires the two buttons and the seed field to the store. */
export function mountSampleControls({ randomButton, resetButton, seedInput, seedNote }, store) {
  function readSeed() {
    // A number field holds '' for anything that is not a number (NaN, Infinity, text): refuse it, not 0.
    if (seedInput.value.trim() === '') return null;
    const seed = Math.trunc(Number(seedInput.value));
    return Number.isFinite(seed) && seed >= 0 && seed <= MAX_SEED ? seed : null;
  }

  randomButton.addEventListener('click', () => {
    const { model } = store.get();
    const seed = readSeed();
    if (!model) return;
    if (seed === null) {
      seedInput.setCustomValidity(`a seed is a whole number from 0 to ${MAX_SEED}`);
      seedInput.reportValidity();
      return;
    }
    seedInput.setCustomValidity('');
    // Show the next seed in the field, so clicking again gives a new sample; typing a seed repeats one.
    store.update({ z: samplePrior(model.meta, seed), lastSeed: seed, seed: (seed + 1) % (MAX_SEED + 1) });
  });

  resetButton.addEventListener('click', () => {
    const { model } = store.get();
    if (model) store.update({ z: model.meta.latent_mean.slice(), lastSeed: null });
  });

  seedInput.addEventListener('input', () => seedInput.setCustomValidity(''));

  store.subscribe((state, changed) => {
    if (changed.has('seed')) seedInput.value = String(state.seed);
    if (changed.has('lastSeed')) {
      seedNote.textContent = state.lastSeed === null ? '' : `showing the sample for seed ${state.lastSeed}`;
    }
  });
  seedInput.value = String(store.get().seed);
}
