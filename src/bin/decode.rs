//! Runs a weights file's decoder (and encoder) on vectors given as JSON: a reference for other runtimes.
//!
//! `decode WEIGHTS < IN.json`, where IN is `{"z": [[...latent_dim]...], "x": [[...pixels]...]}` (`x`
//! optional, pixels in [0, 1]), prints `{"pixels": [...], "mu": [...], "logvar": [...]}`: sigmoid of the
//! decoder's logits for each z, and q(z|x) for each x. The file goes through the full `format::load`
//! checks first, so this also tells whether a file made elsewhere is accepted (exit 1 and the reason if not).

use std::io::Read;
use std::process::ExitCode;

use candle_core::Tensor;
use vae_explorer::core::format;
use vae_explorer::core::model::matrix;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// What is read from stdin.
#[derive(serde::Deserialize)]
struct Input {
    /// Latent vectors to decode.
    #[serde(default)]
    z: Vec<Vec<f32>>,
    /// Images to encode.
    #[serde(default)]
    x: Vec<Vec<f32>>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("usage: decode WEIGHTS < {{\"z\": [[...]], \"x\": [[...]]}}");
        return ExitCode::from(2);
    };
    match run(path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Stacks equal-length rows into a `[n, width]` tensor, or None when there are none.
fn stack(rows: &[Vec<f32>], width: usize, what: &str) -> BoxResult<Option<Tensor>> {
    if rows.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = rows.iter().find(|r| r.len() != width) {
        return Err(format!(
            "a row of `{what}` has {} values, expected {width}",
            bad.len()
        )
        .into());
    }
    Ok(Some(matrix(&rows.concat(), rows.len(), width)?))
}

fn to_rows(t: Option<Tensor>) -> BoxResult<Vec<Vec<f32>>> {
    Ok(match t {
        Some(t) => t.to_vec2()?,
        None => Vec::new(),
    })
}

fn run(path: &str) -> BoxResult<()> {
    let file =
        format::read_model(std::path::Path::new(path)).map_err(|e| format!("{path}: {e}"))?;
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let input: Input = serde_json::from_str(&text).map_err(|e| format!("input JSON: {e}"))?;
    let config = &file.vae.config;
    let pixels = stack(&input.z, config.latent_dim, "z")?
        .map(|z| file.vae.decode(&z))
        .transpose()?;
    let (mu, logvar) = match stack(&input.x, config.input_dim, "x")? {
        Some(x) => {
            let (mu, logvar) = file.vae.encode(&x)?;
            (Some(mu), Some(logvar))
        }
        None => (None, None),
    };
    let out = serde_json::json!({
        "pixels": to_rows(pixels)?,
        "mu": to_rows(mu)?,
        "logvar": to_rows(logvar)?,
    });
    println!("{out}");
    Ok(())
}
