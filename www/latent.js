// Latent-space arithmetic shared by the views: slider ranges, grid cell values, seeded normal draws, formatting.

/** How many standard deviations each slider spans on either side of the mean. */
const SLIDER_SPAN = 3;

/** Formats a latent value for display, with an explicit sign so the column stays aligned. */
export function formatValue(value) {
  const rounded = Number(value.toFixed(2));
  const sign = rounded < 0 ? '\u2212' : rounded > 0 ? '+' : '\u2007'; // figure space keeps zero aligned
  return `${sign}${Math.abs(rounded).toFixed(2)}`;
}

/** The slider range of one latent dim: mean +- 3 std, as the model's metadata measured it. */
export function sliderRange(meta, dim) {
  return gridRange(meta, dim, SLIDER_SPAN);
}

/** The grid's range along one dim: mean +- span std. */
export function gridRange(meta, dim, span) {
  const mean = meta.latent_mean[dim];
  const std = meta.latent_std[dim];
  return { min: mean - span * std, max: mean + span * std };
}

/** The value at the centre of cell `index` of `count` cells from `from` to `to` (as the wasm grid samples). */
function cellValue(from, to, index, count) {
  return Math.fround(from + ((to - from) * (index + 0.5)) / count);
}

/** The grid request for the current state: columns sweep X left to right, rows sweep Y top (max) to bottom. */
export function gridParams(meta, z, grid) {
  const x = gridRange(meta, grid.xDim, grid.span);
  const y = gridRange(meta, grid.yDim, grid.span);
  return {
    baseZ: z,
    xDim: grid.xDim,
    yDim: grid.yDim,
    xMin: x.min,
    xMax: x.max,
    yMin: y.min,
    yMax: y.max,
    cols: grid.size,
    rows: grid.size,
  };
}

/** The two latent values of grid cell (col, row), top row first. */
export function cellLatent(params, col, row) {
  return {
    x: cellValue(params.xMin, params.xMax, col, params.cols),
    y: cellValue(params.yMax, params.yMin, row, params.rows),
  };
}

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same sequence everywhere. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` independent draws from N(0, 1), reproducible from `seed` (mulberry32, then Box-Muller). */
export function standardNormals(seed, count) {
  const uniform = mulberry32(seed);
  const values = [];
  while (values.length < count) {
    // Box-Muller: two independent standard normals from two uniforms.
    const u = 1 - uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    values.push(r * Math.cos(2 * Math.PI * v), r * Math.sin(2 * Math.PI * v));
  }
  return values.slice(0, count);
}

/**
 * A draw from the prior N(0, I), reproducible from `seed`, clamped to the slider ranges so that the
 * sliders can show it (for a well-fitted model this moves very few values, and only slightly).
 */
export function samplePrior(meta, seed) {
  return standardNormals(seed, meta.latent_dim).map((value, dim) => {
    const { min, max } = sliderRange(meta, dim);
    return Math.min(max, Math.max(min, value));
  });
}

/** The straight line from a to b at t in [0, 1]. */
export function lerp(a, b, t) {
  return a.map((value, i) => value + (b[i] - value) * t);
}

/**
 * Spherical interpolation from a to b at t in [0, 1]: it turns about the prior's centre (the origin)
 * instead of cutting across it. In a Gaussian latent the middle of a straight line lies nearer the
 * centre than typical samples do; this path keeps the norm up when |a| and |b| are alike.
 */
export function slerp(a, b, t) {
  const norm = (v) => Math.hypot(...v);
  const [na, nb] = [norm(a), norm(b)];
  if (na === 0 || nb === 0) return lerp(a, b, t);
  const cos = a.reduce((sum, v, i) => sum + v * b[i], 0) / (na * nb);
  const omega = Math.acos(Math.min(1, Math.max(-1, cos)));
  if (omega < 1e-6) return lerp(a, b, t);
  const sin = Math.sin(omega);
  const [wa, wb] = [Math.sin((1 - t) * omega) / sin, Math.sin(t * omega) / sin];
  return a.map((value, i) => wa * value + wb * b[i]);
}

/** `steps` evenly spaced points from a to b (both included) along 'lerp' or 'slerp', as one flat array. */
export function interpolationPoints(a, b, steps, path) {
  const step = path === 'slerp' ? slerp : lerp;
  const points = [];
  for (let i = 0; i < steps; i++) points.push(step(a, b, steps === 1 ? 0 : i / (steps - 1)));
  return points;
}

/** Formats a term of the loss in nats, to the digits the teaching views show (tests read them back). */
export function formatNats(value) {
  return value.toFixed(2);
}

/** q(z|x)'s standard deviations from its log-variances. */
export function sigmaOf(logvar) {
  return logvar.map((v) => Math.exp(0.5 * v));
}

/** The atlas image whose mu lies nearest z (Euclidean, over every dim); -1 for an empty atlas. */
export function nearestAtlasImage(atlas, z) {
  const dims = z.length;
  let [best, bestDistance] = [-1, Infinity];
  for (let i = 0; i < atlas.count; i++) {
    let distance = 0;
    for (let d = 0; d < dims; d++) distance += (atlas.mu[i * dims + d] - z[d]) ** 2;
    if (distance < bestDistance) [best, bestDistance] = [i, distance];
  }
  return best;
}
