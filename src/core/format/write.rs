//! Writing weights files: whole files, checkpoints and the two parts of a split model.

use super::*;

/// A named tensor ready to be written.
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl safetensors::View for &Entry {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn f32_entry(t: &Tensor) -> Result<Entry> {
    let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(Entry {
        dtype: Dtype::F32,
        shape: t.dims().to_vec(),
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    })
}

/// The atlas's three tensors, after checking that their sizes agree with the metadata.
fn atlas_entries(file: &ModelFile) -> Result<Vec<(String, Entry)>> {
    let Some(atlas) = &file.atlas else {
        return Ok(Vec::new());
    };
    let n = atlas.len();
    let (m, l) = (&file.meta, file.meta.latent_dim);
    if atlas.pixels.len() != n * m.width * m.height || atlas.mu.len() != n * l {
        return Err(FormatError::Atlas(
            "pixel or mu count does not match the labels".into(),
        ));
    }
    Ok(vec![
        (
            ATLAS_PIXELS.into(),
            Entry {
                dtype: Dtype::U8,
                shape: vec![n, m.height, m.width],
                data: atlas.pixels.clone(),
            },
        ),
        (
            ATLAS_LABELS.into(),
            Entry {
                dtype: Dtype::U8,
                shape: vec![n],
                data: atlas.labels.clone(),
            },
        ),
        (
            ATLAS_MU.into(),
            Entry {
                dtype: Dtype::F32,
                shape: vec![n, l],
                data: atlas.mu.iter().flat_map(|v| v.to_le_bytes()).collect(),
            },
        ),
    ])
}

fn serialize(entries: &[(String, Entry)], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    safetensors::serialize(entries.iter().map(|(n, e)| (n.as_str(), e)), Some(metadata))
        .map_err(|e| FormatError::Safetensors(e.to_string()))
}

/// Serialises a model file, plus extra float tensors and metadata entries (for checkpoints).
pub fn save_parts(
    file: &ModelFile,
    extras: &[(String, Tensor)],
    extra_metadata: &[(String, String)],
) -> Result<Vec<u8>> {
    file.meta.validate()?;
    let mut entries: Vec<(String, Entry)> = Vec::new();
    for (name, t) in file.vae.to_tensors()? {
        entries.push((name, f32_entry(&t)?));
    }
    entries.extend(atlas_entries(file)?);
    for (name, t) in extras {
        entries.push((name.clone(), f32_entry(t)?));
    }
    let json =
        serde_json::to_string(&file.meta).map_err(|e| FormatError::BadMetadata(e.to_string()))?;
    let mut metadata: HashMap<String, String> = extra_metadata.iter().cloned().collect();
    metadata.insert(METADATA_KEY.to_string(), json);
    serialize(&entries, metadata)
}

/// How `save_split` stores each weight matrix (biases, the atlas and the scales stay F32 and U8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightEncoding {
    /// 4 bytes a value, as trained.
    F32,
    /// 2 bytes a value.
    F16,
    /// 1 byte a value: `I8` with an F32 scale per row (per output unit), value = byte * scale.
    Int8Rows,
}

/// `v / scale` rounded to a signed byte in -127..=127 (0 for a zero row).
fn quantize(v: f32, scale: f32) -> i8 {
    if scale > 0.0 {
        (v / scale).round().clamp(-127.0, 127.0) as i8
    } else {
        0
    }
}

/// A row's I8 scale: its largest weight becomes +-127, so every weight is within half a step.
fn row_scale(row: &[f32]) -> f32 {
    row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0
}

