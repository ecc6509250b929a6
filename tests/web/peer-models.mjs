// The shipped decoder for other runtimes: read from the weights file, written as ONNX, and checked.
// Used by bench-peers.mjs; no other runtime's files are committed, they are made from weights/ each run.

import { readFileSync } from 'node:fs';
import { f32Values, parseSafetensors } from './safetensors.mjs';

/** The decoder's layers from a weights file: [{ weight (Float32Array, [out, in]), bias, out, in }]. */
export function readDecoder(path) {
  const parsed = parseSafetensors(readFileSync(path));
  const meta = JSON.parse(parsed.metadata.vae_explorer);
  const names = meta.decoder_hidden.map((_, j) => `decoder.hidden.${j}`).concat('decoder.out');
  const widths = [meta.latent_dim, ...meta.decoder_hidden, meta.width * meta.height];
  const layers = names.map((name, i) => ({
    name,
    in: widths[i],
    out: widths[i + 1],
    weight: f32Values(parsed, `${name}.weight`, [widths[i + 1], widths[i]]),
    bias: f32Values(parsed, `${name}.bias`, [widths[i + 1]]),
  }));
  if (meta.activation !== 'relu') throw new Error(`activation ${meta.activation}: the benchmark models ReLU only`);
  return { meta, layers };
}

/** Plain float64 decode of a few latent vectors: the reference every runtime is checked against. */
export function referenceDecode(layers, z, n) {
  let h = Float64Array.from(z);
  layers.forEach((layer, i) => {
    const next = new Float64Array(n * layer.out);
    for (let r = 0; r < n; r++) {
      for (let o = 0; o < layer.out; o++) {
        let sum = layer.bias[o];
        for (let k = 0; k < layer.in; k++) sum += h[r * layer.in + k] * layer.weight[o * layer.in + k];
        const last = i === layers.length - 1;
        next[r * layer.out + o] = last ? 1 / (1 + Math.exp(-sum)) : Math.max(sum, 0);
      }
    }
    h = next;
  });
  return h;
}

// ---- a minimal protobuf writer and reader, enough for an ONNX graph of Gemm, Relu and Sigmoid ----

const varint = (value) => {
  const out = [];
  let v = BigInt(value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return Buffer.from(out);
};
const key = (field, wire) => varint((field << 3) | wire);
const int = (field, value) => Buffer.concat([key(field, 0), varint(value)]);
const bytes = (field, value) => {
  const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  return Buffer.concat([key(field, 2), varint(body.length), body]);
};
const message = (field, parts) => bytes(field, Buffer.concat(parts));

const FLOAT = 1;
const tensorProto = (field, name, dims, values) =>
  message(field, [...dims.map((d) => int(1, d)), int(2, FLOAT), bytes(8, name), bytes(9, new Uint8Array(values.buffer))]);
const valueInfo = (field, name, dims) =>
  message(field, [
    bytes(1, name),
    message(2, [message(1, [int(1, FLOAT), message(2, dims.map((d) => message(1, [typeof d === 'string' ? bytes(2, d) : int(1, d)])))])]),
  ]);
const node = (op, inputs, output, attributes = []) =>
  message(1, [...inputs.map((i) => bytes(1, i)), bytes(2, output), bytes(3, `${op}_${output}`), bytes(4, op), ...attributes]);
const intAttribute = (name, value) => message(5, [bytes(1, name), int(3, value), int(20, 2)]);

/** The decoder as an ONNX model (opset 17): Gemm with transB (PyTorch layout as stored), Relu, then Sigmoid. */
export function decoderToOnnx({ layers }) {
  const nodes = [];
  const initializers = [];
  let input = 'z';
  layers.forEach((layer, i) => {
    initializers.push(tensorProto(5, `${layer.name}.weight`, [layer.out, layer.in], layer.weight));
    initializers.push(tensorProto(5, `${layer.name}.bias`, [layer.out], layer.bias));
    const gemm = `${layer.name}.gemm`;
    nodes.push(node('Gemm', [input, `${layer.name}.weight`, `${layer.name}.bias`], gemm, [intAttribute('transB', 1)]));
    input = i === layers.length - 1 ? 'pixels' : `${layer.name}.relu`;
    nodes.push(node(i === layers.length - 1 ? 'Sigmoid' : 'Relu', [gemm], input));
  });
  const graph = message(7, [
    ...nodes,
    bytes(2, 'vae_decoder'),
    ...initializers,
    valueInfo(11, 'z', ['n', layers[0].in]),
    valueInfo(12, 'pixels', ['n', layers.at(-1).out]),
  ]);
  return Buffer.concat([int(1, 8), bytes(2, 'vae-explorer bench'), graph, message(8, [bytes(1, ''), int(2, 17)])]);
}

/** Splits one protobuf message into { field: [values] } (varints as BigInt, length-delimited as Buffers). */
function parseMessage(buffer) {
  const fields = {};
  let at = 0;
  const readVarint = () => {
    let value = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = buffer[at++];
      value |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
  };
  while (at < buffer.length) {
    const tag = Number(readVarint());
    const [field, wire] = [tag >> 3, tag & 7];
    let value;
    if (wire === 0) value = readVarint();
    else if (wire === 2) {
      const length = Number(readVarint());
      value = buffer.subarray(at, at + length);
      at += length;
    } else throw new Error(`unexpected protobuf wire type ${wire}`);
    (fields[field] ??= []).push(value);
  }
  return fields;
}

/** Reads the ONNX file back and checks that every weight and bias equals the weights file's, bit for bit. */
export function checkOnnx(onnx, { layers }) {
  const graph = parseMessage(parseMessage(onnx)[7][0]);
  const stored = new Map(
    graph[5].map((t) => {
      const f = parseMessage(t);
      return [f[8][0].toString('utf8'), { dims: f[1].map(Number), raw: f[9][0] }];
    }),
  );
  let values = 0;
  for (const layer of layers) {
    for (const [suffix, source, dims] of [['weight', layer.weight, [layer.out, layer.in]], ['bias', layer.bias, [layer.out]]]) {
      const name = `${layer.name}.${suffix}`;
      const found = stored.get(name);
      if (!found) throw new Error(`ONNX conversion: ${name} is missing`);
      if (JSON.stringify(found.dims) !== JSON.stringify(dims)) throw new Error(`ONNX conversion: ${name} has dims ${found.dims}`);
      if (!Buffer.from(source.buffer, source.byteOffset, source.byteLength).equals(found.raw)) {
        throw new Error(`ONNX conversion: ${name} differs from the weights file`);
      }
      values += source.length;
    }
  }
  if (stored.size !== 2 * layers.length) throw new Error(`ONNX conversion: ${stored.size} initializers`);
  return values;
}
