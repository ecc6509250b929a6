// The explorer's state in one place: views read it and ask for changes; nobody else holds a copy.

/** How many images the interpolation strip shows, endpoints included. */
const DEFAULT_STEPS = 10;

/** The grid settings a freshly loaded model starts with. */
export const DEFAULT_GRID = { xDim: 0, yDim: 1, size: 16, span: 3 };

/**
 * A minimal observable store. `update(patch)` merges the patch and tells every subscriber
 * `(state, changedKeys)`, so a view can skip work the change does not concern.
 */
export function createStore(initial) {
  let state = { ...initial };
  const subscribers = new Set();
  return {
    get: () => state,
    update(patch) {
      state = { ...state, ...patch };
      const changed = new Set(Object.keys(patch));
      for (const fn of subscribers) fn(state, changed);
    },
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
  };
}

/** The initial state: no model yet. */
export function initialState() {
  return {
    model: null, // { name, label, meta }
    z: [], // the current latent vector
    grid: { ...DEFAULT_GRID },
    seed: 1,
    lastSeed: null, // the seed of the sample on screen, if it came from "Random from the prior"
    encoded: null, // the last encoded image: { source, pixels, mu, logvar, terms }
    atlas: null, // the model's held-out images: { count, pixels, labels, mu, width, height }
    a: null, // interpolation endpoint A: a latent vector (an encoding's mu), or null
    b: null, // interpolation endpoint B
    steps: DEFAULT_STEPS,
    path: 'lerp', // 'lerp' or 'slerp'
    samples: null, // draws from q(z|x) for `encoded`: { of (that encoded), seed, n, eps, z, recon, pixels }
    highlightDim: null, // the latent dim being hovered or focused in a per-dim view, or null
  };
}

/** A copy of z with one dim set. */
export function withDim(z, dim, value) {
  const next = z.slice();
  next[dim] = value;
  return next;
}
