//! The decoder's forward pass as one cache-blocked SIMD kernel, for the browser's hot path.
//!
//! Weights are packed once into 8-column panels; each layer's bias and activation, the final
//! sigmoid and the RGBA conversion are fused into the same passes, and the scratch memory is kept
//! between calls. The same code runs natively (plain lanes) so tests compare it with the candle
//! model; on wasm32 it uses SIMD128, with fused multiply-add when built with `relaxed-simd`.

use std::cell::RefCell;

use candle_core::Result;

use super::lanes::F4;
use crate::core::model::{Activation, Dense, Mlp};

/// Output columns per weight panel: two 4-lane vectors.
const PANEL: usize = 8;
/// Rows one pass carries through every layer, so that its activations stay in cache: 16 rows of the
/// shipped decoder's widest input (512) are 32 KB, one core's L1 data cache here. Measured in Chromium
/// against 48 (one thread): 8-9% faster at batch 256 and 1024, 15% on a 16x16 grid.
pub const ROW_BLOCK: usize = 16;
/// Most values in each of a thread's two scratch buffers (4 MB): wide layers get fewer rows per pass.
const MAX_SCRATCH_VALUES: usize = 1 << 20;

/// Rows per pass for activation rows `widest` values wide: ROW_BLOCK, or fewer (at least 1) so that
/// a pass fits MAX_SCRATCH_VALUES; a 1024x1024 output is decoded one image per pass.
pub fn block_rows(widest: usize) -> usize {
    (MAX_SCRATCH_VALUES / widest.max(1)).clamp(1, ROW_BLOCK)
}

/// Items per rayon task for `n` items on `threads` threads: the size, at most `most`, that gives the
/// busiest thread the least work (the largest such size, for the fewest hand-offs), so that no thread is
/// left with a short last task while another works on (300 rows on 2 threads: 20 tasks of 15 rows, 150
/// per thread, not 18 of 16 and one of 12, 160 for one thread).
pub fn balanced_task_size(n: usize, threads: usize, most: usize) -> usize {
    let threads = threads.max(1);
    let busiest = |size: usize| n.div_ceil(size).div_ceil(threads) * size;
    (1..=most.max(1))
        .rev()
        .min_by_key(|&size| busiest(size))
        .unwrap_or(1)
}

/// The scratch values one thread keeps for activation rows `widest` values wide: a pass's input and output.
pub fn scratch_values(widest: usize) -> usize {
    2 * block_rows(widest) * widest
}
/// Rows per register tile.
const TILE_ROWS: usize = 4;
/// Row groups in one pass: ROW_BLOCK / TILE_ROWS whole tiles, or fewer and then a pair and a single row.
const MAX_GROUPS: usize = ROW_BLOCK / TILE_ROWS + 2;

/// Appends each input `k` (ascending) at which some row of `rows` is not zero. A tile adds only those:
/// the other terms are exact zeros, so no output changes. After ReLU about half the inputs are zero,
/// and neighbouring grid cells mostly share them (the digits grid needs 53% of the multiply-adds).
fn push_nonzero_inputs(
    x: &[f32],
    k_len: usize,
    rows: std::ops::Range<usize>,
    active: &mut Vec<u32>,
) {
    for k in 0..k_len {
        if rows.clone().any(|r| x[r * k_len + k] != 0.0) {
            active.push(k as u32);
        }
    }
}

/// e^x for x in [-88, 88] (inputs are clamped there), to about 2 ulp: 2^n * poly(r), r = x - n ln 2.
#[inline(always)]
fn exp(x: F4) -> F4 {
    let x = x.max(F4::splat(-87.0)).min(F4::splat(88.0));
    let n = x
        .mul(F4::splat(std::f32::consts::LOG2_E))
        .add(F4::splat(0.5))
        .floor();
    // ln 2 split in two so that n * ln2 is exact to f32 precision (Cody-Waite).
    let r = n.mul_add(F4::splat(-0.693_359_4), x);
    let r = n.mul_add(F4::splat(2.121_944_4e-4), r);
    let mut p = F4::splat(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = p.mul_add(r, F4::splat(c));
    }
    let r2 = r.mul(r);
    let e = p.mul_add(r2, r.add(F4::splat(1.0)));
    e.mul(n.exp2_int())
}

