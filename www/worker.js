// The module worker that owns the wasm model, so that no decode ever blocks the page.
// Requests are handled one at a time, in arrival order, except that a `decode` (the main image, a strip)
// goes before the grid frames queued ahead of it; the client (decoder.js) keeps the queue short. A
// request built for a model that another has replaced since is answered `stale` and not run.
//
// To start faster, the page may download the first model itself while this worker boots (see
// index.html): it sends `announce`, then `bytes` when they are ready. The worker compiles the wasm.
//
// A shipped model is split in two files (docs/FORMAT.md, "Split models"): the decoder part is loaded and
// drawn with first; the encoder part (the encoder and the atlas) is fetched after the first decode, and
// the requests that need it wait for it without holding up decodes.
//
// Where the browser allows, the page hands over its main image and grid canvases (`surface`, see
// surfaces.js): `decode` and `grid` requests that name one are drawn here and reply without pixels.

import { drawIntensities, drawRgba } from './image-view.js';
import * as wasmBuild from './wasm-build.js';

// Both cores when the page is cross-origin isolated (the threaded build, www/pkg-threads); one otherwise.
const chosenThreaded = wasmBuild.shouldUseThreadedBuild();
const bindingsReady = (async () => {
  if (chosenThreaded) {
    try {
      return { loaded: await import('./pkg-threads/vae_explorer.js'), threaded: true };
    } catch {
      // Not deployed: one thread it is.
    }
  }
  return { loaded: await import('./pkg/vae_explorer.js'), threaded: false };
})();
// The compile runs beside the bindings' import, here rather than on the page, whose thread is busy with
// its own start (parsing, layout, its modules) when the wasm arrives.
const compiled = wasmBuild.compileBuild(chosenThreaded ? 'pkg-threads' : 'pkg').catch(() => null);
let bindings = null;
let Model = null;
let exports = null; // the wasm instance's raw exports
let threadPool = null;
let trapped = null; // the message of a wasm trap: after one, this worker answers nothing else

let model = null;
let modelEpoch = 0; // models loaded so far: a request names the one it was built for (decoder.js)
let queue = Promise.resolve(); // one link per request, each taking the next one from `waiting`
const waiting = []; // requests not yet started, in arrival order
let wasmReady = null;
const earlyBytes = new Map(); // url -> deferred bytes (or null) the page promised to send
const surfaces = new Map(); // surface name -> the OffscreenCanvas the page transferred
let earlyLoad = null; // { url, promise }: the announced model, parsed before the page asks for it
let encoderUrl = null; // the current model's encoder part, when it is a split model
let encoderReady = null; // settles once that part is fetched and added (or has failed)
let encoderError = null; // why it failed

/** Requests that need the encoder or the atlas: a split model answers them once its encoder part is in. */
const NEEDS_ENCODER = new Set(['encode', 'elbo', 'posterior', 'atlas']);

function deferred() {
  let resolve;
  const promise = new Promise((done) => (resolve = done));
  return { promise, resolve };
}

/** Deliveries from the page: handled on arrival, outside the request queue, which may be waiting for them. */
const deliveries = {
  announce({ url, split }) {
    earlyBytes.set(url, deferred());
    // Parse the first model while the page's modules still load; its `load` request then finds it ready.
    earlyLoad = { url, promise: parse(fetchBytes(url), split) };
    earlyLoad.promise.catch(() => {}); // its error reaches the page through that `load` request
  },
  bytes({ url, bytes }) {
    earlyBytes.get(url)?.resolve(bytes ? new Uint8Array(bytes) : null);
  },
  surface({ name, canvas }) {
    surfaces.set(name, canvas);
    // A canvas's first draw waits for Chromium to set up its backing (26-142 ms on a first visit); a
    // transparent draw now does that while this worker still waits for the wasm and the model's bytes.
    if (canvas.width && canvas.height) canvas.getContext('2d').putImageData(new ImageData(canvas.width, canvas.height), 0, 0);
  },
};

