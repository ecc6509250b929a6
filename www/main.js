// Start-up and wiring: connects the store, the worker client and the views.

import { Decoder } from './decoder.js';
import { gridParams } from './latent.js';
import { createStore, initialState, withDim, DEFAULT_GRID } from './state.js';
import { mountSliders } from './sliders.js';
import { drawIntensities } from './image-view.js';
import { mountGrid } from './grid-view.js';
import { mountGridControls } from './grid-controls.js';
import { mountSampleControls } from './sample-controls.js';
import { mountModelPicker, SHIPPED_MODELS } from './model-picker.js';
import { parseHash, fitToModel, formatHash, describeIgnored } from './url-state.js';
import { styleFor, toModelInput } from './preprocess.js';
import { mountDrawPad } from './draw-pad.js';
import { readPicture } from './image-upload.js';
import { mountGallery } from './gallery.js';
import { mountEncodePanel } from './encode-panel.js';
import { mountElboView } from './elbo-view.js';
import { mountInterpolation } from './interpolation.js';
import { mountClassMap } from './class-map.js';
import { mountTraversal } from './traversal.js';
import { mountPriorRings } from './prior-rings.js';
import { downloadPng } from './export-png.js';
import { mountProjector } from './projector.js';

const $ = (id) => document.getElementById(id);
const store = createStore(initialState());
const decoder = new Decoder({ worker: window.earlyModelWorker });
const timings = { decode: null, grid: null };

function showMessage(text, kind = 'error') {
  const box = $('message');
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = !text;
}

function showTimings() {
  const parts = [];
  if (timings.decode !== null) parts.push(`image ${timings.decode.toFixed(1)} ms`);
  if (timings.grid !== null) parts.push(`grid ${timings.grid.toFixed(1)} ms`);
  $('timing').textContent = parts.length ? `decode: ${parts.join(' \u00b7 ')}` : '';
}

function describeModel(model) {
  const { meta } = model;
  const parts = [`${meta.dataset}`, `${meta.latent_dim}-dim latent`, `${meta.width}\u00d7${meta.height} images`];
  if (meta.metrics) parts.push(`test \u2212ELBO ${meta.metrics.neg_elbo.toFixed(1)} nats`);
  $('model-info').textContent = parts.join(' \u00b7 ');
}

async function loadModel(source) {
  showMessage('');
  let loaded;
  try {
    loaded = await decoder.load(source);
  } catch (error) {
    const still = store.get().model;
    const stay = still ? ` The ${still.label} model stays loaded.` : '';
    showMessage(`Could not load \u201c${source.label}\u201d: ${error.message}.${stay}`);
    throw error;
  }
  const model = { name: source.name, label: source.label, meta: loaded.meta };
  const dims = model.meta.latent_dim;
  const grid = dims >= 2 ? { ...DEFAULT_GRID } : null;
  // A, B and the encoded image belong to the old model's latent space: they go with it.
  store.update({ model, z: model.meta.latent_mean.slice(), grid, lastSeed: null, encoded: null, a: null, b: null, atlas: null });
  describeModel(model);
  loadAtlas(model);
}

async function loadAtlas(model) {
  try {
    const { pixels, labels, mu } = await decoder.atlas();
    if (store.get().model !== model) return;
    const { width, height } = model.meta;
    store.update({ atlas: { count: labels.length, pixels, labels, mu, width, height } });
  } catch (error) {
    showMessage(`Reading the model\u2019s test images failed: ${error.message}`);
  }
}

// ---- encoding: an image from the atlas, the pad or a picture, to mu, sigma and the ELBO's terms ----

async function encodeImage(pixels, source) {
  const { model } = store.get();
  if (!model) return;
  try {
    const [{ muLogvar }, { terms }] = await Promise.all([decoder.encode(pixels), decoder.elbo(pixels)]);
    if (store.get().model !== model) return;
    const dims = model.meta.latent_dim;
    store.update({
      encoded: {
        source,
        pixels: Float32Array.from(pixels),
        mu: Array.from(muLogvar.subarray(0, dims)),
        logvar: Array.from(muLogvar.subarray(dims, 2 * dims)),
        terms: { recon: terms[0], kl: terms[1], klPerDim: Array.from(terms.subarray(2, 2 + dims)) },
      },
    });
  } catch (error) {
    showMessage(`Encoding failed: ${error.message}`);
  }
}

function encodeAtlasImage(index) {
  const { atlas, model } = store.get();
  const size = atlas.width * atlas.height;
  const pixels = Float32Array.from(atlas.pixels.subarray(index * size, (index + 1) * size), (v) => v / 255);
  const label = model.meta.class_names?.[atlas.labels[index]] ?? atlas.labels[index];
  return encodeImage(pixels, `test image #${index} (${label})`);
}

function encodeDrawing(gray, width, height, source) {
  const { model } = store.get();
  if (!model) return;
  try {
    encodeImage(toModelInput(gray, width, height, styleFor(model.meta)), source);
  } catch (error) {
    showMessage(`Could not encode ${source}: ${error.message}.`, 'notice');
  }
}

// ---- decoding: the current z to the big image, and the grid around it ----

let firstImageShown = false;

