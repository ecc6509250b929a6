// The explorer's service worker, for the static folder `make dist` writes (as dist/sw.js; see docs/WEB.md,
// "Offline and any host"). It makes the page work offline after one visit and adds the cross-origin
// isolation headers that hosts such as GitHub Pages cannot send, so that the threaded build can run.
//
// - The page, its modules and the four wasm builds are precached by Workbox from a manifest of content
//   hashes written at build time: a changed file changes this script, the browser installs the new
//   version, and it replaces the old files all at once when it takes over.
// - The shipped models and the lab's dataset packs are cached when they are opened (cache first), under
//   their content hash from the same manifest; entries of other hashes are deleted when a new version takes over.
// - Every response it serves gets COOP/COEP/CORP, so the page is cross-origin isolated from the second visit.

importScripts('www/vendor/workbox/workbox-sw.js');
workbox.setConfig({ modulePathPrefix: 'www/vendor/workbox/', debug: false });

const WHEN_OPENED_CACHE = 'vae-explorer-models';
const manifest = self.__WB_MANIFEST;
/** The shipped models and the lab's datasets: large, and only some visitors open them. */
const cachedWhenOpened = (entry) => entry.url.startsWith('weights/') || entry.url.startsWith('www/lab-data/');
/** Each of those files' absolute URL -> its cache key, which names its content hash. */
const cachedWhenOpenedKeys = new Map(
  manifest.filter(cachedWhenOpened).map(({ url, revision }) => {
    const absolute = new URL(url, self.registration.scope).href;
    return [absolute, `${absolute}?revision=${revision}`];
  }),
);

/** The same response with the isolation headers, which a static host may not send. */
function withIsolationHeaders(response) {
  if (!response || response.type === 'opaque' || response.status === 0) return response;
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  headers.set('Cross-Origin-Resource-Policy', 'same-origin');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

const isolation = {
  cachedResponseWillBeUsed: ({ cachedResponse }) => withIsolationHeaders(cachedResponse),
  fetchDidSucceed: ({ response }) => withIsolationHeaders(response),
};

workbox.precaching.addPlugins([isolation]);
// The page's own queries (?model=...) and hashes name a view, not another file.
workbox.precaching.precacheAndRoute(manifest.filter((entry) => !cachedWhenOpened(entry)), { ignoreURLParametersMatching: [/.*/] });

workbox.routing.registerRoute(
  ({ url }) => cachedWhenOpenedKeys.has(url.origin + url.pathname),
  new workbox.strategies.CacheFirst({
    cacheName: WHEN_OPENED_CACHE,
    plugins: [
      isolation,
      { cacheKeyWillBeUsed: ({ request }) => cachedWhenOpenedKeys.get(new URL(request.url).origin + new URL(request.url).pathname) },
    ],
  }),
);

// Any other request of the page (none are expected) still gets the headers, or isolation would break.
workbox.routing.setDefaultHandler(new workbox.strategies.NetworkOnly({ plugins: [isolation] }));

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      const current = new Set(cachedWhenOpenedKeys.values());
      const cache = await caches.open(WHEN_OPENED_CACHE);
      for (const request of await cache.keys()) if (!current.has(request.url)) await cache.delete(request);
      await self.clients.claim();
    })(),
  );
});
