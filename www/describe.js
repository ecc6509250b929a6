// The words behind the pictures: text alternatives of the canvases and the sentences read out when an
// action ends, built from the state (pure, no DOM).

import { formatValue } from './latent.js';

/** The name of class `label`: the model's own, or "class N" when it names none. */
export function className(meta, label) {
  return meta.class_names?.[label] ?? `class ${label}`;
}

/** "z1 = +0.52, z3 = −1.20" for the given dims of z (all of them by default). */
export function describeValues(z, dims = z.map((_, d) => d)) {
  return dims.map((d) => `z${d + 1} = ${formatValue(z[d])}`).join(', ');
}

/** The decoded image: its z and, when `nearest` (an atlas index) is given, that test image's class. */
export function describeImage(meta, z, atlas, nearest) {
  const text = `decoded image of ${describeValues(z)}`;
  if (!atlas || nearest < 0) return text;
  return `${text}; its nearest encoded test image, #${nearest}, is ${className(meta, atlas.labels[nearest])}`;
}

/** The grid: its size, its two axes with their ranges (in the order drawn) and where the marker is. */
export function describeGrid(params, z) {
  const { xDim, yDim, xMin, xMax, yMin, yMax, cols, rows } = params;
  return `latent grid of ${cols} by ${rows} cells, each the decoder's picture of z with two dims swept: `
    + `across, z${xDim + 1} from ${formatValue(xMin)} to ${formatValue(xMax)}; down, z${yDim + 1} from ${formatValue(yMax)} to ${formatValue(yMin)}; the marker, the current z, is at `
    + `${describeValues(z, [xDim, yDim])}; arrow keys move it`;
}

/** The class map: how many points on which axes, the highlighted class, and the class nearest the current z. */
export function describeMap(meta, { count, xDim, yDim, highlight, nearest, nearestLabel }) {
  const shown = highlight === null ? '' : `, ${className(meta, highlight)} highlighted`;
  const near = nearest < 0 ? '' : `; nearest the current z on the map: ${className(meta, nearestLabel)} (test image #${nearest})`;
  return `class map of ${count} test images' encodings, z${xDim + 1} across and z${yDim + 1} up${shown}${near}; `
    + 'arrow keys move between points, Enter loads one';
}

/** One atlas point, as the map's keyboard cursor reads it out. */
export function describePoint(meta, atlas, index, dims) {
  const z = Array.from(atlas.mu.subarray(index * meta.latent_dim, (index + 1) * meta.latent_dim));
  return `test image #${index}, ${className(meta, atlas.labels[index])}, at ${describeValues(z, dims)}; Enter loads it`;
}
