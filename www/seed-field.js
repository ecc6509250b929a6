// Seed fields: a 32-bit seed typed by the user, refused with a message next to the field when it is not one.

/** Largest seed accepted: seeds are 32-bit, as the PRNG uses them. */
const MAX_SEED = 0xffffffff;

/** The seed after `seed`, wrapping at 32 bits: a field shows it after a draw, so the next click draws anew. */
export function nextSeed(seed) {
  return (seed + 1) % (MAX_SEED + 1);
}

/** Clears a refusal as soon as the field is edited again. */
export function watchSeedField(input) {
  input.addEventListener('input', () => input.setCustomValidity(''));
}

/** The field's seed, or null after telling the user why its text is not one. */
export function readSeedField(input) {
  // A number field holds '' for anything that is not a number (NaN, Infinity, text): refuse it, not 0.
  const seed = input.value.trim() === '' ? NaN : Math.trunc(Number(input.value));
  if (Number.isFinite(seed) && seed >= 0 && seed <= MAX_SEED) {
    input.setCustomValidity('');
    return seed;
  }
  input.setCustomValidity(`a seed is a whole number from 0 to ${MAX_SEED}`);
  input.reportValidity();
  return null;
}

/** A field's seed for a draw (null after saying why there is none); the field then shows the next seed. */
export function takeSeed(input) {
  const seed = readSeedField(input);
  if (seed !== null) input.value = String(nextSeed(seed));
  return seed;
}
