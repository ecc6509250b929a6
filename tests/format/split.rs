//! Compact weights (I8 with a per-row scale) and split models (a decoder part, then an encoder part).

use super::support::*;
use vae_explorer::core::format::{WeightEncoding, PART_KEY, SCALE_SUFFIX};

/// The sample model as its two parts.
fn parts(encoding: WeightEncoding) -> [Vec<u8>; 2] {
    format::save_split(&sample(), &HashMap::new(), [encoding; 2]).unwrap()
}

/// `load_split` must refuse the pair with a readable message holding `needle`.
fn assert_split_refused(decoder: &[u8], encoder: &[u8], needle: &str) {
    let err = format::load_split(decoder, encoder).expect_err("the pair must be refused");
    let msg = err.to_string();
    println!("refused: {msg}");
    assert_readable(&msg);
    assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
}

fn decode_at(vae: &Vae, z: f32) -> Vec<f32> {
    values(
        &vae.decode(&matrix(&[z; LATENT], 1, LATENT).unwrap())
            .unwrap(),
    )
}

#[test]
fn int8_weights_are_each_byte_times_its_row_scale() {
    let [decoder, _] = parts(WeightEncoding::Int8Rows);
    let raw = Raw::parse(&decoder);
    let (_, dtype, shape, bytes) = raw.get("decoder.out.weight");
    assert_eq!((*dtype, shape.as_slice()), (Dtype::I8, &[784, 16][..]));
    let scale = f32s(&raw.get(&format!("decoder.out.weight{SCALE_SUFFIX}")).3);
    assert_eq!(scale.len(), 784);
    let part = format::load_decoder_part(&decoder).unwrap();
    let loaded = values(&part.decoder.out.weight.t().unwrap());
    for (i, (&b, &got)) in bytes.iter().zip(&loaded).enumerate() {
        assert_eq!(got, f32::from(b as i8) * scale[i / 16], "value {i}");
    }
    // Each row's largest weight maps to +-127, so the rounding error is at most half a step.
    let original = values(&sample().vae.decoder.out.weight.t().unwrap());
    for (i, (&w, &q)) in original.iter().zip(&loaded).enumerate() {
        assert!(
            (w - q).abs() <= scale[i / 16] * 0.5 + 1e-7,
            "value {i}: {w} vs {q}"
        );
    }
    let biases = raw.get("decoder.out.bias");
    assert_eq!(biases.1, Dtype::F32, "biases stay F32");
}

#[test]
fn split_parts_load_together_as_the_whole_model() {
    let original = sample();
    for encoding in [
        WeightEncoding::F32,
        WeightEncoding::F16,
        WeightEncoding::Int8Rows,
    ] {
        let [decoder, encoder] = parts(encoding);
        let whole = format::load_split(&decoder, &encoder).unwrap();
        assert_eq!(whole.meta, original.meta, "{encoding:?}");
        assert_eq!(whole.atlas, original.atlas, "{encoding:?}");
        let part = format::load_decoder_part(&decoder).unwrap();
        assert_eq!(part.meta, original.meta);
        let (want, got) = (decode_at(&original.vae, 0.5), decode_at(&whole.vae, 0.5));
        let worst = want
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let bound = if encoding == WeightEncoding::F32 {
            0.0
        } else {
            0.02
        };
        assert!(worst <= bound, "{encoding:?}: pixels differ by {worst}");
        // The decoder part alone draws the same image as the pair.
        let alone = Vae {
            config: whole.vae.config.clone(),
            encoder: whole.vae.encoder.clone(),
            decoder: part.decoder,
        };
        assert_eq!(decode_at(&alone, 0.5), got, "{encoding:?}");
    }
    // The decoder part holds only decoder tensors; the encoder part the rest and the atlas.
    let [decoder, encoder] = parts(WeightEncoding::Int8Rows);
    let first = Raw::parse(&decoder);
    assert!(first.tensors.iter().all(|t| t.0.starts_with("decoder.")));
    let second = Raw::parse(&encoder);
    assert!(second.tensors.iter().all(|t| !t.0.starts_with("decoder.")));
    assert!(second.tensors.iter().any(|t| t.0 == "atlas.pixels"));
}

