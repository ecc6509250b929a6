// Which wasm build to run: a threaded one (www/pkg-threads, www/pkg-lab-threads: both cores) or one thread, and how to fetch it.
// index.html's early start, the model worker, the lab worker and the peer benchmark all decide by these functions.

/** True when this page or worker should run the threaded build: it is cross-origin isolated and has more than one core. */
export function shouldUseThreadedBuild() {
  return globalThis.crossOriginIsolated === true && navigator.hardwareConcurrency > 1;
}

/** The size of the decoder's thread pool for `threads` decoding threads: the calling thread decodes beside the pool. */
export function decoderPoolSize(threads) {
  return Math.max(1, threads - 1);
}

const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * Compiles one build's module (`pkg`, `pkg-threads`, `pkg-lab` or `pkg-lab-threads`) from its gzip'd copy, so that a host
 * that compresses nothing still sends a third of the bytes. A host that sends it with
 * `Content-Encoding: gzip` (so that it arrives inflated) works too: the first bytes say which it is.
 */
export async function compileBuild(build) {
  const url = new URL(`./${build}/vae_explorer_bg.wasm.gz`, import.meta.url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.pathname}: HTTP ${response.status}`);
  const reader = response.body.getReader();
  let head = new Uint8Array(0);
  let done = false;
  while (head.length < GZIP_MAGIC.length && !done) {
    const chunk = await reader.read();
    done = chunk.done;
    if (!chunk.value) continue;
    const joined = new Uint8Array(head.length + chunk.value.length);
    joined.set(head);
    joined.set(chunk.value, head.length);
    head = joined;
  }
  const body = new ReadableStream({
    start(controller) {
      if (head.length) controller.enqueue(head);
      if (done) controller.close();
    },
    async pull(controller) {
      const chunk = await reader.read();
      if (chunk.done) controller.close();
      else controller.enqueue(chunk.value);
    },
  });
  const gzipped = GZIP_MAGIC.every((byte, i) => head[i] === byte);
  const wasm = gzipped ? body.pipeThrough(new DecompressionStream('gzip')) : body;
  return WebAssembly.compileStreaming(new Response(wasm, { headers: { 'Content-Type': 'application/wasm' } }));
}
