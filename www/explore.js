// Wiring for the exploring views below the grid: the image sources and encoding, the ELBO terms,
// interpolation, the class map, the traversal strips, PNG export and projector mode.
// main.js loads this module after the model has started loading, so none of it delays the first image.

import { toModelInput } from './preprocess.js';
import { mountDrawPad } from './draw-pad.js';
import { readPicture } from './image-upload.js';
import { mountGallery } from './gallery.js';
import { mountEncodePanel } from './encode-panel.js';
import { mountElboView } from './elbo-view.js';
import { mountInterpolation } from './interpolation.js';
import { mountClassMap } from './class-map.js';
import { mountTraversal } from './traversal.js';
import { downloadPng } from './export-png.js';
import { mountProjector } from './projector.js';
import { mountTeaching } from './teaching.js';
import { className } from './describe.js';

const $ = (id) => document.getElementById(id);

/**
 * Mounts every exploring view on the shared store and worker client; `announce(text)` reads a result out
 * when an action ends. Returns the class map (for tests).
 */
export function mountExplore({ store, decoder, showMessage, announce }) {
  /** Encodes `pixels`; a `quiet` encoding (not a reader's action) is shown but not read out. */
  async function encodeImage(pixels, source, quiet = false) {
    const { model } = store.get();
    if (!model) return;
    try {
      const [encoding, elbo] = await Promise.all([decoder.encode(pixels), decoder.elbo(pixels)]);
      if (!encoding || !elbo || store.get().model !== model) return;
      const { muLogvar } = encoding;
      const { terms } = elbo;
      const dims = model.meta.latent_dim;
      store.update({
        encoded: {
          source,
          quiet,
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

  function encodeAtlasImage(index, { quiet = false } = {}) {
    const { atlas, model } = store.get();
    const size = atlas.width * atlas.height;
    const pixels = Float32Array.from(atlas.pixels.subarray(index * size, (index + 1) * size), (v) => v / 255);
    return encodeImage(pixels, `test image #${index} (${className(model.meta, atlas.labels[index])})`, quiet);
  }

  function encodeDrawing(gray, width, height, source) {
    const { model } = store.get();
    if (!model) return;
    try {
      const { preprocess, width: outWidth, height: outHeight } = model.meta;
      encodeImage(toModelInput(gray, width, height, preprocess, outWidth, outHeight), source);
    } catch (error) {
      showMessage(`Could not encode ${source}: ${error.message}.`, 'notice');
    }
  }

  const gallery = mountGallery({ canvas: $('gallery'), cursor: $('gallery-cursor'), classSelect: $('gallery-class'), onPick: encodeAtlasImage });
  const classMap = mountClassMap(
    { canvas: $('class-map'), legend: $('map-legend'), marker: $('map-marker'), cursor: $('map-cursor'), highlightSelect: $('map-class') },
    store,
    (index) => {
      const { atlas, model } = store.get();
      const dims = model.meta.latent_dim;
      store.update({ z: Array.from(atlas.mu.subarray(index * dims, (index + 1) * dims)), lastSeed: null });
      encodeAtlasImage(index);
    },
    announce,
  );
  function showAtlas(state) {
    const names = state.model.meta.class_names ?? [];
    gallery.show(state.atlas, names);
    classMap.show(state.atlas, names);
  }
  store.subscribe((state, changed) => {
    if (changed.has('atlas') && state.atlas) showAtlas(state);
  });
  if (store.get().atlas) showAtlas(store.get());
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
      const { width, height } = store.get().model.meta;
      const picture = await readPicture(file, Math.max(width, height));
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
  mountElboView({ tableBody: $('elbo-dims'), totals: $('elbo-totals') }, store, announce);
  mountInterpolation(
    { strip: $('interp-strip'), marker: $('interp-marker'), scrubber: $('interp-scrub'), playButton: $('interp-play'),
      pathSelect: $('interp-path'), stepsSelect: $('interp-steps'), preview: $('interp-preview'), status: $('interp-status'),
      cursor: $('strip-cursor') },
    store, decoder, announce,
  );
  mountTraversal({ canvas: $('traversal'), labels: $('traversal-labels') }, store, decoder, showMessage);
  mountProjector($('projector'));
  $('image-png').addEventListener('click', () => downloadPng($('image'), 'vae-image.png', 10));
  $('grid-png').addEventListener('click', () => downloadPng($('grid-canvas'), 'vae-grid.png', 2));
  $('strip-png').addEventListener('click', () => downloadPng($('interp-strip'), 'vae-interpolation.png', 4));

  mountTeaching({ store, decoder, showMessage, encodeAtlasImage });

  document.body.dataset.explore = 'ready';
  return { classMap };
}
