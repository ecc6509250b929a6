//! The lab's dataset pack: a train and a test split as u8 pixels and labels in one safetensors
//! file (served gzip'd, so the browser inflates it natively). docs/FORMAT.md describes it.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::core::data::{Dataset, DatasetKind, Split};

/// The metadata key naming the pack's dataset (`digits`, `fashion`, ...).
pub const DATASET_KEY: &str = "lab_dataset";

/// Most images a pack may hold per split (bounds memory for a careless or hostile file).
pub const MAX_IMAGES: usize = 100_000;

/// The metadata key giving the gray levels of the training images, written when they are fewer than 256.
pub const TRAIN_LEVELS_KEY: &str = "train_levels";

/// Most bytes a pack may take as served (gzip'd): the lab downloads it when opened, on school Wi-Fi.
pub const MAX_SERVED_BYTES: usize = 2_500_000;

/// Why a pack was refused.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant's message documents it
pub enum PackError {
    #[error("not a safetensors file: {0}")]
    Safetensors(String),
    #[error("no `{DATASET_KEY}` metadata: not a lab dataset pack")]
    MissingDataset,
    #[error("unknown dataset `{0}`")]
    UnknownDataset(String),
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    #[error("{0}")]
    Malformed(String),
}

type Result<T> = std::result::Result<T, PackError>;

/// A split's pixels as u8 at `levels` evenly spaced gray levels (2 to 256): the level nearest p, stored
/// as round(255 * level / (levels - 1)); at 256 levels that is round(255 * p).
fn to_u8(pixels: &[f32], levels: u16) -> Vec<u8> {
    let top = f32::from(levels.clamp(2, 256) - 1);
    pixels
        .iter()
        .map(|&p| ((p.clamp(0.0, 1.0) * top).round() * 255.0 / top).round() as u8)
        .collect()
}

