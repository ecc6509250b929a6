//! Deterministic training: seeded noise and shuffles, Adam, KL warm-up, and resumable state.

use candle_core::{DType, Result, Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::core::data::Dataset;
use crate::core::model::{matrix, normal_noise, Dense, ModelConfig, Vae};
use crate::train::kernels::{
    act_backward_, bce_with_logits_grad, bias_act_, reparam_kl, reparam_kl_backward, Adam,
    AdamParams, AdamSnapshot,
};

/// How an error from a step whose loss was NaN or infinite begins; such a step changes no weight.
pub const DIVERGED: &str = "training diverged";

/// How to train: everything besides the model's shape that decides the result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainOptions {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Weight of the KL term (1 is the true ELBO).
    pub beta: f64,
    /// Epochs over which the KL weight ramps linearly from 0 to `beta`.
    pub kl_warmup_epochs: usize,
    /// Seeds the initial weights, the shuffles and the noise.
    pub seed: u64,
}

/// What a seeded random stream is used for; each gets its own stream.
#[derive(Clone, Copy)]
enum Stream {
    Init = 1,
    Shuffle = 2,
    Noise = 3,
}

/// A reproducible RNG for one purpose and index (epoch or step), independent of every other.
fn rng_for(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (stream as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(index);
    rng
}

/// Copies the listed images of `data` into one `[n, pixels]` tensor.
pub fn gather(data: &Dataset, indices: &[usize]) -> Result<Tensor> {
    let size = data.image_size();
    let mut pixels = Vec::with_capacity(indices.len() * size);
    for &i in indices {
        pixels.extend_from_slice(data.image(i));
    }
    matrix(&pixels, indices.len(), size)
}

/// Where training stands: enough to resume exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Epochs fully done.
    pub epoch: usize,
    /// Batches done in the current epoch.
    pub batch: usize,
    /// Optimizer steps done in all.
    pub step: u64,
}

/// A model being trained, with its optimizer and progress.
pub struct Trainer {
    /// The model; its layer tensors are the optimizer's variables.
    pub vae: Vae,
    /// How it is trained.
    pub options: TrainOptions,
    /// Where training stands.
    pub progress: Progress,
    adam: Adam,
    /// The current epoch's shuffled image order, kept between batches.
    order: Option<(usize, Vec<usize>)>,
}

/// A trainer's whole state (weights, optimizer, progress), to go back to.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    adam: AdamSnapshot,
    progress: Progress,
}

/// What one batch of training did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchDone {
    /// The batch's mean loss per image (the minimised one: BCE + KL weight * KL).
    pub loss: f32,
    /// Images in the batch.
    pub images: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// True when this was the epoch's last batch.
    pub epoch_done: bool,
}

/// Every dense layer of a VAE, encoder first, in a fixed order.
fn layers_mut(vae: &mut Vae) -> Vec<&mut Dense> {
    let enc = vae
        .encoder
        .hidden
        .iter_mut()
        .chain(std::iter::once(&mut vae.encoder.out));
    let dec = vae
        .decoder
        .hidden
        .iter_mut()
        .chain(std::iter::once(&mut vae.decoder.out));
    enc.chain(dec).collect()
}

/// Pins `RAYON_NUM_THREADS` to the rayon pool's size when it is unset.
///
/// candle asks for the thread count on every matmul, and without the variable that means
/// reading `/proc/cpuinfo` each time (about 0.2 s of system CPU time per Fashion-MNIST epoch
/// here). Call it at the top of `main`, before other threads start: it changes the process
/// environment.
#[cfg(not(target_arch = "wasm32"))]
pub fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = rayon::current_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

/// Runs `f` on a rayon worker (natively, and in the threaded wasm build), so the parallel kernels
/// inside it start and finish without waking and parking the calling thread each time.
fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
    {
        let mut out = None;
        rayon::scope(|_| out = Some(f()));
        out.expect("rayon::scope runs its closure")
    }
    #[cfg(not(any(not(target_arch = "wasm32"), feature = "threads")))]
    f()
}

/// Runs `a` and `b`, concurrently where rayon runs (natively, threaded wasm), else one after the other.
fn join<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
    return rayon::join(a, b);
    #[cfg(not(any(not(target_arch = "wasm32"), feature = "threads")))]
    (a(), b())
}

/// `f(0), ..., f(n - 1)` in index order, concurrently where rayon runs.
fn map_par<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
    {
        use rayon::prelude::*;
        (0..n).into_par_iter().map(f).collect()
    }
    #[cfg(not(any(not(target_arch = "wasm32"), feature = "threads")))]
    (0..n).map(f).collect()
}

