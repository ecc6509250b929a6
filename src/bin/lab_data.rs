//! Writes the lab's dataset pack (docs/FORMAT.md): a dataset's train and test splits as u8 pixels
//! in a gzip'd safetensors file that the browser inflates natively.

use std::path::PathBuf;

use clap::Parser;
use vae_explorer::core::data::DatasetKind;
use vae_explorer::core::format::write_atomic;
use vae_explorer::core::pack;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Write a dataset's train and test splits as the lab's gzip'd u8 pack")]
struct Args {
    /// Dataset: digits, fashion or mnist.
    #[arg(long)]
    dataset: String,
    /// Folder with the dataset files (default: data/<dataset>).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The pack to write (a .safetensors.gz file).
    #[arg(long)]
    out: PathBuf,
    /// Keep the first N training images (0 = all).
    #[arg(long, default_value_t = 0)]
    train: usize,
    /// Keep the first N test images (0 = all).
    #[arg(long, default_value_t = 0)]
    test: usize,
    /// Store the training images at N gray levels (2 to 256; 256 keeps them exact, fewer compress better).
    #[arg(long, default_value_t = 256)]
    train_levels: u16,
}

fn main() {
    if let Err(e) = run(&Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let kind = DatasetKind::from_name(&args.dataset).ok_or_else(|| {
        format!(
            "unknown dataset `{}` (digits, fashion or mnist)",
            args.dataset
        )
    })?;
    let dir = args.data.clone().unwrap_or_else(|| kind.default_dir());
    let mut split = kind.load(&dir).map_err(|e| {
        format!(
            "cannot read {} from {}: {e}\n(run `make data`)",
            kind.name(),
            dir.display()
        )
    })?;
    if args.train > 0 {
        split.train = split.train.take(args.train);
    }
    if args.test > 0 {
        split.test = split.test.take(args.test);
    }
    let raw = pack::write(kind, &split, args.train_levels)?;
    // Zopfli writes standard gzip, a few per cent smaller than zlib's best.
    let mut bytes = Vec::new();
    zopfli::compress(
        zopfli::Options::default(),
        zopfli::Format::Gzip,
        &raw[..],
        &mut bytes,
    )?;
    if bytes.len() > pack::MAX_SERVED_BYTES {
        return Err(format!(
            "the pack would be {:.3} MB as served, over the lab's {:.1} MB limit: keep fewer images (--train) or fewer gray levels (--train-levels)",
            bytes.len() as f64 / 1e6,
            pack::MAX_SERVED_BYTES as f64 / 1e6
        )
        .into());
    }
    write_atomic(&args.out, &bytes)?;
    println!(
        "wrote {}: {} train images at {} gray levels + {} exact test images, {:.2} MB ({:.2} MB inflated)",
        args.out.display(),
        split.train.len(),
        args.train_levels,
        split.test.len(),
        bytes.len() as f64 / 1e6,
        raw.len() as f64 / 1e6
    );
    Ok(())
}
