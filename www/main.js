// Start-up and wiring: connects the store, the worker client and the views.

import { Decoder } from './decoder.js';
import { gridParams, nearestAtlasImage } from './latent.js';
import { describeGrid, describeImage, describeValues } from './describe.js';
import { createStore, initialState, withDim, DEFAULT_GRID } from './state.js';
import { mountSliders } from './sliders.js';
import { drawIntensities } from './image-view.js';
import { mountGrid } from './grid-view.js';
import { mountGridControls } from './grid-controls.js';
import { mountSampleControls } from './sample-controls.js';
import { mountModelPicker } from './model-picker.js';
import { SHIPPED_MODELS } from './models.js';
import { parseHash, fitToModel, formatHash, describeIgnored } from './url-state.js';
import { mountPriorRings } from './prior-rings.js';
import { keepForOffline, registerServiceWorker } from './offline.js';
import { createSurfaces } from './surfaces.js';
import { oncePerFrame } from './frame.js';

const $ = (id) => document.getElementById(id);
const store = createStore(initialState());
// The model worker draws the main image and the grid itself where the browser allows (surfaces.js).
const surfaces = createSurfaces({ image: 'image', grid: 'grid-canvas' }, (name, canvas) => {
  if (name === 'grid') grid.adopt(canvas);
});
const decoder = new Decoder({ worker: window.earlyModelWorker, onRestart: reportRestart, surfaces });
const timings = { decode: null, grid: null };

function showMessage(text, kind = 'error') {
  const box = $('message');
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = !text;
}

/** Reads `text` out to screen readers, politely: called when an action ends, never on every drag event. */
function announce(text) {
  $('live-status').textContent = text;
}

const showTimings = oncePerFrame(() => {
  const parts = [];
  if (timings.decode !== null) parts.push(`image ${timings.decode.toFixed(1)} ms`);
  if (timings.grid !== null) parts.push(`grid ${timings.grid.toFixed(1)} ms`);
  $('timing').textContent = parts.length ? `decode: ${parts.join(' \u00b7 ')}` : '';
});

function describeModel(model) {
  const { meta } = model;
  const parts = [`${meta.dataset}`, `${meta.latent_dim}-dim latent`, `${meta.width}\u00d7${meta.height} images`];
  if (meta.metrics) parts.push(`test \u2212ELBO ${meta.metrics.neg_elbo.toFixed(1)} nats`);
  $('model-info').textContent = parts.join(' \u00b7 ');
}

/** Says why the model `label` was refused, and which model stays in use. */
function showRefusal(label, error) {
  const still = store.get().model;
  const stay = still ? ` The ${still.label} model stays loaded.` : '';
  showMessage(`Could not load \u201c${label}\u201d: ${error.message}.${stay}`);
}

async function loadModel(source) {
  showMessage('');
  let loaded;
  try {
    loaded = await decoder.load(source, 'image');
  } catch (error) {
    showRefusal(source.label, error);
    throw error;
  }
  const { meta, activeUnitThreshold, maxGridSide, preview } = loaded;
  // The new model's first image (its latent mean's, which the store starts at) came with the load.
  if (preview?.pixels) drawIntensities($('image'), preview.pixels, meta.width, meta.height);
  if (preview) markFirstImage();
  const model = { name: source.name, label: source.label, meta, activeUnitThreshold, maxGridSide };
  const dims = model.meta.latent_dim;
  const grid = dims >= 2 ? { ...DEFAULT_GRID, size: Math.min(DEFAULT_GRID.size, maxGridSide) } : null;
  // A, B and the encoded image belong to the old model's latent space: they go with it.
  store.update({ model, z: model.meta.latent_mean.slice(), grid, lastSeed: null, encoded: null, a: null, b: null, atlas: null });
  describeModel(model);
  loadAtlas(model);
  if (source.url) keepForOffline([source.url, source.encoder].filter(Boolean));
}

/** After the worker crashed and restarted: one line, then the views decode again with the reloaded model. */
function reportRestart({ reason, reloaded }) {
  const model = store.get().model;
  reloaded.then(
    (any) => {
      if (!any || store.get().model !== model) return;
      showMessage(`The model worker stopped (${reason}); it was restarted and the ${model.label} model reloaded.`, 'notice');
      gridKey = '';
      store.update({ z: store.get().z.slice() }); // redraw the image and the grid
    },
    (error) => showMessage(`The model worker stopped (${reason}) and the model could not be reloaded: ${error.message}`),
  );
}

