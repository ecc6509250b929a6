// The page's handle on the model worker: promise-based requests, coalesced so the latest wins.
//
// For the coalesced kinds (decode, grid) at most one request per lane is in the worker at a time
// (a lane is the kind, or a name the caller gives to decode).
// A newer request replaces the one waiting behind it, whose promise then resolves to null.
//
// Every request names the model it was built for (the worker's count of loaded models, which each load's
// reply carries). One that reaches the worker after another model replaced that one is not run, and
// resolves to null: the page built it from the old model's state, whose shapes may not fit the new one.
//
// If the worker dies (a wasm trap, an uncaught error), every pending promise is rejected with the
// reason, a fresh worker starts and reloads the last model that loaded, and `onRestart` is told.
//
// Each worker gets the page's drawing surfaces (surfaces.js) first: requests that name one it holds are
// drawn there by the worker, and their replies carry no pixels.

/** Restarts in a row, with no successful reply between them, after which the worker is left stopped. */
const MAX_RESTARTS = 3;

/**
 * Grid requests the worker may hold at once: the one it decodes and the next, so that it starts the next
 * frame as soon as one ends, instead of idling until the page has read the reply and sent another.
 */
const GRID_DEPTH = 2;

const startWorker = () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });

export class Decoder {
  #worker;
  #nextId = 1;
  #waiting = new Map(); // id -> { resolve, reject, kind }
  #lanes = new Map(); // lane name -> { inWorker, pending }: requests in the worker, and the one waiting
  #lastGood = null; // the source of the last model that loaded, reloaded after a restart
  #restarts = 0;
  #epoch = 0; // the worker's count of loaded models, from the last load's reply
  #stopped = null; // an Error once the worker keeps failing: every request then rejects with it
  #onRestart;
  #surfaces; // { take() } from surfaces.js, or null
  #drawsOn = new Set(); // the surface names the current worker draws on

  /**
   * Starts the worker, or adopts one the page started early (see index.html). After a crash,
   * `onRestart({ reason, reloaded })` gets the reason and a promise for the reload of the last model
   * (it resolves to false when no model had loaded yet). `surfaces` (surfaces.js) are handed to each worker.
   */
  constructor({ worker, onRestart = () => {}, surfaces = null } = {}) {
    this.#onRestart = onRestart;
    this.#surfaces = surfaces;
    this.#adopt(worker ?? startWorker());
  }

