//! Tensors: missing, unexpected, misshapen, mistyped and non-finite weights.

use super::support::*;

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
