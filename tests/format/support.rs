//! The valid sample file the tests edit, and the checks they share.

pub use std::collections::HashMap;

pub use candle_core::Tensor;
pub use rand::SeedableRng;
pub use safetensors::tensor::{Dtype, SafeTensors, TensorView};
pub use serde_json::{json, Value};
pub use vae_explorer::core::data::DatasetKind;
pub use vae_explorer::core::format::{
    self, Atlas, FormatError, Metadata, Metrics, ModelFile, Preprocess, TrainingInfo,
    FORMAT_VERSION, METADATA_KEY,
};
pub use vae_explorer::core::model::{matrix, ModelConfig, Vae};
pub use vae_explorer::train::export::bare_metadata;

pub const LATENT: usize = 8;
pub const ATLAS_N: usize = 6;

pub fn config() -> ModelConfig {
    ModelConfig::mirrored(784, LATENT, &[16])
}

/// A small complete model file with metrics, provenance and an atlas.
pub fn sample() -> ModelFile {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let vae = Vae::init(&config(), &mut rng).unwrap();
    let mut meta = bare_metadata(&vae, DatasetKind::Digits, 28, 28);
    meta.latent_mean = (0..LATENT).map(|i| i as f32 * 0.1 - 0.3).collect();
    meta.latent_std = (0..LATENT).map(|i| 0.5 + i as f32 * 0.05).collect();
    meta.metrics = Some(Metrics {
        test_images: 997,
        neg_elbo: 120.5,
        recon: 100.25,
        kl: 20.25,
        active_units: 7,
        iw_nll: Some(115.0),
        iw_samples: Some(100),
    });
    meta.training = Some(TrainingInfo {
        command: "train --dataset digits".into(),
        seed: 3,
        epochs: 2,
        seconds: 1.5,
    });
    let atlas = Atlas {
        pixels: (0..ATLAS_N * 784).map(|i| (i * 7 % 256) as u8).collect(),
        labels: (0..ATLAS_N).map(|i| (i * 3 % 10) as u8).collect(),
        mu: (0..ATLAS_N * LATENT).map(|i| (i as f32).sin()).collect(),
    };
    ModelFile {
        meta,
        vae,
        atlas: Some(atlas),
    }
}

pub fn sample_bytes() -> Vec<u8> {
    format::save(&sample()).unwrap()
}

/// A safetensors file taken apart, to be changed and written again.
#[derive(Clone)]
pub struct Raw {
    pub tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    pub metadata: Option<HashMap<String, String>>,
}

impl Raw {
    pub fn parse(bytes: &[u8]) -> Self {
        let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
        let st = SafeTensors::deserialize(bytes).unwrap();
        let mut tensors: Vec<_> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            tensors,
            metadata: header.metadata().clone(),
        }
    }

    pub fn sample() -> Self {
        Self::parse(&sample_bytes())
    }

    pub fn bytes(&self) -> Vec<u8> {
        let views: Vec<(&str, TensorView)> = self
            .tensors
            .iter()
            .map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views.iter().map(|(n, v)| (*n, v)), self.metadata.clone()).unwrap()
    }

    pub fn meta(&self) -> Value {
        serde_json::from_str(&self.metadata.as_ref().unwrap()[METADATA_KEY]).unwrap()
    }

    pub fn edit_meta(mut self, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Self {
        let mut value = self.meta();
        f(value.as_object_mut().unwrap());
        self.metadata
            .as_mut()
            .unwrap()
            .insert(METADATA_KEY.into(), value.to_string());
        self
    }

    pub fn get(&self, name: &str) -> &(String, Dtype, Vec<usize>, Vec<u8>) {
        self.tensors.iter().find(|t| t.0 == name).unwrap()
    }

    pub fn remove(mut self, name: &str) -> Self {
        let before = self.tensors.len();
        self.tensors.retain(|t| t.0 != name);
        assert_eq!(self.tensors.len() + 1, before, "no tensor {name}");
        self
    }

    /// Replaces or adds a tensor.
    pub fn set(mut self, name: &str, dtype: Dtype, shape: &[usize], data: Vec<u8>) -> Self {
        self.tensors.retain(|t| t.0 != name);
        self.tensors
            .push((name.into(), dtype, shape.to_vec(), data));
        self
    }

    /// Rewrites every f32 tensor whose name passes `pick` through `f`, keeping its shape.
    pub fn map_f32(
        mut self,
        pick: impl Fn(&str) -> bool,
        f: impl Fn(Vec<f32>) -> (Dtype, Vec<u8>),
    ) -> Self {
        for t in self.tensors.iter_mut().filter(|t| pick(&t.0)) {
            assert_eq!(t.1, Dtype::F32, "{}", t.0);
            let (dtype, data) = f(f32s(&t.3));
            t.1 = dtype;
            t.3 = data;
        }
        self
    }
}

pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn is_model_tensor(name: &str) -> bool {
    !name.starts_with("atlas.")
}

pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// A message a person can read: one line, not empty, not a debug dump, not a wall of text.
pub fn assert_readable(msg: &str) {
    assert!(!msg.trim().is_empty(), "empty message");
    assert!(!msg.contains('\n'), "multi-line message: {msg:?}");
    assert!(msg.len() < 300, "message too long: {msg:?}");
    for debug in ["Error(", "Some(", "{ ", "\\\""] {
        assert!(!msg.contains(debug), "debug output in message: {msg:?}");
    }
}

/// Loads `bytes`, expecting the error variant `pat` with a readable message containing each needle.
macro_rules! assert_refused {
    ($bytes:expr, $pat:pat $(if $guard:expr)? $(, $needle:expr)* $(,)?) => {{
        let err = format::load(&$bytes).expect_err("the file must be refused");
        assert!(matches!(err, $pat $(if $guard)?), "wrong error variant: {err:?}");
        let msg = err.to_string();
        println!("refused: {msg}");
        assert_readable(&msg);
        $(assert!(msg.contains($needle), "message {msg:?} lacks {:?}", $needle);)*
        msg
    }};
}

/// The first 8 bytes of a safetensors file: its header length.
pub fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

pub fn with_header_len(bytes: &[u8], n: u64) -> Vec<u8> {
    let mut out = n.to_le_bytes().to_vec();
    out.extend_from_slice(&bytes[8..]);
    out
}
