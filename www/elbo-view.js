// The encoded image's numbers: q(z|x)'s mu and sigma per dim, and the ELBO's terms (reconstruction, KL, KL per dim).

import { formatValue, sigmaOf } from './latent.js';
import { markHighlightedDim, pointsAtDim } from './dim-highlight.js';

/** Renders `state.encoded` into a table body and a totals list, and reads its numbers out once through `announce(text)`. */
export function mountElboView({ tableBody, totals }, store, announce) {
  const markRows = markHighlightedDim(store, () => [...tableBody.rows]);
  function render(state) {
    const { encoded } = state;
    if (!encoded) {
      tableBody.replaceChildren();
      totals.replaceChildren();
      return;
    }
    const { mu, logvar, terms } = encoded;
    const widest = Math.max(1, ...terms.klPerDim);
    const sigmas = sigmaOf(logvar);
    tableBody.replaceChildren(
      ...mu.map((m, d) => {
        const row = document.createElement('tr');
        const sigma = sigmas[d];
        const kl = terms.klPerDim[d];
        const bar = document.createElement('span');
        bar.className = 'kl-bar';
        bar.style.width = `${(100 * kl) / widest}%`;
        const barCell = document.createElement('td');
        barCell.className = 'kl-cell';
        barCell.append(bar, document.createTextNode(kl.toFixed(2)));
        for (const text of [`z${d + 1}`, formatValue(m), sigma.toFixed(3)]) {
          const cell = document.createElement('td');
          cell.textContent = text;
          row.append(cell);
        }
        row.append(barCell);
        pointsAtDim(row, d, store);
        return row;
      }),
    );
    const lines = [
      ['reconstruction \u2212log p(x | z = \u03bc)', terms.recon],
      ['KL(q(z|x) \u2016 N(0, I))', terms.kl],
      ['\u2212ELBO at \u03bc (their sum)', terms.recon + terms.kl],
    ];
    totals.replaceChildren(
      ...lines.flatMap(([name, value]) => {
        const term = document.createElement('dt');
        term.textContent = name;
        const number = document.createElement('dd');
        number.textContent = `${value.toFixed(1)} nats`;
        return [term, number];
      }),
    );
  }

  /** The same numbers as shown, as one sentence. */
  function summary({ source, terms }) {
    const perDim = terms.klPerDim.map((kl, d) => `z${d + 1} ${kl.toFixed(2)}`).join(', ');
    return `Encoded ${source}: reconstruction ${terms.recon.toFixed(1)} nats, KL ${terms.kl.toFixed(1)} nats, `
      + `\u2212ELBO at \u03bc ${(terms.recon + terms.kl).toFixed(1)} nats. KL per dim, in nats: ${perDim}.`;
  }

  store.subscribe((state, changed) => {
    if (!changed.has('encoded')) return;
    render(state);
    markRows();
    if (state.encoded && !state.encoded.quiet) announce(summary(state.encoded));
  });
  render(store.get());
}
