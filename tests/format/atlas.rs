//! The atlas: partial, mislabelled and misshapen held-out images.

use super::support::*;

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
