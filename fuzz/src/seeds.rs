//! Writes the starting corpus for each fuzz target: small valid inputs the mutations begin from.
//!
//!     cargo run --bin seeds -- <corpus dir>    (writes <dir>/weights, <dir>/idx, <dir>/digit_json)

use std::io::Write;
use std::path::Path;

use rand::SeedableRng;
use vae_explorer::core::data::DatasetKind;
use vae_explorer::core::format::{self, Atlas, ModelFile};
use vae_explorer::core::model::{ModelConfig, Vae};
use vae_explorer::train::export::bare_metadata;

/// A tiny valid weights file: 4x4 images, a 2-dim latent, one hidden layer of 3, with or without an atlas.
fn weights(atlas: bool, extras: bool) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let vae = Vae::init(&ModelConfig::mirrored(16, 2, &[3]), &mut rng).expect("init");
    let meta = bare_metadata(&vae, DatasetKind::Digits, 4, 4);
    let atlas = atlas.then(|| Atlas {
        pixels: (0..32).map(|i| (i * 8) as u8).collect(),
        labels: vec![1, 7],
        mu: vec![0.5, -0.25, 1.0, 2.0],
    });
    let file = ModelFile { meta, vae, atlas };
    let extra: Vec<(String, candle_core::Tensor)> = if extras {
        let t = candle_core::Tensor::from_vec(vec![0.5f32; 6], (2, 3), &candle_core::Device::Cpu)
            .expect("tensor");
        vec![("optimizer.m.0".into(), t)]
    } else {
        Vec::new()
    };
    format::save_parts(&file, &extra, &[]).expect("save")
}

/// An IDX file: big-endian magic, dimensions, then the bytes.
fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(body);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// The idx target's input: a 2-byte split point, the images, then the labels.
fn idx_pair(images: &[u8], labels: &[u8]) -> Vec<u8> {
    let mut out = (images.len() as u16).to_le_bytes().to_vec();
    out.extend(images);
    out.extend(labels);
    out
}

fn digit_json(images: usize) -> Vec<u8> {
    let values: Vec<String> = (0..images * 784)
        .map(|i| format!("{:.3}", (i % 1000) as f32 / 1000.0))
        .collect();
    format!("{{\"data\":[{}]}}", values.join(",")).into_bytes()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus folder");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    let root = Path::new(&root);
    let weights_dir = root.join("weights");
    write(&weights_dir, "seed-plain", &weights(false, false));
    write(&weights_dir, "seed-atlas", &weights(true, false));
    write(&weights_dir, "seed-checkpoint", &weights(false, true));

    let images = idx(
        0x803,
        &[2, 2, 3],
        &[0, 64, 128, 192, 255, 1, 2, 3, 4, 5, 6, 7],
    );
    let labels = idx(0x801, &[2], &[3, 9]);
    let idx_dir = root.join("idx");
    write(&idx_dir, "seed-raw", &idx_pair(&images, &labels));
    write(
        &idx_dir,
        "seed-gzip",
        &idx_pair(&gzip(&images), &gzip(&labels)),
    );

    let json_dir = root.join("digit_json");
    write(&json_dir, "seed-one", &digit_json(1));
    write(&json_dir, "seed-two", &digit_json(2));
    println!("wrote seeds under {}", root.display());
}
