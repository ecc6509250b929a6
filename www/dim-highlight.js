// One latent dim pointed at across the views: hovering or focusing a dim's element in one view
// sets `highlightDim` in the store, and every per-dim view marks that dim.

/** Makes `element` point at `dim` while hovered or focused. */
export function pointsAtDim(element, dim, store) {
  const on = () => store.update({ highlightDim: dim });
  const off = () => {
    if (store.get().highlightDim === dim) store.update({ highlightDim: null });
  };
  element.addEventListener('pointerenter', on);
  element.addEventListener('pointerleave', off);
  element.addEventListener('focus', on);
  element.addEventListener('blur', off);
}

/**
 * Keeps the class `highlighted` on the highlighted dim's element; `elementsByDim()` gives the view's
 * elements in dim order. Returns a function that marks them again, for a view that rebuilt them.
 */
export function markHighlightedDim(store, elementsByDim) {
  function mark(state) {
    elementsByDim().forEach((element, dim) => element?.classList.toggle('highlighted', dim === state.highlightDim));
  }
  store.subscribe((state, changed) => {
    if (changed.has('highlightDim')) mark(state);
  });
  return () => mark(store.get());
}
