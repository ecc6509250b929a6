// Sets one top-level key of a weights file's `vae_explorer` metadata, in place, and changes nothing
// else: the tensor bytes and every other metadata entry stay byte-identical, and so does the rest of
// the metadata JSON's text. Re-running it with the same value leaves the file as it is.
//
//   node tools/set-metadata.mjs weights/digits.safetensors preprocess '"mnist"'
//
// The value is JSON. The file is written through a temporary file and a rename.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { parseSafetensors, writeSafetensors } from '../tests/web/safetensors.mjs';

const [path, key, valueJson] = process.argv.slice(2);
if (!path || !/^[a-z_]+$/.test(key ?? '') || valueJson === undefined) {
  console.error('usage: node tools/set-metadata.mjs FILE KEY JSON-VALUE   (KEY: lower-case letters and _)');
  process.exit(2);
}
const value = JSON.parse(valueJson);

const bytes = new Uint8Array(readFileSync(path));
const parsed = parseSafetensors(bytes);
const text = parsed.metadata?.vae_explorer;
if (typeof text !== 'string') throw new Error(`${path}: no vae_explorer metadata`);
const meta = JSON.parse(text);

// Edit the text, not a re-serialisation, so that every other value keeps its exact spelling.
const field = `"${key}":`;
const at = text.indexOf(field);
let edited;
if (key in meta) {
  if (at < 0 || text.indexOf(field, at + 1) >= 0) throw new Error(`${path}: "${key}" is not written compactly exactly once`);
  const old = JSON.stringify(meta[key]);
  if (!text.startsWith(old, at + field.length)) throw new Error(`${path}: "${key}"'s value is not written compactly`);
  edited = text.slice(0, at + field.length) + JSON.stringify(value) + text.slice(at + field.length + old.length);
} else {
  const end = text.lastIndexOf('}');
  edited = `${text.slice(0, end)},${field}${JSON.stringify(value)}${text.slice(end)}`;
}
if (!isDeepStrictEqual(JSON.parse(edited), { ...meta, [key]: value })) throw new Error(`${path}: the edit changed more than "${key}"`);
if (edited === text) {
  console.log(`${path}: ${key} is already ${JSON.stringify(value)}`);
  process.exit(0);
}

parsed.metadata.vae_explorer = edited;
const out = writeSafetensors(parsed);
const dataOf = (file) => file.subarray(8 + Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true)));
if (Buffer.compare(Buffer.from(dataOf(bytes)), Buffer.from(dataOf(out))) !== 0) throw new Error(`${path}: the tensor bytes would change`);
const tmp = `${path}.set-metadata.tmp`;
writeFileSync(tmp, out);
renameSync(tmp, path);
console.log(`${path}: ${key} set to ${JSON.stringify(value)}; tensors unchanged`);
