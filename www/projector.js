// Projector mode: large type and high contrast for a classroom screen; a toggle button sets it.

/** Wires the toggle; the mode is the `projector` class on <body>. */
export function mountProjector(button) {
  const set = (on) => {
    document.body.classList.toggle('projector', on);
    button.setAttribute('aria-pressed', String(on));
  };
  button.addEventListener('click', () => set(!document.body.classList.contains('projector')));
  set(false);
}
