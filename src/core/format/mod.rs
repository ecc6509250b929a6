//! The weights file: one safetensors file per model, checked in full on load (see docs/FORMAT.md).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::core::data::fnv1a;
use crate::core::model::{Activation, Mlp, ModelConfig, Vae};

mod split;
mod write;
pub use split::*;
use split::{part_info, part_name};
pub use write::*;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The `__metadata__` key that holds the JSON metadata.
pub const METADATA_KEY: &str = "vae_explorer";
/// The `__metadata__` key that marks a file as one part of a split model (see docs/FORMAT.md).
pub const PART_KEY: &str = "vae_explorer_part";
/// The name of an `I8` weight's per-row scale is the weight's name plus this suffix.
pub const SCALE_SUFFIX: &str = "_scale";
/// Largest accepted latent dim, hidden width and class count: bounds memory on hostile files.
const MAX_LATENT: usize = 256;
const MAX_WIDTH: usize = 16_384;
const MAX_CLASSES: usize = 1_000;
const MAX_SIDE: usize = 1_024;

/// Why a weights file was refused.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant's message documents it
pub enum FormatError {
    #[error("not a safetensors file: {0}")]
    Safetensors(String),
    #[error("no `{METADATA_KEY}` entry in the safetensors __metadata__: not a vae-explorer weights file")]
    MissingMetadata,
    #[error("metadata is not valid: {0}")]
    BadMetadata(String),
    #[error("format version {0} is not supported (this build reads version {FORMAT_VERSION})")]
    Version(u64),
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    #[error("unexpected tensor `{0}`")]
    UnexpectedTensor(String),
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}{hint}")]
    Shape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
        hint: String,
    },
    #[error("tensor `{name}` has dtype {found}, expected {expected}")]
    Dtype {
        name: String,
        found: String,
        expected: &'static str,
    },
    #[error("tensor `{0}` holds NaN or infinite values")]
    NotFinite(String),
    #[error("tensor `{0}` holds a negative scale")]
    NegativeScale(String),
    #[error("I8 weight `{0}` has no per-row scale `{0}{SCALE_SUFFIX}`")]
    MissingScale(String),
    #[error("tensor `{0}` is a scale, but its weight is not I8")]
    StrayScale(String),
    #[error("atlas: {0}")]
    Atlas(String),
    #[error("split model: {0}")]
    Split(String),
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, FormatError>;

/// How pixels are modelled given z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Likelihood {
    /// Each pixel is Bernoulli with the decoder's logit; grayscale targets use the same cross-entropy.
    Bernoulli,
}

/// How the page turns a drawing or a picture into the model's input, as its training images were made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preprocess {
    /// MNIST's recipe: the ink's box scaled into 20/28 of the image, its centre of mass at the centre.
    Mnist,
    /// Fashion-MNIST's: the ink's box scaled to fill the image, and centred. Files without the key get this.
    #[default]
    Fit,
    /// The whole picture resized to the image size: nothing cropped or centred.
    #[serde(rename = "none")]
    AsIs,
}

/// Held-out figures measured when the model was saved.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// Images the figures are averaged over.
    pub test_images: usize,
    /// 1-sample -ELBO, nats per image.
    pub neg_elbo: f64,
    /// Reconstruction term, nats per image.
    pub recon: f64,
    /// KL term, nats per image.
    pub kl: f64,
    /// Latent dims whose Cov_x(E_q[z]) exceeds 0.01.
    pub active_units: usize,
    /// Importance-weighted -log p(x) estimate, nats per image.
    pub iw_nll: Option<f64>,
    /// Samples per image in that estimate.
    pub iw_samples: Option<usize>,
}

/// How the model was trained, so that it can be trained again.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainingInfo {
    /// The command line.
    pub command: String,
    /// The seed.
    pub seed: u64,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall-clock training time.
    pub seconds: f64,
}

