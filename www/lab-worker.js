// The β-VAE lab's worker: it owns its own wasm instance (so training never blocks the explorer's
// decoding worker), downloads a dataset pack when asked, and trains a slice of batches at a time,
// yielding between slices so that Pause, a new β or a new learning rate arrive at once.
//
// Requests { id, kind, args } get { id, result } or { id, error }; while training it also posts
// { event: 'progress' | 'heldout', dataset, ... } and, once the loop has stopped, { event: 'stopped', reason }.

/** Aim for slices of about this long, so that a pause waits at most about one slice. */
const SLICE_MS = 80;

let bindingsPromise = null;
let lab = null;
let running = false;
let loopDone = Promise.resolve(); // settles when the current training loop has stopped
let requests = 0; // counts Train, Step, Pause and Reset requests: a later one cancels a waiting Train
let planned = 0; // epochs the settings plan: Train stops there
let epochsDone = 0;
let batchMs = 0; // a running estimate of one batch's time
const packs = new Map(); // dataset name -> inflated bytes

/**
 * Loads the lab's wasm build once: www/pkg-lab-threads (both cores) where the page is cross-origin
 * isolated and its thread pool starts, www/pkg-lab (one thread) otherwise. Both are the explorer's
 * build plus the trainer; `threads` says how many threads train.
 */
function bindings() {
  bindingsPromise ??= (async () => {
    const { compileBuild, shouldUseThreadedBuild } = await import('./wasm-build.js');
    if (shouldUseThreadedBuild()) {
      try {
        return await loadBuild(compileBuild, 'pkg-lab-threads', navigator.hardwareConcurrency);
      } catch (error) {
        console.warn(`the lab trains on one thread: ${error.message ?? error}`);
      }
    }
    return loadBuild(compileBuild, 'pkg-lab', 1);
  })();
  return bindingsPromise;
}

/** Instantiates one lab build and, for `threads` > 1, starts its thread pool. */
async function loadBuild(compileBuild, build, threads) {
  const loaded = await import(`./${build}/vae_explorer.js`);
  await loaded.default({ module_or_path: await compileBuild(build) });
  if (threads > 1) await loaded.initThreadPool(threads);
  return { loaded, threads };
}

/** Downloads and inflates a dataset pack (gzip, by the browser's DecompressionStream). */
async function pack(dataset) {
  if (!packs.has(dataset)) {
    const url = new URL(`./lab-data/${dataset}.safetensors.gz`, import.meta.url);
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url.pathname}: HTTP ${response.status} (run make build)`);
    const inflated = response.body.pipeThrough(new DecompressionStream('gzip'));
    packs.set(dataset, {
      bytes: new Uint8Array(await new Response(inflated).arrayBuffer()),
      served: Number(response.headers.get('Content-Length')) || null,
    });
  }
  return packs.get(dataset);
}

function post(message, transfer = []) {
  self.postMessage(message, transfer);
}

const yieldToMessages = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Clears `running` and waits until the training loop has stopped (its "stopped" event is posted by then). */
async function stopTraining() {
  requests++;
  running = false;
  await loopDone;
}

/**
 * Starts the training loop unless it runs; a loop that is stopping is waited for first. The new loop
 * starts after this request's answer is posted, so the page hears of it before any of its events.
 */
async function startTraining(oneEpoch) {
  if (!lab) throw new Error('no model yet: press Reset');
  if (running) return {};
  const ticket = ++requests;
  await loopDone;
  if (running || ticket !== requests) return {};
  running = true;
  loopDone = yieldToMessages().then(() => trainLoop(oneEpoch));
  return {};
}

/** Trains until paused, until the planned epochs are done, or (`oneEpoch`) to the end of this epoch. */
async function trainLoop(oneEpoch) {
  let stopped = { reason: 'paused' };
  if (!oneEpoch && epochsDone >= planned) {
    running = false;
    stopped = { reason: 'done' };
  }
  while (running) {
    const batches = Math.max(1, Math.round(SLICE_MS / Math.max(batchMs, 1)));
    const start = performance.now();
    let report;
    try {
      report = JSON.parse(lab.train(batches));
    } catch (error) {
      const message = error.message ?? String(error);
      stopped = { reason: message.startsWith('training diverged') ? 'diverged' : 'error', message };
      break;
    }
    const ms = performance.now() - start;
    epochsDone = report.epoch;
    lab.add_seconds(ms / 1000);
    const done = report.batch_losses.length;
    batchMs = batchMs ? 0.7 * batchMs + (0.3 * ms) / done : ms / done;
    const epochsLeft = Math.max(0, planned - report.epoch - report.batch / report.batches);
    const dataset = lab.dataset();
    post({
      event: 'progress',
      dataset,
      report,
      imagesPerSecond: (1000 * report.images) / ms,
      secondsLeft: (epochsLeft * report.batches * batchMs) / 1000,
    });
    if (report.batch === 0) {
      post({ event: 'heldout', dataset, heldOut: JSON.parse(lab.held_out()) });
      if (oneEpoch || report.epoch >= planned) {
        stopped = { reason: oneEpoch ? 'step' : 'done' };
        break;
      }
    }
    await yieldToMessages();
  }
  running = false;
  post({ event: 'stopped', ...stopped });
}

const handlers = {
  /** The settings' limits. */
  async limits() {
    const { loaded, threads } = await bindings();
    return { limits: JSON.parse(loaded.labLimits()), threads };
  },

  /** Checks field texts; resolves to a list of { key, message }. */
  async check({ fields }) {
    const { loaded } = await bindings();
    return JSON.parse(loaded.checkLabSettings(JSON.stringify(fields)));
  },

  /** A new model (Reset): the dataset is downloaded the first time it is asked for. */
  async reset({ dataset, fields }) {
    await stopTraining();
    const { loaded } = await bindings();
    const { bytes, served } = await pack(dataset);
    lab?.free();
    lab = null;
    lab = new loaded.Lab(JSON.stringify(fields), bytes);
    planned = Number(fields.epochs);
    [epochsDone, batchMs] = [0, 0];
    const heldOut = JSON.parse(lab.held_out());
    return { dataset: lab.dataset(), served, heldOut };
  },

  train() {
    return startTraining(false);
  },

  step() {
    return startTraining(true);
  },

  /** Resolves once training has stopped, so that no event of this run follows the answer. */
  async pause() {
    await stopTraining();
    return {};
  },

  /** A live setting: beta or lr, from its field's text. */
  set({ key, text }) {
    if (!lab) return {};
    if (key === 'beta') lab.set_beta(text);
    else if (key === 'lr') lab.set_lr(text);
    else throw new Error(`${key} applies at Reset`);
    return {};
  },

  /** The current model as a weights file (only between slices, so never half a step). */
  export() {
    if (!lab) throw new Error('no model yet: press Reset');
    const bytes = lab.export();
    return { result: { bytes }, transfer: [bytes.buffer] };
  },
};

self.onmessage = async ({ data: { id, kind, args } }) => {
  try {
    const handler = handlers[kind];
    if (!handler) throw new Error(`unknown request "${kind}"`);
    const out = await handler(args ?? {});
    if (out && out.transfer) post({ id, result: out.result }, out.transfer);
    else post({ id, result: out });
  } catch (error) {
    post({ id, error: error.message ?? String(error) });
  }
};
