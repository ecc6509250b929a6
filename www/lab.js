// The β-VAE lab: settings, Train / Pause / Step / Reset, the live views, and the hand-off of the
// trained model to the explorer or to a file. Training runs in www/lab-worker.js, on the project's
// own trainer compiled to wasm; this module only asks and draws.

import { CURVES, drawClassMap, drawCurves, drawKlBars, drawStrip, mapAxes } from './lab-views.js';

/** β's slider positions: a log-like scale from 0 to 10 on which 0.5, 1, 2 and 4 are exact stops. */
export const BETA_STEPS = [0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 4, 5, 6, 8, 10];

/** Settings that change the running model at once; the others apply at Reset. */
const LIVE = new Set(['beta', 'lr']);

/** The datasets the lab offers (each a pack in www/lab-data/). */
const DATASETS = [
  { name: 'digits', label: 'MNIST digits (9,003 train, 997 test)' },
  { name: 'fashion', label: 'Fashion-MNIST (10,000 train, 1,000 test)' },
];

const IMAGE_SIDE = 28;

/** The views are drawn at most this often while training (ms). */
const DRAW_MS = 250;

function formatSeconds(s) {
  if (!Number.isFinite(s)) return '';
  return s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
}

/** The lab's markup: fields are made from the limits the wasm module reports. */
function markup(limits) {
  const field = (l) => {
    const id = `lab-${l.key}`;
    const input =
      l.key === 'beta'
        ? `<input id="${id}" name="beta" type="range" min="0" max="${BETA_STEPS.length - 1}" step="1"
             value="${BETA_STEPS.indexOf(l.default)}" aria-describedby="${id}-error">
           <output id="lab-beta-value" for="${id}">${l.default}</output>`
        : `<input id="${id}" name="${l.key}" type="text" inputmode="decimal" value="${l.default}"
             aria-describedby="${id}-error">`;
    const live = LIVE.has(l.key) ? 'applies at once' : 'applies at Reset';
    return `<div class="lab-field"><label for="${id}">${l.label}</label>${input}
      <span class="muted">${l.min} to ${l.max}; ${live}</span>
      <span id="${id}-error" class="field-error" role="alert"></span></div>`;
  };
  return `
    <div class="lab-field"><label for="lab-dataset">dataset</label>
      <select id="lab-dataset">${DATASETS.map((d) => `<option value="${d.name}">${d.label}</option>`).join('')}</select></div>
    <form id="lab-settings" class="lab-settings" novalidate>${limits.map(field).join('')}</form>
    <div class="lab-buttons">
      <button type="button" id="lab-train">Train</button>
      <button type="button" id="lab-pause" disabled>Pause</button>
      <button type="button" id="lab-step">Step</button>
      <button type="button" id="lab-reset">Reset</button>
      <button type="button" id="lab-use" disabled>Use in explorer</button>
      <button type="button" id="lab-download" disabled>Download model</button>
    </div>
    <p><progress id="lab-progress" max="1" value="0" aria-label="training progress"></progress>
      <span id="lab-progress-text" role="status" aria-live="polite"></span></p>
    <p id="lab-message" role="alert"></p>
    <div class="lab-views">
      <figure><canvas id="lab-curves" width="420" height="220" role="img" aria-label="loss curves"></canvas>
        <figcaption>${CURVES.map((c) => `<span style="color:${c.colour}">\u25a0</span> ${c.label}`).join(' \u00b7 ')}</figcaption></figure>
      <figure><canvas id="lab-kl" width="420" height="160" role="img" aria-label="KL of each latent dim"></canvas>
        <figcaption>KL of each latent dim (nats); grey "off": inactive (KL &lt; 0.01 or active-unit variance &lt; 0.01).
        <span id="lab-active"></span></figcaption></figure>
      <figure><canvas id="lab-map" width="300" height="300" role="img" aria-label="class map of the held-out encodings"></canvas>
        <figcaption id="lab-map-caption">held-out encodings on the two dims with the most KL</figcaption></figure>
      <figure><canvas id="lab-originals" class="lab-strip" role="img" aria-label="fixed held-out images"></canvas>
        <canvas id="lab-recons" class="lab-strip" role="img" aria-label="their reconstructions"></canvas>
        <figcaption>held-out images (one per class) and their reconstructions</figcaption></figure>
      <figure><canvas id="lab-prior" class="lab-strip" role="img" aria-label="samples from the prior"></canvas>
        <figcaption>samples from the prior N(0, I), decoded by the current weights</figcaption></figure>
    </div>
    <table class="lab-figures"><caption>held-out figures per epoch (nats per image)</caption>
      <thead><tr><th>epoch</th><th>\u2212ELBO</th><th>reconstruction</th><th>KL</th><th>active dims</th><th>training loss</th></tr></thead>
      <tbody id="lab-table"></tbody></table>`;
}

