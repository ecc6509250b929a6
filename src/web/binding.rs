//! The browser edge: a `Model` that JavaScript loads from bytes and asks for decodes.
//!
//! Every argument is checked here, so a bad call from JS gives a readable `JsError`, never a panic.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Tensor;
use wasm_bindgen::prelude::*;

use crate::core::format::{self, Metadata, ModelFile};
use crate::core::{metrics, model};
use crate::web::budget;
use crate::web::grid::GridSweep;
use crate::web::packed_decoder::{PackedDecoder, PixelSink};

/// Most images one `decode` or `encode` call may produce (bounds memory on careless calls).
const MAX_BATCH: usize = 4_096;

/// Set once the page has started rayon's pool of wasm threads; until then every decode runs serially.
static THREAD_POOL: AtomicBool = AtomicBool::new(false);

/// Starts rayon's pool of `n` wasm threads (threaded build only); the page calls it when cross-origin isolated.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Lets large decodes use the pool that `initThreadPool` started; returns false in the single-thread build.
#[wasm_bindgen(js_name = useThreadPool)]
pub fn use_thread_pool() -> bool {
    THREAD_POOL.store(cfg!(feature = "threads"), Ordering::Relaxed);
    cfg!(feature = "threads")
}

/// Cov_x(E_q[z_u]) above which a latent dim counts as active, as `eval` counts active units.
#[wasm_bindgen(js_name = activeUnitThreshold)]
pub fn active_unit_threshold() -> f32 {
    metrics::ACTIVE_UNIT_THRESHOLD
}

/// Turns any displayable error into a JS `Error`.
fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Installs the panic hook once, so a Rust panic shows its message in the console.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(console_error_panic_hook::set_once);
}

fn check_finite(name: &str, values: &[f32]) -> Result<(), JsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(JsError::new(&format!(
            "{name}[{i}] is {}; every value must be finite",
            values[i]
        ))),
        None => Ok(()),
    }
}

/// Installs the panic hook, then refuses a file whose model could not run in wasm memory, before loading it.
fn check_fits(bytes: &[u8]) -> Result<(), JsError> {
    install_panic_hook();
    let config = format::peek_metadata(bytes)
        .map_err(js_error)?
        .model_config();
    budget::check_model(&config, bytes.len()).map_err(|e| JsError::new(&e))
}

/// A loaded VAE, as seen from JavaScript.
#[wasm_bindgen]
pub struct Model {
    meta: Metadata,
    decoder: PackedDecoder,
    /// The whole model (encoder and atlas too); None while a split model's encoder part is on its way.
    file: Option<ModelFile>,
    /// A split model's decoder part, kept until the encoder part arrives and both are checked together.
    decoder_part: Vec<u8>,
}

#[wasm_bindgen]
impl Model {
    /// Loads and fully checks a weights file; a malformed file gives an error naming what is wrong.
    pub fn load(bytes: &[u8]) -> Result<Model, JsError> {
        check_fits(bytes)?;
        let file = format::load(bytes).map_err(js_error)?;
        let decoder = PackedDecoder::new(&file.vae.decoder).map_err(js_error)?;
        Ok(Model {
            meta: file.meta.clone(),
            decoder,
            file: Some(file),
            decoder_part: Vec::new(),
        })
    }

    /// Loads a split model's decoder part alone, so that images can be drawn before the encoder part arrives.
    pub fn load_decoder_part(bytes: &[u8]) -> Result<Model, JsError> {
        check_fits(bytes)?;
        let part = format::load_decoder_part(bytes).map_err(js_error)?;
        let decoder = PackedDecoder::new(&part.decoder).map_err(js_error)?;
        Ok(Model {
            meta: part.meta,
            decoder,
            file: None,
            decoder_part: bytes.to_vec(),
        })
    }

    /// Adds the encoder part to a model loaded by `load_decoder_part`; both parts are checked together, as one file.
    pub fn add_encoder_part(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        if self.file.is_some() {
            return Err(JsError::new("this model already has its encoder"));
        }
        self.file = Some(format::load_split(&self.decoder_part, bytes).map_err(js_error)?);
        self.decoder_part = Vec::new();
        Ok(())
    }

    /// True once the encoder and the atlas are loaded (always, for a whole file).
    #[wasm_bindgen(getter)]
    pub fn has_encoder(&self) -> bool {
        self.file.is_some()
    }

    /// The whole model, or an error while a split model's encoder part has not arrived.
    fn whole(&self) -> Result<&ModelFile, JsError> {
        self.file
            .as_ref()
            .ok_or_else(|| JsError::new("the encoder part of this model has not arrived yet"))
    }

