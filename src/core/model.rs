//! The VAE: a Gaussian encoder q(z|x), a Bernoulli decoder p(x|z), and the ELBO terms.

use std::collections::HashMap;

use candle_core::{Device, Result, Tensor, D};
use rand_distr::{Distribution, StandardNormal};

/// The nonlinearity between hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(x, 0), as in the PyTorch examples VAE.
    Relu,
    /// tanh(x), for models trained elsewhere.
    Tanh,
}

impl Activation {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Relu => x.relu(),
            Self::Tanh => x.tanh(),
        }
    }
}

/// The shape of a VAE: everything needed to build its layers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    /// Pixels per image (width * height).
    pub input_dim: usize,
    /// Dimensions of z.
    pub latent_dim: usize,
    /// Hidden layer widths of the encoder, from the input side.
    pub encoder_hidden: Vec<usize>,
    /// Hidden layer widths of the decoder, from the latent side.
    pub decoder_hidden: Vec<usize>,
    /// The nonlinearity after every hidden layer.
    pub activation: Activation,
}

impl ModelConfig {
    /// A config whose decoder mirrors the encoder, as is usual.
    pub fn mirrored(input_dim: usize, latent_dim: usize, hidden: &[usize]) -> Self {
        Self {
            input_dim,
            latent_dim,
            encoder_hidden: hidden.to_vec(),
            decoder_hidden: hidden.iter().rev().copied().collect(),
            activation: Activation::Relu,
        }
    }

    /// Every tensor the model has, as (name, PyTorch `[out, in]` or `[out]` shape), in file order.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut shapes = Vec::new();
        let mut push = |name: String, fan_in: usize, fan_out: usize| {
            shapes.push((format!("{name}.weight"), vec![fan_out, fan_in]));
            shapes.push((format!("{name}.bias"), vec![fan_out]));
        };
        let mut fan_in = self.input_dim;
        for (i, &h) in self.encoder_hidden.iter().enumerate() {
            push(format!("encoder.hidden.{i}"), fan_in, h);
            fan_in = h;
        }
        push("encoder.mu".into(), fan_in, self.latent_dim);
        push("encoder.logvar".into(), fan_in, self.latent_dim);
        let mut fan_in = self.latent_dim;
        for (i, &h) in self.decoder_hidden.iter().enumerate() {
            push(format!("decoder.hidden.{i}"), fan_in, h);
            fan_in = h;
        }
        push("decoder.out".into(), fan_in, self.input_dim);
        shapes
    }
}

/// An affine layer stored as `[in, out]`, so the forward pass is one `x.matmul(w)` with no transpose.
#[derive(Debug, Clone)]
pub struct Dense {
    /// Weight, `[in, out]` (the transpose of PyTorch's layout).
    pub weight: Tensor,
    /// Bias, `[out]`.
    pub bias: Tensor,
}

impl Dense {
    /// x `[n, in]` to `[n, out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// An MLP: hidden layers with an activation, then a linear output layer.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// Hidden layers, each followed by the activation.
    pub hidden: Vec<Dense>,
    /// The output layer, with no activation.
    pub out: Dense,
    /// The activation after each hidden layer.
    pub activation: Activation,
}

impl Mlp {
    /// Runs the network, returning the output layer's pre-activation.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for layer in &self.hidden {
            h = self.activation.apply(&layer.forward(&h)?)?;
        }
        self.out.forward(&h)
    }
}

/// The layer `name` from PyTorch-layout tensors; a missing tensor is an error, not a panic.
fn dense_from(tensors: &HashMap<String, Tensor>, name: &str) -> Result<Dense> {
    let get = |name: String| {
        tensors
            .get(&name)
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg(format!("missing tensor {name}")))
    };
    Ok(Dense {
        weight: transposed(&get(format!("{name}.weight"))?)?,
        bias: get(format!("{name}.bias"))?,
    })
}

/// A VAE ready to encode and decode.
#[derive(Debug, Clone)]
pub struct Vae {
    /// Its shape.
    pub config: ModelConfig,
    /// q(z|x): its output is mu and log-variance side by side, `[n, 2 * latent]`.
    pub encoder: Mlp,
    /// p(x|z): its output is Bernoulli logits, `[n, input_dim]`.
    pub decoder: Mlp,
}

