// The page's handle on the model worker: promise-based requests, coalesced so the latest wins.
//
// For the coalesced kinds (decode, grid) at most one request per lane is in the worker at a time
// (a lane is the kind, or a name the caller gives to decode).
// A newer request replaces the one waiting behind it, whose promise then resolves to null.

export class Decoder {
  #worker;
  #nextId = 1;
  #waiting = new Map(); // id -> { resolve, reject, kind }
  #lanes = new Map(); // kind -> { busy, pending }

  /** Starts the worker, or adopts one the page started early (see index.html). */
  constructor({ worker } = {}) {
    this.#worker = worker ?? new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.#worker.onmessage = (event) => this.#settle(event.data);
    this.#worker.onerror = (event) => {
      const message = event.message || 'the model worker failed to start';
      for (const { reject } of this.#waiting.values()) reject(new Error(message));
      this.#waiting.clear();
    };
  }

  /**
   * Loads a shipped model by URL (with `encoder`, the URL of a split model's encoder part), or a user's
   * file from its bytes (an ArrayBuffer, transferred).
   */
  load(source) {
    if (source.bytes) return this.#send('load', { bytes: source.bytes }, [source.bytes]);
    // Resolve against the page, not the worker script, so that relative URLs mean what the page means.
    const resolve = (url) => url && new URL(url, document.baseURI).href;
    return this.#send('load', { url: resolve(source.url), encoder: resolve(source.encoder) });
  }

  /**
   * Decodes n latent vectors (row-major); resolves to { pixels, n, ms }, or null if superseded.
   * Each `lane` coalesces on its own, so views that decode their own batches never drop each other's.
   */
  decode(z, n = 1, lane = 'decode') {
    return this.#coalesce('decode', { z: Float32Array.from(z), n }, lane);
  }

  /** Decodes a whole 2-D sweep to one RGBA image; resolves to { rgba, width, height, ms }, or null. */
  grid(params) {
    return this.#coalesce('grid', { ...params, baseZ: Float32Array.from(params.baseZ) });
  }

  /** Encodes images (row-major pixels in [0, 1]); resolves to { muLogvar }. */
  encode(pixels) {
    return this.#send('encode', { pixels: Float32Array.from(pixels) });
  }

  /** The ELBO's terms per image: { terms, latentDim }; each image gives recon, total KL, then KL per dim. */
  elbo(pixels) {
    return this.#send('elbo', { pixels: Float32Array.from(pixels) });
  }

  /**
   * Samples q(z|x) for one image with the given standard-normal draws (n rows of latent_dim): resolves
   * to { z, recon, pixels, n }: z = mu + sigma * eps, -log p(x | z) per sample, and the decodes.
   */
  posterior(pixels, eps) {
    return this.#send('posterior', { pixels: Float32Array.from(pixels), eps: Float32Array.from(eps) });
  }

  /** The model's atlas of held-out images: { pixels, labels, mu }. */
  atlas() {
    return this.#send('atlas', {});
  }

  #send(kind, args, transfer = []) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject, kind });
      this.#worker.postMessage({ id, kind, args }, transfer);
    });
  }

  #coalesce(kind, args, laneName = kind) {
    let lane = this.#lanes.get(laneName);
    if (!lane) this.#lanes.set(laneName, (lane = { busy: false, pending: null }));
    return new Promise((resolve, reject) => {
      if (!lane.busy) {
        this.#start(kind, lane, { args, resolve, reject });
        return;
      }
      lane.pending?.resolve(null);
      lane.pending = { args, resolve, reject };
    });
  }

  #start(kind, lane, request) {
    lane.busy = true;
    const finish = () => {
      lane.busy = false;
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

  #settle({ id, result, error }) {
    const waiting = this.#waiting.get(id);
    if (!waiting) return;
    this.#waiting.delete(id);
    if (error !== undefined) waiting.reject(new Error(error));
    else waiting.resolve(result);
  }
}
