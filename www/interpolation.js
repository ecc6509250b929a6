// The interpolation strip: N images decoded along the path from A to B, a scrubber, play/pause, lerp or slerp.
// A new pair plays once by itself when the strip is on screen, unless the reader asks for reduced motion.

import { drawIntensities, tileIntensities } from './image-view.js';
import { interpolationPoints, lerp, slerp } from './latent.js';
import { STEPS_RANGE } from './url-state.js';
import { describeValues } from './describe.js';

/** Seconds for one sweep from A to B when playing (it then sweeps back). */
const SWEEP_SECONDS = 3;

/** Sweeps the autoplay of a new pair makes: to B and back to A. The play button plays until paused. */
const AUTOPLAY_SWEEPS = 2;

/** The reader's wish for less motion: no autoplay then (the play button still plays). */
const reducedMotion = matchMedia('(prefers-reduced-motion: reduce)');

/** Step counts offered in the select. */
const STEP_CHOICES = [5, 8, 10, 12, 16, 20].filter((n) => n >= STEPS_RANGE.min && n <= STEPS_RANGE.max);

/**
 * Wires the strip and its controls to the store; a click on a step, or the arrow keys on the focused strip,
 * send it to the sliders (`announce(text)` reads the step out).
 */
export function mountInterpolation(
  { strip, marker, scrubber, playButton, pathSelect, stepsSelect, preview, status, cursor },
  store,
  decoder,
  announce,
) {
  for (const n of STEP_CHOICES) stepsSelect.append(new Option(`${n} steps`, String(n)));
  let points = [];
  let t = 0;
  let playing = false;
  let lastFrame = 0;
  let direction = 1;
  let sweepsLeft = Infinity; // finite while autoplaying
  let autoplayDue = false; // a new pair waits for the strip to come on screen
  let stripVisible = false;
  let step = -1; // the step the keyboard (or a click) last sent to the sliders
  let stripSerial = 0;
  let loop = 0; // the running animation loop's number: a stopped loop's last frame does nothing

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
    showStep(-1);
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

  function frame(now, mine) {
    if (!playing || mine !== loop) return;
    const dt = lastFrame ? (now - lastFrame) / 1000 : 0;
    lastFrame = now;
    let next = t + (direction * dt) / SWEEP_SECONDS;
    if ((direction > 0 && next >= 1) || (direction < 0 && next <= 0)) {
      direction = -direction;
      sweepsLeft -= 1;
    }
    next = Math.min(1, Math.max(0, next));
    setT(next);
    if (sweepsLeft <= 0) setPlaying(false);
    else requestAnimationFrame((later) => frame(later, mine));
  }

  /** Starts or stops playing; `sweeps` bounds an autoplay (the button plays without bound). */
  function setPlaying(on, sweeps = Infinity) {
    const start = on && !playing;
    playing = on && Boolean(ready(store.get()));
    if (!playing) loop += 1;
    sweepsLeft = sweeps;
    playButton.textContent = playing ? 'Pause' : 'Play';
    playButton.setAttribute('aria-pressed', String(playing));
    lastFrame = 0;
    if (playing && start) {
      const mine = ++loop;
      requestAnimationFrame((now) => frame(now, mine));
    }
  }

  function autoplay() {
    if (!autoplayDue || !stripVisible || !ready(store.get())) return;
    autoplayDue = false;
    if (reducedMotion.matches || playing) return;
    direction = 1;
    setT(0);
    setPlaying(true, AUTOPLAY_SWEEPS);
  }

  reducedMotion.addEventListener('change', () => {
    if (reducedMotion.matches && Number.isFinite(sweepsLeft)) setPlaying(false);
  });
  new IntersectionObserver(([entry]) => {
    stripVisible = entry.isIntersecting;
    autoplay();
  }).observe(strip);

  /** Marks step `index` of the strip (-1: none) with the keyboard's cursor. */
  function showStep(index) {
    step = index;
    cursor.hidden = index < 0;
    if (index < 0) return;
    Object.assign(cursor.style, { left: `${(100 * index) / points.length}%`, width: `${100 / points.length}%`, top: '0', height: '100%' });
  }

  /** Sends step `index` to the sliders. */
  function sendStep(index) {
    step = index;
    store.update({ z: points[index].slice(), lastSeed: null });
  }

  scrubber.addEventListener('input', () => {
    setPlaying(false);
    setT(Number(scrubber.value) / 1000);
  });
  playButton.addEventListener('click', () => setPlaying(!playing));
  const keySteps = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity };
  strip.addEventListener('keydown', (event) => {
    if (!(event.key in keySteps) || !ready(store.get()) || !points.length) return;
    event.preventDefault();
    const next = Math.min(points.length - 1, Math.max(0, step + keySteps[event.key]));
    showStep(next);
    sendStep(next);
    announce(`step ${next + 1} of ${points.length}: ${describeValues(points[next])}`);
  });
  strip.addEventListener('blur', () => {
    cursor.hidden = true;
  });
  pathSelect.addEventListener('change', () => store.update({ path: pathSelect.value }));
  stepsSelect.addEventListener('change', () => store.update({ steps: Number(stepsSelect.value) }));
  strip.addEventListener('click', (event) => {
    const state = store.get();
    if (!ready(state) || !points.length) return;
    const rect = strip.getBoundingClientRect();
    const index = Math.min(points.length - 1, Math.floor(((event.clientX - rect.left) / rect.width) * points.length));
    sendStep(index);
  });

  store.subscribe((state, changed) => {
    if (['a', 'b', 'steps', 'path', 'model'].some((k) => changed.has(k))) {
      if (!ready(state)) setPlaying(false);
      if ((changed.has('a') || changed.has('b')) && ready(state)) {
        autoplayDue = true;
        autoplay();
      }
      drawStrip(state).catch((error) => {
        status.textContent = `The strip could not be decoded: ${error.message}`;
      });
    }
  });
  drawStrip(store.get());
}
