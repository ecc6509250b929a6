// The module worker that owns the wasm model, so that no decode ever blocks the page.
// Requests are handled one at a time, in arrival order; the client (decoder.js) keeps the queue short.
//
// To start faster, the page may compile the wasm and download the first model itself while this
// worker boots (see index.html): it sends `announce`, then `wasm` and `bytes` when they are ready.

import init, { Model } from './pkg/vae_explorer.js';

let model = null;
let queue = Promise.resolve();
let wasmReady = null;
let earlyWasm = null; // a deferred compiled WebAssembly.Module (or null) the page promised to send
const earlyBytes = new Map(); // url -> deferred bytes (or null) the page promised to send

function deferred() {
  let resolve;
  const promise = new Promise((done) => (resolve = done));
  return { promise, resolve };
}

/** Deliveries from the page: handled on arrival, outside the request queue, which may be waiting for them. */
const deliveries = {
  announce({ url }) {
    earlyWasm = deferred();
    earlyBytes.set(url, deferred());
  },
  wasm({ module }) {
    earlyWasm?.resolve(module);
  },
  bytes({ url, bytes }) {
    earlyBytes.get(url)?.resolve(bytes ? new Uint8Array(bytes) : null);
  },
};

function wasm() {
  wasmReady ??= (async () => {
    const module = await earlyWasm?.promise;
    await init(module ? { module_or_path: module } : undefined);
  })();
  return wasmReady;
}

async function fetchBytes(url) {
  const early = earlyBytes.get(url);
  const delivered = early && (await early.promise);
  earlyBytes.delete(url); // after the delivery: a later load of this url fetches afresh
  if (delivered) return delivered;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function requireModel() {
  if (!model) throw new Error('no model is loaded yet');
  return model;
}

const handlers = {
  async load({ url, bytes }) {
    const [data] = await Promise.all([url ? fetchBytes(url) : new Uint8Array(bytes), wasm()]);
    const start = performance.now();
    const loaded = Model.load(data); // throws on a malformed file; the current model stays
    const ms = performance.now() - start;
    if (model) model.free();
    model = loaded;
    return { result: { meta: JSON.parse(model.metadata()), atlasLen: model.atlas_len, ms } };
  },

  decode({ z, n }) {
    const m = requireModel();
    const start = performance.now();
    const pixels = m.decode(z, n);
    const ms = performance.now() - start;
    return { result: { pixels, n, ms }, transfer: [pixels.buffer] };
  },

  grid({ baseZ, xDim, yDim, xMin, xMax, yMin, yMax, cols, rows }) {
    const m = requireModel();
    const start = performance.now();
    const rgba = m.decode_grid(baseZ, xDim, yDim, xMin, xMax, yMin, yMax, cols, rows);
    const ms = performance.now() - start;
    const width = cols * m.width;
    const height = rows * m.height;
    return { result: { rgba, width, height, cols, rows, ms }, transfer: [rgba.buffer] };
  },

  encode({ pixels }) {
    const m = requireModel();
    return { result: { muLogvar: m.encode(pixels) } };
  },

  elbo({ pixels }) {
    const m = requireModel();
    return { result: { terms: m.elbo_terms(pixels), latentDim: m.latent_dim } };
  },

  atlas() {
    const m = requireModel();
    const result = { pixels: m.atlas_pixels(), labels: m.atlas_labels(), mu: m.atlas_mu() };
    return { result, transfer: [result.pixels.buffer, result.labels.buffer, result.mu.buffer] };
  },
};

async function handle({ id, kind, args }) {
  try {
    const handler = handlers[kind];
    if (!handler) throw new Error(`unknown request kind "${kind}"`);
    const { result, transfer = [] } = await handler(args ?? {});
    self.postMessage({ id, result }, transfer);
  } catch (error) {
    self.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
}

self.onmessage = (event) => {
  const { kind, args } = event.data;
  if (Object.hasOwn(deliveries, kind)) deliveries[kind](args);
  else queue = queue.then(() => handle(event.data));
};
