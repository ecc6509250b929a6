//! Turns a trained VAE into a complete weights file: latent stats, held-out metrics and the atlas.

use candle_core::Result;

use crate::core::data::{Dataset, DatasetKind};
use crate::core::format::{
    Atlas, Likelihood, Metadata, Metrics, ModelFile, Preprocess, TrainingInfo, FORMAT_VERSION,
};
use crate::core::metrics::{
    active_units, column_stats, elbo, encode_means, importance_weighted_nll,
};
use crate::core::model::Vae;

/// Seed of the noise used for held-out metrics, fixed so that figures are repeatable.
pub const EVAL_SEED: u64 = 12345;

/// Metadata for `vae` with neutral latent stats and no metrics (for checkpoints).
pub fn bare_metadata(vae: &Vae, kind: DatasetKind, width: usize, height: usize) -> Metadata {
    let c = &vae.config;
    Metadata {
        format_version: FORMAT_VERSION,
        dataset: kind.name().to_string(),
        class_names: kind.class_names(),
        width,
        height,
        latent_dim: c.latent_dim,
        encoder_hidden: c.encoder_hidden.clone(),
        decoder_hidden: c.decoder_hidden.clone(),
        activation: c.activation,
        likelihood: Likelihood::Bernoulli,
        latent_mean: vec![0.0; c.latent_dim],
        latent_std: vec![1.0; c.latent_dim],
        preprocess: match kind {
            DatasetKind::Digits | DatasetKind::Mnist => Preprocess::Mnist,
            DatasetKind::Fashion => Preprocess::Fit,
        },
        metrics: None,
        training: None,
    }
}

/// Held-out metrics of `vae` on `test`; the importance-weighted estimate uses `iw_samples` (0 skips it).
pub fn measure(vae: &Vae, test: &Dataset, iw_samples: usize) -> Result<Metrics> {
    let terms = elbo(vae, test, EVAL_SEED)?;
    let (active, _) = active_units(vae, test)?;
    let iw_nll = (iw_samples > 0)
        .then(|| importance_weighted_nll(vae, test, iw_samples, EVAL_SEED))
        .transpose()?;
    Ok(Metrics {
        test_images: test.len(),
        neg_elbo: terms.neg_elbo,
        recon: terms.recon,
        kl: terms.kl,
        active_units: active,
        iw_nll,
        iw_samples: (iw_samples > 0).then_some(iw_samples),
    })
}

/// The first `n` test images with their labels and encoder means.
pub fn atlas(vae: &Vae, test: &Dataset, n: usize) -> Result<Atlas> {
    let subset = test.take(n);
    Ok(Atlas {
        pixels: subset
            .pixels
            .iter()
            .map(|&p| (p * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect(),
        labels: subset.labels.clone(),
        mu: encode_means(vae, &subset)?,
    })
}

/// A complete weights file for a trained model.
pub fn model_file(
    vae: &Vae,
    kind: DatasetKind,
    train: &Dataset,
    test: &Dataset,
    atlas_size: usize,
    iw_samples: usize,
    training: TrainingInfo,
) -> Result<ModelFile> {
    let mut meta = bare_metadata(vae, kind, train.width, train.height);
    let (mean, std) = column_stats(&encode_means(vae, train)?, vae.config.latent_dim);
    meta.latent_mean = mean;
    // A collapsed dim has std ~0; keep its slider usable with the prior's scale.
    meta.latent_std = std
        .iter()
        .map(|&s| if s > 1e-3 { s } else { 1.0 })
        .collect();
    meta.metrics = Some(measure(vae, test, iw_samples)?);
    meta.training = Some(training);
    Ok(ModelFile {
        meta,
        vae: vae.clone(),
        atlas: Some(atlas(vae, test, atlas_size)?),
    })
}
