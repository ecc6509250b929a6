//! Split models: a decoder part the page draws with first, and an encoder part (see docs/FORMAT.md).

use super::*;

/// Which part of a split model a file holds (its `PART_KEY` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// The metadata and the decoder's tensors: enough to draw.
    Decoder,
    /// The encoder's tensors and the atlas.
    Encoder,
}

/// The `PART_KEY` entry: which part this is, and the id both parts of one model share.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartInfo {
    /// Which part.
    pub part: PartKind,
    /// The same in both parts of one model, and different for every other model.
    pub model_id: String,
}

/// A split model's checked decoder part: what the page draws with before the encoder part arrives.
#[derive(Debug, Clone)]
pub struct DecoderPart {
    /// The model's metadata.
    pub meta: Metadata,
    /// p(x|z).
    pub decoder: Mlp,
}

/// The file's `PART_KEY` entry, when it is one part of a split model.
pub(super) fn part_info(raw_metadata: &HashMap<String, String>) -> Result<Option<PartInfo>> {
    raw_metadata
        .get(PART_KEY)
        .map(|json| {
            serde_json::from_str(json)
                .map_err(|e| FormatError::Split(format!("`{PART_KEY}` is not valid: {e}")))
        })
        .transpose()
}

pub(super) fn part_name(part: PartKind) -> &'static str {
    match part {
        PartKind::Decoder => "decoder",
        PartKind::Encoder => "encoder",
    }
}

/// A part's metadata and `PART_KEY` entry, refusing a file that is not the `want` part.
fn open_part(
    bytes: &[u8],
    want: PartKind,
) -> Result<(SafeTensors<'_>, HashMap<String, String>, PartInfo)> {
    let (st, raw) = open(bytes)?;
    match part_info(&raw)? {
        Some(info) if info.part == want => Ok((st, raw, info)),
        Some(info) => Err(FormatError::Split(format!(
            "expected the {} part, found the {} part",
            part_name(want),
            part_name(info.part)
        ))),
        None => Err(FormatError::Split(format!(
            "expected the {} part of a split model, found a file with no `{PART_KEY}` entry",
            part_name(want)
        ))),
    }
}

/// Loads and checks a split model's decoder part on its own, so that the page can draw before the rest arrives.
pub fn load_decoder_part(bytes: &[u8]) -> Result<DecoderPart> {
    let (st, raw, _) = open_part(bytes, PartKind::Decoder)?;
    let meta = read_metadata(Some(&raw))?;
    let checked = check_tensors(&Sources(vec![st]), &meta, true, None)?;
    let decoder = Vae::decoder_from_tensors(&meta.model_config(), &checked.tensors)?;
    Ok(DecoderPart { meta, decoder })
}

/// Loads both parts of a split model and checks them together as one file, with every rule of `load`.
pub fn load_split(decoder_part: &[u8], encoder_part: &[u8]) -> Result<ModelFile> {
    let (first, first_raw, first_info) = open_part(decoder_part, PartKind::Decoder)?;
    let (second, second_raw, second_info) = open_part(encoder_part, PartKind::Encoder)?;
    if first_info.model_id != second_info.model_id
        || first_raw.get(METADATA_KEY) != second_raw.get(METADATA_KEY)
    {
        return Err(FormatError::Split(format!(
            "the two parts come from different models (ids {} and {})",
            first_info.model_id, second_info.model_id
        )));
    }
    let meta = read_metadata(Some(&first_raw))?;
    if let Some(name) = first
        .names()
        .into_iter()
        .find(|n| !n.starts_with("decoder."))
    {
        return Err(FormatError::Split(format!(
            "tensor `{name}` belongs in the encoder part"
        )));
    }
    if let Some(name) = second
        .names()
        .into_iter()
        .find(|n| n.starts_with("decoder."))
    {
        return Err(FormatError::Split(format!(
            "tensor `{name}` belongs in the decoder part"
        )));
    }
    let checked = check_tensors(&Sources(vec![first, second]), &meta, false, None)?;
    let vae = Vae::from_tensors(&meta.model_config(), &checked.tensors)?;
    Ok(ModelFile {
        meta,
        vae,
        atlas: checked.atlas,
    })
}

/// The encoder part that goes with a decoder part's path: `NAME.decoder.safetensors` to `NAME.encoder.safetensors`.
pub fn encoder_part_path(decoder_part: &Path) -> Option<std::path::PathBuf> {
    let name = decoder_part.file_name()?.to_str()?;
    let stem = name.strip_suffix(".decoder.safetensors")?;
    Some(decoder_part.with_file_name(format!("{stem}.encoder.safetensors")))
}

/// Reads a model from disk: a whole file, or a split model named by its decoder part (the encoder part beside it).
pub fn read_model(path: &Path) -> Result<ModelFile> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| FormatError::Io {
            path: p.display().to_string(),
            source,
        })
    };
    let bytes = read(path)?;
    match encoder_part_path(path) {
        Some(encoder) => load_split(&bytes, &read(&encoder)?),
        None => load(&bytes),
    }
}