/// Everything the `__metadata__` JSON holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metadata {
    /// Must equal `FORMAT_VERSION`.
    pub format_version: u32,
    /// Dataset name, e.g. "digits" or "fashion".
    pub dataset: String,
    /// Class names in label order.
    pub class_names: Vec<String>,
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Dimensions of z.
    pub latent_dim: usize,
    /// Encoder hidden widths, from the input side.
    pub encoder_hidden: Vec<usize>,
    /// Decoder hidden widths, from the latent side.
    pub decoder_hidden: Vec<usize>,
    /// Nonlinearity after each hidden layer.
    pub activation: Activation,
    /// The decoder's output distribution.
    pub likelihood: Likelihood,
    /// Mean of each latent dim's encoder mean over the training set.
    pub latent_mean: Vec<f32>,
    /// Standard deviation of the same; sliders span mean +- 3 std.
    pub latent_std: Vec<f32>,
    /// How the page prepares drawings and pictures for the encoder.
    #[serde(default)]
    pub preprocess: Preprocess,
    /// Held-out figures, when measured.
    #[serde(default)]
    pub metrics: Option<Metrics>,
    /// Training provenance, when trained by this project.
    #[serde(default)]
    pub training: Option<TrainingInfo>,
}

impl Metadata {
    /// The model shape this metadata describes.
    pub fn model_config(&self) -> ModelConfig {
        ModelConfig {
            input_dim: self.width * self.height,
            latent_dim: self.latent_dim,
            encoder_hidden: self.encoder_hidden.clone(),
            decoder_hidden: self.decoder_hidden.clone(),
            activation: self.activation,
        }
    }

    /// Checks every field for sense, so that no later code has to.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(FormatError::BadMetadata(m));
        if self.format_version != FORMAT_VERSION {
            return Err(FormatError::Version(self.format_version.into()));
        }
        if self.width == 0 || self.height == 0 || self.width > MAX_SIDE || self.height > MAX_SIDE {
            return bad(format!(
                "image size {}x{} is outside 1..={MAX_SIDE}",
                self.width, self.height
            ));
        }
        if self.latent_dim == 0 || self.latent_dim > MAX_LATENT {
            return bad(format!(
                "latent_dim {} is outside 1..={MAX_LATENT}",
                self.latent_dim
            ));
        }
        for (name, sizes) in [
            ("encoder_hidden", &self.encoder_hidden),
            ("decoder_hidden", &self.decoder_hidden),
        ] {
            if sizes.len() > 16 || sizes.iter().any(|&h| h == 0 || h > MAX_WIDTH) {
                return bad(format!(
                    "{name} {sizes:?}: at most 16 layers of 1..={MAX_WIDTH} units"
                ));
            }
        }
        if self.class_names.is_empty() || self.class_names.len() > MAX_CLASSES {
            return bad(format!(
                "class_names has {} entries, expected 1..={MAX_CLASSES}",
                self.class_names.len()
            ));
        }
        for (name, v) in [
            ("latent_mean", &self.latent_mean),
            ("latent_std", &self.latent_std),
        ] {
            if v.len() != self.latent_dim {
                return bad(format!(
                    "{name} has {} values but latent_dim is {}",
                    v.len(),
                    self.latent_dim
                ));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return bad(format!("{name} holds a non-finite value"));
            }
        }
        if self.latent_std.iter().any(|&s| s <= 0.0) {
            return bad("latent_std values must be positive".into());
        }
        Ok(())
    }
}

/// Held-out test images with their labels and encodings, for the gallery and the class map.
#[derive(Debug, Clone, PartialEq)]
pub struct Atlas {
    /// `[n, height, width]` pixels, 0..=255.
    pub pixels: Vec<u8>,
    /// `[n]` class labels.
    pub labels: Vec<u8>,
    /// `[n, latent]` encoder means.
    pub mu: Vec<f32>,
}

impl Atlas {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when it holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A loaded, fully checked weights file.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Its metadata.
    pub meta: Metadata,
    /// The model.
    pub vae: Vae,
    /// The atlas, when the file has one.
    pub atlas: Option<Atlas>,
}

const ATLAS_PIXELS: &str = "atlas.pixels";
const ATLAS_LABELS: &str = "atlas.labels";
const ATLAS_MU: &str = "atlas.mu";

