//! The β-VAE lab's training session: the project's `Trainer` driven a few batches at a time, with
//! the held-out views the lab draws after each epoch and the weights file it hands off.
//!
//! Plain Rust, tested natively; `src/web/lab.rs` is its wasm edge.

use std::collections::HashMap;

use candle_core::{Result, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::core::data::{DatasetKind, Split};
use crate::core::format::{self, TrainingInfo};
use crate::core::metrics::{elbo, ACTIVE_UNIT_THRESHOLD};
use crate::core::model::{kl_per_dim, matrix, normal_noise, Activation, ModelConfig};
use crate::train::export::{model_file, EVAL_SEED};
use crate::train::{Snapshot, TrainOptions, Trainer, DIVERGED};

/// Below this mean KL (nats) a latent dim counts as switched off, whatever its variance.
pub const INACTIVE_KL: f32 = 0.01;

/// Prior samples the lab decodes after each epoch.
pub const PRIOR_SAMPLES: usize = 10;

/// Held-out images stored in a downloaded file's atlas (as the trainer's default).
const ATLAS_SIZE: usize = 1000;

/// One setting's allowed range: the one place the page's limits come from.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Limit {
    /// The key in the settings map.
    pub key: &'static str,
    /// The field's visible label.
    pub label: &'static str,
    /// Smallest allowed value.
    pub min: f64,
    /// Largest allowed value.
    pub max: f64,
    /// True when only whole numbers are allowed.
    pub integer: bool,
    /// The lab's default.
    pub default: f64,
}

/// Every setting, its range and default. Defaults: the PyTorch examples' recipe (784-400-8, Adam
/// 1e-3, batch 128) with a 2e-3 step, which reaches a lower -ELBO in the first minute.
pub const LIMITS: [Limit; 8] = [
    limit("beta", "beta", 0.0, 10.0, false, 1.0),
    limit("kl_warmup", "KL warm-up", 0.0, 100.0, true, 0.0),
    limit("latent_dim", "latent dims", 2.0, 16.0, true, 8.0),
    limit("hidden", "hidden width", 16.0, 1024.0, true, 400.0),
    limit("lr", "learning rate", 1e-6, 10.0, false, 2e-3),
    limit("batch", "batch size", 1.0, 1024.0, true, 128.0),
    limit("seed", "seed", 0.0, 4_294_967_295.0, true, 1.0),
    limit("epochs", "epochs", 1.0, 1000.0, true, 30.0),
];

const fn limit(
    key: &'static str,
    label: &'static str,
    min: f64,
    max: f64,
    integer: bool,
    default: f64,
) -> Limit {
    Limit {
        key,
        label,
        min,
        max,
        integer,
        default,
    }
}

/// A setting that was refused, with the reason to show next to its field.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldError {
    /// The setting's key.
    pub key: String,
    /// What is wrong, in words.
    pub message: String,
}

/// The lab's settings, checked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LabSettings {
    /// Weight of the KL term.
    pub beta: f64,
    /// Epochs of linear KL warm-up.
    pub kl_warmup: usize,
    /// Latent dims.
    pub latent_dim: usize,
    /// Width of the one hidden layer, in encoder and decoder.
    pub hidden: usize,
    /// Adam's step size.
    pub lr: f64,
    /// Images per step.
    pub batch: usize,
    /// Seeds weights, shuffles and noise.
    pub seed: u64,
    /// Epochs planned (for the time left).
    pub epochs: usize,
}

/// Checks one raw value against its limit.
fn check_value(limit: &Limit, raw: Option<&str>) -> std::result::Result<f64, String> {
    let text = raw.map(str::trim).unwrap_or("");
    if text.is_empty() {
        return Err(format!("{} is empty: enter a number", limit.label));
    }
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{} must be a number, not \"{text}\"", limit.label))?;
    if !value.is_finite() {
        return Err(format!("{} must be a finite number", limit.label));
    }
    if limit.integer && value.fract() != 0.0 {
        return Err(format!("{} must be a whole number", limit.label));
    }
    if value < limit.min || value > limit.max {
        return Err(format!(
            "{} must be between {} and {}",
            limit.label, limit.min, limit.max
        ));
    }
    Ok(value)
}

