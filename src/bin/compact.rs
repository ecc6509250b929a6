//! Writes a whole f32 weights file as the page's compact split model: a decoder part and an encoder part.

use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use vae_explorer::core::format::{self, WeightEncoding};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    about = "Split a weights file into NAME.decoder.safetensors (drawn first) and NAME.encoder.safetensors, with compact weights"
)]
struct Args {
    /// The whole weights file to read, e.g. weights/digits.safetensors.
    source: PathBuf,
    /// How to store the decoder's weight matrices (the part the page draws with first).
    #[arg(long, value_enum, default_value_t = Encoding::Int8)]
    decoder_weights: Encoding,
    /// How to store the encoder's weight matrices.
    #[arg(long, value_enum, default_value_t = Encoding::F16)]
    encoder_weights: Encoding,
    /// Folder for the two parts (default: the source's folder).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// The command line's names for `WeightEncoding`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Encoding {
    /// I8 with an F32 scale per row.
    Int8,
    /// Half precision.
    F16,
    /// As trained.
    F32,
}

fn main() {
    if let Err(e) = run(&Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let source = &args.source;
    let bytes = std::fs::read(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let parts =
        format::load_parts(&bytes, None).map_err(|e| format!("{}: {e}", source.display()))?;
    let encodings = [args.decoder_weights, args.encoder_weights].map(|e| match e {
        Encoding::Int8 => WeightEncoding::Int8Rows,
        Encoding::F16 => WeightEncoding::F16,
        Encoding::F32 => WeightEncoding::F32,
    });
    let [decoder, encoder] = format::save_split(&parts.file, &parts.raw_metadata, encodings)?;
    // Read back through the same checks the page runs, before anything is written.
    format::load_split(&decoder, &encoder)?;
    let stem = source
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".safetensors"))
        .ok_or_else(|| format!("{}: expected a NAME.safetensors file", source.display()))?;
    let dir = match &args.out_dir {
        Some(d) => d.clone(),
        None => source.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let decoder_path = dir.join(format!("{stem}.decoder.safetensors"));
    let encoder_path =
        format::encoder_part_path(&decoder_path).ok_or("cannot name the encoder part")?;
    format::write_atomic(&decoder_path, &decoder)?;
    format::write_atomic(&encoder_path, &encoder)?;
    println!(
        "{} ({} bytes) -> {} ({} bytes) + {} ({} bytes), weights {:?} / {:?}",
        source.display(),
        bytes.len(),
        decoder_path.display(),
        decoder.len(),
        encoder_path.display(),
        encoder.len(),
        args.decoder_weights,
        args.encoder_weights
    );
    Ok(())
}
