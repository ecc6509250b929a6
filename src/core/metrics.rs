//! Held-out metrics: the ELBO and its terms, active units, importance-weighted likelihood, latent stats.

use candle_core::{Result, Tensor, D};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::core::data::Dataset;
use crate::core::model::{bce_with_logits_per_image, kl_per_image, matrix, normal_noise, Vae};

const EVAL_BATCH: usize = 500;

/// Mean per-image ELBO terms, in nats.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ElboTerms {
    /// -ELBO = reconstruction + KL.
    pub neg_elbo: f64,
    /// E_q[-log p(x|z)], one sample.
    pub recon: f64,
    /// KL(q(z|x) || p(z)).
    pub kl: f64,
}

/// Runs `f` over `data` in batches of `EVAL_BATCH` images, as `[n, pixels]` tensors.
fn for_batches(data: &Dataset, mut f: impl FnMut(&Tensor) -> Result<()>) -> Result<()> {
    let size = data.image_size();
    for chunk in data.pixels.chunks(EVAL_BATCH * size) {
        f(&matrix(chunk, chunk.len() / size, size)?)?;
    }
    Ok(())
}

/// The 1-sample test -ELBO and its terms, with seeded noise.
pub fn elbo(vae: &Vae, data: &Dataset, seed: u64) -> Result<ElboTerms> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut recon, mut kl) = (0.0f64, 0.0f64);
    for_batches(data, |x| {
        let (mu, logvar) = vae.encode(x)?;
        let eps = normal_noise(&mut rng, x.dim(0)?, vae.config.latent_dim)?;
        let z = Vae::reparameterize(&mu, &logvar, &eps)?;
        let logits = vae.decode_logits(&z)?;
        recon += bce_with_logits_per_image(&logits, x)?
            .sum_all()?
            .to_scalar::<f32>()? as f64;
        kl += kl_per_image(&mu, &logvar)?.sum_all()?.to_scalar::<f32>()? as f64;
        Ok(())
    })?;
    let n = data.len().max(1) as f64;
    Ok(ElboTerms {
        neg_elbo: (recon + kl) / n,
        recon: recon / n,
        kl: kl / n,
    })
}

/// The encoder means of every image, `[n * latent]` row-major.
pub fn encode_means(vae: &Vae, data: &Dataset) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(data.len() * vae.config.latent_dim);
    for_batches(data, |x| {
        let (mu, _) = vae.encode(x)?;
        out.extend(mu.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    })?;
    Ok(out)
}

/// Per-dim mean and standard deviation of rows of `values` (`[n, dims]` row-major).
pub fn column_stats(values: &[f32], dims: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (values.len() / dims.max(1)).max(1) as f64;
    let mut mean = vec![0f64; dims];
    let mut sq = vec![0f64; dims];
    for row in values.chunks_exact(dims) {
        for (d, &v) in row.iter().enumerate() {
            mean[d] += v as f64;
            sq[d] += (v as f64) * (v as f64);
        }
    }
    let mean: Vec<f64> = mean.iter().map(|m| m / n).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| ((s / n - m * m).max(0.0)).sqrt() as f32)
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

/// Unit u is active when Cov_x(E_q[z_u]) exceeds this.
pub const ACTIVE_UNIT_THRESHOLD: f32 = 0.01;

/// How many latent dims are active over `data`, and each dim's variance of the mean.
pub fn active_units(vae: &Vae, data: &Dataset) -> Result<(usize, Vec<f32>)> {
    let mu = encode_means(vae, data)?;
    let (_, std) = column_stats(&mu, vae.config.latent_dim);
    let var: Vec<f32> = std.iter().map(|s| s * s).collect();
    Ok((
        var.iter().filter(|&&v| v > ACTIVE_UNIT_THRESHOLD).count(),
        var,
    ))
}

/// The importance-weighted estimate of -log p(x), in nats per image, with `k` samples from q(z|x).
pub fn importance_weighted_nll(vae: &Vae, data: &Dataset, k: usize, seed: u64) -> Result<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let latent = vae.config.latent_dim;
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln() as f32;
    let mut total = 0.0f64;
    for_batches(data, |x| {
        let n = x.dim(0)?;
        let (mu, logvar) = vae.encode(x)?;
        let mut log_w = Vec::with_capacity(k);
        for _ in 0..k {
            let eps = normal_noise(&mut rng, n, latent)?;
            let z = Vae::reparameterize(&mu, &logvar, &eps)?;
            let log_px_z = bce_with_logits_per_image(&vae.decode_logits(&z)?, x)?.neg()?;
            // log p(z) - log q(z|x); the 2*pi constants cancel, kept for clarity.
            let log_pz = ((z.sqr()? * -0.5)? - half_log_2pi as f64)?.sum(D::Minus1)?;
            let log_qz = (((eps.sqr()? * -0.5)? - (&logvar * 0.5)?)? - half_log_2pi as f64)?
                .sum(D::Minus1)?;
            log_w.push(((log_px_z + log_pz)? - log_qz)?);
        }
        let log_w = Tensor::stack(&log_w, 1)?; // [n, k]
        let max = log_w.max_keepdim(1)?;
        let lse = (log_w.broadcast_sub(&max)?.exp()?.sum_keepdim(1)?.log()? + max)?;
        let nll = ((lse * -1.0)? + (k as f64).ln())?;
        total += nll.sum_all()?.to_scalar::<f32>()? as f64;
        Ok(())
    })?;
    Ok(total / data.len().max(1) as f64)
}
