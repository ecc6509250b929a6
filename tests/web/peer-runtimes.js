// The peers' decoders for bench-peers.mjs, set up the same way on the page and in a worker.
// A classic script: run it once TF.js (self.tf) or ONNX Runtime Web (self.ort) is there; it defines
// self.peerRuntimes and self.tileGray.

/** Starts each peer on `threads` threads; resolves to { decode(z, n) -> Float32Array, info }. */
self.peerRuntimes = {
  async tfjs({ layers, threads, wasmPaths }) {
    const tf = self.tf;
    tf.wasm.setWasmPaths(wasmPaths);
    if (threads === 1) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    else tf.wasm.setThreadsCount(threads);
    if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not start');
    await tf.ready();
    // Weights go in as [in, out]: tfjs-backend-wasm 4.22's fused matMul adds the bias wrongly with
    // transposeB and more than one row (the output check caught it).
    const tfLayers = layers.map((layer) => ({
      weight: tf.tidy(() => tf.tensor2d(layer.weight, [layer.out, layer.in]).transpose()),
      bias: tf.tensor1d(layer.bias),
    }));
    const latent = layers[0].in;
    const decode = (z, n) => {
      const out = tf.tidy(() => {
        let h = tf.tensor2d(z, [n, latent]);
        tfLayers.forEach(({ weight, bias }, i) => {
          const last = i === tfLayers.length - 1;
          h = tf.fused.matMul({ a: h, b: weight, bias, activation: last ? 'sigmoid' : 'relu' });
        });
        return h;
      });
      const values = out.dataSync();
      out.dispose();
      return values;
    };
    const info = { version: tf.version.tfjs, simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), threads: tf.wasm.getThreadsCount() };
    return { decode, info };
  },

  async ort({ onnx, threads, wasmPaths }) {
    const ort = self.ort;
    ort.env.wasm.wasmPaths = wasmPaths;
    ort.env.wasm.numThreads = threads;
    const session = await ort.InferenceSession.create(onnx, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    const decode = async (z, n) => (await session.run({ z: new ort.Tensor('float32', z, [n, z.length / n]) })).pixels.data;
    return { decode, info: { version: ort.env.versions?.web ?? 'unknown', threads: ort.env.wasm.numThreads } };
  },
};

/**
 * Tiles `side` x `side` decoded images (`values`, intensities, image after image) into one opaque gray
 * RGBA image, one 32-bit store per pixel along each tile row.
 */
self.tileGray = (values, side, width, height) => {
  const pixels = width * height;
  const rgba = new Uint8ClampedArray(side * width * side * height * 4);
  const words = new Uint32Array(rgba.buffer);
  const stride = side * width;
  for (let cell = 0; cell < side * side; cell++) {
    const origin = Math.floor(cell / side) * height * stride + (cell % side) * width;
    for (let y = 0; y < height; y++) {
      const start = origin + y * stride;
      const source = cell * pixels + y * width;
      for (let x = 0; x < width; x++) words[start + x] = 0xff000000 | (((values[source + x] * 255 + 0.5) | 0) * 0x010101);
    }
  }
  return rgba;
};