/// Reads a safetensors view as f32 values, converting from f16, bf16 or f64.
fn float_values(name: &str, view: &TensorView) -> Result<Vec<f32>> {
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(FormatError::Dtype {
                name: name.to_string(),
                found: format!("{other:?}"),
                expected: "F32 (or F16, BF16, F64; or I8 with a per-row scale, for a weight)",
            })
        }
    };
    if values.iter().any(|v| !v.is_finite()) {
        return Err(FormatError::NotFinite(name.to_string()));
    }
    Ok(values)
}

/// A model tensor's values as f32: a float tensor converted, or an `I8` weight times its row's scale.
fn model_values(sources: &Sources, name: &str, view: &TensorView) -> Result<Vec<f32>> {
    if view.dtype() != Dtype::I8 || !name.ends_with(".weight") {
        return float_values(name, view);
    }
    let scale_name = format!("{name}{SCALE_SUFFIX}");
    let scale = sources
        .tensor(&scale_name)
        .ok_or_else(|| FormatError::MissingScale(name.to_string()))?;
    let (rows, cols) = (view.shape()[0], view.shape()[1]);
    check_shape(&scale_name, &scale, &[rows], "")?;
    if scale.dtype() != Dtype::F32 {
        return Err(FormatError::Dtype {
            name: scale_name,
            found: format!("{:?}", scale.dtype()),
            expected: "F32",
        });
    }
    let scales = float_values(&scale_name, &scale)?;
    if scales.iter().any(|&s| s < 0.0) {
        return Err(FormatError::NegativeScale(scale_name));
    }
    let mut values = Vec::with_capacity(rows * cols);
    for (row, &scale) in view.data().chunks_exact(cols.max(1)).zip(&scales) {
        values.extend(row.iter().map(|&b| f32::from(b as i8) * scale));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(FormatError::NotFinite(name.to_string()));
    }
    Ok(values)
}

fn check_shape(name: &str, view: &TensorView, expected: &[usize], hint: &str) -> Result<()> {
    if view.shape() != expected {
        return Err(FormatError::Shape {
            name: name.to_string(),
            found: view.shape().to_vec(),
            expected: expected.to_vec(),
            hint: hint.to_string(),
        });
    }
    Ok(())
}

fn u8_values(name: &str, view: &TensorView) -> Result<Vec<u8>> {
    if view.dtype() != Dtype::U8 {
        return Err(FormatError::Dtype {
            name: name.to_string(),
            found: format!("{:?}", view.dtype()),
            expected: "U8",
        });
    }
    Ok(view.data().to_vec())
}

/// The parsed metadata of a safetensors file, with all its other `__metadata__` entries.
fn read_metadata(st_meta: Option<&HashMap<String, String>>) -> Result<Metadata> {
    let json = st_meta
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or(FormatError::MissingMetadata)?;
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| FormatError::BadMetadata(format!("not JSON: {e}")))?;
    // Check the version first, so that a newer file says so instead of naming a missing field.
    match value.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if v != u64::from(FORMAT_VERSION) => return Err(FormatError::Version(v)),
        _ => {}
    }
    let meta: Metadata =
        serde_json::from_str(json).map_err(|e| FormatError::BadMetadata(json_error(json, &e)))?;
    meta.validate()?;
    Ok(meta)
}

/// A serde error with the JSON text it stopped at, which names the offending field.
fn json_error(json: &str, e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let line = json.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
    let end = (0..=e.column().min(line.len()))
        .rev()
        .find(|&i| line.is_char_boundary(i))
        .unwrap_or(0);
    // At the very end (a missing top-level field) the text there says nothing more.
    if e.line() >= json.lines().count() && end >= line.trim_end().len() {
        return msg;
    }
    let tail: Vec<char> = line[..end].chars().rev().take(40).collect();
    let near: String = tail.into_iter().rev().collect();
    format!("{msg}, near `{}`", near.trim())
}

