// Which wasm build to run: www/pkg-threads (both cores) or www/pkg (one thread). index.html's early
// start, the model worker and the peer benchmark all decide by this function.

/** True when this page or worker should run the threaded build: it is cross-origin isolated and has more than one core. */
export function shouldUseThreadedBuild() {
  return globalThis.crossOriginIsolated === true && navigator.hardwareConcurrency > 1;
}