/// Writes `split` of dataset `kind` as an (uncompressed) pack, its training images at `train_levels`
/// gray levels (256 keeps them exact; fewer compress better) and its test images exact.
pub fn write(kind: DatasetKind, split: &Split, train_levels: u16) -> Result<Vec<u8>> {
    if !(2..=256).contains(&train_levels) {
        return Err(PackError::Malformed(format!(
            "{train_levels} gray levels: expected 2 to 256"
        )));
    }
    let mut buffers = Vec::new();
    for (name, set, levels) in [
        ("train", &split.train, train_levels),
        ("test", &split.test, 256),
    ] {
        let shape = vec![set.len(), set.height, set.width];
        buffers.push((format!("{name}.images"), shape, to_u8(&set.pixels, levels)));
        buffers.push((
            format!("{name}.labels"),
            vec![set.len()],
            set.labels.clone(),
        ));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, data)| {
            let view = TensorView::new(Dtype::U8, shape.clone(), data)
                .map_err(|e| PackError::Malformed(e.to_string()))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::from([(DATASET_KEY.to_string(), kind.name().to_string())]);
    if train_levels < 256 {
        meta.insert(TRAIN_LEVELS_KEY.to_string(), train_levels.to_string());
    }
    safetensors::serialize(views, Some(meta)).map_err(|e| PackError::Safetensors(e.to_string()))
}

/// Reads one split (`train` or `test`) of a pack.
fn read_set(st: &SafeTensors, name: &str) -> Result<Dataset> {
    let view = |t: String| {
        st.tensor(&t)
            .map_err(|_| PackError::MissingTensor(t.clone()))
            .and_then(|v| match v.dtype() {
                Dtype::U8 => Ok(v),
                d => Err(PackError::Malformed(format!(
                    "`{t}` has dtype {d}, expected U8"
                ))),
            })
    };
    let images = view(format!("{name}.images"))?;
    let labels = view(format!("{name}.labels"))?;
    let &[n, height, width] = images.shape() else {
        return Err(PackError::Malformed(format!(
            "`{name}.images` has shape {:?}, expected [images, height, width]",
            images.shape()
        )));
    };
    if labels.shape() != [n] {
        return Err(PackError::Malformed(format!(
            "`{name}.labels` has shape {:?}, expected [{n}]",
            labels.shape()
        )));
    }
    if n == 0 || n > MAX_IMAGES || width == 0 || height == 0 || width * height > 4096 {
        return Err(PackError::Malformed(format!(
            "`{name}` holds {n} images of {width}x{height}: expected 1 to {MAX_IMAGES} images of at most 4096 pixels"
        )));
    }
    Ok(Dataset {
        width,
        height,
        pixels: images.data().iter().map(|&b| b as f32 / 255.0).collect(),
        labels: labels.data().to_vec(),
    })
}

/// Reads an (inflated) pack: its dataset and its two splits.
pub fn read(bytes: &[u8]) -> Result<(DatasetKind, Split)> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| PackError::Safetensors(e.to_string()))?;
    let name = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(DATASET_KEY))
        .ok_or(PackError::MissingDataset)?;
    let kind =
        DatasetKind::from_name(name).ok_or_else(|| PackError::UnknownDataset(name.clone()))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| PackError::Safetensors(e.to_string()))?;
    let split = Split {
        train: read_set(&st, "train")?,
        test: read_set(&st, "test")?,
    };
    if (split.train.width, split.train.height) != (split.test.width, split.test.height) {
        return Err(PackError::Malformed(
            "train and test images differ in size".into(),
        ));
    }
    Ok((kind, split))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(n: usize, seed: u8) -> Dataset {
        Dataset {
            width: 3,
            height: 2,
            pixels: (0..n * 6)
                .map(|i| ((i as u8).wrapping_mul(seed)) as f32 / 255.0)
                .collect(),
            labels: (0..n as u8).collect(),
        }
    }

    #[test]
    fn a_pack_reads_back_what_was_written() {
        let split = Split {
            train: tiny(5, 7),
            test: tiny(2, 3),
        };
        let bytes = write(DatasetKind::Fashion, &split, 256).unwrap();
        let (kind, back) = read(&bytes).unwrap();
        assert_eq!(kind, DatasetKind::Fashion);
        assert_eq!(back.train, split.train);
        assert_eq!(back.test, split.test);
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        assert!(!header
            .metadata()
            .as_ref()
            .unwrap()
            .contains_key(TRAIN_LEVELS_KEY));
    }

    #[test]
    fn training_images_take_the_levels_asked_and_test_images_stay_exact() {
        let split = Split {
            train: tiny(40, 7),
            test: tiny(20, 3),
        };
        let bytes = write(DatasetKind::Fashion, &split, 16).unwrap();
        let (_, back) = read(&bytes).unwrap();
        assert_eq!(back.test, split.test);
        let mut levels = std::collections::BTreeSet::new();
        for (&got, &was) in back.train.pixels.iter().zip(&split.train.pixels) {
            let byte = (got * 255.0).round() as u8;
            assert_eq!(byte % 17, 0, "{byte} is not one of 16 levels");
            assert!(
                (got - was).abs() <= 8.5 / 255.0 + 1e-6,
                "{was} stored as {got}"
            );
            levels.insert(byte);
        }
        assert!(levels.len() > 8, "the images use only {levels:?}");
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().unwrap();
        assert_eq!(meta.get(TRAIN_LEVELS_KEY).map(String::as_str), Some("16"));
        let err = write(DatasetKind::Fashion, &split, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected 2 to 256"), "{err}");
    }

    #[test]
    fn bad_packs_are_refused_with_a_reason() {
        let split = Split {
            train: tiny(5, 7),
            test: tiny(2, 3),
        };
        let bytes = write(DatasetKind::Digits, &split, 256).unwrap();
        let err = read(&bytes[..bytes.len() - 3]).unwrap_err().to_string();
        assert!(err.contains("not a safetensors file"), "{err}");
        let err = read(b"hello").unwrap_err().to_string();
        assert!(err.contains("not a safetensors file"), "{err}");
        let no_test = Split {
            train: tiny(5, 7),
            test: tiny(0, 3),
        };
        let err = read(&write(DatasetKind::Digits, &no_test, 256).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds 0 images"), "{err}");
    }
}
