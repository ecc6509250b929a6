//! Times training epochs of the 784-H-8 VAE recipe on Fashion-MNIST.
//!
//! Prints seconds and mean training loss per image for each epoch, then the median time,
//! so a speed-up that changes the math shows in the loss column.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use vae_explorer::core::data::DatasetKind;
use vae_explorer::core::model::ModelConfig;
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
    /// Also time each kernel alone at the recipe's shapes (seconds per epoch of calls).
    #[arg(long)]
    kernels: bool,
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

/// Times `f` over `calls` calls (after a warm-up) and prints the total.
fn time_kernel(name: &str, calls: usize, mut f: impl FnMut() -> candle_core::Result<()>) -> f64 {
    for _ in 0..calls / 10 {
        f().expect(name);
    }
    let start = Instant::now();
    for _ in 0..calls {
        f().expect(name);
    }
    let secs = start.elapsed().as_secs_f64();
    println!("  {name:<44} {secs:.3} s");
    secs
}

/// Seconds per epoch of each kernel the training step runs, alone, at the recipe's shapes.
fn time_kernels(args: &Args, steps: usize) -> candle_core::Result<()> {
    use candle_core::{DType, Device, Tensor, Var};
    use vae_explorer::core::model::Activation;
    use vae_explorer::train::kernels::{self, Adam, AdamParams};
    let (n, d, h, l) = (args.batch, 784, args.hidden, args.latent);
    let dev = Device::Cpu;
    let x = Tensor::rand(0f32, 1.0, (n, d), &dev)?;
    let w1 = Tensor::rand(-0.05f32, 0.05, (d, h), &dev)?;
    let wo = Tensor::rand(-0.05f32, 0.05, (h, d), &dev)?;
    let hid = Tensor::rand(-1f32, 1.0, (n, h), &dev)?;
    let logits = Tensor::rand(-5f32, 5.0, (n, d), &dev)?;
    let bias = Tensor::zeros(h, DType::F32, &dev)?;
    println!("kernels alone, {steps} calls each (one epoch's worth):");
    time_kernel("matmul x W1 [n,784]x[784,h]", steps, || {
        x.matmul(&w1).map(drop)
    });
    time_kernel("matmul h Wo [n,h]x[h,784]", steps, || {
        hid.matmul(&wo).map(drop)
    });
    time_kernel("matmul dWo = h^T dl [h,n]x[n,784]", steps, || {
        hid.t()?.matmul(&logits).map(drop)
    });
    time_kernel("matmul dh = dl Wo^T [n,784]x[784,h]", steps, || {
        logits.matmul(&wo.t()?).map(drop)
    });
    time_kernel("matmul dW1 = x^T dz [784,n]x[n,h]", steps, || {
        x.t()?.matmul(&hid).map(drop)
    });
    time_kernel("bias + relu, 2x [n,h]", steps, || {
        for _ in 0..2 {
            kernels::bias_act_(&hid.copy()?, &bias, Some(Activation::Relu))?;
        }
        Ok(())
    });
    time_kernel("copy [n,h] (overhead of the line above)", steps, || {
        hid.copy().map(drop)?;
        hid.copy().map(drop)
    });
    time_kernel("bias (identity) [n,784]", steps, || {
        kernels::bias_act_(&logits.copy()?, &Tensor::zeros(d, DType::F32, &dev)?, None)
    });
    time_kernel("relu backward + bias grad, 2x [n,h]", steps, || {
        for _ in 0..2 {
            kernels::act_backward_(&hid.copy()?, &hid, Activation::Relu)?;
        }
        Ok(())
    });
    time_kernel("bce with logits + grad [n,784]", steps, || {
        kernels::bce_with_logits_grad(&logits, &x, 1.0).map(drop)
    });
    let vars = [(d, h), (h, 2 * l), (l, h), (h, d)]
        .iter()
        .flat_map(|&(i, o)| [vec![i, o], vec![o]])
        .map(|s| Var::zeros(s, DType::F32, &dev))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let grads: Vec<Option<Tensor>> = vars
        .iter()
        .map(|v| v.ones_like().map(Some))
        .collect::<candle_core::Result<_>>()?;
    let mut adam = Adam::new(vars, AdamParams::default())?;
    time_kernel("adam, all parameters", steps, || adam.step_with(&grads));
    Ok(())
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
    if args.kernels {
        time_kernels(args, train.len().div_ceil(args.batch))?;
    }
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
