//! The shipped models load, reach again the test figures recorded in them (to what determinism
//! allows), and meet the quality targets; the compact parts the page loads (I8 weights, split in two)
//! stay within 0.05 nats of the f32 files.

use vae_explorer::core::data::DatasetKind;
use vae_explorer::core::format;
use vae_explorer::train::export::measure;

/// The quality bar for the compact parts: test -ELBO within this many nats of the f32 file's.
const COMPACT_TOLERANCE: f64 = 0.05;

/// Loads a shipped model, re-measures it on its test split and compares with the file and the target.
fn check(name: &str, kind: DatasetKind, target_neg_elbo: f64) {
    let bytes = std::fs::read(format!("weights/{name}.safetensors")).expect("shipped weights file");
    let file = format::load(&bytes).expect("shipped weights load");
    assert_eq!(file.meta.dataset, kind.name());
    assert_eq!(file.meta.latent_dim, 8);
    let atlas = file.atlas.as_ref().expect("shipped files carry an atlas");
    assert!(atlas.len() >= 997, "atlas has {} images", atlas.len());
    let recorded = file.meta.metrics.clone().expect("recorded metrics");
    let dir = kind.default_dir();
    let test = kind.load(&dir).expect("run `make data` first").test;
    let now = measure(&file.vae, &test, 0).unwrap();
    assert_eq!(now.test_images, recorded.test_images);
    // The same weights, data, noise seed and code give the recorded figures again: only the order of
    // floating-point sums (threads) may differ: 6e-7 nats at most here, checked to 1e-4.
    for (term, now, recorded) in [
        ("-ELBO", now.neg_elbo, recorded.neg_elbo),
        ("recon", now.recon, recorded.recon),
        ("KL", now.kl, recorded.kl),
    ] {
        println!("{name}: {term} recorded {recorded}, measured now {now}");
        assert!(
            (now - recorded).abs() < 1e-4,
            "{name}: {term} measured {now} vs recorded {recorded}"
        );
    }
    assert!(
        now.neg_elbo <= target_neg_elbo,
        "{name}: -ELBO {} misses the target {target_neg_elbo}",
        now.neg_elbo
    );
    assert_eq!(now.active_units, 8, "{name}: active units");

    // The page's two parts, with every check of the format, measured on the same images and noise.
    let parts = std::path::PathBuf::from(format!("weights/{name}.decoder.safetensors"));
    let compact =
        format::read_model(&parts).expect("the compact parts load (make compact-weights)");
    assert_eq!(
        compact.meta, file.meta,
        "{name}: the parts keep the metadata"
    );
    assert_eq!(
        compact.atlas, file.atlas,
        "{name}: the parts keep the atlas"
    );
    let stored = measure(&compact.vae, &test, 0).unwrap();
    println!(
        "{name}: compact parts -ELBO {:.3} ({:+.3} nats against f32)",
        stored.neg_elbo,
        stored.neg_elbo - now.neg_elbo
    );
    assert!(
        (stored.neg_elbo - now.neg_elbo).abs() <= COMPACT_TOLERANCE,
        "{name}: compact -ELBO {} vs f32 {}",
        stored.neg_elbo,
        now.neg_elbo
    );
    assert_eq!(
        stored.active_units, 8,
        "{name}: active units of the compact parts"
    );
}

#[test]
fn digits_model_meets_its_recorded_figures_and_target() {
    check("digits", DatasetKind::Digits, 112.0);
}

#[test]
fn fashion_model_meets_its_recorded_figures_and_target() {
    check("fashion", DatasetKind::Fashion, 239.5);
}
