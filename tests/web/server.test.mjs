// The static server: serves only the web root, refuses traversal (plain and encoded), sends the right headers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer } from './harness.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

/** A GET with the path sent exactly as written (no client-side normalisation). */
function get(path) {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const request = http.request({ hostname, port, path, method: 'GET' }, (response) => {
      const chunks = [];
      response.on('data', (c) => chunks.push(c));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    request.on('error', reject);
    request.end();
  });
}

test('binds to 127.0.0.1', () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
});

test('serves the page with cross-origin isolation headers', async () => {
  const response = await get('/');
  assert.equal(response.status, 200);
  assert.match(response.headers['content-type'], /^text\/html/);
  assert.equal(response.headers['cross-origin-opener-policy'], 'same-origin');
  assert.equal(response.headers['cross-origin-embedder-policy'], 'require-corp');
  assert.match(response.body.toString(), /latent grid/);
});

test('serves wasm as application/wasm, modules as JavaScript', async () => {
  const wasm = await get('/www/pkg/vae_explorer_bg.wasm');
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers['content-type'], 'application/wasm');
  assert.deepEqual([...wasm.body.subarray(0, 4)], [0, 0x61, 0x73, 0x6d]);
  const js = await get('/www/main.js');
  assert.match(js.headers['content-type'], /^text\/javascript/);
  assert.equal(js.headers['cross-origin-embedder-policy'], 'require-corp');
});

test('refuses path traversal and anything outside index.html, www/ and weights/', async () => {
  const refused = [
    '/../Cargo.toml',
    '/www/../Cargo.toml',
    '/www/../../etc/passwd',
    '/%2e%2e/Cargo.toml',
    '/www/%2e%2e/Cargo.toml',
    '/www/%2E%2E/src/web.rs',
    '/www/%252e%252e/Cargo.toml',
    '/www/..%2fCargo.toml',
    '/weights/..%2f..%2fetc%2fpasswd',
    '/www/..%5cCargo.toml',
    '/www/%00main.js',
    '/Cargo.toml',
    '/src/web.rs',
    '/tests/serve.py',
    '/.git/config',
    '/www/',
    '/weights/',
    '/www/./main.js',
  ];
  for (const path of refused) {
    const response = await get(path);
    assert.equal(response.status, 404, `${path} gave ${response.status}`);
    assert.doesNotMatch(response.body.toString(), /\[package\]|root:/, path);
  }
});