impl Vae {
    /// Builds a VAE from tensors named and shaped as in `ModelConfig::tensor_shapes` (PyTorch layout).
    ///
    /// The caller has checked the names and shapes; a missing tensor is still an error, not a panic.
    pub fn from_tensors(config: &ModelConfig, tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let encoder_hidden = (0..config.encoder_hidden.len())
            .map(|i| dense_from(tensors, &format!("encoder.hidden.{i}")))
            .collect::<Result<Vec<_>>>()?;
        let (mu, logvar) = (
            dense_from(tensors, "encoder.mu")?,
            dense_from(tensors, "encoder.logvar")?,
        );
        let head = Dense {
            weight: Tensor::cat(&[&mu.weight, &logvar.weight], 1)?,
            bias: Tensor::cat(&[&mu.bias, &logvar.bias], 0)?,
        };
        Ok(Self {
            config: config.clone(),
            encoder: Mlp {
                hidden: encoder_hidden,
                out: head,
                activation: config.activation,
            },
            decoder: Self::decoder_from_tensors(config, tensors)?,
        })
    }

    /// Builds only the decoder p(x|z), from the `decoder.*` tensors: all a split model's first part holds.
    pub fn decoder_from_tensors(
        config: &ModelConfig,
        tensors: &HashMap<String, Tensor>,
    ) -> Result<Mlp> {
        let hidden = (0..config.decoder_hidden.len())
            .map(|i| dense_from(tensors, &format!("decoder.hidden.{i}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp {
            hidden,
            out: dense_from(tensors, "decoder.out")?,
            activation: config.activation,
        })
    }

    /// The model's tensors in PyTorch layout, named as in the weights format.
    pub fn to_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        let mut push = |name: String, d: &Dense| -> Result<()> {
            out.push((format!("{name}.weight"), d.weight.t()?.contiguous()?));
            out.push((format!("{name}.bias"), d.bias.clone()));
            Ok(())
        };
        for (i, d) in self.encoder.hidden.iter().enumerate() {
            push(format!("encoder.hidden.{i}"), d)?;
        }
        let l = self.config.latent_dim;
        let head = &self.encoder.out;
        for (k, name) in ["encoder.mu", "encoder.logvar"].into_iter().enumerate() {
            let part = Dense {
                weight: head.weight.narrow(1, k * l, l)?,
                bias: head.bias.narrow(0, k * l, l)?,
            };
            push(name.to_string(), &part)?;
        }
        for (i, d) in self.decoder.hidden.iter().enumerate() {
            push(format!("decoder.hidden.{i}"), d)?;
        }
        push("decoder.out".to_string(), &self.decoder.out)?;
        Ok(out)
    }

    /// A freshly initialised VAE (PyTorch's `nn.Linear` default: U(-1/sqrt(in), 1/sqrt(in))).
    pub fn init(config: &ModelConfig, rng: &mut impl rand::Rng) -> Result<Self> {
        let mut map = HashMap::new();
        let mut fan_in = 1;
        // Each bias follows its weight, so it reuses that weight's fan-in.
        for (name, shape) in config.tensor_shapes() {
            if shape.len() == 2 {
                fan_in = shape[1];
            }
            let bound = 1.0 / (fan_in as f32).sqrt();
            let n = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
            map.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
        }
        Self::from_tensors(config, &map)
    }

    /// q(z|x): returns (mu, logvar), each `[n, latent]`, for pixels `[n, input_dim]`.
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let out = self.encoder.forward(x)?;
        let l = self.config.latent_dim;
        Ok((out.narrow(1, 0, l)?, out.narrow(1, l, l)?))
    }

    /// p(x|z) as Bernoulli logits, `[n, input_dim]`.
    pub fn decode_logits(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.forward(z)
    }

    /// p(x|z) as pixel intensities in [0, 1], `[n, input_dim]`.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        candle_nn::ops::sigmoid(&self.decode_logits(z)?)
    }

    /// The reparameterisation trick: z = mu + exp(logvar / 2) * eps, with eps given by the caller.
    pub fn reparameterize(mu: &Tensor, logvar: &Tensor, eps: &Tensor) -> Result<Tensor> {
        mu + (logvar * 0.5)?.exp()?.mul(eps)?
    }
}