/// A weight matrix `[rows, cols]` in `encoding`, with its scale tensor when it has one.
fn weight_entries(
    name: &str,
    t: &Tensor,
    encoding: WeightEncoding,
) -> Result<Vec<(String, Entry)>> {
    let shape = t.dims().to_vec();
    let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let entry = |dtype, data| Entry {
        dtype,
        shape: shape.clone(),
        data,
    };
    Ok(match encoding {
        WeightEncoding::F32 => vec![(name.to_string(), f32_entry(t)?)],
        WeightEncoding::F16 => {
            let data = values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect();
            vec![(name.to_string(), entry(Dtype::F16, data))]
        }
        WeightEncoding::Int8Rows => {
            let cols = shape.get(1).copied().unwrap_or(1).max(1);
            let scales: Vec<f32> = values.chunks(cols).map(row_scale).collect();
            let data = values
                .chunks(cols)
                .zip(&scales)
                .flat_map(|(row, &scale)| row.iter().map(move |&v| quantize(v, scale) as u8))
                .collect();
            let scale = Entry {
                dtype: Dtype::F32,
                shape: vec![scales.len()],
                data: scales.iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            vec![
                (name.to_string(), entry(Dtype::I8, data)),
                (format!("{name}{SCALE_SUFFIX}"), scale),
            ]
        }
    })
}

/// Serialises a model as a split model's two parts, decoder part first, with the weight matrices of
/// each part in its own encoding (`[decoder, encoder]`).
///
/// `metadata` is every `__metadata__` entry to keep (e.g. a source file's `Parts::raw_metadata`), written
/// verbatim into both parts; its `vae_explorer` entry, when present, must describe `file`.
pub fn save_split(
    file: &ModelFile,
    metadata: &HashMap<String, String>,
    [decoder_encoding, encoder_encoding]: [WeightEncoding; 2],
) -> Result<[Vec<u8>; 2]> {
    file.meta.validate()?;
    let mut metadata = metadata.clone();
    match metadata.get(METADATA_KEY) {
        Some(_) if read_metadata(Some(&metadata))? != file.meta => {
            return Err(FormatError::BadMetadata(format!(
                "the `{METADATA_KEY}` entry to keep does not describe the model"
            )))
        }
        Some(_) => {}
        None => {
            let json = serde_json::to_string(&file.meta)
                .map_err(|e| FormatError::BadMetadata(e.to_string()))?;
            metadata.insert(METADATA_KEY.to_string(), json);
        }
    }
    let (mut decoder, mut encoder) = (Vec::new(), Vec::new());
    for (name, t) in file.vae.to_tensors()? {
        let (part, encoding) = if name.starts_with("decoder.") {
            (&mut decoder, decoder_encoding)
        } else {
            (&mut encoder, encoder_encoding)
        };
        if name.ends_with(".weight") {
            part.extend(weight_entries(&name, &t, encoding)?);
        } else {
            part.push((name.clone(), f32_entry(&t)?));
        }
    }
    encoder.extend(atlas_entries(file)?);
    let id_bytes = metadata[METADATA_KEY].bytes().chain(
        decoder
            .iter()
            .chain(&encoder)
            .flat_map(|(n, e)| n.bytes().chain(e.data.iter().copied())),
    );
    let model_id = format!("{:016x}", fnv1a(id_bytes));
    let with_part = |part| -> Result<HashMap<String, String>> {
        let info = PartInfo {
            part,
            model_id: model_id.clone(),
        };
        let mut m = metadata.clone();
        m.remove("checkpoint");
        m.insert(
            PART_KEY.to_string(),
            serde_json::to_string(&info).map_err(|e| FormatError::Split(e.to_string()))?,
        );
        Ok(m)
    };
    Ok([
        serialize(&decoder, with_part(PartKind::Decoder)?)?,
        serialize(&encoder, with_part(PartKind::Encoder)?)?,
    ])
}

/// Serialises a model file.
pub fn save(file: &ModelFile) -> Result<Vec<u8>> {
    save_parts(file, &[], &[])
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half a file;
/// then syncs the folder, so that the rename itself survives a power cut.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |source| FormatError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Flushes a folder's entries (the rename) to disk; a no-op where folders cannot be opened as files.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
