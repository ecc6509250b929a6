//! Valid models of random shapes through every call the browser makes: each one must fit the memory
//! budget and run without a panic, and the fast decoder kernel must agree with candle's decoder.
//!
//! The input picks the shape (latents wider than every layer, odd widths and heights, empty hidden
//! lists, ReLU or tanh, up to 200 classes), each tensor's dtype (F32, F16, BF16, F64), the weights'
//! seed, and the calls: decode of up to 300 vectors (above the row block, so the threaded split
//! runs), a grid, encode and the ELBO's terms.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use rand::{Rng, SeedableRng};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use vae_explorer::core::format::{self, Likelihood, Metadata, ModelFile, Preprocess};
use vae_explorer::core::metrics;
use vae_explorer::core::model::{self, Activation, ModelConfig, Vae};
use vae_explorer::web::budget;
use vae_explorer::web::grid::GridSweep;
use vae_explorer::web::packed_decoder::{PackedDecoder, PixelSink};

/// Up to `max_layers` hidden widths, each 1..=40 (so that 64-dim latents are wider than every layer).
fn widths(u: &mut Unstructured, max_layers: usize) -> Result<Vec<usize>> {
    let layers = u.int_in_range(0..=max_layers)?;
    (0..layers).map(|_| u.int_in_range(1..=40)).collect()
}

/// The file's bytes with every tensor re-stored in a dtype the input picks.
fn with_mixed_dtypes(u: &mut Unstructured, bytes: &[u8]) -> Result<Vec<u8>> {
    let st = SafeTensors::deserialize(bytes).expect("a saved file parses");
    let metadata = SafeTensors::read_metadata(bytes)
        .expect("a saved file parses")
        .1
        .metadata()
        .clone();
    let mut stored = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            stored.push((
                name,
                view.dtype(),
                view.shape().to_vec(),
                view.data().to_vec(),
            ));
            continue;
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let dtype = *u.choose(&[Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::F64])?;
        let data: Vec<u8> = match dtype {
            Dtype::F16 => values
                .flat_map(|v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            Dtype::BF16 => values
                .flat_map(|v| half::bf16::from_f32(v).to_le_bytes())
                .collect(),
            Dtype::F64 => values.flat_map(|v| f64::from(v).to_le_bytes()).collect(),
            _ => view.data().to_vec(),
        };
        stored.push((name, dtype, view.shape().to_vec(), data));
    }
    let views = stored.iter().map(|(name, dtype, shape, data)| {
        let view = TensorView::new(*dtype, shape.clone(), data).expect("sizes agree");
        (name.clone(), view)
    });
    Ok(safetensors::serialize(views, metadata).expect("serialises"))
}