#[test]
fn a_whole_file_may_hold_int8_weights() {
    let [decoder, encoder] = parts(WeightEncoding::Int8Rows);
    let (first, second) = (Raw::parse(&decoder), Raw::parse(&encoder));
    let mut whole = Raw::sample();
    whole.tensors = first.tensors.into_iter().chain(second.tensors).collect();
    let split = format::load_split(&decoder, &encoder).unwrap();
    let loaded = format::load(&whole.bytes()).unwrap();
    assert_eq!(decode_at(&loaded.vae, -0.3), decode_at(&split.vae, -0.3));
}

/// The sample as a whole file whose `decoder.out.weight` is I8, with its scale.
fn int8_whole() -> Raw {
    let [decoder, _] = parts(WeightEncoding::Int8Rows);
    let first = Raw::parse(&decoder);
    let weight = first.get("decoder.out.weight").clone();
    let scale_name = format!("decoder.out.weight{SCALE_SUFFIX}");
    let scale = first.get(&scale_name).clone();
    Raw::sample()
        .set(&weight.0, weight.1, &weight.2, weight.3)
        .set(&scale_name, scale.1, &scale.2, scale.3)
}

#[test]
fn int8_weights_without_a_valid_scale_are_refused() {
    let scale_name = format!("decoder.out.weight{SCALE_SUFFIX}");
    assert!(format::load(&int8_whole().bytes()).is_ok());
    assert_refused!(
        int8_whole().remove(&scale_name).bytes(),
        FormatError::MissingScale(_),
        &scale_name,
        "per-row scale"
    );
    let short = int8_whole().set(&scale_name, Dtype::F32, &[3], f32_bytes(&[1.0; 3]));
    assert_refused!(short.bytes(), FormatError::Shape { .. }, &scale_name);
    let half = int8_whole().set(&scale_name, Dtype::F16, &[784], vec![0; 2 * 784]);
    assert_refused!(half.bytes(), FormatError::Dtype { .. }, &scale_name, "F32");
    let mut values = vec![0.01f32; 784];
    values[5] = f32::NAN;
    let nan = int8_whole().set(&scale_name, Dtype::F32, &[784], f32_bytes(&values));
    assert_refused!(nan.bytes(), FormatError::NotFinite(_), &scale_name);
    values[5] = -0.01;
    let negative = int8_whole().set(&scale_name, Dtype::F32, &[784], f32_bytes(&values));
    assert_refused!(negative.bytes(), FormatError::NegativeScale(_), &scale_name);
    values[5] = f32::MAX;
    let overflow = int8_whole().set(&scale_name, Dtype::F32, &[784], f32_bytes(&values));
    assert_refused!(
        overflow.bytes(),
        FormatError::NotFinite(_),
        "decoder.out.weight"
    );
    // A scale beside a float weight, and an I8 bias, are refused rather than misread.
    let stray = Raw::sample().set(
        "decoder.hidden.0.weight_scale",
        Dtype::F32,
        &[16],
        f32_bytes(&[1.0; 16]),
    );
    assert_refused!(
        stray.bytes(),
        FormatError::StrayScale(_),
        "decoder.hidden.0.weight_scale",
        "not I8"
    );
    let bias = Raw::sample().set("decoder.out.bias", Dtype::I8, &[784], vec![1; 784]);
    assert_refused!(bias.bytes(), FormatError::Dtype { .. }, "decoder.out.bias");
}

#[test]
fn a_part_alone_is_refused_by_load_with_a_clear_message() {
    let [decoder, encoder] = parts(WeightEncoding::Int8Rows);
    assert_refused!(decoder, FormatError::Split(_), "only the decoder part");
    assert_refused!(encoder, FormatError::Split(_), "only the encoder part");
    let err = format::load_decoder_part(&encoder).unwrap_err().to_string();
    assert!(
        err.contains("expected the decoder part, found the encoder part"),
        "{err}"
    );
    let err = format::load_decoder_part(&sample_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains(PART_KEY), "{err}");
    assert_split_refused(&encoder, &decoder, "expected the decoder part");
}