/** The OffscreenCanvas a request names, if the page handed it over. */
function surfaceFor(name) {
  return (name && surfaces.get(name)) ?? null;
}

/** Instantiates the bindings once, with the module this worker compiles from its first moment (`compiled`). */
function initWasm() {
  wasmReady ??= (async () => {
    const { loaded, threaded } = await bindingsReady;
    // The build chosen may be missing (not deployed): then the bindings fell back, and so does the module.
    const module = threaded === chosenThreaded ? await compiled : await wasmBuild.compileBuild('pkg').catch(() => null);
    exports = await loaded.default(module ? { module_or_path: module } : undefined);
    [bindings, Model] = [loaded, loaded.Model];
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

/** Loads a model (or a split model's decoder part) once its bytes and the wasm are both here; throws on a malformed file. */
async function parse(bytesPromise, split = false) {
  const [data] = await Promise.all([bytesPromise, initWasm()]);
  const start = performance.now();
  const loaded = split ? Model.load_decoder_part(data) : Model.load(data);
  return { loaded, ms: performance.now() - start };
}

/** Fetches and adds the current model's encoder part, once; later calls return the same promise. */
function fetchEncoderPart() {
  if (!encoderUrl) return Promise.resolve();
  const [target, url] = [model, encoderUrl];
  encoderUrl = null;
  encoderReady = fetchBytes(url)
    .then((bytes) => {
      if (target === model) model.add_encoder_part(bytes); // not if another model was loaded meanwhile
    })
    .catch((error) => {
      if (target === model) encoderError = `the model's encoder part (${url}) did not load: ${error.message ?? error}`;
    });
  return encoderReady;
}

function requireModel() {
  if (!model) throw new Error('no model is loaded yet');
  return model;
}

const handlers = {
  async load({ url, encoder, bytes, preview }) {
    const early = url && earlyLoad?.url === url ? earlyLoad.promise : null;
    if (earlyLoad && !early) earlyLoad.promise.then(({ loaded }) => loaded.free(), () => {}); // not wanted
    earlyLoad = null;
    const { loaded, ms } = await (early ?? parse(url ? fetchBytes(url) : new Uint8Array(bytes), Boolean(encoder)));
    if (model) model.free();
    model = loaded;
    modelEpoch++;
    [encoderUrl, encoderReady, encoderError] = [encoder ?? null, null, null];
    const activeUnitThreshold = bindings.activeUnitThreshold();
    const result = { meta: JSON.parse(model.metadata()), atlasLen: model.atlas_len, activeUnitThreshold, maxGridSide: model.max_grid_side, ms, epoch: modelEpoch };
    if (!preview) return { result };
    // The latent mean's image, the one the page shows first, goes with this reply: the page can show it
    // before it builds its views for the model, and a round trip sooner.
    const first = handlers.decode({ z: Float32Array.from(result.meta.latent_mean), n: 1, surface: preview.surface });
    return { result: { ...result, preview: first.result }, transfer: first.transfer ?? [] };
  },

  decode({ z, n, surface }) {
    const m = requireModel();
    const start = performance.now();
    const pixels = m.decode(z, n);
    const ms = performance.now() - start;
    const canvas = surfaceFor(surface);
    if (canvas) {
      drawIntensities(canvas, pixels, m.width, m.height * n);
      return { result: { n, ms } };
    }
    return { result: { pixels, n, ms }, transfer: [pixels.buffer] };
  },

  grid({ baseZ, xDim, yDim, xMin, xMax, yMin, yMax, cols, rows, surface }) {
    const m = requireModel();
    const start = performance.now();
    // The one copy out of wasm memory: the binding returns the frame as a fresh Uint8Array (in the
    // threaded build too, so ImageData never sees a view on the shared memory, which it refuses).
    const rgba = m.decode_grid(baseZ, xDim, yDim, xMin, xMax, yMin, yMax, cols, rows);
    const ms = performance.now() - start;
    const width = cols * m.width;
    const height = rows * m.height;
    const canvas = surfaceFor(surface);
    if (canvas) {
      drawRgba(canvas, rgba, width, height);
      return { result: { width, height, cols, rows, ms } };
    }
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

  posterior({ pixels, eps }) {
    const m = requireModel();
    const out = m.sample_posterior(pixels, eps);
    const n = eps.length / m.latent_dim;
    const z = out.slice(0, n * m.latent_dim);
    const result = { z, recon: out.slice(n * m.latent_dim), pixels: m.decode(z, n), n };
    return { result, transfer: [result.z.buffer, result.recon.buffer, result.pixels.buffer] };
  },

  atlas() {
    const m = requireModel();
    const result = { pixels: m.atlas_pixels(), labels: m.atlas_labels(), mu: m.atlas_mu() };
    return { result, transfer: [result.pixels.buffer, result.labels.buffer, result.mu.buffer] };
  },

  /** Test-only: a real wasm trap (a read far outside linear memory), so tests can check the page recovers. */
  async crash() {
    await initWasm();
    exports.model_latent_dim(0xfffffff0);
    throw new Error('the wasm module did not trap');
  },
};

/** Starts the wasm thread pool once, after the first image, so that it never delays that image. */
function startThreads() {
  if (threadPool || !bindings?.initThreadPool) return;
  threadPool = bindings
    .initThreadPool(wasmBuild.decoderPoolSize(navigator.hardwareConcurrency))
    .then(() => bindings.useThreadPool())
    .catch((error) => console.warn(`decoding stays on one thread: ${error.message ?? error}`));
}

async function handle({ id, kind, args, epoch }) {
  if (trapped) return self.postMessage({ id, error: trapped, fatal: true });
  // Built for a model that another has replaced since (its shapes may not fit this one): not run.
  if (kind !== 'load' && epoch !== modelEpoch) return self.postMessage({ id, stale: true });
  try {
    const handler = handlers[kind];
    if (!handler) throw new Error(`unknown request kind "${kind}"`);
    if (NEEDS_ENCODER.has(kind) && encoderError && !model?.has_encoder) throw new Error(encoderError);
    const { result, transfer = [] } = await handler(args ?? {});
    self.postMessage({ id, result }, transfer);
    if (kind === 'decode') setTimeout(startThreads, 0); // only the threaded build has a pool
    if (kind === 'decode') setTimeout(fetchEncoderPart, 0); // after the first image: the rest of a split model
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // A trap (a panic aborts as one) may leave the module's memory half-updated: the client restarts us.
    if (error instanceof WebAssembly.RuntimeError) trapped = `${error.name}: ${message}`;
    self.postMessage(trapped ? { id, error: trapped, fatal: true } : { id, error: message });
  }
}

/**
 * Starts the next request: the first one, or a `decode` that waits behind only grid frames. A drag keeps
 * two grid frames here (decoder.js), and the image the user is moving must not wait for both.
 */
async function handleNext() {
  // Messages that came in during the last request are read first: a decode may be among them.
  if (waiting[0]?.kind === 'grid') await messagesRead();
  let next = 0;
  while (waiting[next]?.kind === 'grid') next++;
  if (waiting[next]?.kind !== 'decode') next = 0;
  return handle(waiting.splice(next, 1)[0]);
}

const yieldChannel = new MessageChannel();
/** Resolves once the messages already sent to this worker have been delivered (a task queued after them). */
function messagesRead() {
  return new Promise((resolve) => {
    yieldChannel.port1.onmessage = () => resolve();
    yieldChannel.port2.postMessage(null);
  });
}

function enqueue(request) {
  waiting.push(request);
  queue = queue.then(handleNext);
}

self.onmessage = (event) => {
  const { kind, args } = event.data;
  if (Object.hasOwn(deliveries, kind)) deliveries[kind](args);
  else if (NEEDS_ENCODER.has(kind)) {
    // Waits for the encoder part outside the queue, so that decodes go on meanwhile; requests that need it keep their order among themselves.
    queue
      .then(() => encoderReady ?? fetchEncoderPart())
      .then(() => enqueue(event.data));
  } else enqueue(event.data);
};