/// A safetensors error, with a hint for the usual cause: a file cut short.
fn safetensors_error(e: safetensors::SafeTensorError) -> FormatError {
    use safetensors::SafeTensorError as E;
    let hint = match e {
        E::HeaderTooSmall => " (the file is empty or truncated)",
        E::HeaderTooLarge => {
            " (its first 8 bytes give a header length over 100 MB: the file is corrupt)"
        }
        E::InvalidHeaderLength => " (the file is truncated or corrupt)",
        E::MetadataIncompleteBuffer => " (the file is truncated, or has extra bytes at its end)",
        _ => "",
    };
    FormatError::Safetensors(format!("{e}{hint}"))
}

/// A weights file split into its checked parts, plus any tensors named with `extra_prefix`.
pub struct Parts {
    /// The checked model file.
    pub file: ModelFile,
    /// Tensors whose names start with the extra prefix (e.g. optimizer state in a checkpoint).
    pub extras: HashMap<String, Tensor>,
    /// Every `__metadata__` entry, including the ones this module does not interpret.
    pub raw_metadata: HashMap<String, String>,
}

/// Reads and checks a file's header and metadata only, so that a caller can size the model before loading it.
pub fn peek_metadata(bytes: &[u8]) -> Result<Metadata> {
    let (_, st_header) = SafeTensors::read_metadata(bytes).map_err(safetensors_error)?;
    read_metadata(st_header.metadata().as_ref())
}

/// The safetensors files a model is read from: one whole file, or both parts of a split model.
struct Sources<'a>(Vec<SafeTensors<'a>>);

impl Sources<'_> {
    fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        self.0.iter().find_map(|st| st.tensor(name).ok())
    }

    /// Every tensor name, sorted; a name in both parts of a split model is refused.
    fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .0
            .iter()
            .flat_map(|st| st.names())
            .map(str::to_string)
            .collect();
        names.sort();
        if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(FormatError::Split(format!(
                "tensor `{}` is in both parts",
                twice[0]
            )));
        }
        Ok(names)
    }
}

/// Rule 1 (the container): the parsed file and its `__metadata__` entries.
fn open(bytes: &[u8]) -> Result<(SafeTensors<'_>, HashMap<String, String>)> {
    let (_, st_header) = SafeTensors::read_metadata(bytes).map_err(safetensors_error)?;
    let raw_metadata = st_header.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(bytes).map_err(safetensors_error)?;
    Ok((st, raw_metadata))
}

/// What `check_tensors` read: the model tensors (PyTorch layout, f32), the atlas and any extras.
struct Checked {
    tensors: HashMap<String, Tensor>,
    atlas: Option<Atlas>,
    extras: HashMap<String, Tensor>,
}

/// Rules 6-8 over `sources`: names, model tensors (all, or only the decoder's) and the atlas.
fn check_tensors(
    sources: &Sources,
    meta: &Metadata,
    decoder_only: bool,
    extra_prefix: Option<&str>,
) -> Result<Checked> {
    let expected: Vec<(String, Vec<usize>)> = meta
        .model_config()
        .tensor_shapes()
        .into_iter()
        .filter(|(name, _)| !decoder_only || name.starts_with("decoder."))
        .collect();
    let scales: Vec<String> = expected
        .iter()
        .filter(|(n, _)| n.ends_with(".weight"))
        .map(|(n, _)| format!("{n}{SCALE_SUFFIX}"))
        .collect();
    let atlas_names: &[&str] = if decoder_only {
        &[]
    } else {
        &[ATLAS_PIXELS, ATLAS_LABELS, ATLAS_MU]
    };
    let known: std::collections::HashSet<&str> = expected
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(scales.iter().map(String::as_str))
        .chain(atlas_names.iter().copied())
        .collect();
    let names = sources.names()?;
    for name in &names {
        let extra = extra_prefix.is_some_and(|p| name.starts_with(p));
        if !known.contains(name.as_str()) && !extra {
            return Err(FormatError::UnexpectedTensor(name.clone()));
        }
    }
    let view = |name: &str| {
        sources
            .tensor(name)
            .ok_or_else(|| FormatError::MissingTensor(name.to_string()))
    };
    let mut tensors = HashMap::new();
    for (name, shape) in &expected {
        let v = view(name)?;
        let hint = if name.starts_with("encoder.mu") || name.starts_with("encoder.logvar") {
            format!(" (metadata says latent_dim {})", meta.latent_dim)
        } else {
            String::new()
        };
        check_shape(name, &v, shape, &hint)?;
        let values = model_values(sources, name, &v)?;
        tensors.insert(
            name.clone(),
            Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?,
        );
    }
    // A scale belongs to an I8 weight; next to a float weight it would be silently ignored.
    for scale in scales.iter().filter(|s| names.contains(s)) {
        let weight = &scale[..scale.len() - SCALE_SUFFIX.len()];
        if view(weight)?.dtype() != Dtype::I8 {
            return Err(FormatError::StrayScale(scale.clone()));
        }
    }
    let atlas = if decoder_only {
        None
    } else {
        read_atlas(sources, meta)?
    };
    let mut extras = HashMap::new();
    if let Some(prefix) = extra_prefix {
        for name in names.iter().filter(|n| n.starts_with(prefix)) {
            let v = view(name)?;
            let values = float_values(name, &v)?;
            extras.insert(
                name.clone(),
                Tensor::from_vec(values, v.shape(), &Device::Cpu)?,
            );
        }
    }
    Ok(Checked {
        tensors,
        atlas,
        extras,
    })
}