/// Fewest images in one part of a split batch: smaller parts would leave the matmuls too thin to pay.
const MIN_PART_ROWS: usize = 16;

/// Into how many row blocks a step splits its batch, each block's forward and backward on its own
/// thread. In the threaded wasm build, one per pool thread: there candle's matmul runs on one
/// thread, so the batch is what is split. Natively 1: candle's matmul already uses every core.
fn batch_parts(rows: usize) -> usize {
    #[cfg(all(target_arch = "wasm32", feature = "threads"))]
    let threads = rayon::current_num_threads();
    #[cfg(not(all(target_arch = "wasm32", feature = "threads")))]
    let threads = 1;
    threads.min(rows / MIN_PART_ROWS).max(1)
}

/// The loss and every variable's gradient (summed over the batch, in the optimizer's order) from
/// `parts` row blocks of it, computed concurrently; the blocks' sums are added in block order, so
/// the result is the same for any thread timing, and equal to the whole batch's within rounding.
/// A block whose loss is not finite is refused by `loss_and_grads`, before any gradient is summed.
fn loss_and_grads_in_parts(
    vae: &Vae,
    x: &Tensor,
    eps: &Tensor,
    kl_weight: f64,
    parts: usize,
) -> Result<(f64, Vec<Option<Tensor>>)> {
    let (n, parts) = (x.dim(0)?, parts.max(1));
    let part = |p: usize| -> Result<(f64, Vec<Option<Tensor>>)> {
        let (start, end) = (p * n / parts, (p + 1) * n / parts);
        let (xs, es) = (
            x.narrow(0, start, end - start)?,
            eps.narrow(0, start, end - start)?,
        );
        let mut grads = Vec::new();
        let loss = loss_and_grads(vae, &xs, &es, kl_weight, &mut |i, g| {
            if grads.len() <= i {
                grads.resize(i + 1, None);
            }
            grads[i] = Some(g);
            Ok(())
        })?;
        Ok((loss, grads))
    };
    let (mut loss, mut sums) = (0.0, Vec::new());
    for block in map_par(parts, part) {
        let (block_loss, grads) = block?;
        loss += block_loss;
        sums.resize(sums.len().max(grads.len()), None);
        for (sum, g) in sums.iter_mut().zip(grads) {
            *sum = match (sum.take(), g) {
                (Some(s), Some(g)) => Some((s + g)?),
                (s, g) => s.or(g),
            };
        }
    }
    Ok((loss, sums))
}

/// The summed loss (BCE + `kl_weight` * KL); hands each variable's gradient to `sink` with its
/// index in the optimizer's order (per layer: weight, bias; encoder first), as soon as the
/// variable is no longer needed by the backward pass.
///
/// The backward pass is written out by hand rather than taken from candle's autograd: it skips
/// the gradient w.r.t. the input images, fuses bias and activation gradients into one pass,
/// and writes each gradient once instead of accumulating into zeroed tensors.
fn loss_and_grads(
    vae: &Vae,
    x: &Tensor,
    eps: &Tensor,
    kl_weight: f64,
    sink: &mut dyn FnMut(usize, Tensor) -> Result<()>,
) -> Result<f64> {
    let act = vae.config.activation;
    let enc: Vec<&Dense> = vae
        .encoder
        .hidden
        .iter()
        .chain([&vae.encoder.out])
        .collect();
    let dec: Vec<&Dense> = vae
        .decoder
        .hidden
        .iter()
        .chain([&vae.decoder.out])
        .collect();
    // Runs layers, returning each layer's input and the last pre-activation output.
    let forward = |input: Tensor, layers: &[&Dense]| -> Result<(Vec<Tensor>, Tensor)> {
        let mut inputs = vec![input];
        for (i, layer) in layers.iter().enumerate() {
            let y = inputs[i].matmul(&layer.weight)?;
            let last = i + 1 == layers.len();
            bias_act_(&y, &layer.bias, (!last).then_some(act))?;
            if last {
                return Ok((inputs, y));
            }
            inputs.push(y);
        }
        candle_core::bail!("an MLP needs an output layer")
    };
    let (enc_in, head) = forward(x.clone(), &enc)?;
    let (z, kl) = reparam_kl(&head, eps)?;
    let (dec_in, logits) = forward(z, &dec)?;
    let bce = bce_with_logits_grad(&logits, x, 1.0)?;
    let loss = bce.loss + kl_weight * kl;
    if !loss.is_finite() {
        candle_core::bail!("{DIVERGED}: the loss is {loss}");
    }

    // Back through layers; `d` is the gradient w.r.t. the last layer's pre-activation output.
    // Returns the gradient w.r.t. the first layer's input, unless `need_input` is false.
    let mut backward = |layers: &[&Dense],
                        inputs: &[Tensor],
                        offset: usize,
                        mut d: Tensor,
                        mut db: Tensor,
                        need_input: bool|
     -> Result<Option<Tensor>> {
        for i in (0..layers.len()).rev() {
            let weight_grad = || inputs[i].t()?.matmul(&d);
            let (dw, dx) = if i > 0 || need_input {
                let input_grad = || d.matmul(&layers[i].weight.t()?);
                let (dw, dx) = join(weight_grad, input_grad);
                (dw?, Some(dx?))
            } else {
                (weight_grad()?, None)
            };
            sink(2 * (offset + i), dw)?;
            sink(2 * (offset + i) + 1, db)?;
            match dx {
                Some(dx) if i > 0 => {
                    db = act_backward_(&dx, &inputs[i], act)?;
                    d = dx;
                }
                dx => return Ok(dx),
            }
        }
        Ok(None)
    };
    let dz = backward(&dec, &dec_in, enc.len(), bce.grad, bce.grad_col_sum, true)?
        .ok_or_else(|| candle_core::Error::Msg("no latent gradient".into()))?;
    let (dhead, dhead_bias) = reparam_kl_backward(&head, eps, &dz, kl_weight as f32)?;
    backward(&enc, &enc_in, 0, dhead, dhead_bias, false)?;
    Ok(loss)
}