/// A valid weights file of a random shape; returns its bytes and its shape.
fn random_file(u: &mut Unstructured) -> Result<(Vec<u8>, ModelConfig)> {
    let (width, height) = (u.int_in_range(1..=12)?, u.int_in_range(1..=12)?);
    let latent_dim = u.int_in_range(1..=64)?;
    let config = ModelConfig {
        input_dim: width * height,
        latent_dim,
        encoder_hidden: widths(u, 2)?,
        decoder_hidden: widths(u, 3)?,
        activation: if u.arbitrary()? {
            Activation::Tanh
        } else {
            Activation::Relu
        },
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(u.arbitrary()?);
    let vae = Vae::init(&config, &mut rng).expect("a valid shape initialises");
    let classes = u.int_in_range(1..=200)?;
    let meta = Metadata {
        format_version: format::FORMAT_VERSION,
        dataset: "fuzz".into(),
        class_names: (0..classes).map(|c| format!("class {c}")).collect(),
        width,
        height,
        latent_dim,
        encoder_hidden: config.encoder_hidden.clone(),
        decoder_hidden: config.decoder_hidden.clone(),
        activation: config.activation,
        likelihood: Likelihood::Bernoulli,
        latent_mean: vec![0.0; latent_dim],
        latent_std: vec![1.0; latent_dim],
        preprocess: *u.choose(&[Preprocess::Mnist, Preprocess::Fit, Preprocess::AsIs])?,
        metrics: None,
        training: None,
    };
    let file = ModelFile {
        meta,
        vae,
        atlas: None,
    };
    let bytes = format::save(&file).expect("a valid model saves");
    Ok((with_mixed_dtypes(u, &bytes)?, config))
}

/// Candle's decode of `n` latent vectors: the reference the kernel must match.
fn candle_decode(vae: &Vae, z: &[f32], n: usize) -> Vec<f32> {
    model::matrix(z, n, vae.config.latent_dim)
        .and_then(|z| vae.decode(&z))
        .and_then(|x| x.flatten_all()?.to_vec1::<f32>())
        .expect("candle decodes")
}

fn run(u: &mut Unstructured) -> Result<()> {
    let (bytes, config) = random_file(u)?;
    budget::check_model(&config, bytes.len()).expect("a small model fits the budget");
    let file = format::load(&bytes).expect("a valid file loads");
    let packed = PackedDecoder::new(&file.vae.decoder).expect("a loaded decoder packs");
    let (latent, pixels) = (config.latent_dim, config.input_dim);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(u.arbitrary()?);

    // decode: the kernel, split over threads, against candle.
    let n = u.int_in_range(1..=300)?;
    let z: Vec<f32> = (0..n * latent)
        .map(|_| rng.random_range(-4.0..4.0))
        .collect();
    let bytes = budget::output_bytes("decode", &[n, pixels, 4], "").expect("within budget");
    let mut fast = vec![f32::NAN; bytes / 4];
    packed.decode(&z, PixelSink::Intensities(&mut fast), true);
    let reference = candle_decode(&file.vae, &z, n);
    for (i, (a, b)) in fast.iter().zip(&reference).enumerate() {
        assert!((a - b).abs() <= 1e-4, "pixel {i} of {n} images: {a} vs {b}");
    }

    // decode_grid: RGBA tiles against candle's intensities, rounded.
    if latent >= 2 {
        let (cols, rows) = (u.int_in_range(1..=12)?, u.int_in_range(1..=12)?);
        let sweep = GridSweep {
            x_dim: 0,
            y_dim: latent - 1,
            x_min: -3.0,
            x_max: 3.0,
            y_min: -2.0,
            y_max: 2.5,
            cols,
            rows,
        };
        sweep.check(latent).expect("a valid sweep");
        let base: Vec<f32> = (0..latent).map(|_| rng.random_range(-1.0..1.0)).collect();
        let cells = sweep.latents(&base);
        let (width, height) = (file.meta.width, file.meta.height);
        let size = budget::output_bytes("grid", &[cols, rows, width, height, 4], "")
            .expect("within budget");
        let mut rgba = vec![0u8; size];
        let sink = PixelSink::Tiles {
            rgba: &mut rgba,
            cols,
            width,
            height,
        };
        packed.decode(&cells, sink, true);
        let reference = candle_decode(&file.vae, &cells, cols * rows);
        for (i, image) in reference.chunks_exact(pixels).enumerate() {
            for (p, &v) in image.iter().enumerate() {
                let (x, y) = (p % width, p / width);
                let at = (((i / cols) * height + y) * cols * width + (i % cols) * width + x) * 4;
                let gray = (v * 255.0).round() as i32;
                assert!((rgba[at] as i32 - gray).abs() <= 1, "cell {i} pixel {p}");
                assert_eq!(rgba[at + 3], 255);
            }
        }
    }

    // encode and the ELBO's terms, on the decoded images.
    let k = u.int_in_range(1..=n)?;
    let x = model::matrix(&fast[..k * pixels], k, pixels).expect("a matrix");
    let (mu, logvar) = file.vae.encode(&x).expect("encodes");
    for t in [mu, logvar] {
        let values = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("values");
        assert_eq!(values.len(), k * latent);
        assert!(values.iter().all(|v| v.is_finite()));
    }
    let terms = metrics::elbo_terms_per_image(&file.vae, &x).expect("the ELBO's terms");
    assert_eq!(terms.len(), k * (2 + latent));
    assert!(terms.iter().all(|v| v.is_finite()), "{terms:?}");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
