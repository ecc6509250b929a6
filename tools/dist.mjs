// Writes dist/: the explorer as a self-contained static folder that any web server can serve as it is
// (`make dist`; docs/WEB.md, "Offline and any host"). It needs `make build` first and no toolchain after.
//
// dist/ holds the page, its modules (bundled by Rollup, and as they are for other pages), the four wasm
// builds (the explorer's two and the lab's two), KaTeX, the lab's dataset packs, the shipped models' two
// parts, the service worker (www/service-worker.js with Workbox's precache manifest of content hashes),
// Workbox's runtime files, a `_headers` file for hosts that read one, and a short README. It is written
// beside and then renamed into place, so a failed run leaves the old dist/ as it was.
//
//   node tools/dist.mjs [--out DIR] [--weights DIR]
//
// --out writes another folder than dist/ (the tests' copies); --weights takes the models' parts from
// another folder than weights/ (the tests' changed models).

import { rollup } from 'rollup';
import { copyWorkboxLibraries, injectManifest } from 'workbox-build';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: options } = parseArgs({ options: { out: { type: 'string' }, weights: { type: 'string' } } });
const DIST = resolve(options.out ?? join(ROOT, 'dist'));
const WEIGHTS = resolve(options.weights ?? join(ROOT, 'weights'));
const TMP = `${DIST}.tmp`;

/** The isolation headers: hosts that read `_headers` send them; elsewhere the service worker adds them. */
const HEADERS = `/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
  Cross-Origin-Resource-Policy: same-origin
  X-Content-Type-Options: nosniff
/sw.js
  Cache-Control: no-cache
`;

const README = `# VAE latent explorer: the static folder

Serve this folder as it is, from any web server (a school's server, GitHub Pages, Netlify,
\`python3 -m http.server\`). Nothing needs building or installing. The server should send \`.wasm\` as
\`application/wasm\` (most do). Open the folder's address in a browser.

- After one visit the explorer works offline: the service worker (\`sw.js\`) keeps the page, the wasm
  builds (the explorer's and the lab's) and every model and lab dataset that was opened.
- On two cores: hosts that read \`_headers\` (Netlify, Cloudflare Pages) send the cross-origin isolation
  headers the threaded build needs. Elsewhere the service worker adds them from the second visit on;
  until then, and where service workers are off, the explorer runs on one thread.
- Service workers need https, or http://localhost.
- A new version: replace the folder's files. Each browser takes the new files on its next online
  visit, all at once.
`;

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

/** Copies `rel` (a file or folder under the project root) to the same place under TMP. */
function copy(rel, filter) {
  const from = join(ROOT, rel);
  if (!existsSync(from)) fail(`${rel} is missing: run \`make build\` first`);
  mkdirSync(dirname(join(TMP, rel)), { recursive: true });
  cpSync(from, join(TMP, rel), { recursive: true, filter });
}

/** The modules a page or worker starts from; each one's static imports are bundled into it and shared chunks. */
const ENTRIES = ['main', 'worker', 'lab-worker'];
/** The wasm-bindgen modules, which the workers import at run time, stay files of their own. */
const isBindings = (id) => /(^|\/)pkg(-lab)?(-threads)?\//.test(id);

/**
 * Bundles the page's modules into TMP/www: a first visit, and each offline one through the service worker,
 * then asks for a few files before the first image instead of one per module. Returns the files written,
 * each with the files it imports statically.
 */
async function bundleModules() {
  const warnings = [];
  const build = await rollup({
    input: Object.fromEntries(ENTRIES.map((name) => [name, join(ROOT, 'www', `${name}.js`)])),
    external: isBindings,
    preserveEntrySignatures: 'strict',
    onwarn: (warning) => warnings.push(warning.message),
  });
  const { output } = await build.write({ dir: join(TMP, 'www'), format: 'es', entryFileNames: '[name].js', chunkFileNames: 'chunk-[hash].js' });
  await build.close();
  if (warnings.length) fail(`rollup: ${warnings.join('; ')}`);
  return new Map(output.map((file) => [file.fileName, file.imports ?? []]));
}

/** `entry` and every file it imports statically, transitively, among the bundled files. */
function staticClosure(files, entry) {
  const found = new Set();
  const visit = (name) => {
    if (found.has(name) || !files.has(name)) return;
    found.add(name);
    files.get(name).forEach(visit);
  };
  visit(entry);
  return [...found];
}

