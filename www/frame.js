// Work that only the screen or a screen reader sees: done once per animation frame, however often asked.

/**
 * Returns a function that runs `fn` at the next animation frame, once however many times it is called
 * before then: a slider sends more `input` events than the screen shows frames.
 */
export function oncePerFrame(fn) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn();
    });
  };
}
