// The canvases the model worker draws on itself (OffscreenCanvas), so the page never copies or draws
// their frames. A canvas transfers only once and its OffscreenCanvas dies with its worker: for a new
// worker, the page's element is replaced by a fresh copy (same id, class, tabindex, aria attributes)
// that is transferred in turn. Without transferControlToOffscreen, nothing transfers and the page draws.

/** Whether this browser can hand a canvas's drawing to a worker. */
export const offscreenSupported = typeof HTMLCanvasElement !== 'undefined' && 'transferControlToOffscreen' in HTMLCanvasElement.prototype;

/**
 * The surfaces `names` (a surface name -> the id of its canvas); `onReplace(name, canvas)` is told when a
 * canvas element is replaced, so that whoever listens on it can bind to the new one.
 */
export function createSurfaces(names, onReplace = () => {}) {
  const transferred = new Set(); // ids whose element has already given its drawing away
  return {
    /** For a new worker: [{ name, canvas }] with each canvas an OffscreenCanvas to transfer; [] without support. */
    take() {
      if (!offscreenSupported) return [];
      return Object.entries(names).map(([name, id]) => {
        let element = document.getElementById(id);
        if (transferred.has(id)) {
          const fresh = element.cloneNode(false);
          const focused = document.activeElement === element;
          element.replaceWith(fresh);
          if (focused) fresh.focus();
          element = fresh;
          onReplace(name, element);
        }
        transferred.add(id);
        return { name, canvas: element.transferControlToOffscreen() };
      });
    },
  };
}