/// Per-image -log p(x|z) for Bernoulli logits, summed over pixels: `[n]`.
///
/// Uses the stable form max(l, 0) - l * x + log(1 + exp(-|l|)), which stays finite at any logit.
pub fn bce_with_logits_per_image(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (logits.relu()? - logits.mul(targets)?)?
        .add(&softplus)?
        .sum(D::Minus1)
}

/// Per-dim KL(q(z|x) || N(0, I)) in closed form: `[n, latent]`.
pub fn kl_per_dim(mu: &Tensor, logvar: &Tensor) -> Result<Tensor> {
    // 0.5 * (mu^2 + exp(logvar) - 1 - logvar)
    ((mu.sqr()? + logvar.exp()?)? - 1.0)?
        .sub(logvar)?
        .affine(0.5, 0.0)
}

/// Per-image KL(q(z|x) || N(0, I)): `[n]`.
pub fn kl_per_image(mu: &Tensor, logvar: &Tensor) -> Result<Tensor> {
    kl_per_dim(mu, logvar)?.sum(D::Minus1)
}

/// One pixel's -log p(x|z) for Bernoulli logit `logit`: the formula of `bce_with_logits_per_image`, for
/// callers holding plain values (the wasm binding, where tensor reductions would cost module size).
pub fn bce_with_logit(logit: f32, target: f32) -> f32 {
    logit.max(0.0) - logit * target + (-logit.abs()).exp().ln_1p()
}

/// One image's -log p(x|z): `bce_with_logit` summed over its pixels' logits and targets.
pub fn bce_of_image(logits: &[f32], targets: &[f32]) -> f32 {
    logits
        .iter()
        .zip(targets)
        .map(|(&l, &t)| bce_with_logit(l, t))
        .sum()
}

/// One dim's KL(q(z|x) || N(0, 1)): the formula of `kl_per_dim`, for callers holding plain values.
pub fn kl_of_dim(mu: f32, logvar: f32) -> f32 {
    0.5 * (mu * mu + logvar.exp() - 1.0 - logvar)
}

/// One value of the reparameterisation trick, mu + exp(logvar / 2) * eps: `Vae::reparameterize`'s formula
/// for callers holding plain values.
pub fn reparameterize_value(mu: f32, logvar: f32, eps: f32) -> f32 {
    mu + (0.5 * logvar).exp() * eps
}

/// A 2-D f32 tensor's transpose as a new contiguous tensor.
///
/// Plain loops: in the browser, before V8 optimises the code, this is several times quicker than
/// candle's general strided copy (`t().contiguous()`), which was a quarter of the page's model load.
fn transposed(t: &Tensor) -> Result<Tensor> {
    let (rows, cols) = t.dims2()?;
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![0.0f32; values.len()];
    // In square blocks, so that both the reads and the strided writes stay in cache.
    const BLOCK: usize = 32;
    for i0 in (0..rows).step_by(BLOCK) {
        for j0 in (0..cols).step_by(BLOCK) {
            for i in i0..(i0 + BLOCK).min(rows) {
                for j in j0..(j0 + BLOCK).min(cols) {
                    out[j * rows + i] = values[i * cols + j];
                }
            }
        }
    }
    Tensor::from_vec(out, (cols, rows), t.device())
}

/// Makes a `[rows, cols]` f32 tensor on the CPU from a flat slice.
pub fn matrix(values: &[f32], rows: usize, cols: usize) -> Result<Tensor> {
    Tensor::from_slice(values, (rows, cols), &Device::Cpu)
}

