//! The browser's memory limits, in one place: every size the wasm model allocates is a checked
//! product under a budget, so that a large model or call gives an error saying what to make smaller,
//! never a size that wraps on wasm32 or an allocation that aborts.

use crate::core::model::ModelConfig;
use crate::web::grid::MAX_GRID_SIDE;
use crate::web::packed_decoder::{scratch_values, ROW_BLOCK};

/// Most bytes any one output may take (a decode, a grid image, an encoder or ELBO batch).
pub const MAX_OUTPUT_BYTES: u64 = 256 << 20;
/// Most bytes of wasm linear memory: the threaded build's maximum (`--max-memory` in the Makefile),
/// applied to both builds so that a model that loads in one runs in the other.
pub const WASM_MEMORY_BYTES: u64 = 1 << 30;
/// Threads whose decoder scratch memory a loaded model must leave room for (the pool's size is the
/// machine's core count; more than this is rare in a browser).
pub const SCRATCH_THREADS: u64 = 16;

/// The product of `factors` in u64 (which cannot wrap for any size the format allows); None past u64.
pub fn product(factors: &[usize]) -> Option<u64> {
    factors
        .iter()
        .try_fold(1u64, |acc, &f| acc.checked_mul(f as u64))
}

/// `bytes` in MB, for messages (a product past u64 reads as "more than 2^64 bytes").
pub fn megabytes(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        None => "more than 2^64 bytes".into(),
    }
}

/// Checks that one output of `factors` bytes fits MAX_OUTPUT_BYTES, returning its size.
///
/// The error says `what` needed how much, and `smaller`: what the caller should make smaller.
pub fn output_bytes(what: &str, factors: &[usize], smaller: &str) -> Result<usize, String> {
    match product(factors) {
        Some(b) if b <= MAX_OUTPUT_BYTES => Ok(b as usize),
        b => Err(format!(
            "{what} needs {}, over the {} one output may take: {smaller}",
            megabytes(b),
            megabytes(Some(MAX_OUTPUT_BYTES))
        )),
    }
}

/// The largest grid side (cells per side, at most MAX_GRID_SIDE) whose RGBA image of
/// `width` x `height` tiles fits MAX_OUTPUT_BYTES; 0 if not even one tile fits.
pub fn max_grid_side(width: usize, height: usize) -> usize {
    (1..=MAX_GRID_SIDE)
        .rev()
        .find(|&side| {
            product(&[side, side, width, height, 4]).is_some_and(|b| b <= MAX_OUTPUT_BYTES)
        })
        .unwrap_or(0)
}

/// The widest activation row of a model: its input, its latent (mu and logvar), and every hidden layer.
pub fn widest_activation(config: &ModelConfig) -> usize {
    config
        .encoder_hidden
        .iter()
        .chain(&config.decoder_hidden)
        .copied()
        .chain([config.input_dim, 2 * config.latent_dim])
        .max()
        .unwrap_or(0)
}

/// Bytes a model needs in wasm memory to run, estimated from its shape and its file's size.
///
/// The file's bytes (copied in by the caller), every weight as f32 (candle's tensors), the decoder
/// once more (the packed kernel, panels padded to 8 columns), each thread's scratch for one
/// pass, and one row block of decoded images. None past u64.
pub fn model_bytes(config: &ModelConfig, file_len: usize) -> Option<u64> {
    let weights = config
        .tensor_shapes()
        .iter()
        .try_fold(0u64, |acc, (_, shape)| acc.checked_add(product(shape)?))?;
    let decoder = config
        .decoder_hidden
        .iter()
        .chain([&config.input_dim])
        .try_fold((0u64, config.latent_dim), |(acc, inputs), &outputs| {
            let padded = outputs.div_ceil(8) * 8;
            Some((acc.checked_add(product(&[inputs + 1, padded])?)?, padded))
        })?
        .0;
    let widest = widest_activation(config).div_ceil(8) * 8;
    let scratch = product(&[scratch_values(widest), 4])?.checked_mul(SCRATCH_THREADS)?;
    let outputs = product(&[ROW_BLOCK, config.input_dim, 4])?;
    (file_len as u64)
        .checked_add(weights.checked_mul(4)?)?
        .checked_add(decoder.checked_mul(4)?)?
        .checked_add(scratch)?
        .checked_add(outputs)
}

/// Checks that a model fits WASM_MEMORY_BYTES; the error names the size it would need.
pub fn check_model(config: &ModelConfig, file_len: usize) -> Result<(), String> {
    match model_bytes(config, file_len) {
        Some(b) if b <= WASM_MEMORY_BYTES => Ok(()),
        b => Err(format!(
            "this model needs about {} of memory to run, over the {} the browser build has: \
             use fewer or narrower layers, or smaller images",
            megabytes(b),
            megabytes(Some(WASM_MEMORY_BYTES))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_never_wrap() {
        assert_eq!(product(&[32, 32, 1024, 1024, 4]), Some(1 << 32));
        assert_eq!(product(&[usize::MAX, usize::MAX, 2]), None);
        let error = output_bytes("a 32x32 grid", &[32, 32, 1024, 1024, 4], "pick 8x8").unwrap_err();
        assert!(
            error.contains("4096.0 MB") && error.ends_with("pick 8x8"),
            "{error}"
        );
        assert_eq!(output_bytes("one image", &[784, 4], ""), Ok(3136));
    }

    #[test]
    fn grid_side_shrinks_with_the_image() {
        assert_eq!(max_grid_side(28, 28), MAX_GRID_SIDE);
        assert_eq!(max_grid_side(1024, 1024), 8);
        assert_eq!(max_grid_side(512, 512), 16);
        assert_eq!(max_grid_side(300, 300), 27);
        for (w, h) in [(1024, 1024), (512, 512), (300, 300), (20, 12)] {
            let side = max_grid_side(w, h);
            assert!(output_bytes("", &[side, side, w, h, 4], "").is_ok());
            if side < MAX_GRID_SIDE {
                assert!(output_bytes("", &[side + 1, side + 1, w, h, 4], "").is_err());
            }
        }
    }

    #[test]
    fn small_models_fit_and_huge_ones_are_refused_with_their_size() {
        let shipped = ModelConfig::mirrored(784, 8, &[512, 256]);
        assert!(check_model(&shipped, 6 << 20).is_ok());
        let megapixel = ModelConfig::mirrored(1024 * 1024, 2, &[]);
        assert!(check_model(&megapixel, 25 << 20).is_ok());
        let wide = ModelConfig::mirrored(1024 * 1024, 8, &[512]);
        let error = check_model(&wide, 0).unwrap_err();
        assert!(error.contains("MB of memory to run"), "{error}");
    }
}
