// The URL hash as shareable state: writes the view to a string and reads one back, checking every value.
// Pure functions (no DOM), so that any script or test can import them.
//
// Format: #model=digits&z=0.1,-0.5,...&x=1&y=2&size=16&span=3&a=...&b=...&steps=10&path=slerp
// (x and y are 1-based, as the page labels dims z1..zN; z, a and b hold latent_dim numbers each).

import { GRID_SIZES, GRID_SPANS } from './grid-controls.js';

/** Largest |value| accepted in a latent vector: 10 prior standard deviations, far beyond any encoding. */
const MAX_ABS_LATENT = 10;
/** Interpolation step counts accepted (the strip's endpoints included). */
export const STEPS_RANGE = { min: 2, max: 32 };
/** The interpolation paths the strip knows. */
const PATHS = ['lerp', 'slerp'];

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;
const INTEGER = /^\d{1,3}$/;
const VECTOR_KEYS = ['z', 'a', 'b'];
const KNOWN_KEYS = new Set(['model', 'x', 'y', 'size', 'span', 'steps', 'path', ...VECTOR_KEYS]);

/** A short, safe echo of a value for a message. */
function quote(value) {
  const text = value.length > 24 ? `${value.slice(0, 24)}\u2026` : value;
  return `\u201c${text}\u201d`;
}

/** Reads one latent number: a plain decimal literal, finite, within MAX_ABS_LATENT; else a reason. */
function readLatentNumber(text) {
  if (!NUMBER.test(text)) return { reason: `${quote(text)} is not a number` };
  const value = Number(text);
  if (!Number.isFinite(value)) return { reason: `${quote(text)} is not finite` };
  if (Math.abs(value) > MAX_ABS_LATENT) return { reason: `${quote(text)} is beyond \u00b1${MAX_ABS_LATENT}` };
  return { value };
}

/**
 * Step one, before any model is loaded: splits the hash and checks what needs no model.
 * Returns { fields, ignored }: fields holds the values that passed; ignored lists why others did not.
 */
export function parseHash(hash, { models }) {
  const fields = {};
  const ignored = [];
  const text = hash.startsWith('#') ? hash.slice(1) : hash;
  if (!text) return { fields, ignored };
  let params;
  try {
    params = new URLSearchParams(text);
  } catch {
    return { fields, ignored: ['the link could not be read'] };
  }
  for (const [key, raw] of params) {
    const value = raw.trim();
    if (!KNOWN_KEYS.has(key)) {
      ignored.push(`unknown setting ${quote(key)}`);
    } else if (key === 'model') {
      if (models.includes(value)) fields.model = value;
      else ignored.push(`model ${quote(value)} is not one of ${models.join(', ')}`);
    } else if (VECTOR_KEYS.includes(key)) {
      const parts = value.split(',');
      const numbers = parts.map(readLatentNumber);
      const bad = numbers.find((n) => n.reason);
      if (bad) ignored.push(`${key}: ${bad.reason}`);
      else fields[key] = numbers.map((n) => n.value);
    } else if (key === 'x' || key === 'y') {
      if (INTEGER.test(value) && Number(value) >= 1) fields[key === 'x' ? 'xDim' : 'yDim'] = Number(value) - 1;
      else ignored.push(`${key}: ${quote(value)} is not a dim number (1, 2, \u2026)`);
    } else if (key === 'size') {
      const size = Number(value);
      if (INTEGER.test(value) && GRID_SIZES.includes(size)) fields.size = size;
      else ignored.push(`size: ${quote(value)} is not one of ${GRID_SIZES.join(', ')}`);
    } else if (key === 'span') {
      const span = Number(value);
      if (NUMBER.test(value) && GRID_SPANS.includes(span)) fields.span = span;
      else ignored.push(`span: ${quote(value)} is not one of ${GRID_SPANS.join(', ')}`);
    } else if (key === 'steps') {
      const steps = Number(value);
      if (INTEGER.test(value) && steps >= STEPS_RANGE.min && steps <= STEPS_RANGE.max) fields.steps = steps;
      else ignored.push(`steps: ${quote(value)} is not a whole number from ${STEPS_RANGE.min} to ${STEPS_RANGE.max}`);
    } else if (key === 'path') {
      if (PATHS.includes(value)) fields.path = value;
      else ignored.push(`path: ${quote(value)} is not one of ${PATHS.join(', ')}`);
    }
  }
  return { fields, ignored };
}

/**
 * Step two, once the model is known: checks lengths and dims against its latent_dim and the current grid
 * (null for a one-dim model, which has none).
 * Returns { patch, ignored }: a store patch with every value that fits, and why the others did not.
 */
export function fitToModel(fields, latentDim, grid) {
  const patch = {};
  const ignored = [];
  for (const key of VECTOR_KEYS) {
    if (!fields[key]) continue;
    if (fields[key].length === latentDim) patch[key] = fields[key];
    else ignored.push(`${key} has ${fields[key].length} values; this model needs ${latentDim}`);
  }
  if (fields.steps !== undefined) patch.steps = fields.steps;
  if (fields.path !== undefined) patch.path = fields.path;
  const gridFields = ['xDim', 'yDim', 'size', 'span'].filter((key) => fields[key] !== undefined);
  if (!grid) {
    if (gridFields.length) ignored.push('this model has one latent dim and no grid: the grid settings were ignored');
    return { patch, ignored };
  }
  const nextGrid = { ...grid };
  for (const [name, key] of [['x', 'xDim'], ['y', 'yDim']]) {
    if (fields[key] === undefined) continue;
    if (fields[key] < latentDim) nextGrid[key] = fields[key];
    else ignored.push(`${name}: dim ${fields[key] + 1} does not exist; this model has ${latentDim}`);
  }
  if (nextGrid.xDim === nextGrid.yDim) {
    ignored.push(`x and y are both z${nextGrid.xDim + 1}; the grid needs two different dims`);
    nextGrid.xDim = grid.xDim;
    nextGrid.yDim = grid.yDim;
  }
  if (fields.size !== undefined) nextGrid.size = fields.size;
  if (fields.span !== undefined) nextGrid.span = fields.span;
  patch.grid = nextGrid;
  return { patch, ignored };
}

/** The hash for a state: every number written in full, so that reading it back gives the same doubles. */
export function formatHash(state) {
  const params = new URLSearchParams();
  params.set('model', state.model.name);
  params.set('z', state.z.map(String).join(','));
  params.set('x', String(state.grid.xDim + 1));
  params.set('y', String(state.grid.yDim + 1));
  params.set('size', String(state.grid.size));
  params.set('span', String(state.grid.span));
  if (state.a) params.set('a', state.a.map(String).join(','));
  if (state.b) params.set('b', state.b.map(String).join(','));
  params.set('steps', String(state.steps));
  params.set('path', state.path);
  return `#${params.toString().replaceAll('%2C', ',')}`;
}

/** One sentence for the page's message box, or '' when nothing was ignored. */
export function describeIgnored(ignored) {
  if (!ignored.length) return '';
  return `Some of the link\u2019s settings were ignored: ${ignored.join('; ')}.`;
}