/// Checks one field's text (for the settings that change live); the error names the field.
pub fn check_field(key: &str, text: &str) -> std::result::Result<f64, String> {
    let limit = LIMITS
        .iter()
        .find(|l| l.key == key)
        .ok_or_else(|| format!("no setting `{key}`"))?;
    check_value(limit, Some(text))
}

impl LabSettings {
    /// Parses the fields as typed (key -> text); every refused field gets its own message.
    pub fn parse(fields: &HashMap<String, String>) -> std::result::Result<Self, Vec<FieldError>> {
        let mut values = HashMap::new();
        let mut errors = Vec::new();
        for limit in &LIMITS {
            match check_value(limit, fields.get(limit.key).map(String::as_str)) {
                Ok(v) => {
                    values.insert(limit.key, v);
                }
                Err(message) => errors.push(FieldError {
                    key: limit.key.to_string(),
                    message,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let v = |k: &str| values[k];
        Ok(Self {
            beta: v("beta"),
            kl_warmup: v("kl_warmup") as usize,
            latent_dim: v("latent_dim") as usize,
            hidden: v("hidden") as usize,
            lr: v("lr"),
            batch: v("batch") as usize,
            seed: v("seed") as u64,
            epochs: v("epochs") as usize,
        })
    }

    /// The defaults, as the page's fields show them at first.
    pub fn defaults() -> HashMap<String, String> {
        LIMITS
            .iter()
            .map(|l| (l.key.to_string(), l.default.to_string()))
            .collect()
    }

    fn options(&self) -> TrainOptions {
        TrainOptions {
            epochs: self.epochs,
            batch_size: self.batch,
            lr: self.lr,
            beta: self.beta,
            kl_warmup_epochs: self.kl_warmup,
            seed: self.seed,
        }
    }

    /// The settings written as the training record's command line.
    fn command(&self, kind: DatasetKind) -> String {
        format!(
            "vae-explorer lab (in the browser): --dataset {} --latent {} --hidden {} --beta {} \
             --kl-warmup {} --lr {} --batch {} --seed {}",
            kind.name(),
            self.latent_dim,
            self.hidden,
            self.beta,
            self.kl_warmup,
            self.lr,
            self.batch,
            self.seed
        )
    }
}

/// Where a call to `train` left the session.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainReport {
    /// Epochs done.
    pub epoch: usize,
    /// Batches done in the current epoch.
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Images trained on in this call.
    pub images: usize,
    /// The mean loss of each batch trained in this call.
    pub batch_losses: Vec<f32>,
    /// The mean training loss of the epoch that ended in this call, if one did.
    pub epoch_loss: Option<f64>,
}

/// The held-out views after an epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeldOut {
    /// Epochs done.
    pub epoch: usize,
    /// The 1-sample test -ELBO (nats/image), as `eval` computes it.
    pub neg_elbo: f64,
    /// Its reconstruction term.
    pub recon: f64,
    /// Its KL term.
    pub kl: f64,
    /// The mean KL of each latent dim over the test images.
    pub kl_per_dim: Vec<f32>,
    /// Cov_x(E_q[z_u]) of each dim (active-unit variance).
    pub mu_variance: Vec<f32>,
    /// True for a dim that is switched off (KL < 0.01 nats, or variance < 0.01).
    pub inactive: Vec<bool>,
    /// Test encodings' means, `[n, latent]` row-major.
    pub mu: Vec<f32>,
    /// The test labels, one per encoding.
    pub labels: Vec<u8>,
    /// Indices of the fixed test images (the first of each class).
    pub fixed: Vec<usize>,
    /// Their pixels, `[n, pixels]` row-major.
    pub originals: Vec<f32>,
    /// Their reconstructions, decoded at the encoder's mean.
    pub reconstructions: Vec<f32>,
    /// `PRIOR_SAMPLES` decodes of fixed draws from N(0, I).
    pub prior_samples: Vec<f32>,
}

/// A lab training session: the data, the trainer and its settings.
pub struct LabSession {
    kind: DatasetKind,
    split: Split,
    settings: LabSettings,
    trainer: Trainer,
    prior_eps: Tensor,
    fixed: Vec<usize>,
    seconds: f64,
    /// The current epoch's summed loss (loss * images) and images, across calls to `train`.
    epoch_sum: (f64, usize),
    /// The state before the last step that succeeded (the last weights whose loss was finite), with
    /// its `epoch_sum`: a diverging step goes back to it.
    last_good: (Snapshot, (f64, usize)),
    /// The buffers for the next snapshot.
    scratch: Snapshot,
}

impl LabSession {
    /// A new model, initialised from the seed, for `split` of dataset `kind`.
    pub fn new(kind: DatasetKind, split: Split, settings: LabSettings) -> Result<Self> {
        let config = ModelConfig {
            activation: Activation::Relu,
            ..ModelConfig::mirrored(
                split.train.image_size(),
                settings.latent_dim,
                &[settings.hidden],
            )
        };
        let trainer = Trainer::new(&config, settings.options())?;
        let mut last_good = Snapshot::default();
        trainer.save_into(&mut last_good)?;
        let mut rng = ChaCha8Rng::seed_from_u64(EVAL_SEED);
        let prior_eps = normal_noise(&mut rng, PRIOR_SAMPLES, settings.latent_dim)?;
        let mut fixed = Vec::new();
        for class in 0..=u8::MAX {
            if let Some(i) = split.test.labels.iter().position(|&l| l == class) {
                fixed.push(i);
            }
        }
        Ok(Self {
            kind,
            split,
            settings,
            trainer,
            prior_eps,
            fixed,
            seconds: 0.0,
            epoch_sum: (0.0, 0),
            last_good: (last_good, (0.0, 0)),
            scratch: Snapshot::default(),
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &LabSettings {
        &self.settings
    }

    /// The dataset trained on.
    pub fn kind(&self) -> DatasetKind {
        self.kind
    }

    /// Changes β from the next step on (the warm-up ramps towards the new value).
    pub fn set_beta(&mut self, beta: f64) {
        self.settings.beta = beta;
        self.trainer.options.beta = beta;
    }

    /// Changes Adam's step size from the next step on.
    pub fn set_lr(&mut self, lr: f64) {
        self.settings.lr = lr;
        self.trainer.options.lr = lr;
        self.trainer.adam().params.lr = lr;
    }

    /// Adds wall-clock training time (measured by the page) to the training record.
    pub fn add_seconds(&mut self, seconds: f64) {
        self.seconds += seconds.max(0.0);
    }

    /// Trains up to `max_batches` batches, stopping early at the end of an epoch.
    ///
    /// A step whose loss is NaN or infinite fails with an error starting with [`DIVERGED`], and
    /// the session goes back to the last weights whose loss was finite (before the step that made
    /// them diverge), with the optimizer's state and the progress of that moment.
    pub fn train(&mut self, max_batches: usize) -> Result<TrainReport> {
        let mut report = TrainReport {
            epoch: 0,
            batch: 0,
            batches: 0,
            images: 0,
            batch_losses: Vec::new(),
            epoch_loss: None,
        };
        for _ in 0..max_batches {
            self.trainer.save_into(&mut self.scratch)?;
            let sum_before = self.epoch_sum;
            let done = match self.trainer.train_batch(&self.split.train) {
                Ok(done) => done,
                Err(e) => {
                    if e.to_string().starts_with(DIVERGED) {
                        self.trainer.rewind(&self.last_good.0)?;
                        self.epoch_sum = self.last_good.1;
                    }
                    return Err(e);
                }
            };
            std::mem::swap(&mut self.scratch, &mut self.last_good.0);
            self.last_good.1 = sum_before;
            report.images += done.images;
            report.batch_losses.push(done.loss);
            report.batches = done.batches;
            self.epoch_sum.0 += done.loss as f64 * done.images as f64;
            self.epoch_sum.1 += done.images;
            if done.epoch_done {
                let (sum, images) = std::mem::take(&mut self.epoch_sum);
                report.epoch_loss = Some(sum / images.max(1) as f64);
                break;
            }
        }
        report.epoch = self.trainer.progress.epoch;
        report.batch = self.trainer.progress.batch;
        Ok(report)
    }

    /// The held-out figures and pictures for the current weights.
    pub fn held_out(&self) -> Result<HeldOut> {
        let vae = &self.trainer.vae;
        let test = &self.split.test;
        let terms = elbo(vae, test, EVAL_SEED)?;
        let latent = vae.config.latent_dim;
        let x = matrix(&test.pixels, test.len(), test.image_size())?;
        let (mu, logvar) = vae.encode(&x)?;
        let kl = kl_per_dim(&mu, &logvar)?.mean(0)?.to_vec1::<f32>()?;
        let mu = mu.flatten_all()?.to_vec1::<f32>()?;
        let (_, std) = crate::core::metrics::column_stats(&mu, latent);
        let mu_variance: Vec<f32> = std.iter().map(|s| s * s).collect();
        let inactive = kl
            .iter()
            .zip(&mu_variance)
            .map(|(&k, &v)| k < INACTIVE_KL || v < ACTIVE_UNIT_THRESHOLD)
            .collect();
        let originals: Vec<f32> = self
            .fixed
            .iter()
            .flat_map(|&i| test.image(i).iter().copied())
            .collect();
        let xs = matrix(&originals, self.fixed.len(), test.image_size())?;
        let (fixed_mu, _) = vae.encode(&xs)?;
        let reconstructions = vae.decode(&fixed_mu)?.flatten_all()?.to_vec1::<f32>()?;
        let prior_samples = vae
            .decode(&self.prior_eps)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(HeldOut {
            epoch: self.trainer.progress.epoch,
            neg_elbo: terms.neg_elbo,
            recon: terms.recon,
            kl: terms.kl,
            kl_per_dim: kl,
            mu_variance,
            inactive,
            mu,
            labels: test.labels.clone(),
            fixed: self.fixed.clone(),
            originals,
            reconstructions,
            prior_samples,
        })
    }

    /// A complete weights file of the current model, with the trainer's metadata and a training
    /// record naming the lab, its settings and seed.
    pub fn export(&self) -> Result<Vec<u8>> {
        let info = TrainingInfo {
            command: self.settings.command(self.kind),
            seed: self.settings.seed,
            epochs: self.trainer.progress.epoch,
            seconds: (self.seconds * 10.0).round() / 10.0,
        };
        let file = model_file(
            &self.trainer.vae,
            self.kind,
            &self.split.train,
            &self.split.test,
            ATLAS_SIZE,
            0,
            info,
        )?;
        if let Some(m) = file
            .meta
            .metrics
            .as_ref()
            .filter(|m| !m.neg_elbo.is_finite())
        {
            candle_core::bail!(
                "the model's held-out -ELBO is {}: nothing worth saving (Reset, or lower the learning rate)",
                m.neg_elbo
            );
        }
        format::save(&file).map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    /// Every weight, in the model file's order (for tests of exact resumption).
    pub fn weights(&self) -> Result<Vec<Vec<f32>>> {
        self.trainer
            .vae
            .to_tensors()?
            .iter()
            .map(|(_, t)| t.flatten_all()?.to_vec1::<f32>())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::data::Dataset;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut f = LabSettings::defaults();
        for (k, v) in pairs {
            f.insert(k.to_string(), v.to_string());
        }
        f
    }

    #[test]
    fn defaults_parse_and_bad_values_are_refused_per_field() {
        let s = LabSettings::parse(&LabSettings::defaults()).unwrap();
        assert_eq!((s.latent_dim, s.hidden, s.batch), (8, 400, 128));
        let errors = LabSettings::parse(&fields(&[
            ("beta", "abc"),
            ("latent_dim", "17"),
            ("batch", "2.5"),
            ("lr", ""),
            ("seed", "NaN"),
        ]))
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["beta", "latent_dim", "lr", "batch", "seed"]);
        assert!(errors[0].message.contains("must be a number"));
        assert!(errors[1].message.contains("between 2 and 16"));
        assert!(errors[2].message.contains("empty"));
        assert!(errors[3].message.contains("whole number"));
        assert!(errors[4].message.contains("finite"));
    }

    fn small_split() -> Split {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits");
        let split = DatasetKind::Digits
            .load(&dir)
            .expect("digits in data/digits (run `make data`)");
        let take = |d: &Dataset, n| d.take(n);
        Split {
            train: take(&split.train, 640),
            test: take(&split.test, 200),
        }
    }

    fn session(split: &Split, pairs: &[(&str, &str)]) -> LabSession {
        let settings = LabSettings::parse(&fields(pairs)).unwrap();
        LabSession::new(DatasetKind::Digits, split.clone(), settings).unwrap()
    }

    #[test]
    fn pausing_between_batches_changes_nothing_and_training_lowers_the_loss() {
        let split = small_split();
        let pairs = [("hidden", "64"), ("batch", "64")];
        let mut whole = session(&split, &pairs);
        let before = whole.held_out().unwrap().neg_elbo;
        let a = whole.train(1000).unwrap();
        assert_eq!((a.epoch, a.batch, a.batch_losses.len()), (1, 0, 10));
        let after = whole.held_out().unwrap().neg_elbo;
        assert!(after < before - 50.0, "-ELBO {before} -> {after}");

        let mut paused = session(&split, &pairs);
        let b1 = paused.train(3).unwrap();
        paused.held_out().unwrap(); // the views between batches use no training randomness
        let b2 = paused.train(1000).unwrap();
        assert_eq!((b1.batch, b2.epoch), (3, 1));
        assert_eq!([b1.batch_losses, b2.batch_losses].concat(), a.batch_losses);
        assert_eq!(b2.epoch_loss, a.epoch_loss);
        assert_eq!(paused.weights().unwrap(), whole.weights().unwrap());
    }

    #[test]
    fn a_diverging_step_stops_with_a_message_and_keeps_the_last_good_weights() {
        let split = small_split();
        let mut s = session(&split, &[("hidden", "32"), ("batch", "64"), ("lr", "10")]);
        // The weights before the last step that succeeded: the last ones whose loss was finite.
        let mut last_good = s.weights().unwrap();
        let mut diverged = None;
        for _ in 0..200 {
            let before = s.weights().unwrap();
            match s.train(1) {
                Ok(_) => last_good = before,
                Err(e) => {
                    diverged = Some(e.to_string());
                    break;
                }
            }
        }
        let message = diverged.expect("a step size of 10 diverges within 200 steps");
        assert!(message.contains(DIVERGED), "{message}");
        assert_eq!(s.weights().unwrap(), last_good);
        assert!(s.held_out().unwrap().neg_elbo.is_finite());
        assert!(format::load(&s.export().unwrap()).is_ok());
    }

    #[test]
    fn an_exported_file_loads_with_a_lab_training_record() {
        let split = small_split();
        let mut s = session(&split, &[("hidden", "32"), ("latent_dim", "3")]);
        s.train(2).unwrap();
        let file = format::load(&s.export().unwrap()).unwrap();
        let training = file.meta.training.unwrap();
        assert!(training.command.starts_with("vae-explorer lab"));
        assert!(training.command.contains("--seed 1"));
        let metrics = file.meta.metrics.unwrap();
        let held = s.held_out().unwrap();
        assert_eq!(metrics.neg_elbo, held.neg_elbo);
        assert_eq!(file.meta.latent_dim, 3);
    }

    /// The lab trains on the pack's u8 pixels; `eval` measures on the JSON's 3-decimal pixels.
    #[test]
    fn eval_on_the_json_digits_is_within_a_nat_of_the_lab_on_the_pack() {
        let split = small_split();
        let (_, packed) = crate::core::pack::read(
            &crate::core::pack::write(DatasetKind::Digits, &split, 256).unwrap(),
        )
        .unwrap();
        let settings = LabSettings::parse(&fields(&[("hidden", "64")])).unwrap();
        let mut s = LabSession::new(DatasetKind::Digits, packed, settings).unwrap();
        s.train(1000).unwrap();
        let lab = s.held_out().unwrap().neg_elbo;
        let file = format::load(&s.export().unwrap()).unwrap();
        let eval = crate::train::export::measure(&file.vae, &split.test, 0)
            .unwrap()
            .neg_elbo;
        assert!((lab - eval).abs() <= 1.0, "lab {lab} vs eval {eval}");
    }
}
