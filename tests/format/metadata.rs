//! Metadata: missing, malformed, out-of-range and newer-version entries.

use super::support::*;

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
    // The optional ones: preprocess, metrics, training.
    assert_eq!(all.len(), required.len() + 3, "{all:?}");
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
        ("preprocess", json!("centre")),
        ("preprocess", json!(null)),
    ];
    for (field, value) in cases {
        let raw = Raw::sample().edit_meta(|m| {
            m.insert(field.into(), value.clone());
        });
        assert_refused!(raw.bytes(), FormatError::BadMetadata(_), field);
    }
}

#[test]
fn preprocess_is_read_and_defaults_to_fit() {
    for (value, expected) in [
        ("mnist", Preprocess::Mnist),
        ("fit", Preprocess::Fit),
        ("none", Preprocess::AsIs),
    ] {
        let raw = Raw::sample().edit_meta(|m| {
            m.insert("preprocess".into(), json!(value));
        });
        assert_eq!(
            format::load(&raw.bytes()).unwrap().meta.preprocess,
            expected
        );
    }
    let raw = Raw::sample().edit_meta(|m| {
        m.remove("preprocess");
    });
    assert_eq!(
        format::load(&raw.bytes()).unwrap().meta.preprocess,
        Preprocess::Fit
    );
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
