// The ELBO written out and typeset with KaTeX (copied into www/vendor/katex by make build), with the
// encoded image's numbers: the Monte Carlo reconstruction term, the KL, and each dim's closed-form KL.

import { formatNats, sigmaOf } from './latent.js';
import { markHighlightedDim, pointsAtDim } from './dim-highlight.js';

const KATEX = new URL('./vendor/katex/', import.meta.url);

let katexReady = null;

/** Loads KaTeX's stylesheet and module once; rejects with a message naming the step that copies them. */
function loadKatex() {
  katexReady ??= (async () => {
    const link = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: new URL('katex.min.css', KATEX).href });
    const styled = new Promise((resolve, reject) => {
      link.onload = resolve;
      link.onerror = () => reject(new Error('www/vendor/katex/katex.min.css is missing'));
    });
    document.head.append(link);
    try {
      const [{ default: katex }] = await Promise.all([import(new URL('katex.mjs', KATEX).href), styled]);
      return katex;
    } catch (error) {
      throw new Error(`the formula needs KaTeX in www/vendor/katex, which make build copies from npm (${error.message})`);
    }
  })();
  return katexReady;
}

/** `text`, a number, squared in TeX: in brackets when negative; `tex` is how to typeset it (tagged or not). */
const squared = (text, tex = text) => (text.startsWith('-') ? String.raw`\left(${tex}\right)^2` : `${tex}^2`);
/** mu to 3 decimals and sigma to 3 significant digits: enough that KL_j follows from them to its 2 decimals. */
const formatMu = (value) => value.toFixed(3);
const formatSigma = (value) => value.toPrecision(3);
/** A number the tests read back from the page, tagged with `term`. */
const tagged = (term, text) => String.raw`\htmlData{term=${term}}{${text}}`;
/** KaTeX's options: \htmlData (the tags above) is its one extension to LaTeX used here. */
const OPTIONS = {
  throwOnError: true,
  trust: (context) => context.command === '\\htmlData',
  strict: (code) => (code === 'htmlExtension' ? 'ignore' : 'warn'),
};

const TEX = {
  elbo: String.raw`-\mathrm{ELBO}(x) = \mathbb{E}_{q(z\mid x)}\!\left[-\log p(x\mid z)\right] + \mathrm{KL}\!\left(q(z\mid x)\,\Vert\,\mathcal{N}(0, I)\right)`,
  numbers: (average, kl, total, n) => String.raw`\approx \underbrace{${average}}_{\frac{1}{${n}}\sum_{k=1}^{${n}} -\log p(x\mid z_k)} + \underbrace{${kl}}_{\sum_j \mathrm{KL}_j} = ${total}\ \text{nats}`,
  atMu: (recon) => String.raw`-\log p(x\mid z=\mu) = ${recon}\ \text{nats}`,
  samples: String.raw`z_k = \mu + \sigma \odot \varepsilon_k,\quad \varepsilon_k \sim \mathcal{N}(0, I)`,
  klOfDim: String.raw`\mathrm{KL}_j = \tfrac12\left(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\right)`,
  dim: (j, mu, sigma, kl) => String.raw`\mathrm{KL}_{${j}} = \tfrac12\left(${squared(mu, tagged('mu', mu))} + ${squared(sigma, tagged('sigma', sigma))} - 1 - \log ${squared(sigma)}\right) = ${tagged('kl-dim', kl)}`,
  klSum: (dims, kl) => String.raw`\mathrm{KL} = \sum_{j=1}^{${dims}} \mathrm{KL}_j = ${tagged('kl-sum', kl)}\ \text{nats}`,
};