/// 1 / (1 + e^-x).
#[inline(always)]
fn sigmoid(x: F4) -> F4 {
    let one = F4::splat(1.0);
    one.div(one.add(exp(x.mul(F4::splat(-1.0)))))
}

/// One dense layer, packed for the kernel: `out = act(x @ w + b)`.
#[derive(Debug, Clone)]
struct PackedLayer {
    /// Input width, rounded up to a whole panel (the previous layer's padded output).
    inputs: usize,
    /// Output width, rounded up to a whole panel; padded columns have zero weights and bias.
    outputs: usize,
    /// `outputs / PANEL` panels, each `[inputs][PANEL]` row-major.
    panels: Vec<f32>,
    /// `[outputs]`.
    bias: Vec<f32>,
}

const fn round_up(n: usize) -> usize {
    n.div_ceil(PANEL) * PANEL
}

impl PackedLayer {
    /// Packs a candle layer (`weight` `[in, out]`) whose input is padded to `inputs` columns.
    fn pack(dense: &Dense, inputs: usize) -> Result<Self> {
        let (fan_in, fan_out) = dense.weight.dims2()?;
        let weight = dense.weight.flatten_all()?.to_vec1::<f32>()?;
        let bias = dense.bias.to_vec1::<f32>()?;
        if fan_in > inputs {
            candle_core::bail!("layer takes {fan_in} inputs but the previous layer gives {inputs}");
        }
        let outputs = round_up(fan_out);
        let mut panels = vec![0.0; outputs * inputs];
        for (k, row) in weight.chunks_exact(fan_out).enumerate() {
            for (j, &w) in row.iter().enumerate() {
                panels[(j / PANEL) * inputs * PANEL + k * PANEL + j % PANEL] = w;
            }
        }
        let mut padded_bias = vec![0.0; outputs];
        padded_bias[..fan_out].copy_from_slice(&bias);
        Ok(Self {
            inputs,
            outputs,
            panels,
            bias: padded_bias,
        })
    }

    /// `out[r] = x[r] @ w + b` (then ReLU if `relu`) for `rows` rows (at most ROW_BLOCK); row strides
    /// are `inputs` and `outputs`. `active` is scratch for the inputs each group of rows uses.
    ///
    /// Whole groups of TILE_ROWS rows go one panel at a time. The last one to three rows, which is every
    /// row of a small batch (the main image, a strip, a traversal), take two or four panels per tile
    /// instead, so that eight independent sums hide the multiply-add latency of a matrix-vector product.
    fn forward(&self, x: &[f32], rows: usize, out: &mut [f32], relu: bool, active: &mut Vec<u32>) {
        assert!(
            rows <= ROW_BLOCK && x.len() >= rows * self.inputs && out.len() >= rows * self.outputs
        );
        let panels = self.outputs / PANEL;
        let tiled = rows - rows % TILE_ROWS;
        // Each group's inputs, in the order the tiles below take the groups.
        let mut groups = [(0, 0, 0, 0); MAX_GROUPS]; // (first row, rows, its inputs' span in `active`)
        let mut count = 0;
        active.clear();
        let mut first = 0;
        for size in std::iter::repeat_n(TILE_ROWS, tiled / TILE_ROWS).chain([2, 1]) {
            if first + size > rows {
                continue;
            }
            let start = active.len();
            push_nonzero_inputs(x, self.inputs, first..first + size, active);
            groups[count] = (first, size, start, active.len());
            count += 1;
            first += size;
        }
        // The whole tiles come first; then the pair and the single row, if any.
        let (whole, rest) = groups[..count].split_at(tiled / TILE_ROWS);
        for p in 0..panels {
            for &(first, _, start, end) in whole {
                self.tile::<TILE_ROWS, 1>(x, first, p, &active[start..end], out, relu);
            }
        }
        for &(first, size, start, end) in rest {
            let used = &active[start..end];
            let mut p = 0;
            if size == 2 {
                while p + 2 <= panels {
                    self.tile::<2, 2>(x, first, p, used, out, relu);
                    p += 2;
                }
                if p < panels {
                    self.tile::<2, 1>(x, first, p, used, out, relu);
                }
            } else {
                while p + 4 <= panels {
                    self.tile::<1, 4>(x, first, p, used, out, relu);
                    p += 4;
                }
                for p in p..panels {
                    self.tile::<1, 1>(x, first, p, used, out, relu);
                }
            }
        }
    }

