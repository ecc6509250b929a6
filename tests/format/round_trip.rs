//! Round trips: what is saved loads back unchanged, in PyTorch layout.

use super::support::*;

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
