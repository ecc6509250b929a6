// The module worker that owns the wasm model, so that no decode ever blocks the page.
// Requests are handled one at a time, in arrival order; the client (decoder.js) keeps the queue short.

import init, { Model } from './pkg/vae_explorer.js';

const wasmReady = init();
let model = null;
let queue = Promise.resolve();

async function fetchBytes(url) {
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
    const [data] = await Promise.all([url ? fetchBytes(url) : new Uint8Array(bytes), wasmReady]);
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
  queue = queue.then(() => handle(event.data));
};