/** Renders the formula into `container` (in `panel`) whenever the encoded image or its samples change. */
export function mountElboFormula({ panel, container }, store, onError) {
  let dimItems = [];
  const markItems = markHighlightedDim(store, () => dimItems);
  let serial = 0;

  function block(katex, tex, className) {
    const element = document.createElement('div');
    element.className = className;
    katex.render(tex, element, { ...OPTIONS, displayMode: true });
    return element;
  }

  function note(text) {
    const paragraph = document.createElement('p');
    paragraph.className = 'small muted';
    paragraph.textContent = text;
    return paragraph;
  }

  /** The formula's lines for `state`, and its per-dim lines (focusable, pointing at their dim). */
  function typeset(katex, { encoded, samples }) {
    if (!encoded) return { parts: [block(katex, TEX.elbo, 'formula-line'), note('Encode an image to see its numbers in the formula.')], items: [] };
    const { terms, mu } = encoded;
    const sigma = sigmaOf(encoded.logvar);
    const current = samples?.of === encoded ? samples : null;
    const average = current ? current.recon.reduce((s, v) => s + v, 0) / current.n : null;
    const parts = [
      block(katex, TEX.elbo, 'formula-line'),
      current
        ? block(katex, TEX.numbers(tagged('average', formatNats(average)), tagged('kl', formatNats(terms.kl)), tagged('neg-elbo', formatNats(average + terms.kl)), current.n), 'formula-line numbers')
        : note('Drawing the samples for the reconstruction term\u2026'),
      note(`The expectation is estimated by the average over the ${current?.n ?? 'N'} samples from q(z|x) in the encode panel:`),
      block(katex, TEX.samples, 'formula-line'),
      note('Decoded at the mean alone, the reconstruction term is a different number; the ELBO uses the expectation, not this:'),
      block(katex, TEX.atMu(tagged('recon-at-mu', formatNats(terms.recon))), 'formula-line'),
      note('The KL term has a closed form for a diagonal Gaussian q against N(0, I), one term per dim:'),
      block(katex, TEX.klOfDim, 'formula-line'),
    ];
    const list = document.createElement('ol');
    list.className = 'formula-dims';
    const items = mu.map((m, d) => {
      const item = document.createElement('li');
      item.tabIndex = 0;
      item.dataset.dim = String(d);
      katex.render(TEX.dim(d + 1, formatMu(m), formatSigma(sigma[d]), formatNats(terms.klPerDim[d])), item, OPTIONS);
      pointsAtDim(item, d, store);
      return item;
    });
    list.append(...items);
    parts.push(list, block(katex, TEX.klSum(mu.length, formatNats(terms.kl)), 'formula-line'));
    return { parts, items };
  }

  /**
   * Puts the new lines in place without moving the keyboard user's place: a focused control below the
   * formula keeps its spot on screen as the height changes, and a focused dim's line hands focus on.
   */
  function show({ parts, items }) {
    const focused = document.activeElement;
    const focusedDim = container.contains(focused) ? focused.dataset.dim : undefined;
    const below = focused && focused !== document.body && container.compareDocumentPosition(focused) & Node.DOCUMENT_POSITION_FOLLOWING;
    const top = below ? focused.getBoundingClientRect().top : 0;
    container.replaceChildren(...parts);
    dimItems = items;
    if (below) window.scrollBy(0, focused.getBoundingClientRect().top - top);
    if (focusedDim !== undefined) dimItems[focusedDim]?.focus({ preventScroll: true });
  }

  async function render(state) {
    const mine = ++serial;
    const katex = await loadKatex();
    if (mine !== serial) return;
    const lines = typeset(katex, state);
    // Laid out unseen first, so that KaTeX's fonts are in before the lines take their height on the page
    // (reading offsetHeight lays them out, which asks for the fonts).
    const staging = Object.assign(document.createElement('div'), { className: 'formula-staging' });
    staging.append(...lines.parts);
    container.append(staging);
    void staging.offsetHeight;
    await document.fonts.ready;
    staging.remove();
    if (mine !== serial) return;
    show(lines);
    container.dataset.state = 'current';
    markItems();
  }

  // KaTeX is 0.6 MB of script: nothing is typeset until the panel comes near the screen, and while it is
  // away, changes only mark it stale.
  let visible = false;
  function update() {
    container.dataset.state = 'stale';
    if (visible) render(store.get()).catch((error) => onError(`The ELBO panel failed: ${error.message}`));
  }
  new IntersectionObserver(([entry]) => {
    visible = entry.isIntersecting;
    if (visible && container.dataset.state !== 'current') update();
  }, { rootMargin: '300px' }).observe(panel);
  store.subscribe((state, changed) => {
    if (changed.has('encoded') || changed.has('samples')) update();
  });
  update();
}
