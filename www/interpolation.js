// The interpolation strip: N images decoded along the path from A to B, a scrubber, play/pause, lerp or slerp.

import { drawIntensities, tileIntensities } from './image-view.js';
import { interpolationPoints, lerp, slerp } from './latent.js';
import { STEPS_RANGE } from './url-state.js';

/** Seconds for one sweep from A to B when playing (it then sweeps back). */
const SWEEP_SECONDS = 3;

/** Step counts offered in the select. */
const STEP_CHOICES = [5, 8, 10, 12, 16, 20].filter((n) => n >= STEPS_RANGE.min && n <= STEPS_RANGE.max);

/** Wires the strip and its controls to the store; a click on a step sends it to the sliders. */
export function mountInterpolation(
  { strip, marker, scrubber, playButton, pathSelect, stepsSelect, preview, status },
  store,
  decoder,
) {
  for (const n of STEP_CHOICES) stepsSelect.append(new Option(`${n} steps`, String(n)));
  let points = [];
  let t = 0;
  let playing = false;
  let lastFrame = 0;
  let direction = 1;
  let stripSerial = 0;

  const ready = (state) => state.model && state.a && state.b;

  async function drawStrip(state) {
    const { steps, path } = state;
    pathSelect.value = path;
    if (![...stepsSelect.options].some((o) => o.value === String(steps))) {
      stepsSelect.append(new Option(`${steps} steps`, String(steps)));
    }
    stepsSelect.value = String(steps);
    if (!ready(state)) {
      status.textContent = state.a || state.b
        ? `Now choose ${state.a ? 'B' : 'A'}: encode another image and press \u201cUse as ${state.a ? 'B' : 'A'}\u201d.`
        : 'Encode two images and press \u201cUse as A\u201d and \u201cUse as B\u201d.';
      return;
    }
    status.textContent = `${steps} steps from A to B, ${path === 'slerp' ? 'spherical' : 'linear'}; click one to send it to the sliders.`;
    points = interpolationPoints(state.a, state.b, steps, path);
    const mine = ++stripSerial;
    const result = await decoder.decode(points.flat(), steps, 'strip');
    if (!result || mine !== stripSerial) return;
    const { width, height } = state.model.meta;
    const { sheet, sheetWidth, sheetHeight } = tileIntensities(result.pixels, steps, steps, width, height);
    drawIntensities(strip, sheet, sheetWidth, sheetHeight);
    strip.dataset.serial = String(mine);
    strip.dataset.steps = String(steps);
    drawPreview();
  }

  async function drawPreview() {
    const state = store.get();
    scrubber.disabled = !ready(state);
    playButton.disabled = !ready(state);
    marker.hidden = !ready(state);
    if (!ready(state)) return;
    marker.style.left = `${t * 100}%`;
    const z = (state.path === 'slerp' ? slerp : lerp)(state.a, state.b, t);
    const result = await decoder.decode(z, 1, 'scrub');
    if (result) drawIntensities(preview, result.pixels, state.model.meta.width, state.model.meta.height);
  }

  function setT(next) {
    t = Math.min(1, Math.max(0, next));
    scrubber.value = String(Math.round(t * 1000));
    drawPreview();
  }

  function frame(now) {
    if (!playing) return;
    const dt = lastFrame ? (now - lastFrame) / 1000 : 0;
    lastFrame = now;
    let next = t + (direction * dt) / SWEEP_SECONDS;
    if (next >= 1 || next <= 0) direction = -direction;
    next = Math.min(1, Math.max(0, next));
    setT(next);
    requestAnimationFrame(frame);
  }

  function setPlaying(on) {
    playing = on && Boolean(ready(store.get()));
    playButton.textContent = playing ? 'Pause' : 'Play';
    playButton.setAttribute('aria-pressed', String(playing));
    lastFrame = 0;
    if (playing) requestAnimationFrame(frame);
  }

  scrubber.addEventListener('input', () => {
    setPlaying(false);
    setT(Number(scrubber.value) / 1000);
  });
  playButton.addEventListener('click', () => setPlaying(!playing));
  pathSelect.addEventListener('change', () => store.update({ path: pathSelect.value }));
  stepsSelect.addEventListener('change', () => store.update({ steps: Number(stepsSelect.value) }));
  strip.addEventListener('click', (event) => {
    const state = store.get();
    if (!ready(state) || !points.length) return;
    const rect = strip.getBoundingClientRect();
    const index = Math.min(points.length - 1, Math.floor(((event.clientX - rect.left) / rect.width) * points.length));
    store.update({ z: points[index].slice(), lastSeed: null });
  });

  store.subscribe((state, changed) => {
    if (['a', 'b', 'steps', 'path', 'model'].some((k) => changed.has(k))) {
      if (!ready(state)) setPlaying(false);
      drawStrip(state).catch((error) => {
        status.textContent = `The strip could not be decoded: ${error.message}`;
      });
    }
  });
  drawStrip(store.get());
}