    /// Rows `first..first + R` times panels `p..p + C`: `R x C x PANEL` outputs held in registers across
    /// the sum over the inputs `used` (ascending), each summed in the same order whatever the tile's shape.
    #[inline(always)]
    fn tile<const R: usize, const C: usize>(
        &self,
        x: &[f32],
        first: usize,
        p: usize,
        used: &[u32],
        out: &mut [f32],
        relu: bool,
    ) {
        let (k_len, ldo) = (self.inputs, self.outputs);
        let panel_len = k_len * PANEL;
        debug_assert!(x.len() >= (first + R) * k_len && self.panels.len() >= (p + C) * panel_len);
        debug_assert!(out.len() >= (first + R) * ldo && (p + C) * PANEL <= ldo);
        // SAFETY: forward() checked that x holds `rows * inputs` values and out `rows * outputs`;
        // first + R <= rows, every k in `used` is below `inputs`, and panels p..p + C exist, each
        // `inputs * PANEL` long, with their columns below `outputs`.
        unsafe {
            let b = self.bias.as_ptr().add(p * PANEL);
            let mut acc = [[[F4::splat(0.0); 2]; C]; R];
            for row in acc.iter_mut() {
                for (c, a) in row.iter_mut().enumerate() {
                    *a = [F4::load(b.add(c * PANEL)), F4::load(b.add(c * PANEL + 4))];
                }
            }
            let xs = x.as_ptr().add(first * k_len);
            let w = self.panels.as_ptr().add(p * panel_len);
            for &k in used {
                let k = k as usize;
                debug_assert!(k < k_len);
                let xv: [F4; R] = std::array::from_fn(|i| F4::load_splat(xs.add(i * k_len + k)));
                for c in 0..C {
                    let wc = w.add(c * panel_len + k * PANEL);
                    let (w0, w1) = (F4::load(wc), F4::load(wc.add(4)));
                    for (a, xv) in acc.iter_mut().zip(xv) {
                        a[c][0] = xv.mul_add(w0, a[c][0]);
                        a[c][1] = xv.mul_add(w1, a[c][1]);
                    }
                }
            }
            let zero = F4::splat(0.0);
            for (i, row) in acc.iter().enumerate() {
                for (c, a) in row.iter().enumerate() {
                    let o = out.as_mut_ptr().add((first + i) * ldo + (p + c) * PANEL);
                    let (a0, a1) = if relu {
                        (a[0].max(zero), a[1].max(zero))
                    } else {
                        (a[0], a[1])
                    };
                    a0.store(o);
                    a1.store(o.add(4));
                }
            }
        }
    }
}

/// How the final pass writes its pixels.
pub enum PixelSink<'a> {
    /// Intensities in [0, 1], `[n, pixels]` row-major.
    Intensities(&'a mut [f32]),
    /// One opaque gray RGBA image of `cols` x `rows` tiles of `width` x `height`, gray = round(255 x intensity).
    Tiles {
        /// The image, `(rows * height) * (cols * width) * 4` bytes.
        rgba: &'a mut [u8],
        /// Tiles per row.
        cols: usize,
        /// Tile width in pixels.
        width: usize,
        /// Tile height in pixels.
        height: usize,
    },
}

thread_local! {
    /// Per-thread activations and each row group's inputs, kept between calls so that a warm decode
    /// allocates none of them.
    static SCRATCH: RefCell<(Vec<f32>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `work` on every task, on the calling thread and on each of rayon's threads at once, each taking
/// the next task from a shared counter. The caller starts at once instead of waiting for the pool to
/// wake, and a thread that wakes late takes fewer tasks. (In the browser the pool has one thread fewer
/// than the cores, since the model worker's own thread decodes too.)
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
fn share_tasks<T: Send>(tasks: Vec<T>, work: impl Fn(T) + Sync) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let slots: Vec<Mutex<Option<T>>> = tasks.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let next = AtomicUsize::new(0);
    let take_tasks = || {
        while let Some(slot) = slots.get(next.fetch_add(1, Ordering::Relaxed)) {
            // Each index is taken once, so the lock is never contended.
            if let Some(task) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                work(task);
            }
        }
    };
    rayon::in_place_scope(|scope| {
        for _ in 0..rayon::current_num_threads() {
            scope.spawn(|_| take_tasks());
        }
        take_tasks();
    });
}

