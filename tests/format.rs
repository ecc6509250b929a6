//! The weights format: round trips, and every way a file can be refused (one test per error).
//!
//! Malformed files are built from a valid one, either through the `safetensors` crate (tensor and
//! metadata level) or by editing bytes (header level).

use std::collections::HashMap;

use candle_core::Tensor;
use rand::SeedableRng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{json, Value};
use vae_explorer::data::DatasetKind;
use vae_explorer::format::{
    self, Atlas, FormatError, Metadata, Metrics, ModelFile, TrainingInfo, FORMAT_VERSION,
    METADATA_KEY,
};
use vae_explorer::model::{matrix, ModelConfig, Vae};
use vae_explorer::package::bare_metadata;

const LATENT: usize = 8;
const ATLAS_N: usize = 6;

fn config() -> ModelConfig {
    ModelConfig::mirrored(784, LATENT, &[16])
}

/// A small complete model file with metrics, provenance and an atlas.
fn sample() -> ModelFile {
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

fn sample_bytes() -> Vec<u8> {
    format::save(&sample()).unwrap()
}

/// A safetensors file taken apart, to be changed and written again.
#[derive(Clone)]
struct Raw {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    metadata: Option<HashMap<String, String>>,
}

impl Raw {
    fn parse(bytes: &[u8]) -> Self {
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

    fn sample() -> Self {
        Self::parse(&sample_bytes())
    }

    fn bytes(&self) -> Vec<u8> {
        let views: Vec<(&str, TensorView)> = self
            .tensors
            .iter()
            .map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views.iter().map(|(n, v)| (*n, v)), self.metadata.clone()).unwrap()
    }

    fn meta(&self) -> Value {
        serde_json::from_str(&self.metadata.as_ref().unwrap()[METADATA_KEY]).unwrap()
    }

    fn edit_meta(mut self, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Self {
        let mut value = self.meta();
        f(value.as_object_mut().unwrap());
        self.metadata
            .as_mut()
            .unwrap()
            .insert(METADATA_KEY.into(), value.to_string());
        self
    }

    fn get(&self, name: &str) -> &(String, Dtype, Vec<usize>, Vec<u8>) {
        self.tensors.iter().find(|t| t.0 == name).unwrap()
    }

    fn remove(mut self, name: &str) -> Self {
        let before = self.tensors.len();
        self.tensors.retain(|t| t.0 != name);
        assert_eq!(self.tensors.len() + 1, before, "no tensor {name}");
        self
    }

    /// Replaces or adds a tensor.
    fn set(mut self, name: &str, dtype: Dtype, shape: &[usize], data: Vec<u8>) -> Self {
        self.tensors.retain(|t| t.0 != name);
        self.tensors
            .push((name.into(), dtype, shape.to_vec(), data));
        self
    }

    /// Rewrites every f32 tensor whose name passes `pick` through `f`, keeping its shape.
    fn map_f32(
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

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn is_model_tensor(name: &str) -> bool {
    !name.starts_with("atlas.")
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// A message a person can read: one line, not empty, not a debug dump, not a wall of text.
fn assert_readable(msg: &str) {
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
fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

fn with_header_len(bytes: &[u8], n: u64) -> Vec<u8> {
    let mut out = n.to_le_bytes().to_vec();
    out.extend_from_slice(&bytes[8..]);
    out
}

// ---- round trips ----

#[test]
fn round_trip_keeps_tensors_metadata_and_atlas() {
    let original = sample();
    let bytes = format::save(&original).unwrap();
    let loaded = format::load(&bytes).unwrap();
    assert_eq!(loaded.meta, original.meta);
    assert_eq!(loaded.atlas, original.atlas);
    let (a, b) = (
        original.vae.to_tensors().unwrap(),
        loaded.vae.to_tensors().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert_eq!(ta.dims(), tb.dims(), "{na}");
        assert_eq!(values(ta), values(tb), "{na}");
    }
    // The loaded model computes exactly what the saved one did.
    let z: Vec<f32> = (0..5 * LATENT)
        .map(|i| (i as f32 * 0.37).cos() * 2.0)
        .collect();
    let z = matrix(&z, 5, LATENT).unwrap();
    let (da, db) = (
        original.vae.decode(&z).unwrap(),
        loaded.vae.decode(&z).unwrap(),
    );
    assert_eq!(values(&da), values(&db));
    let x = da.clone();
    let (ma, la) = original.vae.encode(&x).unwrap();
    let (mb, lb) = loaded.vae.encode(&x).unwrap();
    assert_eq!(values(&ma), values(&mb));
    assert_eq!(values(&la), values(&lb));
    // Saving what was loaded gives the same bytes.
    assert_eq!(format::save(&loaded).unwrap(), bytes);
}

#[test]
fn file_uses_pytorch_names_shapes_and_dtypes() {
    let raw = Raw::sample();
    let mut expected: Vec<(String, Dtype, Vec<usize>)> = config()
        .tensor_shapes()
        .into_iter()
        .map(|(n, s)| (n, Dtype::F32, s))
        .collect();
    expected.push(("atlas.labels".into(), Dtype::U8, vec![ATLAS_N]));
    expected.push(("atlas.mu".into(), Dtype::F32, vec![ATLAS_N, LATENT]));
    expected.push(("atlas.pixels".into(), Dtype::U8, vec![ATLAS_N, 28, 28]));
    expected.sort();
    let found: Vec<_> = raw
        .tensors
        .iter()
        .map(|(n, d, s, _)| (n.clone(), *d, s.clone()))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(raw.get("encoder.hidden.0.weight").2, vec![16, 784]);
    assert_eq!(raw.get("decoder.out.weight").2, vec![784, 16]);
    let meta = raw.meta();
    assert_eq!(meta["format_version"], json!(FORMAT_VERSION));
    assert_eq!(meta["activation"], json!("relu"));
    assert_eq!(meta["likelihood"], json!("bernoulli"));
    assert_eq!(raw.metadata.as_ref().unwrap().len(), 1);
}

#[test]
fn optional_metadata_and_atlas_may_be_absent() {
    let raw = Raw::sample().edit_meta(|m| {
        m.remove("metrics");
        m.remove("training");
    });
    let raw = raw
        .remove("atlas.pixels")
        .remove("atlas.labels")
        .remove("atlas.mu");
    let file = format::load(&raw.bytes()).unwrap();
    assert!(file.atlas.is_none());
    assert!(file.meta.metrics.is_none() && file.meta.training.is_none());
    // Unknown metadata keys are ignored, so that newer writers stay readable.
    let raw = Raw::sample().edit_meta(|m| {
        m.insert("note".into(), json!("made elsewhere"));
    });
    format::load(&raw.bytes()).unwrap();
    // An empty atlas is an atlas.
    let file = sample();
    let empty = ModelFile {
        atlas: Some(Atlas {
            pixels: vec![],
            labels: vec![],
            mu: vec![],
        }),
        ..file
    };
    let loaded = format::load(&format::save(&empty).unwrap()).unwrap();
    assert!(loaded.atlas.unwrap().is_empty());
}

#[test]
fn checkpoint_extras_round_trip_and_are_refused_without_the_prefix() {
    let file = sample();
    let m0 = matrix(&[1.0, -2.0, 3.5, 0.0], 2, 2).unwrap();
    let extras = vec![("optimizer.m.0".to_string(), m0.clone())];
    let state = r#"{"progress":{"epoch":1}}"#.to_string();
    let bytes =
        format::save_parts(&file, &extras, &[("checkpoint".into(), state.clone())]).unwrap();
    let parts = format::load_parts(&bytes, Some("optimizer.")).unwrap();
    assert_eq!(parts.extras.len(), 1);
    assert_eq!(values(&parts.extras["optimizer.m.0"]), values(&m0));
    assert_eq!(parts.extras["optimizer.m.0"].dims(), &[2, 2]);
    assert_eq!(parts.raw_metadata["checkpoint"], state);
    assert_eq!(parts.file.meta, file.meta);
    assert_refused!(bytes, FormatError::UnexpectedTensor(ref n) if n == "optimizer.m.0", "optimizer.m.0");
    // Extras are checked like weights.
    let raw = Raw::parse(&bytes).map_f32(
        |n| n == "optimizer.m.0",
        |mut v| {
            v[1] = f32::NAN;
            (Dtype::F32, f32_bytes(&v))
        },
    );
    let err = format::load_parts(&raw.bytes(), Some("optimizer."))
        .err()
        .unwrap();
    assert!(
        matches!(err, FormatError::NotFinite(ref n) if n == "optimizer.m.0"),
        "{err:?}"
    );
}

#[test]
fn save_refuses_what_load_would_refuse() {
    let mut file = sample();
    file.meta.latent_std[0] = 0.0;
    assert!(matches!(
        format::save(&file),
        Err(FormatError::BadMetadata(_))
    ));
    let mut file = sample();
    file.atlas.as_mut().unwrap().pixels.pop();
    assert!(matches!(format::save(&file), Err(FormatError::Atlas(_))));
}

// ---- header level ----

#[test]
fn truncated_file_is_refused_at_every_cut() {
    let bytes = sample_bytes();
    let data_start = 8 + header_len(&bytes);
    // Every cut through the length and the header, then cuts spread through the tensor data.
    let mut cuts: Vec<usize> = (0..data_start + 64).collect();
    cuts.extend((data_start + 64..bytes.len()).step_by(997));
    cuts.push(bytes.len() - 1);
    for cut in cuts {
        let prefix = &bytes[..cut];
        let result = std::panic::catch_unwind(|| format::load(prefix));
        let err = match result {
            Err(_) => panic!("load panicked on the first {cut} bytes"),
            Ok(Ok(_)) => panic!("the first {cut} of {} bytes loaded", bytes.len()),
            Ok(Err(e)) => e,
        };
        assert!(
            matches!(err, FormatError::Safetensors(_)),
            "cut {cut}: {err:?}"
        );
        let msg = err.to_string();
        assert_readable(&msg);
        assert!(msg.contains("truncated"), "cut {cut}: {msg:?}");
    }
    // Trailing bytes are refused as well.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 16]);
    assert_refused!(longer, FormatError::Safetensors(_), "extra bytes");
}

#[test]
fn wrong_header_length_is_refused() {
    let bytes = sample_bytes();
    let n = header_len(&bytes) as u64;
    for wrong in [0, 1, n - 1, n + 1, n + 8, bytes.len() as u64 - 7] {
        assert_refused!(with_header_len(&bytes, wrong), FormatError::Safetensors(_));
    }
    for huge in [200_000_000, u64::MAX / 2, u64::MAX] {
        assert_refused!(
            with_header_len(&bytes, huge),
            FormatError::Safetensors(_),
            "header too large"
        );
    }
}

#[test]
fn header_not_json_is_refused() {
    let bytes = sample_bytes();
    let n = header_len(&bytes);
    let mut garbage = bytes.clone();
    garbage[8..8 + n].fill(b'x');
    assert_refused!(garbage, FormatError::Safetensors(_), "JSON");
    let mut not_utf8 = bytes.clone();
    not_utf8[8..8 + n].fill(0xff);
    assert_refused!(not_utf8, FormatError::Safetensors(_), "UTF-8");
    // Valid JSON that is not a safetensors header.
    let header = br#"[1, 2, 3]"#;
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header);
    assert_refused!(file, FormatError::Safetensors(_));
    // An empty file and a file of zeros.
    assert_refused!(Vec::<u8>::new(), FormatError::Safetensors(_));
    assert_refused!([0u8; 64], FormatError::Safetensors(_));
}

#[test]
fn corrupted_header_bytes_never_panic() {
    let bytes = sample_bytes();
    let n = header_len(&bytes);
    for i in 8..8 + n {
        for value in [b'"', b'{', b'9', b' ', 0xff] {
            let mut bad = bytes.clone();
            bad[i] = value;
            let result = std::panic::catch_unwind(|| format::load(&bad).map(|_| ()));
            let Ok(result) = result else {
                panic!("load panicked with byte {i} set to {value:#x}");
            };
            if let Err(e) = result {
                assert_readable(&e.to_string());
            }
        }
    }
}

// ---- metadata ----

#[test]
fn missing_metadata_is_refused() {
    let mut raw = Raw::sample();
    raw.metadata = None;
    assert_refused!(raw.bytes(), FormatError::MissingMetadata, METADATA_KEY);
    raw.metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
    assert_refused!(raw.bytes(), FormatError::MissingMetadata, "__metadata__");
}

#[test]
fn metadata_not_json_is_refused() {
    let mut raw = Raw::sample();
    for text in ["{not json", "", "[1, 2]"] {
        raw.metadata
            .as_mut()
            .unwrap()
            .insert(METADATA_KEY.into(), text.into());
        assert_refused!(raw.bytes(), FormatError::BadMetadata(_), "metadata");
    }
    raw.metadata
        .as_mut()
        .unwrap()
        .insert(METADATA_KEY.into(), "{\"format_version\": 1".into());
    assert_refused!(raw.bytes(), FormatError::BadMetadata(_), "not JSON");
}

#[test]
fn metadata_missing_a_field_is_refused() {
    let required = [
        "format_version",
        "dataset",
        "class_names",
        "width",
        "height",
        "latent_dim",
        "encoder_hidden",
        "decoder_hidden",
        "activation",
        "likelihood",
        "latent_mean",
        "latent_std",
    ];
    let all: Vec<String> = Raw::sample()
        .meta()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(all.len(), required.len() + 2, "{all:?}");
    for field in required {
        let raw = Raw::sample().edit_meta(|m| {
            m.remove(field);
        });
        assert_refused!(
            raw.bytes(),
            FormatError::BadMetadata(_),
            &format!("missing field `{field}`")
        );
    }
}

#[test]
fn metadata_field_of_wrong_type_is_refused_naming_the_field() {
    let cases = [
        ("width", json!("28")),
        ("height", json!(28.5)),
        ("latent_dim", json!(-8)),
        ("format_version", json!("1")),
        ("dataset", json!(7)),
        ("class_names", json!("0123456789")),
        ("encoder_hidden", json!(16)),
        ("decoder_hidden", json!([16.5])),
        ("activation", json!("gelu")),
        ("likelihood", json!("gaussian")),
        ("latent_mean", json!(vec!["a"; LATENT])),
        ("latent_std", json!(null)),
        ("metrics", json!({"test_images": 1})),
        ("training", json!([])),
    ];
    for (field, value) in cases {
        let raw = Raw::sample().edit_meta(|m| {
            m.insert(field.into(), value.clone());
        });
        assert_refused!(raw.bytes(), FormatError::BadMetadata(_), field);
    }
}

#[test]
fn unsupported_format_version_is_refused() {
    // 2^40 and u64::MAX are named as they are, not clamped to a smaller number.
    for version in [0u64, 2, 99, 1 << 40, u64::MAX] {
        let raw = Raw::sample().edit_meta(|m| {
            m.insert("format_version".into(), json!(version));
        });
        assert_refused!(
            raw.bytes(),
            FormatError::Version(v) if v == version,
            &format!("format version {version} is not supported"),
            &format!("reads version {FORMAT_VERSION}")
        );
    }
    // A newer file says it is newer, even when its fields changed.
    let raw = Raw::sample().edit_meta(|m| {
        m.insert("format_version".into(), json!(2));
        m.remove("latent_std");
        m.insert("width".into(), json!("wide"));
    });
    assert_refused!(raw.bytes(), FormatError::Version(2));
}

#[test]
fn latent_stats_of_wrong_length_are_refused() {
    for field in ["latent_mean", "latent_std"] {
        for len in [0, LATENT - 1, LATENT + 1] {
            let raw = Raw::sample().edit_meta(|m| {
                m.insert(field.into(), json!(vec![1.0; len]));
            });
            assert_refused!(
                raw.bytes(),
                FormatError::BadMetadata(_),
                &format!("{field} has {len} values but latent_dim is {LATENT}")
            );
        }
    }
}

#[test]
fn non_finite_latent_stats_are_refused() {
    // JSON has no NaN or infinity, but 1e300 overflows f32 to infinity when read.
    for field in ["latent_mean", "latent_std"] {
        let raw = Raw::sample().edit_meta(|m| {
            let mut v = vec![json!(1.0); LATENT];
            v[3] = json!(1e300);
            m.insert(field.into(), Value::Array(v));
        });
        assert_refused!(
            raw.bytes(),
            FormatError::BadMetadata(_),
            &format!("{field} holds a non-finite value")
        );
    }
    // The same check guards metadata built in code.
    let mut meta: Metadata = sample().meta;
    meta.latent_mean[0] = f32::NAN;
    let err = meta.validate().unwrap_err();
    assert!(err
        .to_string()
        .contains("latent_mean holds a non-finite value"));
}

#[test]
fn non_positive_latent_std_is_refused() {
    for bad in [0.0, -0.5] {
        let raw = Raw::sample().edit_meta(|m| {
            let mut v = vec![json!(1.0); LATENT];
            v[LATENT - 1] = json!(bad);
            m.insert("latent_std".into(), Value::Array(v));
        });
        assert_refused!(
            raw.bytes(),
            FormatError::BadMetadata(_),
            "latent_std values must be positive"
        );
    }
}

#[test]
fn metadata_outside_the_limits_is_refused() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("width", json!(0), "image size 0x28"),
        ("height", json!(5000), "image size 28x5000"),
        ("latent_dim", json!(0), "latent_dim 0 is outside"),
        ("latent_dim", json!(257), "latent_dim 257 is outside"),
        ("encoder_hidden", json!([0]), "encoder_hidden [0]"),
        ("decoder_hidden", json!([20_000]), "decoder_hidden [20000]"),
        ("encoder_hidden", json!(vec![4; 17]), "at most 16 layers"),
        ("class_names", json!([]), "class_names has 0 entries"),
        (
            "class_names",
            json!(vec!["c"; 1001]),
            "class_names has 1001 entries",
        ),
    ];
    for (field, value, needle) in cases {
        let raw = Raw::sample().edit_meta(|m| {
            m.insert(field.into(), value.clone());
        });
        assert_refused!(raw.bytes(), FormatError::BadMetadata(_), needle);
    }
}

// ---- tensors ----

#[test]
fn missing_tensor_is_refused() {
    for (name, _) in config().tensor_shapes() {
        let raw = Raw::sample().remove(&name);
        assert_refused!(
            raw.bytes(),
            FormatError::MissingTensor(ref n) if *n == name,
            &format!("missing tensor `{name}`")
        );
    }
}

#[test]
fn unexpected_tensor_is_refused() {
    for name in [
        "encoder.hidden.1.weight",
        "decoder.extra",
        "model.encoder.mu.weight",
        "optimizer.m.0",
    ] {
        let raw = Raw::sample().set(name, Dtype::F32, &[2], f32_bytes(&[0.0, 1.0]));
        assert_refused!(
            raw.bytes(),
            FormatError::UnexpectedTensor(ref n) if n == name,
            &format!("unexpected tensor `{name}`")
        );
    }
}

#[test]
fn wrong_shape_is_refused() {
    let raw = Raw::sample();
    // A weight stored as [in, out] instead of PyTorch's [out, in].
    let w = raw.get("encoder.hidden.0.weight").3.clone();
    let bad = raw
        .clone()
        .set("encoder.hidden.0.weight", Dtype::F32, &[784, 16], w);
    assert_refused!(
        bad.bytes(),
        FormatError::Shape { ref name, ref found, ref expected, .. }
            if name == "encoder.hidden.0.weight" && found == &[784, 16] && expected == &[16, 784],
        "encoder.hidden.0.weight",
        "[784, 16]",
        "[16, 784]"
    );
    let b = raw.get("decoder.out.bias").3.clone();
    let bad = raw.set("decoder.out.bias", Dtype::F32, &[1, 784], b);
    assert_refused!(bad.bytes(), FormatError::Shape { .. }, "decoder.out.bias");
}

#[test]
fn latent_dim_not_matching_the_tensors_is_refused() {
    let raw = Raw::sample().edit_meta(|m| {
        m.insert("latent_dim".into(), json!(4));
        m.insert("latent_mean".into(), json!(vec![0.0; 4]));
        m.insert("latent_std".into(), json!(vec![1.0; 4]));
    });
    assert_refused!(
        raw.bytes(),
        FormatError::Shape { ref name, .. } if name == "encoder.mu.weight",
        "encoder.mu.weight",
        "metadata says latent_dim 4"
    );
}

#[test]
fn wrong_dtype_is_refused() {
    let name = "encoder.mu.weight";
    let count = LATENT * 16;
    let cases: Vec<(Dtype, Vec<u8>, &str)> = vec![
        (Dtype::I64, vec![0; count * 8], "I64"),
        (Dtype::I32, vec![0; count * 4], "I32"),
        (Dtype::U8, vec![0; count], "U8"),
        (Dtype::BOOL, vec![0; count], "BOOL"),
    ];
    for (dtype, data, shown) in cases {
        let raw = Raw::sample().set(name, dtype, &[LATENT, 16], data);
        assert_refused!(
            raw.bytes(),
            FormatError::Dtype { name: ref n, .. } if n == name,
            name,
            &format!("has dtype {shown}"),
            "expected F32"
        );
    }
}

#[test]
fn nan_or_infinity_in_a_weight_is_refused() {
    for (name, bad) in [
        ("decoder.out.weight", f32::NAN),
        ("decoder.out.weight", f32::INFINITY),
        ("encoder.logvar.bias", f32::NEG_INFINITY),
    ] {
        let raw = Raw::sample().map_f32(
            |n| n == name,
            |mut v| {
                let last = v.len() - 1;
                v[last] = bad;
                (Dtype::F32, f32_bytes(&v))
            },
        );
        assert_refused!(
            raw.bytes(),
            FormatError::NotFinite(ref n) if n == name,
            &format!("tensor `{name}` holds NaN or infinite values")
        );
    }
    // A NaN in half precision, and an f64 too large for f32, are caught after conversion.
    let raw = Raw::sample().map_f32(
        |n| n == "encoder.mu.bias",
        |v| {
            let mut h: Vec<half::f16> = v.iter().map(|&x| half::f16::from_f32(x)).collect();
            h[0] = half::f16::NAN;
            (Dtype::F16, h.iter().flat_map(|x| x.to_le_bytes()).collect())
        },
    );
    assert_refused!(raw.bytes(), FormatError::NotFinite(_), "encoder.mu.bias");
    let raw = Raw::sample().map_f32(
        |n| n == "encoder.mu.bias",
        |v| {
            let mut d: Vec<f64> = v.iter().map(|&x| x as f64).collect();
            d[0] = 1e300;
            (Dtype::F64, d.iter().flat_map(|x| x.to_le_bytes()).collect())
        },
    );
    assert_refused!(raw.bytes(), FormatError::NotFinite(_), "encoder.mu.bias");
}

#[test]
fn half_and_double_precision_weights_are_accepted_and_converted() {
    let original = sample();
    let reference = format::load(&sample_bytes()).unwrap();
    type Convert = fn(&[f32]) -> (Dtype, Vec<u8>, Vec<f32>);
    let conversions: [(&str, Convert); 3] = [
        ("f16", |v| {
            let h: Vec<half::f16> = v.iter().map(|&x| half::f16::from_f32(x)).collect();
            let bytes = h.iter().flat_map(|x| x.to_le_bytes()).collect();
            (Dtype::F16, bytes, h.iter().map(|x| x.to_f32()).collect())
        }),
        ("bf16", |v| {
            let h: Vec<half::bf16> = v.iter().map(|&x| half::bf16::from_f32(x)).collect();
            let bytes = h.iter().flat_map(|x| x.to_le_bytes()).collect();
            (Dtype::BF16, bytes, h.iter().map(|x| x.to_f32()).collect())
        }),
        ("f64", |v| {
            let bytes = v.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect();
            (Dtype::F64, bytes, v.to_vec())
        }),
    ];
    for (label, convert) in conversions {
        let raw = Raw::sample().map_f32(is_model_tensor, |v| {
            let (dtype, bytes, _) = convert(&v);
            (dtype, bytes)
        });
        let loaded = format::load(&raw.bytes()).unwrap_or_else(|e| panic!("{label}: {e}"));
        for ((name, got), (_, want)) in loaded
            .vae
            .to_tensors()
            .unwrap()
            .iter()
            .zip(&reference.vae.to_tensors().unwrap())
        {
            let (_, _, rounded) = convert(&values(want));
            assert_eq!(values(got), rounded, "{label} {name}");
        }
        assert_eq!(loaded.meta, original.meta, "{label}");
        // Still a working model: decodes close to the f32 one.
        let z = matrix(&[0.5; LATENT], 1, LATENT).unwrap();
        let (a, b) = (
            values(&reference.vae.decode(&z).unwrap()),
            values(&loaded.vae.decode(&z).unwrap()),
        );
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 0.05, "{label}: decode differs by {diff}");
    }
}

// ---- atlas ----

#[test]
fn partial_atlas_is_refused() {
    let names = ["atlas.pixels", "atlas.labels", "atlas.mu"];
    for keep in 1..7u32 {
        let mut raw = Raw::sample();
        for (bit, name) in names.iter().enumerate() {
            if keep & (1 << bit) == 0 {
                raw = raw.remove(name);
            }
        }
        if keep == 7 {
            continue;
        }
        assert_refused!(raw.bytes(), FormatError::Atlas(_), "or none");
    }
}

#[test]
fn atlas_label_out_of_range_is_refused() {
    let raw = Raw::sample();
    let mut labels = raw.get("atlas.labels").3.clone();
    labels[2] = 10;
    let raw = raw.set("atlas.labels", Dtype::U8, &[ATLAS_N], labels);
    assert_refused!(
        raw.bytes(),
        FormatError::Atlas(_),
        "label 10 but there are only 10 classes"
    );
}

#[test]
fn atlas_mu_not_matching_latent_dim_is_refused() {
    let bad = Raw::sample().set(
        "atlas.mu",
        Dtype::F32,
        &[ATLAS_N, LATENT + 1],
        f32_bytes(&vec![0.0; ATLAS_N * (LATENT + 1)]),
    );
    assert_refused!(
        bad.bytes(),
        FormatError::Shape { ref name, .. } if name == "atlas.mu",
        "atlas.mu",
        &format!("latent_dim {LATENT}")
    );
    // A count that disagrees with the labels.
    let bad = Raw::sample().set(
        "atlas.mu",
        Dtype::F32,
        &[ATLAS_N - 1, LATENT],
        f32_bytes(&[0.0; (ATLAS_N - 1) * LATENT]),
    );
    assert_refused!(
        bad.bytes(),
        FormatError::Shape { .. },
        &format!("atlas of {ATLAS_N} images")
    );
    // mu must be F32, and finite.
    let bad = Raw::sample().map_f32(
        |n| n == "atlas.mu",
        |v| {
            (
                Dtype::F64,
                v.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect(),
            )
        },
    );
    assert_refused!(bad.bytes(), FormatError::Dtype { .. }, "atlas.mu", "F64");
    let bad = Raw::sample().map_f32(
        |n| n == "atlas.mu",
        |mut v| {
            v[0] = f32::NAN;
            (Dtype::F32, f32_bytes(&v))
        },
    );
    assert_refused!(bad.bytes(), FormatError::NotFinite(ref n) if n == "atlas.mu");
}

#[test]
fn atlas_of_wrong_dtype_or_shape_is_refused() {
    let count = ATLAS_N * 28 * 28;
    let bad = Raw::sample().set(
        "atlas.pixels",
        Dtype::F32,
        &[ATLAS_N, 28, 28],
        f32_bytes(&vec![0.5; count]),
    );
    assert_refused!(
        bad.bytes(),
        FormatError::Dtype { ref name, .. } if name == "atlas.pixels",
        "atlas.pixels",
        "has dtype F32, expected U8"
    );
    let bad = Raw::sample().set("atlas.labels", Dtype::I64, &[ATLAS_N], vec![0; ATLAS_N * 8]);
    assert_refused!(
        bad.bytes(),
        FormatError::Dtype { .. },
        "atlas.labels",
        "I64"
    );
    let bad = Raw::sample().set("atlas.pixels", Dtype::U8, &[ATLAS_N, 784], vec![0; count]);
    assert_refused!(bad.bytes(), FormatError::Shape { .. }, "atlas.pixels");
    let bad = Raw::sample().set("atlas.labels", Dtype::U8, &[ATLAS_N, 1], vec![0; ATLAS_N]);
    assert_refused!(bad.bytes(), FormatError::Shape { .. }, "atlas.labels");
}

// ---- writing ----

fn dir_entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn write_atomic_replaces_the_target_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    format::write_atomic(&path, b"first").unwrap();
    format::write_atomic(&path, b"second, longer").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
    assert_eq!(dir_entries(dir.path()), ["model.safetensors"]);
    // A path in a folder that does not exist: an error naming the path, and nothing written.
    let missing = dir.path().join("no/such/folder/model.safetensors");
    let err = format::write_atomic(&missing, b"x").unwrap_err();
    assert!(matches!(err, FormatError::Io { .. }), "{err:?}");
    let msg = err.to_string();
    assert_readable(&msg);
    assert!(msg.contains("no/such/folder/model.safetensors"), "{msg}");
    // The rename fails onto a folder; the temp file is removed.
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("inside"), b"keep").unwrap();
    assert!(format::write_atomic(&folder, b"x").is_err());
    assert_eq!(dir_entries(dir.path()), ["folder", "model.safetensors"]);
    assert_eq!(std::fs::read(folder.join("inside")).unwrap(), b"keep");
}
