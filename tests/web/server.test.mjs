// The static server: serves only the web root, refuses traversal (plain and encoded), sends the right headers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, spawnServer, startServer, useServer } from './harness.mjs';

const session = useServer();

/** A request with the path sent exactly as written (no client-side normalisation). */
function get(path, { method = 'GET', base = session.server.url } = {}) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const request = http.request({ hostname, port, path, method }, (response) => {
      const chunks = [];
      response.on('data', (c) => chunks.push(c));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** Whether a TCP connection to host:port is accepted. */
function connects(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => socket.end(() => resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

test('binds to 127.0.0.1 only, by default', async () => {
  assert.match(session.server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const { port } = new URL(session.server.url);
  assert.equal(await connects('127.0.0.1', port), true);
  // Another loopback address reaches a server bound to 0.0.0.0, but not one bound to 127.0.0.1.
  assert.equal(await connects('127.0.0.2', port), false, 'reachable on 127.0.0.2: not bound to 127.0.0.1 alone');
});

test('--bind to a non-loopback address warns; a bad address is a clear error', async () => {
  const run = (args) => new Promise((resolve) => {
    const child = spawnServer(['--port', '0', ...args]);
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => {
      err += c;
      if (err.includes('warning')) child.kill('SIGTERM');
    });
    child.on('exit', (code) => resolve({ code, out, err }));
  });
  const open = await run(['--bind', '0.0.0.0']);
  assert.match(open.out, /^serving http:\/\/0\.0\.0\.0:\d+\//);
  assert.match(open.err, /warning: listening on 0\.0\.0\.0: other machines on the network can load the page/);
  const bad = await run(['--bind', '300.1.2.3']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /^error: cannot listen on 300\.1\.2\.3:0: /);
  assert.equal(bad.out, '');
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

// Not speed targets: each checks for a fixed stall that a broken server shows on every request.
test('responses on a kept-alive connection are not held back (no 40 ms wait for a delayed ACK)', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const { hostname, port } = new URL(session.server.url);
  const fetchOne = (path) =>
    new Promise((resolve, reject) => {
      http.get({ hostname, port, path, agent }, (response) => response.resume().on('end', resolve)).on('error', reject);
    });
  try {
    await fetchOne('/www/main.js'); // opens the connection
    const started = performance.now();
    for (const name of ['state', 'latent', 'describe', 'sliders', 'models', 'surfaces', 'offline', 'url-state', 'decoder', 'image-view']) {
      await fetchOne(`/www/${name}.js`);
    }
    const ms = performance.now() - started;
    // About 5 ms here; with Nagle's algorithm on, each response waits about 40 ms (over 400 ms in all).
    assert.ok(ms < 200, `10 requests on one connection took ${ms.toFixed(0)} ms`);
  } finally {
    agent.destroy();
  }
});

test('forty connections at once are all answered, none dropped for a 1 s retry', async () => {
  const started = performance.now();
  const statuses = await Promise.all(Array.from({ length: 40 }, () => get('/www/state.js')));
  const ms = performance.now() - started;
  assert.deepEqual(new Set(statuses.map((r) => r.status)), new Set([200]));
  // A dropped connection costs its client a 1 s wait before it tries again.
  assert.ok(ms < 900, `40 parallel requests took ${ms.toFixed(0)} ms`);
});

test('refuses path traversal and anything outside index.html, www/ and weights/', async () => {
  const refused = [
    '/../Cargo.toml',
    '/www/../Cargo.toml',
    '/www/../../etc/passwd',
    '/%2e%2e/Cargo.toml',
    '/www/%2e%2e/Cargo.toml',
    '/www/%2E%2E/Makefile',
    '/www/%252e%252e/Cargo.toml',
    '/www/..%2fCargo.toml',
    '/weights/..%2f..%2fetc%2fpasswd',
    '/www/..%5cCargo.toml',
    '/www/%00main.js',
    '/Cargo.toml',
    '/Makefile',
    '/tools/serve.py',
    '/tests/web/harness.mjs',
    '/.git/config',
    '/www/',
    '/weights/',
    '/www/./main.js',
    '//Cargo.toml',
    '/www//../Cargo.toml',
    '/index.html/../Cargo.toml',
    '/www/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/www/%25252e%25252e/Cargo.toml',
    '/weights/digits.safetensors%00.txt',
    '/www/..;/Cargo.toml',
    '/WWW/main.js',
    'http://127.0.0.1/../Cargo.toml',
  ];
  for (const path of refused) {
    const response = await get(path);
    assert.equal(response.status, 404, `${path} gave ${response.status}`);
    assert.doesNotMatch(response.body.toString(), /\[package\]|root:/, path);
  }
});

test('MIME types, and the isolation headers on every response, errors included', async () => {
  const types = {
    '/www/style.css': /^text\/css/,
    '/www/pkg/vae_explorer.js': /^text\/javascript/,
    '/weights/digits.safetensors': /^application\/octet-stream$/,
    '/index.html': /^text\/html/,
  };
  for (const [path, type] of Object.entries(types)) {
    const response = await get(path);
    assert.equal(response.status, 200, path);
    assert.match(response.headers['content-type'], type, path);
    assert.equal(response.headers['x-content-type-options'], 'nosniff', path);
  }
  const missing = await get('/www/no-such-module.js');
  assert.equal(missing.status, 404);
  assert.equal(missing.headers['cross-origin-opener-policy'], 'same-origin');
  assert.equal(missing.headers['cross-origin-embedder-policy'], 'require-corp');
});

test('HEAD sends the headers without a body; other methods are refused', async () => {
  const head = await get('/www/pkg/vae_explorer_bg.wasm', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-type'], 'application/wasm');
  assert.ok(Number(head.headers['content-length']) > 100_000);
  assert.equal(head.body.length, 0);
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const response = await get('/index.html', { method });
    assert.equal(response.status, 501, method);
  }
});

test('a symlink inside the web root that points outside it is not followed', async () => {
  const weights = mkdtempSync(join(tmpdir(), 'serve-weights-'));
  writeFileSync(join(weights, 'real.safetensors'), 'inside');
  symlinkSync(join(ROOT, 'Cargo.toml'), join(weights, 'leak.safetensors'));
  symlinkSync(ROOT, join(weights, 'project'));
  const other = await startServer({ weightsDir: weights });
  try {
    const real = await get('/weights/real.safetensors', { base: other.url });
    assert.equal(real.status, 200);
    assert.equal(real.body.toString(), 'inside');
    for (const path of ['/weights/leak.safetensors', '/weights/project/Cargo.toml', '/weights/project/Makefile']) {
      const response = await get(path, { base: other.url });
      assert.equal(response.status, 404, path);
      assert.doesNotMatch(response.body.toString(), /\[package\]/, path);
    }
  } finally {
    await other.stop();
    rmSync(weights, { recursive: true, force: true });
  }
});