impl Trainer {
    /// A new model initialised from the seed.
    pub fn new(config: &ModelConfig, options: TrainOptions) -> Result<Self> {
        let vae = Vae::init(config, &mut rng_for(options.seed, Stream::Init, 0))?;
        Self::from_vae(vae, options)
    }

    /// Continues training `vae` (its tensors become variables).
    pub fn from_vae(mut vae: Vae, options: TrainOptions) -> Result<Self> {
        let mut vars = Vec::new();
        for layer in layers_mut(&mut vae) {
            for t in [&mut layer.weight, &mut layer.bias] {
                let var = Var::from_tensor(t)?;
                *t = var.as_tensor().clone();
                vars.push(var);
            }
        }
        let adam = Adam::new(
            vars,
            AdamParams {
                lr: options.lr,
                ..AdamParams::default()
            },
        )?;
        Ok(Self {
            vae,
            options,
            progress: Progress {
                epoch: 0,
                batch: 0,
                step: 0,
            },
            adam,
            order: None,
        })
    }

    /// The optimizer, for saving and restoring its moments.
    pub fn adam(&mut self) -> &mut Adam {
        &mut self.adam
    }

    /// True once every epoch is done.
    pub fn finished(&self) -> bool {
        self.progress.epoch >= self.options.epochs
    }

    /// The KL weight at a given step, after warm-up.
    fn kl_weight(&self, step: u64, batches_per_epoch: usize) -> f64 {
        let warmup = (self.options.kl_warmup_epochs * batches_per_epoch) as f64;
        if warmup == 0.0 {
            self.options.beta
        } else {
            self.options.beta * ((step + 1) as f64 / warmup).min(1.0)
        }
    }

