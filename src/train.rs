//! Deterministic training: seeded noise and shuffles, Adam, KL warm-up, and resumable state.

use candle_core::{Result, Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::data::Dataset;
use crate::model::{kl_per_image, matrix, Dense, ModelConfig, Vae};
use crate::ops::{bce_with_logits_sum, Adam, AdamParams};

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

/// `n` draws from N(0, 1) as a `[rows, cols]` tensor.
pub fn normal_noise(rng: &mut impl rand::Rng, rows: usize, cols: usize) -> Result<Tensor> {
    let values: Vec<f32> = (0..rows * cols)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    matrix(&values, rows, cols)
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
        let n = x.dim(0)?;
        let (mu, logvar) = self.vae.encode(x)?;
        let mut rng = rng_for(self.options.seed, Stream::Noise, self.progress.step);
        let eps = normal_noise(&mut rng, n, self.vae.config.latent_dim)?;
        let z = Vae::reparameterize(&mu, &logvar, &eps)?;
        let logits = self.vae.decode_logits(&z)?;
        let recon = bce_with_logits_sum(&logits, x)?;
        let kl = kl_per_image(&mu, &logvar)?.sum_all()?;
        let loss = (recon + (kl * kl_weight)?)?;
        let grads = loss.backward()?;
        self.adam.step(&grads)?;
        self.progress.step += 1;
        Ok(loss.to_scalar::<f32>()? / n as f32)
    }

    /// Runs the rest of the current epoch; `keep_going(batch, batches, loss)` is asked after each step.
    ///
    /// Returns the epoch's mean training loss per image, or `None` when `keep_going` stopped it
    /// early (the progress then records where to resume).
    pub fn train_epoch(
        &mut self,
        data: &Dataset,
        mut keep_going: impl FnMut(usize, usize, f32) -> bool,
    ) -> Result<Option<f32>> {
        let bs = self.options.batch_size.max(1);
        let order = self.epoch_order(self.progress.epoch, data.len());
        let batches: Vec<&[usize]> = order.chunks(bs).collect();
        let (mut sum, mut count) = (0.0f64, 0usize);
        while self.progress.batch < batches.len() {
            let indices = batches[self.progress.batch];
            let x = gather(data, indices)?;
            let weight = self.kl_weight(self.progress.step, batches.len());
            let loss = self.step(&x, weight)?;
            sum += loss as f64 * indices.len() as f64;
            count += indices.len();
            self.progress.batch += 1;
            if !keep_going(
                self.progress.batch,
                batches.len(),
                (sum / count as f64) as f32,
            ) {
                return Ok(None);
            }
        }
        self.progress.epoch += 1;
        self.progress.batch = 0;
        Ok(Some((sum / count.max(1) as f64) as f32))
    }
}