async function loadAtlas(model) {
  try {
    const atlas = await decoder.atlas();
    if (!atlas || store.get().model !== model) return;
    const { pixels, labels, mu } = atlas;
    const { width, height } = model.meta;
    store.update({ atlas: { count: labels.length, pixels, labels, mu, width, height } });
  } catch (error) {
    showMessage(`Reading the model\u2019s test images failed: ${error.message}`);
  }
}

// ---- decoding: the current z to the big image, and the grid around it ----

let firstImageShown = false;

/** Marks the moment the page first shows a decoded image, for the delivery benchmark. */
function markFirstImage() {
  if (!performance.getEntriesByName('first-image').length) performance.mark('first-image');
}

async function requestImage(state) {
  const meta = state.model.meta;
  try {
    const result = await decoder.decode(state.z, 1, 'decode', 'image');
    if (!result) return; // superseded by a newer request
    if (result.pixels) drawIntensities($('image'), result.pixels, meta.width, meta.height); // else the worker drew it
    timings.decode = result.ms;
    showTimings();
    if (!firstImageShown) {
      firstImageShown = true;
      markFirstImage();
      document.body.dataset.ready = 'true';
      registerServiceWorker();
    }
  } catch (error) {
    showMessage(`Decoding failed: ${error.message}`);
  }
}

let gridKey = '';
let gridSerial = 0;

async function requestGrid(state) {
  if (!state.grid) return;
  const params = gridParams(state.model.meta, state.z, state.grid);
  // The swept dims do not change the grid image, only the marker: skip the decode when nothing else moved.
  const key = JSON.stringify({ ...params, baseZ: withDim(withDim(params.baseZ, params.xDim, 0), params.yDim, 0) });
  if (key === gridKey) return;
  gridKey = key;
  const serial = ++gridSerial;
  try {
    const result = await decoder.grid(params);
    if (!result) return;
    grid.draw(result, params);
    timings.grid = result.ms;
    showTimings();
    $('grid-canvas').dataset.serial = String(serial);
  } catch (error) {
    gridKey = '';
    showMessage(`Drawing the grid failed: ${error.message}`);
  }
}

// The marker and the text alternatives follow z once per frame: a drag sends several z's per frame.
const markGrid = oncePerFrame(() => {
  const state = store.get();
  if (!state.model || !state.grid) return;
  const params = gridParams(state.model.meta, state.z, state.grid);
  grid.mark(state.z[state.grid.xDim], state.z[state.grid.yDim], params);
  $('grid-canvas').setAttribute('aria-label', describeGrid(params, state.z));
});

const labelImage = oncePerFrame(() => {
  const state = store.get();
  if (!state.model) return;
  const nearest = state.atlas ? nearestAtlasImage(state.atlas, state.z) : -1;
  $('image').setAttribute('aria-label', describeImage(state.model.meta, state.z, state.atlas, nearest));
});

const grid = mountGrid({
  canvas: $('grid-canvas'),
  marker: $('grid-marker'),
  onPick(x, y) {
    const { z, grid: g } = store.get();
    store.update({ z: withDim(withDim(z, g.xDim, x), g.yDim, y), lastSeed: null });
  },
  onSettle() {
    const { z, grid: g } = store.get();
    announce(describeValues(z, [g.xDim, g.yDim]));
  },
});

const rings = mountPriorRings($('grid-rings'));

store.subscribe((state, changed) => {
  if (!state.model) return;
  if (changed.has('z') || changed.has('model')) requestImage(state);
  if (changed.has('z') || changed.has('model') || changed.has('atlas')) labelImage();
  if (changed.has('z') || changed.has('model') || changed.has('grid')) {
    if (changed.has('model')) gridKey = '';
    requestGrid(state);
    markGrid();
  }
  if ((changed.has('model') || changed.has('grid')) && state.grid) {
    rings.draw(gridParams(state.model.meta, state.z, state.grid));
  }
});
$('rings').addEventListener('change', () => {
  $('grid-rings').hidden = !$('rings').checked;
});