  #adopt(worker) {
    this.#worker = worker;
    this.#epoch = 0; // a fresh worker has loaded nothing
    this.#drawsOn = new Set();
    for (const { name, canvas } of this.#surfaces?.take() ?? []) {
      worker.postMessage({ kind: 'surface', args: { name, canvas } }, [canvas]);
      this.#drawsOn.add(name);
    }
    worker.onmessage = (event) => this.#settle(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      this.#crashed(event.message || 'the model worker failed to start');
    };
    worker.onmessageerror = () => this.#crashed('a reply from the model worker could not be read');
  }

  /** Ends the dead worker, rejects everything pending with `reason`, and starts a fresh one. */
  #crashed(reason) {
    this.#worker.terminate();
    const error = new Error(`the model worker stopped: ${reason}`);
    for (const { reject } of this.#waiting.values()) reject(error);
    this.#waiting.clear();
    for (const lane of this.#lanes.values()) lane.pending?.reject(error);
    this.#lanes = new Map(); // the old lanes' in-flight requests were rejected above
    if (++this.#restarts > MAX_RESTARTS) {
      this.#stopped = new Error(`the model worker keeps failing (${reason}); reload the page`);
      return;
    }
    this.#adopt(startWorker());
    const source = this.#lastGood;
    const reloaded = source ? this.load(source).then(() => true) : Promise.resolve(false);
    reloaded.catch(() => {}); // onRestart reports it
    this.#onRestart({ reason, reloaded });
  }

  /**
   * Loads a shipped model by URL (with `encoder`, the URL of a split model's encoder part), or a user's
   * file from its bytes (an ArrayBuffer); remembers it once it loads. With `previewSurface`, the reply's
   * `preview` is the decode of the latent mean: drawn on that surface if the worker holds it, else its `pixels`.
   */
  load(source, previewSurface = null) {
    // Bytes are copied, not transferred: they are kept to reload the model after a restart.
    // URLs resolve against the page, not the worker script, so that they mean what the page means.
    const resolve = (url) => url && new URL(url, document.baseURI).href;
    const args = source.bytes ? { bytes: source.bytes } : { url: resolve(source.url), encoder: resolve(source.encoder) };
    if (previewSurface) args.preview = { surface: this.#surface(previewSurface) };
    return this.#send('load', args).then((result) => {
      this.#epoch = result.epoch;
      this.#lastGood = source;
      return result;
    });
  }

  /** Test-only: makes the worker's wasm trap, as a hostile input once could, to exercise the restart. */
  crashForTest() {
    return this.#send('crash', {});
  }

  /** Whether the worker draws on surface `name` itself (then its replies carry no pixels). */
  drawsOn(name) {
    return this.#drawsOn.has(name);
  }

  /**
   * Decodes n latent vectors (row-major); resolves to { pixels, n, ms }, or null if superseded.
   * Each `lane` coalesces on its own, so views that decode their own batches never drop each other's.
   * With a `surface` the worker draws on, the worker draws the image there and `pixels` is absent.
   */
  decode(z, n = 1, lane = 'decode', surface = null) {
    return this.#coalesce('decode', { z: Float32Array.from(z), n, surface: this.#surface(surface) }, lane);
  }

  /**
   * Decodes a whole 2-D sweep to one RGBA image; resolves to { rgba, width, height, ms }, or null.
   * When the worker draws on surface 'grid', it draws the image there and `rgba` is absent.
   */
  grid(params) {
    const args = { ...params, baseZ: Float32Array.from(params.baseZ), surface: this.#surface('grid') };
    return this.#coalesce('grid', args, 'grid', GRID_DEPTH);
  }

  #surface(name) {
    return name && this.#drawsOn.has(name) ? name : null;
  }

  /** Encodes images (row-major pixels in [0, 1]); resolves to { muLogvar }, or null (see the top). */
  encode(pixels) {
    return this.#send('encode', { pixels: Float32Array.from(pixels) });
  }

  /** The ELBO's terms per image: { terms, latentDim }, or null; each image gives recon, total KL, then KL per dim. */
  elbo(pixels) {
    return this.#send('elbo', { pixels: Float32Array.from(pixels) });
  }

  /**
   * Samples q(z|x) for one image with the given standard-normal draws (n rows of latent_dim): resolves
   * to { z, recon, pixels, n } (or null): z = mu + sigma * eps, -log p(x | z) per sample, and the decodes.
   */
  posterior(pixels, eps) {
    return this.#send('posterior', { pixels: Float32Array.from(pixels), eps: Float32Array.from(eps) });
  }

  /** The model's atlas of held-out images: { pixels, labels, mu }, or null. */
  atlas() {
    return this.#send('atlas', {});
  }

  #send(kind, args) {
    if (this.#stopped) return Promise.reject(this.#stopped);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject, kind });
      this.#worker.postMessage({ id, kind, args, epoch: this.#epoch });
    });
  }

  #coalesce(kind, args, laneName = kind, depth = 1) {
    let lane = this.#lanes.get(laneName);
    if (!lane) this.#lanes.set(laneName, (lane = { inWorker: 0, pending: null }));
    return new Promise((resolve, reject) => {
      if (lane.inWorker < depth) {
        this.#start(kind, lane, { args, resolve, reject });
        return;
      }
      lane.pending?.resolve(null);
      lane.pending = { args, resolve, reject };
    });
  }

  #start(kind, lane, request) {
    lane.inWorker++;
    const finish = () => {
      lane.inWorker--;
      const next = lane.pending;
      lane.pending = null;
      if (next) this.#start(kind, lane, next);
    };
    this.#send(kind, request.args).then(
      (result) => {
        finish();
        request.resolve(result);
      },
      (error) => {
        finish();
        request.reject(error);
      },
    );
  }

  #settle({ id, result, error, fatal, stale }) {
    if (fatal) return this.#crashed(error); // a trap: the wasm instance cannot be trusted any more
    const waiting = this.#waiting.get(id);
    if (!waiting) return;
    this.#waiting.delete(id);
    if (stale) return waiting.resolve(null);
    if (error !== undefined) return waiting.reject(new Error(error));
    this.#restarts = 0;
    waiting.resolve(result);
  }
}
