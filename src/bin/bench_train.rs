//! Times training epochs of the 784-H-8 VAE recipe on Fashion-MNIST.
//!
//! Prints seconds and mean training loss per image for each epoch, then the median time,
//! so a speed-up that changes the math shows in the loss column.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use vae_explorer::data::DatasetKind;
use vae_explorer::model::ModelConfig;
use vae_explorer::train::{TrainOptions, Trainer};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Seconds per training epoch of the VAE recipe on Fashion-MNIST")]
struct Args {
    /// Folder with the Fashion-MNIST IDX files.
    #[arg(long, default_value = "data/fashion")]
    data: PathBuf,
    /// Epochs to time.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Hidden layer width (encoder and decoder).
    #[arg(long, default_value_t = 400)]
    hidden: usize,
    /// Latent dimensions.
    #[arg(long, default_value_t = 8)]
    latent: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Seed for weights, shuffles and noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Leave RAYON_NUM_THREADS unset (candle then re-reads /proc/cpuinfo on every matmul).
    #[arg(long)]
    no_pin_threads: bool,
    /// Use only the first N training images (0 = all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
}

fn main() {
    let args = Args::parse();
    if !args.no_pin_threads {
        vae_explorer::train::pin_thread_count();
    }
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if !args.data.join("train-images-idx3-ubyte.gz").exists()
        && !args.data.join("train-images-idx3-ubyte").exists()
    {
        return Err(format!(
            "no Fashion-MNIST in {} (run `make data` first)",
            args.data.display()
        )
        .into());
    }
    let split = DatasetKind::Fashion
        .load(&args.data)
        .map_err(|e| format!("{e} (run `make data` to fetch the data)"))?;
    let train = if args.limit > 0 {
        split.train.take(args.limit)
    } else {
        split.train
    };
    let config = ModelConfig::mirrored(train.image_size(), args.latent, &[args.hidden]);
    let options = TrainOptions {
        epochs: args.epochs,
        batch_size: args.batch,
        lr: 1e-3,
        beta: 1.0,
        kl_warmup_epochs: 0,
        seed: args.seed,
    };
    let mut trainer = Trainer::new(&config, options)?;
    println!(
        "{}-{}-{} VAE, {} images, batch {}, {} epochs",
        config.input_dim,
        args.hidden,
        args.latent,
        train.len(),
        args.batch,
        args.epochs
    );
    let mut times = Vec::new();
    for epoch in 1..=args.epochs {
        let start = Instant::now();
        let loss = trainer
            .train_epoch(&train, |_, _, _| true)?
            .ok_or("epoch stopped early")?;
        let secs = start.elapsed().as_secs_f64();
        times.push(secs);
        println!("epoch {epoch}: {secs:.3} s, mean train loss {loss:.3} per image");
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    };
    println!("median: {median:.3} s/epoch");
    Ok(())
}