mountSliders($('sliders'), store);
mountGridControls(
  { xSelect: $('x-axis'), ySelect: $('y-axis'), sizeSelect: $('grid-size'), spanSelect: $('grid-span'),
    xLabel: $('x-label'), yLabel: $('y-label'), note: $('grid-note') },
  store,
);
mountSampleControls(
  { randomButton: $('random'), resetButton: $('reset'), seedInput: $('seed'), seedNote: $('seed-note') },
  store,
);
const picker = mountModelPicker({
  select: $('model'),
  fileInput: $('model-file'),
  dropTarget: document.body,
  loadModel,
  refuse: showRefusal,
});

// ---- the URL hash: read at start and on hashchange, rewritten as the state changes ----

const SHIPPED_NAMES = SHIPPED_MODELS.map((m) => m.name);
let hashWritable = false; // false until the hash the page opened with has been applied
let hashDue = 0; // when the hash is next written: 150 ms after the last change
let hashTimer = 0;
let lastWrittenHash = '';

async function applyHash(hash, alsoIgnored = []) {
  hashWritable = false;
  const { fields, ignored } = parseHash(hash, { models: SHIPPED_NAMES });
  ignored.unshift(...alsoIgnored);
  if (fields.model && fields.model !== store.get().model?.name) await picker.loadShipped(fields.model);
  const state = store.get();
  if (state.model) {
    const fitted = fitToModel(fields, state.model.meta.latent_dim, state.grid);
    ignored.push(...fitted.ignored);
    store.update({ ...fitted.patch, lastSeed: null });
  }
  if (ignored.length) showMessage(describeIgnored(ignored), 'notice');
  hashWritable = true;
  document.body.dataset.hashApplied = 'true';
}

function writeHash() {
  const wait = hashDue - performance.now();
  if (wait > 0) {
    hashTimer = setTimeout(writeHash, wait);
    return;
  }
  hashTimer = 0;
  const state = store.get();
  if (!hashable(state)) return; // a model opened from disk replaced the shipped one meanwhile
  lastWrittenHash = formatHash(state);
  history.replaceState(null, '', lastWrittenHash);
}
/** Only a shipped model's state goes in the link: another's file is not at any address. */
function hashable(state) {
  return hashWritable && Boolean(state.model) && SHIPPED_NAMES.includes(state.model.name);
}
// One timer per pause, not one per change: a drag's changes only push the time it fires back.
store.subscribe((state) => {
  if (!hashable(state)) return;
  hashDue = performance.now() + 150;
  if (!hashTimer) hashTimer = setTimeout(writeHash, 150);
});
window.addEventListener('hashchange', () => {
  if (location.hash !== lastWrittenHash) applyHash(location.hash);
});

// A handle for tests, benchmarks and the curious console user.
window.explorer = { store, decoder };

// The β-VAE lab loads its module, worker, wasm build (www/pkg-lab) and dataset only when opened;
// closing it ends its worker. A lab opened again mounts only once the last one is closed.
let labClosed = Promise.resolve();
$('lab-open').addEventListener('toggle', ({ target }) => {
  if (target.open && !window.explorer.lab) {
    const useModel = ({ name, bytes }) => picker.loadOwn(name, bytes);
    window.explorer.lab = labClosed
      .then(() => import('./lab.js'))
      .then(({ mountLab }) => mountLab({ root: $('lab-root'), useModel }));
    window.explorer.lab.catch((error) => showMessage(`The lab failed to start: ${error.message}`));
  } else if (!target.open && window.explorer.lab) {
    labClosed = window.explorer.lab.then((lab) => lab.close(), () => {});
    window.explorer.lab = null;
  }
});

const startHash = parseHash(location.hash, { models: SHIPPED_NAMES }).fields;
// The older ?model= link is checked by the same rules as the hash's model.
const queryModel = new URLSearchParams(location.search).get('model');
const fromQuery = parseHash(queryModel === null ? '' : new URLSearchParams({ model: queryModel }).toString(), { models: SHIPPED_NAMES });
const requested = startHash.model ?? fromQuery.fields.model ?? SHIPPED_MODELS[0].name;
// The exploring views below the grid load once the model is in, so that their modules never compete
// with the weights' download or delay the first image.
picker
  .loadShipped(requested)
  .then(() => applyHash(location.hash, fromQuery.ignored))
  .then(() => import('./explore.js'))
  .then(({ mountExplore }) => {
    window.explorer.classMap = mountExplore({ store, decoder, showMessage, announce }).classMap;
  })
  .catch((error) => showMessage(`The encoding and interpolation views failed to start: ${error.message}`));