    /// The order of the training images in epoch `epoch`.
    fn epoch_order(&self, epoch: usize, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng_for(
            self.options.seed,
            Stream::Shuffle,
            epoch as u64,
        ));
        order
    }

    /// One optimizer step on the given images; returns the mean loss per image that was minimised.
    pub fn step(&mut self, x: &Tensor, kl_weight: f64) -> Result<f32> {
        self.step_in_parts(x, kl_weight, batch_parts(x.dim(0)?))
    }

    /// `step`, with the batch's gradient taken in `parts` row blocks at once (1: the whole batch,
    /// each gradient handed to Adam as soon as the backward pass is done with its variable).
    fn step_in_parts(&mut self, x: &Tensor, kl_weight: f64, parts: usize) -> Result<f32> {
        let n = x.dim(0)?;
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        let mut rng = rng_for(self.options.seed, Stream::Noise, self.progress.step);
        let eps = normal_noise(&mut rng, n, self.vae.config.latent_dim)?;
        let (vae, adam) = (&self.vae, &mut self.adam);
        let loss = on_worker(|| -> Result<f64> {
            if parts > 1 {
                let (loss, grads) = loss_and_grads_in_parts(vae, &x, &eps, kl_weight, parts)?;
                adam.step_with(&grads)?;
                return Ok(loss);
            }
            adam.begin_step();
            let loss = loss_and_grads(vae, &x, &eps, kl_weight, &mut |i, g| adam.update_var(i, &g));
            if loss.is_err() {
                adam.step -= 1; // a refused step leaves the optimizer as it was
            }
            loss
        })?;
        self.progress.step += 1;
        Ok((loss / n as f64) as f32)
    }

    /// Copies the weights, the optimizer's state and the progress into `snapshot` (reusing its buffers).
    pub fn save_into(&self, snapshot: &mut Snapshot) -> Result<()> {
        snapshot.progress = self.progress;
        self.adam.save_into(&mut snapshot.adam)
    }

    /// Goes back to a snapshot from `save_into`, in place.
    pub fn rewind(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.progress = snapshot.progress;
        self.adam.rewind(&snapshot.adam)
    }

    /// Trains on the next batch of the current epoch, moving to the next epoch after its last batch.
    pub fn train_batch(&mut self, data: &Dataset) -> Result<BatchDone> {
        let bs = self.options.batch_size.max(1);
        let (n, epoch) = (data.len(), self.progress.epoch);
        let batches = n.div_ceil(bs);
        if self.order.as_ref().map(|(e, o)| (*e, o.len())) != Some((epoch, n)) {
            self.order = Some((epoch, self.epoch_order(epoch, n)));
        }
        let start = (self.progress.batch * bs).min(n);
        let end = (start + bs).min(n);
        let x = match &self.order {
            Some((_, order)) => gather(data, &order[start..end])?,
            None => candle_core::bail!("no epoch order"),
        };
        let loss = self.step(&x, self.kl_weight(self.progress.step, batches))?;
        self.progress.batch += 1;
        let epoch_done = self.progress.batch >= batches;
        if epoch_done {
            self.progress.epoch += 1;
            self.progress.batch = 0;
        }
        Ok(BatchDone {
            loss,
            images: end - start,
            batches,
            epoch_done,
        })
    }

    /// Runs the rest of the current epoch; `keep_going(batch, batches, loss)` is asked after each
    /// step but the last.
    ///
    /// Returns the epoch's mean training loss per image, or `None` when `keep_going` stopped it
    /// early (the progress then records where to resume).
    pub fn train_epoch(
        &mut self,
        data: &Dataset,
        mut keep_going: impl FnMut(usize, usize, f32) -> bool,
    ) -> Result<Option<f32>> {
        let (mut sum, mut count) = (0.0f64, 0usize);
        loop {
            let done = self.train_batch(data)?;
            sum += done.loss as f64 * done.images as f64;
            count += done.images;
            let mean = (sum / count.max(1) as f64) as f32;
            if done.epoch_done {
                return Ok(Some(mean));
            }
            if !keep_going(self.progress.batch, done.batches, mean) {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{bce_with_logits_per_image, kl_per_image, Activation};
    use candle_core::Device;

    fn options(seed: u64) -> TrainOptions {
        TrainOptions {
            epochs: 1,
            batch_size: 16,
            lr: 1e-3,
            beta: 1.0,
            kl_warmup_epochs: 0,
            seed,
        }
    }

    fn random_images(seed: u64, n: usize, dim: usize) -> Tensor {
        let mut rng = rng_for(seed, Stream::Shuffle, 99);
        let v: Vec<f32> = (0..n * dim).map(|_| rand::Rng::random(&mut rng)).collect();
        matrix(&v, n, dim).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// The hand-written backward pass equals candle's autograd on the plain-candle loss.
    #[test]
    fn manual_gradients_match_autograd() {
        for activation in [Activation::Relu, Activation::Tanh] {
            let mut config = ModelConfig::mirrored(12, 3, &[7, 5]);
            config.activation = activation;
            let trainer = Trainer::new(&config, options(5)).unwrap();
            let x = random_images(1, 6, 12);
            let eps = normal_noise(&mut rng_for(2, Stream::Noise, 0), 6, 3).unwrap();
            let w = 0.7;
            let mut grads = vec![None; 8 * 2];
            let loss = loss_and_grads(&trainer.vae, &x, &eps, w, &mut |i, g| {
                grads[i] = Some(g);
                Ok(())
            })
            .unwrap();

            let vae = &trainer.vae;
            let (mu, logvar) = vae.encode(&x).unwrap();
            let z = Vae::reparameterize(&mu, &logvar, &eps).unwrap();
            let logits = vae.decode_logits(&z).unwrap();
            let recon = bce_with_logits_per_image(&logits, &x)
                .unwrap()
                .sum_all()
                .unwrap();
            let kl = kl_per_image(&mu, &logvar).unwrap().sum_all().unwrap();
            let reference = (recon + (kl * w).unwrap()).unwrap();
            let ref_loss = reference.to_scalar::<f32>().unwrap() as f64;
            assert!(
                (loss - ref_loss).abs() < 1e-4 * ref_loss.abs(),
                "{loss} vs {ref_loss}"
            );
            let store = reference.backward().unwrap();

            let mut vae = trainer.vae.clone();
            let tensors: Vec<Tensor> = layers_mut(&mut vae)
                .into_iter()
                .flat_map(|l| [l.weight.clone(), l.bias.clone()])
                .collect();
            grads.truncate(tensors.len());
            assert_eq!(tensors.len(), grads.len());
            for (i, (t, g)) in tensors.iter().zip(&grads).enumerate() {
                let expected = store.get(t).unwrap();
                let got = g.as_ref().unwrap();
                assert_eq!(got.dims(), expected.dims(), "tensor {i}");
                let scale = expected
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                let diff = max_abs_diff(got, expected);
                assert!(
                    diff <= 1e-4 * scale.max(1.0),
                    "{activation:?} tensor {i}: {diff}"
                );
            }
        }
    }

    /// The same seed gives bit-identical weights; another seed does not.
    #[test]
    fn same_seed_gives_identical_weights() {
        let config = ModelConfig::mirrored(40, 4, &[24]);
        let x = random_images(3, 32, 40);
        let run = |seed: u64| -> Vec<Vec<f32>> {
            let mut t = Trainer::new(&config, options(seed)).unwrap();
            for _ in 0..5 {
                t.step(&x, 1.0).unwrap();
            }
            t.vae
                .to_tensors()
                .unwrap()
                .iter()
                .map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .collect()
        };
        let (a, b, c) = (run(11), run(11), run(12));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// A step whose batch is split in row blocks (as the threaded lab runs it) gives the whole
    /// batch's weights within rounding, and a diverging split step changes nothing.
    #[test]
    fn split_batch_steps_match_whole_batch_steps() {
        let config = ModelConfig::mirrored(40, 4, &[24, 12]);
        let x = random_images(3, 50, 40);
        let weights = |t: &Trainer| -> Vec<f32> {
            let tensors = t.vae.to_tensors().unwrap();
            tensors
                .iter()
                .flat_map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .collect()
        };
        let run = |parts: usize| -> (Vec<f32>, Vec<f32>) {
            let mut t = Trainer::new(&config, options(7)).unwrap();
            let losses = (0..6)
                .map(|_| t.step_in_parts(&x, 0.8, parts).unwrap())
                .collect();
            (losses, weights(&t))
        };
        let (whole_losses, whole) = run(1);
        for parts in [2, 3] {
            let (losses, split) = run(parts);
            for (a, b) in losses.iter().zip(&whole_losses) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs(),
                    "{parts} parts: loss {a} vs {b}"
                );
            }
            let worst = split
                .iter()
                .zip(&whole)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "{parts} parts: weights differ by {worst}");
        }

        let mut t = Trainer::new(&config, options(7)).unwrap();
        let before = weights(&t);
        let mut bad = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        bad[45 * 40] = f32::NAN; // in the second block only
        let bad = matrix(&bad, 50, 40).unwrap();
        let error = t.step_in_parts(&bad, 1.0, 2).unwrap_err().to_string();
        assert!(error.starts_with(DIVERGED), "{error}");
        assert_eq!(weights(&t), before);
        assert_eq!(t.progress.step, 0);
    }

    /// A few dozen steps on 512 real images lower the loss.
    #[test]
    fn training_on_real_images_lowers_the_loss() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion");
        let split = crate::core::data::DatasetKind::Fashion
            .load(&dir)
            .expect("Fashion-MNIST in data/fashion (run `make data`)");
        let data = split.train.take(512);
        let config = ModelConfig::mirrored(data.image_size(), 8, &[64]);
        let mut opts = options(1);
        opts.batch_size = 64;
        let mut trainer = Trainer::new(&config, opts).unwrap();
        let all: Vec<usize> = (0..data.len()).collect();
        let x = gather(&data, &all).unwrap();
        let mean_loss = |t: &Trainer| -> f64 {
            let eps = Tensor::zeros((data.len(), 8), DType::F32, &Device::Cpu).unwrap();
            loss_and_grads(&t.vae, &x, &eps, 1.0, &mut |_, _| Ok(())).unwrap() / data.len() as f64
        };
        let before = mean_loss(&trainer);
        for _ in 0..5 {
            trainer.train_epoch(&data, |_, _, _| true).unwrap();
        }
        let after = mean_loss(&trainer);
        assert!(after < 0.8 * before, "loss {before} -> {after}");
    }
}
