// Offline use and isolation on any host: registers the service worker of the `make dist` folder
// (www/service-worker.js, served as sw.js) and keeps the models the user opens for offline visits.
// `make serve` sends the isolation headers itself and has no service worker: there, this does nothing.

/** The service worker's URL, which the dist folder's index.html names (data-service-worker); null elsewhere. */
const SCRIPT = document.documentElement.dataset.serviceWorker ?? null;

// When a new version takes over a page that an older one served, the page reloads, so that it never
// goes on with the old page's files and the new files mixed. (On a first visit the first one takes
// over: nothing to reload.) Listening from the start: the browser looks for a new version at once.
if (SCRIPT && navigator.serviceWorker?.controller) {
  navigator.serviceWorker.addEventListener('controllerchange', () => location.reload());
}

/** Registers the service worker; call it once the first image is drawn, as it must never delay that image. */
export function registerServiceWorker() {
  if (!SCRIPT || !('serviceWorker' in navigator)) return Promise.resolve(null);
  return navigator.serviceWorker.register(SCRIPT).catch((error) => {
    console.warn(`offline use is off: the service worker did not register (${error.message})`);
    return null;
  });
}

/**
 * Asks the service worker to keep these shipped model files (cached on first use), once it controls the
 * page. A model opened before it took control (the first visit's) went past it; this fetches it again
 * through it, from the browser's HTTP cache where the host allows.
 */
export async function keepForOffline(urls) {
  if (!SCRIPT || !('serviceWorker' in navigator)) return;
  if (navigator.serviceWorker.controller) return; // it saw this model's requests and keeps them
  await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
  await Promise.all(urls.map((url) => fetch(url).then((response) => response.arrayBuffer()).catch(() => null)));
}
