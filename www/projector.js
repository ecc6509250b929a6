// Projector mode: large type and high contrast for a classroom screen; a toggle button sets it.

/** Wires the toggle; the mode is the `projector` class on <html>, so that rem sizes grow too. */
export function mountProjector(button) {
  const set = (on) => {
    document.documentElement.classList.toggle('projector', on);
    button.setAttribute('aria-pressed', String(on));
  };
  button.addEventListener('click', () => set(!document.documentElement.classList.contains('projector')));
  set(false);
}