rmSync(TMP, { recursive: true, force: true });
mkdirSync(TMP, { recursive: true });

// The modules stay too, unbundled, for other pages that import them (docs/WEB.md); the bundles replace the entries.
for (const name of readdirSync(join(ROOT, 'www'))) {
  if (/\.(js|css|json)$/.test(name) && name !== 'service-worker.js') copy(join('www', name));
}
const bundled = await bundleModules();

// The page, told where its service worker is (the development server has none), preloading the bundles.
const page = readFileSync(join(ROOT, 'index.html'), 'utf8');
const tag = '<html lang="en">';
if (page.split(tag).length !== 2) fail(`index.html must hold ${tag} exactly once`);
const preloads = /^ *<link rel="modulepreload" href="[^"]+">\n/gm;
const firstPreload = page.search(preloads);
if (firstPreload < 0) fail('index.html has no module preloads');
// The page's preloads name main.js's modules; the bundles' page preloads main.js's chunks instead.
const preloaded = staticClosure(bundled, 'main.js').filter((name) => name !== 'main.js');
const preloadTags = preloaded.map((name) => `  <link rel="modulepreload" href="www/${name}">\n`).join('');
const bundledPage = page.slice(0, firstPreload) + preloadTags + page.slice(firstPreload).replace(preloads, '');
writeFileSync(join(TMP, 'index.html'), bundledPage.replace(tag, '<html lang="en" data-service-worker="sw.js">'));
copy('www/icons');
const wasmFiles = (path) => !/\.(d\.ts|gitignore)$/.test(path) && !path.endsWith('package.json');
copy('www/pkg', wasmFiles);
copy('www/pkg-threads', wasmFiles);
copy('www/pkg-lab', wasmFiles);
copy('www/pkg-lab-threads', wasmFiles);
copy('www/lab-data');
copy('www/vendor/katex');

// The shipped models, as index.html lists them: each one's decoder part and encoder part.
const listed = page.match(/<script type="application\/json" id="shipped-models">([\s\S]*?)<\/script>/);
if (!listed) fail('index.html has no shipped-models list');
for (const model of JSON.parse(listed[1])) {
  if (!model.encoder) fail(`the shipped model ${model.name} is not split (no "encoder" part)`);
  for (const part of [model.url, model.encoder]) {
    if (dirname(part) !== 'weights') fail(`${part}: shipped models are listed under weights/`);
    const from = join(WEIGHTS, basename(part));
    if (!existsSync(from)) fail(`${from} is missing: run \`make compact-weights\``);
    mkdirSync(join(TMP, 'weights'), { recursive: true });
    cpSync(from, join(TMP, part));
  }
}

const workbox = await copyWorkboxLibraries(join(TMP, 'www', 'vendor'));
renameSync(join(TMP, 'www', 'vendor', workbox), join(TMP, 'www', 'vendor', 'workbox'));

const { count, size, warnings } = await injectManifest({
  swSrc: join(ROOT, 'www', 'service-worker.js'),
  swDest: join(TMP, 'sw.js'),
  globDirectory: TMP,
  globPatterns: [
    'index.html',
    // What the page loads: the bundles, not the modules they hold.
    ...[...bundled.keys()].map((name) => `www/${name}`),
    'www/*.{css,json}',
    'www/icons/*.png',
    // The page loads each module's gzip'd copy (www/wasm-build.js); the plain .wasm stays for embedders.
    'www/pkg/**/*.{js,wasm.gz}',
    'www/pkg-threads/**/*.{js,wasm.gz}',
    'www/pkg-lab/**/*.{js,wasm.gz}',
    'www/pkg-lab-threads/**/*.{js,wasm.gz}',
    'www/lab-data/*.safetensors.gz',
    'www/vendor/katex/**/*.{mjs,css,woff2}',
    'weights/*.safetensors',
  ],
  maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
});
if (warnings.length) fail(`workbox: ${warnings.join('; ')}`);

writeFileSync(join(TMP, '_headers'), HEADERS);
writeFileSync(join(TMP, 'README.md'), README);

rmSync(DIST, { recursive: true, force: true });
renameSync(TMP, DIST);
console.log(`wrote dist/: ${count} files in the service worker's manifest, ${(size / 1e6).toFixed(2)} MB`);
