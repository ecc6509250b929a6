//! Measures a weights file on its dataset's held-out test split.

use std::path::PathBuf;

use clap::Parser;
use vae_explorer::core::data::DatasetKind;
use vae_explorer::core::format;
use vae_explorer::core::metrics::active_units;
use vae_explorer::train::export::measure;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    about = "Test -ELBO, its terms, active units and an importance-weighted log-likelihood of a weights file"
)]
struct Args {
    /// The weights file (or a split model's `NAME.decoder.safetensors`, its encoder part beside it).
    weights: PathBuf,
    /// Folder with the dataset files (default: data/<dataset named in the file>).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Samples per image for the importance-weighted estimate (0 skips it).
    #[arg(long, default_value_t = 1000)]
    iw_samples: usize,
}

fn main() {
    vae_explorer::train::pin_thread_count();
    if let Err(e) = run(&Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let file = format::read_model(&args.weights)
        .map_err(|e| format!("{}: {e}", args.weights.display()))?;
    let meta = &file.meta;
    let kind = DatasetKind::from_name(&meta.dataset).ok_or_else(|| {
        format!(
            "the file's dataset `{}` is not one this tool can load",
            meta.dataset
        )
    })?;
    let dir = args.data.clone().unwrap_or_else(|| kind.default_dir());
    let test = kind
        .load(&dir)
        .map_err(|e| format!("{e}\n(run `make data` to fetch the datasets)"))?
        .test;
    let m = measure(&file.vae, &test, args.iw_samples)?;
    let (_, variances) = active_units(&file.vae, &test)?;
    println!(
        "{}  ({} test images)",
        args.weights.display(),
        m.test_images
    );
    println!("  test -ELBO      {:9.3} nats/image (1 sample)", m.neg_elbo);
    println!("  reconstruction  {:9.3}", m.recon);
    println!("  KL              {:9.3}", m.kl);
    println!(
        "  active units    {} / {}   (Cov_x E_q[z_u] > 0.01: {})",
        m.active_units,
        meta.latent_dim,
        variances
            .iter()
            .map(|v| format!("{v:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let (Some(nll), Some(k)) = (m.iw_nll, m.iw_samples) {
        println!("  IW -log p(x)    {nll:9.3} nats/image (k = {k})");
    }
    if let Some(recorded) = &meta.metrics {
        println!("  recorded in file: test -ELBO {:.3}", recorded.neg_elbo);
    }
    Ok(())
}