#[test]
fn parts_of_different_models_are_refused() {
    let [decoder, _] = parts(WeightEncoding::Int8Rows);
    let mut other = sample();
    other.meta.latent_std[0] = 2.0;
    let [_, other_encoder] =
        format::save_split(&other, &HashMap::new(), [WeightEncoding::Int8Rows; 2]).unwrap();
    assert_split_refused(&decoder, &other_encoder, "different models");
    // The same model stored two ways: different ids, so an old part never pairs with a new one.
    let [_, f16_encoder] = parts(WeightEncoding::F16);
    assert_split_refused(&decoder, &f16_encoder, "different models");
}

#[test]
fn truncated_or_inconsistent_parts_are_refused() {
    let [decoder, encoder] = parts(WeightEncoding::Int8Rows);
    for cut in [decoder.len() / 2, decoder.len() - 1, 100] {
        let err = format::load_decoder_part(&decoder[..cut])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a safetensors file") && err.contains("truncated"),
            "{err}"
        );
        assert_split_refused(&decoder[..cut], &encoder, "truncated");
    }
    assert_split_refused(&decoder, &encoder[..encoder.len() - 1], "truncated");
    // A decoder tensor missing, misshapen, or moved to the other part.
    let first = Raw::parse(&decoder);
    let missing = first.clone().remove("decoder.out.bias").bytes();
    let err = format::load_decoder_part(&missing).unwrap_err().to_string();
    assert!(err.contains("missing tensor `decoder.out.bias`"), "{err}");
    assert_split_refused(&missing, &encoder, "missing tensor `decoder.out.bias`");
    let bias = first.get("decoder.out.bias").clone();
    let misshapen = first
        .clone()
        .set(&bias.0, bias.1, &[392, 2], bias.3.clone())
        .bytes();
    let err = format::load_decoder_part(&misshapen)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("decoder.out.bias") && err.contains("shape"),
        "{err}"
    );
    let mut second = Raw::parse(&encoder);
    second.tensors.push(bias.clone());
    assert_split_refused(&missing, &second.bytes(), "belongs in the decoder part");
    // An encoder tensor in the decoder part.
    let mu = second.get("encoder.mu.bias").clone();
    let stray = first.clone().set(&mu.0, mu.1, &mu.2, mu.3.clone()).bytes();
    let err = format::load_decoder_part(&stray).unwrap_err().to_string();
    assert!(err.contains("unexpected tensor `encoder.mu.bias`"), "{err}");
    // Metadata the two parts disagree on.
    let edited = first.edit_meta(|m| {
        m.insert("dataset".into(), json!("fashion"));
    });
    assert_split_refused(&edited.bytes(), &encoder, "different models");
}

#[test]
fn read_model_takes_a_split_model_by_its_decoder_part() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let [decoder, encoder] = parts(WeightEncoding::Int8Rows);
    let path = dir.join("m.decoder.safetensors");
    std::fs::write(&path, &decoder).unwrap();
    let err = format::read_model(&path).unwrap_err().to_string();
    assert!(err.contains("m.encoder.safetensors"), "{err}");
    std::fs::write(dir.join("m.encoder.safetensors"), &encoder).unwrap();
    let loaded = format::read_model(&path).unwrap();
    assert_eq!(loaded.meta, sample().meta);
    let whole = dir.join("whole.safetensors");
    std::fs::write(&whole, sample_bytes()).unwrap();
    assert_eq!(format::read_model(&whole).unwrap().meta, sample().meta);
}

#[test]
fn save_split_keeps_every_metadata_entry_and_refuses_a_stale_one() {
    let raw = Raw::sample();
    let mut metadata = raw.metadata.clone().unwrap();
    metadata.insert("another_key".into(), "kept as it is".into());
    let [decoder, encoder] =
        format::save_split(&sample(), &metadata, [WeightEncoding::Int8Rows; 2]).unwrap();
    for part in [&decoder, &encoder] {
        let kept = Raw::parse(part).metadata.unwrap();
        assert_eq!(kept["another_key"], "kept as it is");
        assert_eq!(kept[METADATA_KEY], metadata[METADATA_KEY]);
    }
    let mut stale = metadata.clone();
    let mut other = sample().meta;
    other.dataset = "fashion".into();
    stale.insert(METADATA_KEY.into(), serde_json::to_string(&other).unwrap());
    let err = format::save_split(&sample(), &stale, [WeightEncoding::Int8Rows; 2]).unwrap_err();
    assert!(
        err.to_string().contains("does not describe the model"),
        "{err}"
    );
}