/// Loads and checks a weights file; any malformed input gives an error, never a panic.
pub fn load(bytes: &[u8]) -> Result<ModelFile> {
    Ok(load_parts(bytes, None)?.file)
}

/// Like `load`, but also accepts and returns float tensors named `extra_prefix*` (used by checkpoints).
pub fn load_parts(bytes: &[u8], extra_prefix: Option<&str>) -> Result<Parts> {
    let (st, raw_metadata) = open(bytes)?;
    if let Some(info) = part_info(&raw_metadata)? {
        return Err(FormatError::Split(format!(
            "this file is only the {} part of a split model: open the model's whole file, or load both parts together",
            part_name(info.part)
        )));
    }
    let meta = read_metadata(Some(&raw_metadata))?;
    let checked = check_tensors(&Sources(vec![st]), &meta, false, extra_prefix)?;
    let vae = Vae::from_tensors(&meta.model_config(), &checked.tensors)?;
    Ok(Parts {
        file: ModelFile {
            meta,
            vae,
            atlas: checked.atlas,
        },
        extras: checked.extras,
        raw_metadata,
    })
}

fn read_atlas(sources: &Sources, meta: &Metadata) -> Result<Option<Atlas>> {
    let present = [ATLAS_PIXELS, ATLAS_LABELS, ATLAS_MU].map(|n| sources.tensor(n));
    let [Some(pixels), Some(labels), Some(mu)] = present else {
        if present.iter().any(Option::is_some) {
            return Err(FormatError::Atlas(format!(
                "needs all of {ATLAS_PIXELS}, {ATLAS_LABELS} and {ATLAS_MU}, or none"
            )));
        }
        return Ok(None);
    };
    let n = labels.shape().first().copied().unwrap_or(0);
    let mismatch = format!(" (atlas of {n} images, latent_dim {})", meta.latent_dim);
    check_shape(ATLAS_LABELS, &labels, &[n], "")?;
    check_shape(
        ATLAS_PIXELS,
        &pixels,
        &[n, meta.height, meta.width],
        &mismatch,
    )?;
    check_shape(ATLAS_MU, &mu, &[n, meta.latent_dim], &mismatch)?;
    let labels = u8_values(ATLAS_LABELS, &labels)?;
    if let Some(bad) = labels
        .iter()
        .find(|&&l| l as usize >= meta.class_names.len())
    {
        return Err(FormatError::Atlas(format!(
            "label {bad} but there are only {} classes",
            meta.class_names.len()
        )));
    }
    if mu.dtype() != Dtype::F32 {
        return Err(FormatError::Dtype {
            name: ATLAS_MU.into(),
            found: format!("{:?}", mu.dtype()),
            expected: "F32",
        });
    }
    Ok(Some(Atlas {
        pixels: u8_values(ATLAS_PIXELS, &pixels)?,
        labels,
        mu: float_values(ATLAS_MU, &mu)?,
    }))
}
