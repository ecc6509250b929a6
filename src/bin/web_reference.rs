//! Native reference values for the browser tests.
//!
//! `web_reference MODEL OUT.json` decodes fixed latent vectors, a small grid and two atlas images natively
//! and writes inputs and outputs as JSON; tests/web compares the wasm build against them.

use std::process::ExitCode;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::json;
use vae_explorer::core::format::{self, Metadata};
use vae_explorer::core::model::{self, Vae};
use vae_explorer::web::grid::GridSweep;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

fn decode(vae: &Vae, z: &[f32], latent: usize) -> BoxResult<Vec<f32>> {
    let t = model::matrix(z, z.len() / latent, latent)?;
    Ok(vae.decode(&t)?.flatten_all()?.to_vec1::<f32>()?)
}

/// The latent vectors the test decodes: the mean, the slider corners, and seeded draws around the mean.
fn reference_z(meta: &Metadata) -> Vec<f32> {
    let (mean, std) = (&meta.latent_mean, &meta.latent_std);
    let mut z: Vec<f32> = mean.clone();
    z.extend(mean.iter().zip(std).map(|(m, s)| m + 3.0 * s));
    z.extend(mean.iter().zip(std).map(|(m, s)| m - 3.0 * s));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2024);
    for _ in 0..5 {
        for (m, s) in mean.iter().zip(std) {
            let e: f32 = StandardNormal.sample(&mut rng);
            z.push(m + s * e);
        }
    }
    z
}

/// A native rendering of `Model::decode_grid` through candle's decoder, with its own tiling, to
/// check the wasm kernel's layout and values.
fn reference_grid(vae: &Vae, meta: &Metadata, grid: &GridSweep) -> BoxResult<Vec<u8>> {
    let (w, h, latent) = (meta.width, meta.height, meta.latent_dim);
    let cells = grid.latents(&meta.latent_mean);
    let mut rgba = vec![255u8; grid.cols * w * grid.rows * h * 4];
    for row in 0..grid.rows {
        for col in 0..grid.cols {
            let cell = row * grid.cols + col;
            let image = decode(vae, &cells[cell * latent..(cell + 1) * latent], latent)?;
            for py in 0..h {
                for px in 0..w {
                    let v = (image[py * w + px].clamp(0.0, 1.0) * 255.0).round() as u8;
                    let at = (((row * h + py) * grid.cols * w) + col * w + px) * 4;
                    rgba[at..at + 3].fill(v);
                }
            }
        }
    }
    Ok(rgba)
}

fn write_reference(model_path: &str, out: &str) -> BoxResult<()> {
    let file = format::read_model(std::path::Path::new(model_path))?;
    let meta = &file.meta;
    let latent = meta.latent_dim;
    let z = reference_z(meta);
    let pixels = decode(&file.vae, &z, latent)?;
    let grid = GridSweep {
        x_dim: 0,
        y_dim: 2.min(latent - 1).max(1),
        x_min: -2.0,
        x_max: 2.5,
        y_min: -1.5,
        y_max: 3.0,
        cols: 5,
        rows: 3,
    };
    let grid_rgba = reference_grid(&file.vae, meta, &grid)?;
    let per_image = meta.width * meta.height;
    let encode_input: Vec<f32> = match &file.atlas {
        Some(a) => a.pixels[..(2 * per_image).min(a.pixels.len())]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect(),
        None => (0..2 * per_image).map(|i| (i % 7) as f32 / 7.0).collect(),
    };
    let x = model::matrix(&encode_input, encode_input.len() / per_image, per_image)?;
    let (mu, logvar) = file.vae.encode(&x)?;
    let mut encoded = mu.flatten_all()?.to_vec1::<f32>()?;
    encoded.extend(logvar.flatten_all()?.to_vec1::<f32>()?);
    let doc = json!({
        "model": model_path,
        "latent_dim": latent,
        "decode": { "n": z.len() / latent, "z": z, "pixels": pixels },
        "grid": {
            "base_z": meta.latent_mean,
            "x_dim": grid.x_dim, "y_dim": grid.y_dim,
            "x_min": grid.x_min, "x_max": grid.x_max, "y_min": grid.y_min, "y_max": grid.y_max,
            "cols": grid.cols, "rows": grid.rows,
            "rgba": grid_rgba,
        },
        "encode": { "pixels": encode_input, "mu_logvar": encoded },
    });
    if let Some(dir) = std::path::Path::new(out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, serde_json::to_vec(&doc)?)?;
    println!("wrote {out} from {model_path}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [model_path, out] if !model_path.starts_with('-') => write_reference(model_path, out),
        _ => {
            eprintln!("usage: web_reference MODEL.safetensors OUT.json");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("web_reference: {e}");
            ExitCode::FAILURE
        }
    }
}
