// Wiring for the views that teach the ideas a VAE rests on: sampling z ~ q(z|x), generating from the prior,
// the prior against the encodings, the ELBO written out, and the first look before anyone clicks.

import { gridParams } from './latent.js';
import { mapView } from './class-map.js';
import { mountPosteriorSamples } from './posterior-samples.js';
import { mountPosteriorOverlay } from './posterior-overlay.js';
import { mountPriorGenerate } from './prior-generate.js';
import { mountPriorHistograms } from './prior-histograms.js';
import { mountElboFormula } from './elbo-formula.js';
import { startingImages } from './first-view.js';

const $ = (id) => document.getElementById(id);

/** Mounts the teaching views; `encodeAtlasImage(index, { quiet })` encodes an atlas image as the gallery does. */
export function mountTeaching({ store, decoder, showMessage, encodeAtlasImage }) {
  mountPosteriorSamples(
    { drawButton: $('posterior-draw'), countSelect: $('posterior-count'), seedInput: $('posterior-seed'), atMu: $('posterior-at-mu'),
      strip: $('posterior-strip'), caption: $('posterior-caption'), recon: $('posterior-recon'), table: $('posterior-table') },
    store, decoder, showMessage,
  );
  mountPosteriorOverlay($('grid-canvas').parentElement, { before: $('grid-marker'), viewOf: (s) => gridParams(s.model.meta, s.z, s.grid) }, store);
  mountPosteriorOverlay($('class-map').parentElement, { before: $('map-marker'), viewOf: (s) => mapView(s.model.meta, s.grid) }, store);
  mountPriorGenerate(
    { button: $('generate'), countSelect: $('generate-count'), seedInput: $('generate-seed'), strip: $('generate-strip'), caption: $('generate-caption') },
    store, decoder, showMessage,
  );
  mountPriorHistograms($('aggregate'), store);
  mountElboFormula({ panel: $('formula').parentElement, container: $('formula') }, store, showMessage);

  // Something to see from the first second: an encoded image, and an A-B strip. A link's A or B wins.
  function startWith(state) {
    const start = startingImages(state.atlas);
    if (!start) return;
    if (!state.encoded) encodeAtlasImage(start.encode, { quiet: true }); // no reader asked: nothing read out
    if (!state.a && !state.b && start.b !== null) {
      const dims = state.model.meta.latent_dim;
      const mu = (i) => Array.from(state.atlas.mu.subarray(i * dims, (i + 1) * dims));
      store.update({ a: mu(start.a), b: mu(start.b) });
    }
  }
  store.subscribe((state, changed) => {
    if (changed.has('atlas') && state.atlas) startWith(state);
  });
  if (store.get().atlas) startWith(store.get());
}
