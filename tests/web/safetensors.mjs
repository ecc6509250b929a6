// Reads and writes .safetensors files for the tests and benchmarks: an 8-byte little-endian header
// length, a JSON header, then the tensors' bytes. Plain Uint8Array and DataView, so that the same
// module runs in Node and in a page (the peer benchmark serves it to its page).

/** A file taken apart: { metadata (or null), tensors: [{ name, dtype, shape, data }] } in data order; each `data` is a copy. */
export function parseSafetensors(bytes) {
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const body = bytes.subarray(8 + headerLength);
  const tensors = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0])
    .map(([name, { dtype, shape, data_offsets: [from, to] }]) => ({ name, dtype, shape, data: new Uint8Array(body.subarray(from, to)) }));
  return { metadata: header.__metadata__ ?? null, tensors };
}

/** The file for { metadata, tensors }, with offsets recomputed from the tensors as given (a Uint8Array). */
export function writeSafetensors({ metadata, tensors }) {
  const header = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padding = (8 - (json.length % 8)) % 8; // spaces, so that the tensors start 8-byte aligned
  const file = new Uint8Array(8 + json.length + padding + offset);
  new DataView(file.buffer).setBigUint64(0, BigInt(json.length + padding), true);
  file.set(json, 8);
  file.fill(0x20, 8 + json.length, 8 + json.length + padding);
  let at = 8 + json.length + padding;
  for (const t of tensors) {
    file.set(t.data, at);
    at += t.data.length;
  }
  return file;
}

/** The values of F32 tensor `name` as a Float32Array over its `data` (writes go to the tensor), checked against `shape` if given. */
export function f32Values(parsed, name, shape) {
  const tensor = parsed.tensors.find((t) => t.name === name);
  if (!tensor) throw new Error(`no tensor ${name}`);
  if (tensor.dtype !== 'F32') throw new Error(`${name}: dtype ${tensor.dtype}, expected F32`);
  if (shape && JSON.stringify(tensor.shape) !== JSON.stringify(shape)) {
    throw new Error(`${name}: shape ${JSON.stringify(tensor.shape)}, expected ${JSON.stringify(shape)}`);
  }
  return new Float32Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.length / 4);
}