/** A promise-based client for the lab worker; events go to `onEvent`. */
function connect(onEvent) {
  const worker = new Worker(new URL('./lab-worker.js', import.meta.url), { type: 'module' });
  let nextId = 1;
  const waiting = new Map();
  worker.onmessage = ({ data }) => {
    if (data.event) return onEvent(data);
    const pending = waiting.get(data.id);
    waiting.delete(data.id);
    if (data.error !== undefined) pending?.reject(new Error(data.error));
    else pending?.resolve(data.result);
  };
  worker.onerror = (event) => {
    const error = new Error(event.message || 'the lab worker stopped');
    for (const { reject } of waiting.values()) reject(error);
    waiting.clear();
    onEvent({ event: 'stopped', reason: 'error', message: error.message });
  };
  return {
    ask(kind, args) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker.postMessage({ id, kind, args });
      });
    },
    stop() {
      worker.terminate();
      for (const { reject } of waiting.values()) reject(new Error('the lab was closed'));
      waiting.clear();
    },
  };
}

/**
 * Mounts the lab in `root`. `useModel({ name, bytes })` hands a weights file to the explorer and
 * resolves to true when the explorer took it.
 * Returns { close }, which stops the training worker.
 */
export async function mountLab({ root, useModel }) {
  const state = { epochs: [], running: [], trainLoss: new Map(), last: null, dataset: null, fileName: null, status: 'idle' };
  let client = null;
  let limits = null;
  let threads = 1; // how many threads the worker trains on
  let closed = false;
  const $ = (id) => root.querySelector(`#${id}`);
  const message = (text) => ($('lab-message').textContent = text);

  function fields() {
    const out = {};
    for (const l of limits) {
      const input = $(`lab-${l.key}`);
      out[l.key] = l.key === 'beta' ? String(BETA_STEPS[Number(input.value)]) : input.value;
    }
    return out;
  }

  function showErrors(errors) {
    for (const l of limits) $(`lab-${l.key}-error`).textContent = '';
    for (const { key, message: text } of errors) {
      $(`lab-${key}-error`).textContent = text;
      $(`lab-${key}`).setAttribute('aria-invalid', 'true');
    }
    for (const l of limits) if (!errors.some((e) => e.key === l.key)) $(`lab-${l.key}`).removeAttribute('aria-invalid');
    return errors.length === 0;
  }

  function setRunning(running) {
    state.status = running ? 'training' : 'idle';
    root.dataset.status = state.status;
    $('lab-train').disabled = running;
    $('lab-step').disabled = running;
    $('lab-pause').disabled = !running;
    const model = root.dataset.ready === 'true';
    $('lab-use').disabled = running || !model;
    $('lab-download').disabled = running || !model;
  }

  // The views are drawn in an animation frame at most every DRAW_MS, whatever the rate of events:
  // each drawing shows the latest progress and held-out figures, so work never stacks up.
  let pending = null; // what the next drawing shows: { progress, heldOut }
  let lastDraw = -Infinity;
  function draw() {
    if (!pending) return;
    const { progress, heldOut } = pending;
    pending = null;
    lastDraw = performance.now();
    if (progress) showProgress(progress);
    if (heldOut) drawHeldOut(heldOut);
    drawCurves($('lab-curves'), state.epochs, state.running);
  }
  function redraw(what) {
    const scheduled = pending !== null;
    pending = { ...pending, ...what };
    if (!scheduled) setTimeout(() => requestAnimationFrame(draw), Math.max(0, lastDraw + DRAW_MS - performance.now()));
  }

  function showProgress({ report, imagesPerSecond, secondsLeft }) {
    const base = report.epoch + (report.batch === 0 ? 0 : report.batch / report.batches);
    const planned = Number(fields().epochs);
    $('lab-progress').value = Math.min(1, base / planned);
    $('lab-progress-text').textContent = `epoch ${report.epoch + (report.batch ? 1 : 0)} of ${planned}, batch ${report.batch || report.batches} of ${report.batches} \u00b7 ${Math.round(imagesPerSecond).toLocaleString('en')} images/s on ${threads === 1 ? 'one thread' : `${threads} threads`} \u00b7 ${formatSeconds(secondsLeft)} left`;
  }

  function drawHeldOut(h) {
    const latent = h.kl_per_dim.length;
    drawKlBars($('lab-kl'), h.kl_per_dim, h.inactive);
    const active = h.inactive.filter((off) => !off).length;
    $('lab-active').textContent = `${active} of ${latent} dims active.`;
    root.dataset.activeDims = String(active);
    const axes = mapAxes(h.kl_per_dim);
    drawClassMap($('lab-map'), h.mu, h.labels, latent, axes);
    $('lab-map-caption').textContent = `held-out encodings on z${axes[0]} and z${axes[1]}, the two dims with the most KL`;
    const count = h.fixed.length;
    drawStrip($('lab-originals'), h.originals, count, IMAGE_SIDE, IMAGE_SIDE);
    drawStrip($('lab-recons'), h.reconstructions, count, IMAGE_SIDE, IMAGE_SIDE);
    drawStrip($('lab-prior'), h.prior_samples, h.prior_samples.length / (IMAGE_SIDE * IMAGE_SIDE), IMAGE_SIDE, IMAGE_SIDE);
  }

  function recordEpoch(h, dataset) {
    state.last = h;
    const record = { dataset, epoch: h.epoch, neg_elbo: h.neg_elbo, recon: h.recon, kl: h.kl, active: h.inactive.filter((o) => !o).length };
    state.epochs.push(record);
    const row = document.createElement('tr');
    const train = state.trainLoss.get(h.epoch);
    row.innerHTML = [record.epoch, record.neg_elbo.toFixed(2), record.recon.toFixed(2), record.kl.toFixed(2), record.active,
      train === undefined ? '\u2013' : train.toFixed(2)].map((v) => `<td>${v}</td>`).join('');
    $('lab-table').append(row);
    root.dataset.epochs = String(state.epochs.length);
  }

  function onEvent(data) {
    if (data.event === 'progress') {
      const { report, imagesPerSecond } = data;
      const base = report.epoch + (report.batch === 0 ? 0 : report.batch / report.batches);
      const per = report.batch_losses.length;
      report.batch_losses.forEach((loss, i) => state.running.push({ x: base - (per - 1 - i) / report.batches, loss }));
      if (report.epoch_loss !== null) state.trainLoss.set(report.epoch, report.epoch_loss);
      root.dataset.imagesPerSecond = String(Math.round(imagesPerSecond));
      redraw({ progress: data });
    } else if (data.event === 'heldout') {
      recordEpoch(data.heldOut, data.dataset);
      redraw({ heldOut: data.heldOut });
    } else if (data.event === 'stopped') {
      draw(); // the run's last figures, before the page says it stopped
      root.dataset.stopped = data.reason;
      if (data.reason === 'diverged') message(`Training stopped: ${data.message}. The weights of the last good step are kept; lower the learning rate, then Train, or Reset.`);
      else if (data.reason === 'error') message(`Training stopped: ${data.message}`);
      else if (data.reason === 'done') message('The planned epochs are done; Train again after raising "epochs" at Reset.');
      setRunning(false);
    }
  }

  async function reset() {
    if (!showErrors(await client.ask('check', { fields: fields() }))) return false;
    setRunning(false);
    message('');
    pending = null; // the old run's figures are not drawn
    Object.assign(state, { epochs: [], running: [], trainLoss: new Map(), last: null });
    $('lab-table').replaceChildren();
    root.dataset.epochs = '0';
    const dataset = $('lab-dataset').value;
    $('lab-progress-text').textContent = `loading ${dataset}\u2026`;
    try {
      const settings = fields();
      const out = await client.ask('reset', { dataset, fields: settings });
      state.dataset = out.dataset;
      state.fileName = `lab-${out.dataset}-beta${settings.beta}-seed${settings.seed}.safetensors`;
      root.dataset.served = String(out.served ?? '');
      state.last = out.heldOut;
      pending = { heldOut: out.heldOut };
      draw();
      $('lab-progress').value = 0;
      $('lab-progress-text').textContent = `a new model on ${out.dataset}; press Train`;
      root.dataset.ready = 'true';
      setRunning(false);
      root.dataset.resets = String(Number(root.dataset.resets ?? 0) + 1);
      return true;
    } catch (error) {
      if (!closed) message(`Reset failed: ${error.message}`);
      return false;
    }
  }

  async function start(kind) {
    if (root.dataset.ready !== 'true' && !(await reset())) return;
    message('');
    // The answer comes before the run's first event, and after the last event of a run that was stopping.
    await client.ask(kind);
    setRunning(true);
  }

  /** A listener that runs `action`; its failure is shown, unless the lab was closed meanwhile. */
  const guarded = (action) => () =>
    action().catch((error) => {
      if (!closed) message(error.message);
    });

  async function handOff() {
    const { bytes } = await client.ask('export');
    return { name: state.fileName, bytes };
  }

  if (!document.querySelector('link[data-lab-css]')) {
    const css = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: new URL('./lab.css', import.meta.url).href });
    css.dataset.labCss = '';
    document.head.append(css);
  }
  client = connect(onEvent);
  ({ limits, threads } = await client.ask('limits'));
  root.innerHTML = markup(limits);
  root.dataset.threads = String(threads);
  root.dataset.ready = 'false';
  setRunning(false);

  const betaInput = $('lab-beta');
  const betaText = () => String(BETA_STEPS[Number(betaInput.value)]);
  betaInput.setAttribute('aria-valuetext', betaText());
  betaInput.addEventListener('input', () => {
    $('lab-beta-value').textContent = betaText();
    betaInput.setAttribute('aria-valuetext', betaText());
  });
  for (const key of LIVE) {
    const input = $(`lab-${key}`);
    input.addEventListener('change', async () => {
      const text = key === 'beta' ? betaText() : input.value;
      try {
        await client.ask('set', { key, text });
        showErrors([]);
      } catch (error) {
        if (!closed) showErrors([{ key, message: error.message }]);
      }
    });
  }
  // The worker answers a pause once its training loop has stopped, so no event of the old run follows.
  $('lab-dataset').addEventListener('change', guarded(async () => {
    await client.ask('pause');
    root.dataset.ready = 'false';
    await reset();
  }));
  $('lab-train').addEventListener('click', guarded(() => start('train')));
  $('lab-step').addEventListener('click', guarded(() => start('step')));
  $('lab-pause').addEventListener('click', guarded(() => client.ask('pause')));
  $('lab-reset').addEventListener('click', guarded(async () => {
    await client.ask('pause');
    await reset();
  }));
  $('lab-use').addEventListener('click', async () => {
    try {
      const { name, bytes } = await handOff();
      const used = await useModel({ name, bytes: bytes.buffer });
      message(used ? `The explorer now shows ${name}.` : 'The explorer refused the model (its message is at the top of the page).');
    } catch (error) {
      message(`Could not hand the model to the explorer: ${error.message}`);
    }
  });
  $('lab-download').addEventListener('click', async () => {
    try {
      const { name, bytes } = await handOff();
      const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
      const link = Object.assign(document.createElement('a'), { href: url, download: name });
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      message(`Could not save the model: ${error.message}`);
    }
  });

  await reset();
  return {
    state,
    close() {
      closed = true;
      pending = null;
      client.stop();
      root.dataset.status = 'closed';
    },
  };
}