/// `rows * cols` draws from N(0, 1) as a `[rows, cols]` tensor: the reparameterisation's noise,
/// drawn from the caller's seeded RNG so that training and metrics are repeatable.
pub fn normal_noise(rng: &mut impl rand::Rng, rows: usize, cols: usize) -> Result<Tensor> {
    let values: Vec<f32> = (0..rows * cols)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    matrix(&values, rows, cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn small() -> ModelConfig {
        ModelConfig::mirrored(6, 3, &[5, 4])
    }

    #[test]
    fn tensor_round_trip_keeps_pytorch_layout() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let vae = Vae::init(&small(), &mut rng).unwrap();
        let named = vae.to_tensors().unwrap();
        let expected = small().tensor_shapes();
        assert_eq!(named.len(), expected.len());
        for ((n, t), (en, es)) in named.iter().zip(&expected) {
            assert_eq!(n, en);
            assert_eq!(t.dims(), es.as_slice(), "{n}");
        }
        let back = Vae::from_tensors(&small(), &named.into_iter().collect()).unwrap();
        let x = Tensor::rand(0f32, 1f32, (2, 6), &Device::Cpu).unwrap();
        let (m1, l1) = vae.encode(&x).unwrap();
        let (m2, l2) = back.encode(&x).unwrap();
        let diff = (m1 - m2).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        assert_eq!(l1.to_vec2::<f32>().unwrap(), l2.to_vec2::<f32>().unwrap());
    }

    #[test]
    fn bce_is_stable_at_extreme_logits() {
        let logits = matrix(&[100.0, -100.0, 100.0, -100.0, 0.0], 1, 5).unwrap();
        let targets = matrix(&[1.0, 0.0, 0.0, 1.0, 0.5], 1, 5).unwrap();
        let v = bce_with_logits_per_image(&logits, &targets)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        // Two confident right answers cost ~0; two confident wrong ones cost 100 each; logit 0 costs ln 2.
        assert!(v.is_finite());
        assert!((v - (200.0 + std::f32::consts::LN_2)).abs() < 1e-3, "{v}");
    }

    #[test]
    fn scalar_elbo_terms_equal_the_tensor_ones() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let normal = |rng: &mut rand_chacha::ChaCha8Rng, scale: f32| {
            let v: f32 = StandardNormal.sample(rng);
            v * scale
        };
        let logits: Vec<f32> = (0..784).map(|_| normal(&mut rng, 8.0)).collect();
        let targets: Vec<f32> = (0..784).map(|i| (i % 7) as f32 / 6.0).collect();
        let tensor = bce_with_logits_per_image(
            &matrix(&logits, 1, 784).unwrap(),
            &matrix(&targets, 1, 784).unwrap(),
        )
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0];
        let scalar = bce_of_image(&logits, &targets);
        assert!(
            (tensor - scalar).abs() <= 1e-5 * tensor.abs(),
            "{tensor} vs {scalar}"
        );

        let mu: Vec<f32> = (0..8).map(|_| normal(&mut rng, 2.0)).collect();
        let logvar: Vec<f32> = (0..8).map(|_| normal(&mut rng, 1.5)).collect();
        let tensor = kl_per_dim(&matrix(&mu, 1, 8).unwrap(), &matrix(&logvar, 1, 8).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let eps: Vec<f32> = (0..8).map(|_| normal(&mut rng, 1.0)).collect();
        let [mu_t, logvar_t, eps_t] = [&mu, &logvar, &eps].map(|v| matrix(v, 1, 8).unwrap());
        let z = Vae::reparameterize(&mu_t, &logvar_t, &eps_t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for d in 0..8 {
            let scalar = reparameterize_value(mu[d], logvar[d], eps[d]);
            assert!((z[d] - scalar).abs() <= 1e-6 * (1.0 + scalar.abs()), "z{d}");
        }
        for d in 0..8 {
            let scalar = kl_of_dim(mu[d], logvar[d]);
            assert!(
                (tensor[d] - scalar).abs() <= 1e-6 * (1.0 + scalar.abs()),
                "dim {d}: {} vs {scalar}",
                tensor[d]
            );
        }
    }

    #[test]
    fn kl_closed_form_matches_monte_carlo() {
        let (mu, logvar) = ([0.7f32, -1.2], [-0.5f32, 0.8]);
        let closed = kl_per_image(&matrix(&mu, 1, 2).unwrap(), &matrix(&logvar, 1, 2).unwrap())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0] as f64;
        // KL = E_q[log q(z) - log p(z)], estimated with 200k samples.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 200_000;
        let mut sum = 0.0f64;
        for _ in 0..n {
            for d in 0..2 {
                let std = (0.5 * logvar[d] as f64).exp();
                let eps: f64 = StandardNormal.sample(&mut rng);
                let z = mu[d] as f64 + std * eps;
                let log_q = -0.5 * eps * eps - std.ln();
                let log_p = -0.5 * z * z;
                sum += log_q - log_p;
            }
        }
        let mc = sum / n as f64;
        assert!(
            (mc - closed).abs() < 0.02,
            "closed {closed} vs monte carlo {mc}"
        );
    }
}