async function requestImage(state) {
  const meta = state.model.meta;
  try {
    const result = await decoder.decode(state.z, 1);
    if (!result) return; // superseded by a newer request
    drawIntensities($('image'), result.pixels, meta.width, meta.height);
    timings.decode = result.ms;
    showTimings();
    if (!firstImageShown) {
      firstImageShown = true;
      performance.mark('first-image');
      document.body.dataset.ready = 'true';
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

function markGrid(state) {
  if (!state.grid) return;
  const params = gridParams(state.model.meta, state.z, state.grid);
  grid.mark(state.z[state.grid.xDim], state.z[state.grid.yDim], params);
}

const grid = mountGrid({
  canvas: $('grid-canvas'),
  marker: $('grid-marker'),
  onPick(x, y) {
    const { z, grid: g } = store.get();
    store.update({ z: withDim(withDim(z, g.xDim, x), g.yDim, y), lastSeed: null });
  },
});

const rings = mountPriorRings($('grid-rings'));

store.subscribe((state, changed) => {
  if (!state.model) return;
  if (changed.has('z') || changed.has('model')) requestImage(state);
  if (changed.has('z') || changed.has('model') || changed.has('grid')) {
    if (changed.has('model')) gridKey = '';
    requestGrid(state);
    markGrid(state);
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
    xLabel: $('x-label'), yLabel: $('y-label') },
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
});

const gallery = mountGallery({ canvas: $('gallery'), classSelect: $('gallery-class'), onPick: encodeAtlasImage });
const classMap = mountClassMap({ canvas: $('class-map'), legend: $('map-legend') }, store, (index) => {
  const { atlas, model } = store.get();
  const dims = model.meta.latent_dim;
  store.update({ z: Array.from(atlas.mu.subarray(index * dims, (index + 1) * dims)), lastSeed: null });
  encodeAtlasImage(index);
});
store.subscribe((state, changed) => {
  if (!changed.has('atlas') || !state.atlas) return;
  const names = state.model.meta.class_names ?? [];
  gallery.show(state.atlas, names);
  classMap.show(state.atlas, names);
});
mountDrawPad({
  canvas: $('pad'),
  clearButton: $('pad-clear'),
  onStroke: (gray, width, height) => encodeDrawing(gray, width, height, 'your drawing'),
});
$('picture-file').addEventListener('change', async () => {
  const [file] = $('picture-file').files;
  $('picture-file').value = '';
  if (!file) return;
  try {
    const picture = await readPicture(file);
    const note = picture.inverted ? ', inverted' : '';
    encodeDrawing(picture.gray, picture.width, picture.height, `\u201c${file.name}\u201d${note}`);
  } catch (error) {
    showMessage(`${error.message}.`);
  }
});
mountEncodePanel(
  { input: $('encoded-input'), reconstruction: $('encoded-reconstruction'), source: $('encoded-source'),
    toSliders: $('encoded-to-sliders'), toA: $('encoded-to-a'), toB: $('encoded-to-b') },
  store, decoder, showMessage,
);
mountElboView({ tableBody: $('elbo-dims'), totals: $('elbo-totals') }, store);
mountInterpolation(
  { strip: $('interp-strip'), marker: $('interp-marker'), scrubber: $('interp-scrub'), playButton: $('interp-play'),
    pathSelect: $('interp-path'), stepsSelect: $('interp-steps'), preview: $('interp-preview'), status: $('interp-status') },
  store, decoder,
);
mountTraversal({ canvas: $('traversal'), labels: $('traversal-labels') }, store, decoder, showMessage);
mountProjector($('projector'));
$('image-png').addEventListener('click', () => downloadPng($('image'), 'vae-image.png', 10));
$('grid-png').addEventListener('click', () => downloadPng($('grid-canvas'), 'vae-grid.png', 2));
$('strip-png').addEventListener('click', () => downloadPng($('interp-strip'), 'vae-interpolation.png', 4));

// ---- the URL hash: read at start and on hashchange, rewritten as the state changes ----

const SHIPPED_NAMES = SHIPPED_MODELS.map((m) => m.name);
let hashWritable = false; // false until the hash the page opened with has been applied
let hashTimer = 0;
let lastWrittenHash = '';

async function applyHash(hash) {
  hashWritable = false;
  const { fields, ignored } = parseHash(hash, { models: SHIPPED_NAMES });
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

store.subscribe((state) => {
  if (!hashWritable || !state.model || !SHIPPED_NAMES.includes(state.model.name)) return;
  clearTimeout(hashTimer);
  hashTimer = setTimeout(() => {
    lastWrittenHash = formatHash(store.get());
    history.replaceState(null, '', lastWrittenHash);
  }, 150);
});
window.addEventListener('hashchange', () => {
  if (location.hash !== lastWrittenHash) applyHash(location.hash);
});

// A handle for tests, benchmarks and the curious console user.
window.explorer = { store, decoder, classMap };

const startHash = parseHash(location.hash, { models: SHIPPED_NAMES }).fields;
const requested = startHash.model ?? new URLSearchParams(location.search).get('model') ?? 'digits';
picker.loadShipped(requested).then(() => applyHash(location.hash));
