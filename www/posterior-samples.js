// "Sample from q(z|x)": N seeded draws z = mu + sigma * eps for the encoded image, decoded as a strip beside
// the decode at mu, each z shown with its eps, and the Monte Carlo reconstruction term beside the one at mu.

import { drawIntensities } from './image-view.js';
import { formatNats, formatValue, sigmaOf, standardNormals } from './latent.js';
import { takeSeed, watchSeedField } from './seed-field.js';
import { drawSampleStrip, offerSampleCounts } from './sample-strip.js';

/** A table row of cells (th for the first), with a data-row name. */
function tableRow(name, cells, header = false) {
  const row = document.createElement('tr');
  row.dataset.row = name;
  cells.forEach((text, i) => {
    const cell = document.createElement(header || i === 0 ? 'th' : 'td');
    if (!header && i === 0) cell.scope = 'row';
    cell.textContent = text;
    row.append(cell);
  });
  return row;
}

/** Wires the sampling block of the encode panel; draws again with the same eps whenever the image changes. */
export function mountPosteriorSamples({ drawButton, countSelect, seedInput, atMu, strip, caption, recon, table }, store, decoder, onError) {
  offerSampleCounts(countSelect);
  seedInput.value = '1';
  watchSeedField(seedInput);
  let serial = 0;

  /** Draws Number(countSelect) samples for the encoded image with `seed`. */
  async function draw(seed) {
    const { encoded, model } = store.get();
    if (!encoded || !model) return;
    const n = Number(countSelect.value);
    const eps = standardNormals(seed, n * model.meta.latent_dim);
    const mine = ++serial;
    try {
      const result = await decoder.posterior(encoded.pixels, eps);
      if (!result || mine !== serial || store.get().encoded !== encoded) return;
      store.update({ samples: { of: encoded, seed, n, eps, z: Array.from(result.z), recon: Array.from(result.recon), pixels: result.pixels } });
    } catch (error) {
      onError(`Sampling from q(z|x) failed: ${error.message}`);
    }
  }

  /** Draws with the field's seed, then shows the next one there, so that a click draws anew. */
  function drawFromField() {
    const seed = takeSeed(seedInput);
    if (seed === null) return;
    draw(seed);
  }

  function renderTable(state) {
    const { encoded, samples } = state;
    const dims = encoded.mu.length;
    const names = encoded.mu.map((_, d) => `z${d + 1}`);
    const rows = [
      tableRow('head', ['row', ...names, '\u2212log p(x|z), nats'], true),
      tableRow('mu', ['\u03bc', ...encoded.mu.map(formatValue), '']),
      tableRow('sigma', ['\u03c3', ...sigmaOf(encoded.logvar).map((s) => s.toFixed(2)), '']),
    ];
    for (let k = 0; k < samples.n; k++) {
      const z = samples.z.slice(k * dims, (k + 1) * dims);
      const eps = samples.eps.slice(k * dims, (k + 1) * dims);
      const zRow = tableRow('z', [`z #${k + 1}`, ...z.map(formatValue), formatNats(samples.recon[k])]);
      const epsRow = tableRow('eps', [`\u03b5 #${k + 1}`, ...eps.map(formatValue), '']);
      zRow.dataset.k = epsRow.dataset.k = String(k);
      rows.push(zRow, epsRow);
    }
    table.replaceChildren(...rows);
  }

  async function render(state) {
    const { encoded, samples, model } = state;
    drawButton.disabled = !encoded;
    if (!encoded || samples?.of !== encoded) {
      if (!encoded) {
        table.replaceChildren();
        recon.textContent = '';
        caption.textContent = '';
      }
      return;
    }
    const { width, height } = model.meta;
    drawSampleStrip(strip, samples.pixels, samples.n, width, height);
    strip.dataset.n = String(samples.n);
    strip.dataset.seed = String(samples.seed);
    caption.textContent = `${samples.n} samples, \u03b5 seed ${samples.seed}`;
    renderTable(state);
    const mean = samples.recon.reduce((sum, v) => sum + v, 0) / samples.n;
    recon.replaceChildren(
      `\u2212log p(x | z = \u03bc) = `, Object.assign(document.createElement('strong'), { textContent: formatNats(encoded.terms.recon) }),
      ` nats at the mean; averaged over the ${samples.n} samples, \u2212log p(x | z) = `,
      Object.assign(document.createElement('strong'), { textContent: formatNats(mean) }),
      ' nats. The ELBO uses the expectation E_q[\u2212log p(x | z)]: the average over samples estimates it; the decode at \u03bc does not.',
    );
    const atMuResult = await decoder.decode(encoded.mu, 1, 'posterior-at-mu');
    if (!atMuResult || store.get().samples !== samples) return;
    drawIntensities(atMu, atMuResult.pixels, width, height);
    strip.dataset.serial = String(Number(strip.dataset.serial ?? 0) + 1);
  }

  drawButton.addEventListener('click', drawFromField);
  countSelect.addEventListener('change', () => {
    const { samples } = store.get();
    if (samples) draw(samples.seed);
  });
  store.subscribe((state, changed) => {
    if (changed.has('encoded')) {
      // The same eps for the new image, so that only mu and sigma change; the first image takes the field's seed.
      if (state.samples) draw(state.samples.seed);
      else drawFromField();
    }
    if (changed.has('samples') || changed.has('encoded')) render(state).catch((error) => onError(`Drawing the samples failed: ${error.message}`));
  });
  render(store.get());
  if (store.get().encoded) drawFromField();
}
