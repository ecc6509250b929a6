//! Held-out metrics: the ELBO and its terms, active units, importance-weighted likelihood, latent stats.

use candle_core::{Result, Tensor, D};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::core::data::Dataset;
use crate::core::model::{
    bce_of_image, bce_with_logits_per_image, kl_of_dim, kl_per_image, matrix, normal_noise,
    reparameterize_value, Vae,
};

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

/// Draws from q(z|x) for one image, each scored by the decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct PosteriorSamples {
    /// The draws z = mu + sigma * eps, `[n, latent]` row-major.
    pub z: Vec<f32>,
    /// -log p(x | z) in nats for each draw: their mean estimates the ELBO's E_q[-log p(x|z)].
    pub recon: Vec<f32>,
}

/// Samples q(z|x) for one image `x` (`[1, input]`) by the reparameterisation trick, with the
/// standard-normal rows of `eps` (`[n, latent]`, drawn by the caller so that a seed repeats them).
///
/// Plain loops around the encoder and decoder, as in the browser, where tensor ops cost module size.
pub fn posterior_samples(vae: &Vae, x: &Tensor, eps: &[f32]) -> Result<PosteriorSamples> {
    let latent = vae.config.latent_dim;
    let (mu, logvar) = vae.encode(x)?;
    let (mu, logvar) = (
        mu.flatten_all()?.to_vec1::<f32>()?,
        logvar.flatten_all()?.to_vec1::<f32>()?,
    );
    let z: Vec<f32> = eps
        .iter()
        .enumerate()
        .map(|(i, &e)| reparameterize_value(mu[i % latent], logvar[i % latent], e))
        .collect();
    let logits = vae.decode_logits(&matrix(&z, z.len() / latent, latent)?)?;
    let logits = logits.flatten_all()?.to_vec1::<f32>()?;
    let pixels = x.flatten_all()?.to_vec1::<f32>()?;
    let recon = logits
        .chunks_exact(pixels.len())
        .map(|image| bce_of_image(image, &pixels))
        .collect();
    Ok(PosteriorSamples { z, recon })
}

/// The ELBO's terms for each image of `x` (`[n, input]`), so the page can show what the loss is made of.
///
/// Per image, `2 + latent_dim` values: the reconstruction -log p(x | z = mu) in nats (BCE summed over
/// pixels, decoded at the encoder's mean rather than a random sample, so it is repeatable), the total
/// KL(q(z|x) || N(0, I)), then the KL of each dim.
pub fn elbo_terms_per_image(vae: &Vae, x: &Tensor) -> Result<Vec<f32>> {
    let (mu, logvar) = vae.encode(x)?;
    let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
    let logits = flat(&vae.decode_logits(&mu)?)?;
    let (pixels, mu, logvar) = (flat(x)?, flat(&mu)?, flat(&logvar)?);
    let (per_image, latent) = (vae.config.input_dim, vae.config.latent_dim);
    let mut out = Vec::with_capacity(mu.len() / latent * (2 + latent));
    for (i, (mu, logvar)) in mu
        .chunks_exact(latent)
        .zip(logvar.chunks_exact(latent))
        .enumerate()
    {
        let image = i * per_image..(i + 1) * per_image;
        let recon = bce_of_image(&logits[image.clone()], &pixels[image]);
        let kl: Vec<f32> = mu
            .iter()
            .zip(logvar)
            .map(|(&m, &v)| kl_of_dim(m, v))
            .collect();
        out.extend([recon, kl.iter().sum()]);
        out.extend(kl);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::ModelConfig;

    fn small_vae() -> Vae {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        Vae::init(&ModelConfig::mirrored(12, 3, &[7]), &mut rng).unwrap()
    }

    #[test]
    fn posterior_samples_are_mu_plus_sigma_eps_and_scored_like_the_tensor_loss() {
        let vae = small_vae();
        let pixels: Vec<f32> = (0..12).map(|i| (i % 5) as f32 / 4.0).collect();
        let x = matrix(&pixels, 1, 12).unwrap();
        let eps = normal_noise(&mut ChaCha8Rng::seed_from_u64(9), 4, 3).unwrap();
        let samples =
            posterior_samples(&vae, &x, &eps.flatten_all().unwrap().to_vec1().unwrap()).unwrap();

        let (mu, logvar) = vae.encode(&x).unwrap();
        let (mu, logvar) = (
            mu.to_vec2::<f32>().unwrap(),
            logvar.to_vec2::<f32>().unwrap(),
        );
        let eps_rows = eps.to_vec2::<f32>().unwrap();
        for (k, row) in eps_rows.iter().enumerate() {
            for (d, e) in row.iter().enumerate() {
                let want = mu[0][d] + (0.5 * logvar[0][d]).exp() * e;
                let got = samples.z[k * 3 + d];
                assert!((got - want).abs() < 1e-6, "z[{k}][{d}] {got} vs {want}");
            }
        }
        let z = matrix(&samples.z, 4, 3).unwrap();
        let logits = vae.decode_logits(&z).unwrap();
        let targets = x.broadcast_as((4, 12)).unwrap().contiguous().unwrap();
        let want = bce_with_logits_per_image(&logits, &targets)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(samples.recon.len(), 4);
        for (got, want) in samples.recon.iter().zip(&want) {
            assert!((got - want).abs() <= 1e-5 * want.abs(), "{got} vs {want}");
        }
        assert!(
            samples.recon.windows(2).all(|w| w[0] != w[1]),
            "each draw scores differently"
        );
    }

    #[test]
    fn a_zero_eps_sample_is_the_mean() {
        let vae = small_vae();
        let x = matrix(&[0.5; 12], 1, 12).unwrap();
        let samples = posterior_samples(&vae, &x, &[0.0; 6]).unwrap();
        let (mu, _) = vae.encode(&x).unwrap();
        let mu = mu.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(&samples.z[..3], mu.as_slice());
        assert_eq!(&samples.z[3..], mu.as_slice());
        let at_mu = bce_of_image(
            &vae.decode_logits(&matrix(&mu, 1, 3).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            &[0.5; 12],
        );
        assert_eq!(samples.recon, vec![at_mu, at_mu]);
    }
}