/// A decoder packed for fast batched forward passes; built once per model from its candle weights.
#[derive(Debug, Clone)]
pub struct PackedDecoder {
    layers: Vec<PackedLayer>,
    activation: Activation,
    latent_dim: usize,
    pixels: usize,
}

impl PackedDecoder {
    /// Packs the decoder `Mlp` of a loaded `Vae`.
    pub fn new(decoder: &Mlp) -> Result<Self> {
        let latent_dim = match decoder.hidden.first() {
            Some(first) => first.weight.dims2()?.0,
            None => decoder.out.weight.dims2()?.0,
        };
        let mut layers = Vec::with_capacity(decoder.hidden.len() + 1);
        let mut inputs = latent_dim;
        for dense in decoder.hidden.iter().chain(std::iter::once(&decoder.out)) {
            let layer = PackedLayer::pack(dense, inputs)?;
            inputs = layer.outputs;
            layers.push(layer);
        }
        Ok(Self {
            layers,
            activation: decoder.activation,
            latent_dim,
            pixels: decoder.out.weight.dims2()?.1,
        })
    }

    /// Dimensions of z.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    /// Output values per image.
    pub fn pixels(&self) -> usize {
        self.pixels
    }

    /// The widest activation row, which sizes the scratch memory: every layer's padded output and
    /// input, so the latent counts too (the first layer's input, which may be wider than every layer).
    fn widest(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.outputs.max(l.inputs))
            .max()
            .unwrap_or(0)
    }

    /// Decodes every vector of `z` (`[n, latent_dim]`) into `sink`, on rayon's pool when `parallel` is set.
    ///
    /// Natively rayon is always there; on wasm32 only in the `threads` build, and only once the page has
    /// started the pool, which the caller says through `parallel`. Elsewhere this runs serially.
    pub fn decode(&self, z: &[f32], mut sink: PixelSink, parallel: bool) {
        #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
        if parallel && z.len() > ROW_BLOCK * self.latent_dim {
            let latent = self.latent_dim;
            let threads = rayon::current_num_threads() + 1; // the calling thread decodes too
            match sink {
                PixelSink::Intensities(out) => {
                    let rows = balanced_task_size(z.len() / latent, threads, ROW_BLOCK);
                    let tasks = out
                        .chunks_mut(rows * self.pixels)
                        .zip(z.chunks(rows * latent));
                    share_tasks(tasks.collect(), |(o, z)| {
                        self.decode_rows(z, 0, &mut PixelSink::Intensities(o))
                    });
                }
                PixelSink::Tiles {
                    rgba,
                    cols,
                    width,
                    height,
                } => {
                    // Whole rows of tiles per task, at most about one row block of images each.
                    let grid_rows = z.len() / latent / cols;
                    let tile_rows = balanced_task_size(grid_rows, threads, ROW_BLOCK / cols);
                    let tasks = rgba
                        .chunks_mut(tile_rows * height * cols * width * 4)
                        .zip(z.chunks(tile_rows * cols * latent));
                    share_tasks(tasks.collect(), |(o, z)| {
                        let mut part = PixelSink::Tiles {
                            rgba: o,
                            cols,
                            width,
                            height,
                        };
                        self.decode_rows(z, 0, &mut part)
                    });
                }
            }
            return;
        }
        let _ = parallel;
        self.decode_rows(z, 0, &mut sink);
    }

    /// Decodes images `first..first + z.len() / latent_dim` (their index in the whole call) into `sink`.
    ///
    /// `z` is `[n, latent_dim]`; the caller checks sizes. Callers may split one call into row ranges
    /// and run them on different threads, as long as each range writes its own part of the sink.
    pub fn decode_rows(&self, z: &[f32], first: usize, sink: &mut PixelSink) {
        let n = z.len() / self.latent_dim;
        let widest = self.widest();
        let per_pass = block_rows(widest);
        SCRATCH.with(|cell| {
            let (scratch, active) = &mut *cell.borrow_mut();
            let need = scratch_values(widest);
            if scratch.len() < need {
                scratch.resize(need, 0.0);
            }
            active.reserve(MAX_GROUPS * widest);
            let (ping, pong) = scratch[..need].split_at_mut(need / 2);
            let mut start = 0;
            while start < n {
                let rows = per_pass.min(n - start);
                let block = &z[start * self.latent_dim..(start + rows) * self.latent_dim];
                let logits = self.forward_block(block, rows, ping, pong, active);
                self.finish_block(logits, rows, first + start, sink);
                start += rows;
            }
        });
    }

    /// Runs every layer on up to `block_rows` rows; returns the logits, `[rows, outputs]`.
    fn forward_block<'s>(
        &self,
        z: &[f32],
        rows: usize,
        mut a: &'s mut [f32],
        mut b: &'s mut [f32],
        active: &mut Vec<u32>,
    ) -> &'s mut [f32] {
        // Widen z to the first layer's padded input (a no-op when latent_dim is a multiple of 8).
        let inputs = self.layers[0].inputs;
        for (r, src) in z.chunks_exact(self.latent_dim).enumerate() {
            let dst = &mut a[r * inputs..(r + 1) * inputs];
            dst[..self.latent_dim].copy_from_slice(src);
            dst[self.latent_dim..].fill(0.0);
        }
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let hidden = i < last;
            let relu = hidden && self.activation == Activation::Relu;
            layer.forward(a, rows, b, relu, active);
            if hidden && self.activation == Activation::Tanh {
                b[..rows * layer.outputs]
                    .iter_mut()
                    .for_each(|v| *v = v.tanh());
            }
            std::mem::swap(&mut a, &mut b);
        }
        &mut a[..rows * self.layers[last].outputs]
    }

    /// Sigmoid and output, in place over the logits of images `first..first + rows`.
    fn finish_block(&self, logits: &mut [f32], rows: usize, first: usize, sink: &mut PixelSink) {
        let stride = self.layers[self.layers.len() - 1].outputs;
        let pixels = self.pixels;
        for (r, line) in logits.chunks_exact_mut(stride).take(rows).enumerate() {
            let image = first + r;
            match sink {
                PixelSink::Intensities(out) => {
                    for quad in line.chunks_exact_mut(4) {
                        // SAFETY: `quad` holds exactly four f32 values.
                        unsafe { sigmoid(F4::load(quad.as_ptr())).store(quad.as_mut_ptr()) };
                    }
                    out[image * pixels..(image + 1) * pixels].copy_from_slice(&line[..pixels]);
                }
                PixelSink::Tiles {
                    rgba,
                    cols,
                    width,
                    height,
                } => {
                    let (half, scale) = (F4::splat(0.5), F4::splat(255.0));
                    for quad in line.chunks_exact_mut(4) {
                        // SAFETY: `quad` holds exactly four f32 values; the result is stored as RGBA bits.
                        unsafe {
                            let gray = sigmoid(F4::load(quad.as_ptr()))
                                .mul_add(scale, half)
                                .floor();
                            gray.gray_rgba().store(quad.as_mut_ptr());
                        }
                    }
                    let (tile_row, tile_col) = (image / *cols, image % *cols);
                    let stride_px = *cols * *width;
                    for (y, src) in line[..pixels]
                        .chunks_exact(*width)
                        .take(*height)
                        .enumerate()
                    {
                        let at = ((tile_row * *height + y) * stride_px + tile_col * *width) * 4;
                        let dst = &mut rgba[at..at + *width * 4];
                        for (d, s) in dst.chunks_exact_mut(4).zip(src) {
                            d.copy_from_slice(&s.to_bits().to_le_bytes());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{matrix, ModelConfig, Vae};
    use rand::SeedableRng;

    fn model(latent: usize, hidden: &[usize], pixels: usize, activation: Activation) -> Vae {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut config = ModelConfig::mirrored(pixels, latent, hidden);
        config.activation = activation;
        Vae::init(&config, &mut rng).unwrap()
    }

    fn latents(n: usize, latent: usize) -> Vec<f32> {
        (0..n * latent)
            .map(|i| ((i * 37 % 101) as f32 / 101.0 - 0.5) * 6.0)
            .collect()
    }

    fn reference(vae: &Vae, z: &[f32], n: usize) -> Vec<f32> {
        let t = matrix(z, n, vae.config.latent_dim).unwrap();
        vae.decode(&t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn skipping_zero_inputs_changes_no_bit() {
        let vae = model(8, &[64], 40, Activation::Relu);
        let layer = PackedLayer::pack(&vae.decoder.out, 64).unwrap();
        // Rows with zeros at random places, some inputs zero in every row, and one row all zero.
        let rows = 7;
        let x: Vec<f32> = (0..rows * 64)
            .map(|i| match (i * 7919) % 5 {
                0 | 1 => 0.0,
                2 if i % 64 < 20 => -0.0,
                _ if i / 64 == 4 || i % 64 >= 56 => 0.0,
                v => v as f32 * 0.3 - (i % 13) as f32 * 0.1,
            })
            .collect();
        let mut active = Vec::new();
        let mut skipped = vec![0.0; rows * layer.outputs];
        layer.forward(&x, rows, &mut skipped, true, &mut active);
        assert!(active.len() < 6 * 64, "some inputs were skipped");
        // Every input, one row at a time.
        let every: Vec<u32> = (0..64).collect();
        let mut dense = vec![0.0; rows * layer.outputs];
        for r in 0..rows {
            for p in 0..layer.outputs / PANEL {
                layer.tile::<1, 1>(&x, r, p, &every, &mut dense, true);
            }
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&skipped), bits(&dense));
    }

    #[test]
    fn matches_candle_decoder_for_every_batch_shape() {
        // Widths that are and are not multiples of the panel, latents wider than every layer,
        // batch sizes around the tile and block sizes.
        for (latent, hidden, pixels, act) in [
            (8, vec![512, 256], 784, Activation::Relu),
            (3, vec![5, 13], 10, Activation::Tanh),
            (5, vec![], 7, Activation::Relu),
            (64, vec![], 30, Activation::Relu),
            (16, vec![3], 4, Activation::Tanh),
            (8, vec![40], 50, Activation::Relu),
        ] {
            let vae = model(latent, &hidden, pixels, act);
            let packed = PackedDecoder::new(&vae.decoder).unwrap();
            assert_eq!((packed.latent_dim(), packed.pixels()), (latent, pixels));
            for n in [
                1,
                2,
                3,
                5,
                6,
                7,
                ROW_BLOCK,
                ROW_BLOCK + 5,
                3 * ROW_BLOCK + 1,
                300,
            ] {
                let z = latents(n, latent);
                let mut out = vec![f32::NAN; n * pixels];
                packed.decode_rows(&z, 0, &mut PixelSink::Intensities(&mut out));
                let diff = max_diff(&out, &reference(&vae, &z, n));
                assert!(
                    diff < 1e-5,
                    "latent {latent} hidden {hidden:?} n {n}: {diff}"
                );
                let mut threaded = vec![f32::NAN; n * pixels];
                packed.decode(&z, PixelSink::Intensities(&mut threaded), true);
                assert_eq!(out, threaded, "split over threads, n {n}");
            }
        }
    }

    #[test]
    fn tasks_are_balanced_over_the_threads() {
        assert_eq!(ROW_BLOCK, 16, "the figures below assume 16 rows per pass");
        assert_eq!(balanced_task_size(256, 2, ROW_BLOCK), 16);
        assert_eq!(balanced_task_size(1024, 2, ROW_BLOCK), 16);
        assert_eq!(balanced_task_size(300, 2, ROW_BLOCK), 15); // 20 tasks, 150 rows per thread
        assert_eq!(balanced_task_size(48, 2, ROW_BLOCK), 12); // 4 tasks, not 16 + 16 + 16
        assert_eq!(balanced_task_size(16, 2, ROW_BLOCK / 16), 1); // a 16x16 grid: 16 tasks of 1 tile row
        assert_eq!(balanced_task_size(7, 2, ROW_BLOCK / 8), 2); // 7 tile rows of 8: 4 tasks of 2
        assert_eq!(balanced_task_size(1, 4, ROW_BLOCK), 1);
        assert_eq!(balanced_task_size(0, 2, 0), 1);
        for n in [1, 47, 49, 97, 256, 300, 1024] {
            for threads in [1, 2, 3, 8] {
                let rows = balanced_task_size(n, threads, ROW_BLOCK);
                let tasks = n.div_ceil(rows);
                assert!(
                    (1..=ROW_BLOCK).contains(&rows),
                    "n {n} threads {threads}: {rows}"
                );
                assert!(
                    tasks.div_ceil(threads) * rows <= n.div_ceil(threads) + rows,
                    "n {n} threads {threads}"
                );
            }
        }
    }

    #[test]
    fn every_tile_shape_gives_the_same_bits() {
        // 4-row tiles, 2-row tiles over panel pairs and 1-row tiles over four panels: one image's
        // values must not depend on the batch it was decoded in (7 panels: every leftover shape).
        let vae = model(8, &[40], 50, Activation::Relu);
        let packed = PackedDecoder::new(&vae.decoder).unwrap();
        let n = 7;
        let z = latents(n, 8);
        let mut batch = vec![f32::NAN; n * 50];
        packed.decode_rows(&z, 0, &mut PixelSink::Intensities(&mut batch));
        for (i, zi) in z.chunks_exact(8).enumerate() {
            let mut one = vec![f32::NAN; 50];
            packed.decode_rows(zi, 0, &mut PixelSink::Intensities(&mut one));
            assert_eq!(one, batch[i * 50..(i + 1) * 50], "image {i}");
        }
    }

    #[test]
    fn wide_outputs_are_decoded_a_few_rows_per_pass() {
        let pixels = 400_000;
        assert_eq!(block_rows(round_up(pixels)), 2);
        let vae = model(3, &[], pixels, Activation::Relu);
        let packed = PackedDecoder::new(&vae.decoder).unwrap();
        let n = 5;
        let z = latents(n, 3);
        let mut out = vec![f32::NAN; n * pixels];
        packed.decode(&z, PixelSink::Intensities(&mut out), true);
        let diff = max_diff(&out, &reference(&vae, &z, n));
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn sigmoid_is_accurate_over_the_whole_range() {
        let mut worst = 0.0f64;
        for i in -2000..=2000 {
            let x = i as f32 * 0.05;
            let mut v = [x; 4];
            // SAFETY: `v` holds four f32 values.
            unsafe { sigmoid(F4::load(v.as_ptr())).store(v.as_mut_ptr()) };
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            worst = worst.max((v[0] as f64 - exact).abs());
        }
        assert!(worst < 1e-7, "worst sigmoid error {worst}");
    }

    #[test]
    fn tiles_match_rounded_intensities_and_split_ranges_agree() {
        let vae = model(8, &[32], 12, Activation::Relu);
        let packed = PackedDecoder::new(&vae.decoder).unwrap();
        // More images than one row block, so that the threaded path splits the grid into parts.
        let (cols, rows, width, height) = (7, 9, 4, 3);
        let n = cols * rows;
        assert!(n > ROW_BLOCK && (ROW_BLOCK / cols) < rows);
        let z = latents(n, 8);
        let intensities = reference(&vae, &z, n);
        let mut whole = vec![0u8; n * 12 * 4];
        let mut sink = PixelSink::Tiles {
            rgba: &mut whole,
            cols,
            width,
            height,
        };
        packed.decode_rows(&z, 0, &mut sink);
        // The same image from two row ranges, as threads would produce it.
        let mut split = vec![0u8; n * 12 * 4];
        let mut sink = PixelSink::Tiles {
            rgba: &mut split,
            cols,
            width,
            height,
        };
        packed.decode_rows(&z[..5 * 8], 0, &mut sink);
        packed.decode_rows(&z[5 * 8..], 5, &mut sink);
        assert_eq!(whole, split);
        let mut threaded = vec![0u8; n * 12 * 4];
        let sink = PixelSink::Tiles {
            rgba: &mut threaded,
            cols,
            width,
            height,
        };
        packed.decode(&z, sink, true);
        assert_eq!(whole, threaded);
        for (i, image) in intensities.chunks_exact(12).enumerate() {
            for (p, &v) in image.iter().enumerate() {
                let (x, y) = (p % width, p / width);
                let at = (((i / cols) * height + y) * cols * width + (i % cols) * width + x) * 4;
                let gray = (v.clamp(0.0, 1.0) * 255.0).round() as i32;
                let px = &whole[at..at + 4];
                assert!(
                    (px[0] as i32 - gray).abs() <= 1,
                    "image {i} pixel {p}: {px:?} vs {gray}"
                );
                assert_eq!((px[0], px[1], px[3]), (px[2], px[0], 255));
            }
        }
    }
}
