// Traversal strips: one row per latent dim, sweeping that dim across its slider range while the others stay at z.

import { drawIntensities, tileIntensities } from './image-view.js';
import { sliderRange } from './latent.js';

/** Images per row. */
const TRAVERSAL_STEPS = 9;

/** The latent vectors of the traversal (row d sweeps dim d from its slider min to max), as one flat array. */
function traversalPoints(meta, z) {
  const points = [];
  for (let dim = 0; dim < meta.latent_dim; dim++) {
    const { min, max } = sliderRange(meta, dim);
    for (let i = 0; i < TRAVERSAL_STEPS; i++) {
      const point = z.slice();
      point[dim] = min + ((max - min) * i) / (TRAVERSAL_STEPS - 1);
      points.push(...point);
    }
  }
  return points;
}

/**
 * Redraws the strips when z or the model changes, while they are on screen (off screen, once they come back).
 * They decode in their own lane, so they never drop the main image; `onError(text)` reports failures.
 */
export function mountTraversal({ canvas, labels }, store, decoder, onError) {
  let visible = false;
  let stale = true;

  /** One label per dim and the strips' shape, from the model alone: the panel has its height before it draws. */
  function layOut({ latent_dim: rows, width, height }) {
    labels.replaceChildren(
      ...Array.from({ length: rows }, (_, d) => {
        const label = document.createElement('li');
        label.textContent = `z${d + 1}`;
        return label;
      }),
    );
    canvas.style.aspectRatio = `${TRAVERSAL_STEPS * width} / ${rows * height}`;
  }

  async function render(state) {
    if (!state.model) return;
    const { meta } = state.model;
    const count = meta.latent_dim * TRAVERSAL_STEPS;
    const result = await decoder.decode(traversalPoints(meta, state.z), count, 'traversal');
    if (!result) return;
    const { sheet, sheetWidth, sheetHeight } = tileIntensities(result.pixels, count, TRAVERSAL_STEPS, meta.width, meta.height);
    drawIntensities(canvas, sheet, sheetWidth, sheetHeight);
  }

  function update() {
    if (!visible) return;
    stale = false;
    render(store.get()).catch((error) => onError(`Drawing the traversal strips failed: ${error.message}`));
  }

  new IntersectionObserver(([entry]) => {
    visible = entry.isIntersecting;
    if (visible && stale) update();
  }).observe(canvas);

  store.subscribe((state, changed) => {
    if (changed.has('model') && state.model) layOut(state.model.meta);
    if (!changed.has('z') && !changed.has('model')) return;
    stale = true;
    update();
  });
  if (store.get().model) layOut(store.get().model.meta);
}