    /// The file's metadata as a JSON string (dataset, class names, sizes, latent statistics, metrics).
    pub fn metadata(&self) -> Result<String, JsError> {
        serde_json::to_string(&self.meta).map_err(js_error)
    }

    /// Dimensions of z.
    #[wasm_bindgen(getter)]
    pub fn latent_dim(&self) -> usize {
        self.meta.latent_dim
    }

    /// Image width in pixels.
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.meta.width
    }

    /// Image height in pixels.
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.meta.height
    }

    /// The largest grid side `decode_grid` takes for this model's image size (at most 64).
    #[wasm_bindgen(getter)]
    pub fn max_grid_side(&self) -> usize {
        budget::max_grid_side(self.width(), self.height())
    }

    fn pixels_per_image(&self) -> usize {
        self.meta.width * self.meta.height
    }

    /// Checks that a batch of `n` rows of the model's widest activation fits one output's budget.
    fn check_batch(&self, what: &str, n: usize) -> Result<(), JsError> {
        let widest = budget::widest_activation(&self.meta.model_config());
        budget::output_bytes(what, &[n, widest, 4], "pass fewer images per call")
            .map(drop)
            .map_err(|e| JsError::new(&e))
    }

    /// Decodes `n` latent vectors (`z` is `[n, latent_dim]`, row-major) to `[n, width*height]` pixels in [0, 1].
    pub fn decode(&self, z: &[f32], n: usize) -> Result<Vec<f32>, JsError> {
        let latent = self.latent_dim();
        if n == 0 || n > MAX_BATCH {
            return Err(JsError::new(&format!(
                "n = {n}: decode takes 1..={MAX_BATCH} vectors"
            )));
        }
        if z.len() != n * latent {
            return Err(JsError::new(&format!(
                "z has {} values; {n} vectors of latent_dim {latent} need {}",
                z.len(),
                n * latent
            )));
        }
        check_finite("z", z)?;
        let bytes = budget::output_bytes(
            &format!("decoding {n} images of {}x{}", self.width(), self.height()),
            &[n, self.pixels_per_image(), 4],
            "decode fewer images per call",
        )
        .map_err(|e| JsError::new(&e))?;
        let mut pixels = vec![0.0; bytes / 4];
        let sink = PixelSink::Intensities(&mut pixels);
        self.decoder
            .decode(z, sink, THREAD_POOL.load(Ordering::Relaxed));
        Ok(pixels)
    }

    /// Decodes a `cols` x `rows` sweep of two latent dims into one RGBA image, row 0 (top) at `y_max`.
    ///
    /// Every cell starts from `base_z`; dim `x_dim` goes from `x_min` (left) to `x_max` (right) and
    /// dim `y_dim` from `y_max` (top) to `y_min` (bottom), sampled at cell centres (`web::grid`).
    /// The image is `cols*width` pixels wide and `rows*height` high; gray = 255 * intensity.
    #[allow(clippy::too_many_arguments)]
    pub fn decode_grid(
        &self,
        base_z: &[f32],
        x_dim: usize,
        y_dim: usize,
        x_min: f32,
        x_max: f32,
        y_min: f32,
        y_max: f32,
        cols: usize,
        rows: usize,
    ) -> Result<Vec<u8>, JsError> {
        let latent = self.latent_dim();
        if base_z.len() != latent {
            return Err(JsError::new(&format!(
                "base_z has {} values but latent_dim is {latent}",
                base_z.len()
            )));
        }
        check_finite("base_z", base_z)?;
        let sweep = GridSweep {
            x_dim,
            y_dim,
            x_min,
            x_max,
            y_min,
            y_max,
            cols,
            rows,
        };
        sweep.check(latent).map_err(|e| JsError::new(&e))?;
        let (width, height) = (self.width(), self.height());
        let bytes = budget::output_bytes(
            &format!("a {cols}x{rows} grid of {width}x{height} images"),
            &[cols, rows, width, height, 4],
            &format!(
                "use at most {0}x{0} cells for this image size",
                self.max_grid_side()
            ),
        )
        .map_err(|e| JsError::new(&e))?;
        let z = sweep.latents(base_z);
        let mut rgba = vec![0u8; bytes];
        let sink = PixelSink::Tiles {
            rgba: &mut rgba,
            cols,
            width,
            height,
        };
        self.decoder
            .decode(&z, sink, THREAD_POOL.load(Ordering::Relaxed));
        Ok(rgba)
    }

    /// Checks `[n, width*height]` pixels (finite, 1..=MAX_BATCH images) and returns them as a tensor.
    fn pixel_matrix(&self, pixels: &[f32]) -> Result<Tensor, JsError> {
        let per_image = self.pixels_per_image();
        if pixels.is_empty() || !pixels.len().is_multiple_of(per_image) {
            return Err(JsError::new(&format!(
                "pixels has {} values; expected a positive multiple of {per_image} (width*height)",
                pixels.len()
            )));
        }
        let n = pixels.len() / per_image;
        if n > MAX_BATCH {
            return Err(JsError::new(&format!(
                "{n} images: a call takes at most {MAX_BATCH}"
            )));
        }
        check_finite("pixels", pixels)?;
        self.check_batch(&format!("encoding {n} images"), n)?;
        model::matrix(pixels, n, per_image).map_err(js_error)
    }

    /// Encodes `[n, width*height]` pixels in [0, 1]; returns mu (`n*latent_dim` values) then logvar (the same).
    pub fn encode(&self, pixels: &[f32]) -> Result<Vec<f32>, JsError> {
        let x = self.pixel_matrix(pixels)?;
        let (mu, logvar) = self.whole()?.vae.encode(&x).map_err(js_error)?;
        let mut out = flat(&mu).map_err(js_error)?;
        out.extend(flat(&logvar).map_err(js_error)?);
        Ok(out)
    }

    /// The ELBO's terms for `[n, width*height]` pixels in [0, 1], so the page can show what the loss is made of.
    ///
    /// Per image, `2 + latent_dim` values: the reconstruction -log p(x | z = mu) in nats (BCE summed over
    /// pixels, decoded at the encoder's mean rather than a random sample, so it is repeatable), the total
    /// KL(q(z|x) || N(0, I)), then the KL of each dim.
    pub fn elbo_terms(&self, pixels: &[f32]) -> Result<Vec<f32>, JsError> {
        let x = self.pixel_matrix(pixels)?;
        metrics::elbo_terms_per_image(&self.whole()?.vae, &x).map_err(js_error)
    }

    /// Samples q(z|x) for one image by the reparameterisation trick, and scores each sample.
    ///
    /// `eps` is `[n, latent_dim]` standard-normal values drawn by the caller (so a seed repeats them).
    /// Returns the `n*latent_dim` values z = mu + sigma * eps, then the `n` reconstructions
    /// -log p(x | z) in nats: their mean estimates E_q[-log p(x|z)], the ELBO's reconstruction term.
    pub fn sample_posterior(&self, pixels: &[f32], eps: &[f32]) -> Result<Vec<f32>, JsError> {
        let x = self.pixel_matrix(pixels)?;
        if pixels.len() != self.pixels_per_image() {
            return Err(JsError::new(&format!(
                "pixels has {} values; sample_posterior takes one image of {} (width*height)",
                pixels.len(),
                self.pixels_per_image()
            )));
        }
        let latent = self.latent_dim();
        let n = eps.len() / latent;
        if n == 0 || n > MAX_BATCH || !eps.len().is_multiple_of(latent) {
            return Err(JsError::new(&format!(
                "eps has {} values; expected 1..={MAX_BATCH} vectors of latent_dim {latent}",
                eps.len()
            )));
        }
        check_finite("eps", eps)?;
        self.check_batch(&format!("decoding {n} samples"), n)?;
        let samples = metrics::posterior_samples(&self.whole()?.vae, &x, eps).map_err(js_error)?;
        let mut out = samples.z;
        out.extend(samples.recon);
        Ok(out)
    }

    /// Number of atlas images (held-out test images shipped with the model); 0 when the file has none.
    #[wasm_bindgen(getter)]
    pub fn atlas_len(&self) -> usize {
        self.atlas().map_or(0, |a| a.len())
    }

    /// Atlas pixels, `[atlas_len, height, width]` bytes.
    pub fn atlas_pixels(&self) -> Vec<u8> {
        self.atlas().map_or_else(Vec::new, |a| a.pixels.clone())
    }

    /// Atlas class labels, `[atlas_len]`, indexing the metadata's class_names.
    pub fn atlas_labels(&self) -> Vec<u8> {
        self.atlas().map_or_else(Vec::new, |a| a.labels.clone())
    }

    /// Atlas encoder means, `[atlas_len, latent_dim]`.
    pub fn atlas_mu(&self) -> Vec<f32> {
        self.atlas().map_or_else(Vec::new, |a| a.mu.clone())
    }
}

impl Model {
    /// The atlas, once the whole model is here and when it has one.
    fn atlas(&self) -> Option<&format::Atlas> {
        self.file.as_ref()?.atlas.as_ref()
    }
}

/// A tensor's values as one flat vector.
fn flat(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}
