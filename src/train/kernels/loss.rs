//! The loss's kernels: BCE-with-logits with its gradient, and the reparameterisation trick with
//! the KL term and their backward pass.

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::simd::{exp_approx, log1p_unit};
use super::{chunk_rows, dims2, f32_data, map_chunks_mut, sum_parts};

avx2_dispatch! {
    /// One row chunk of BCE: writes `scale * (sigmoid(l) - t)` to `grad` and returns the
    /// per-column loss sums and gradient sums.
    fn bce_rows(
        logits: &[f32],
        targets: &[f32],
        grad: &mut [f32],
        cols: usize,
        scale: f32
    ) -> (Vec<f32>, Vec<f32>) => bce_rows_body
}

#[inline(always)]
fn bce_rows_body(
    logits: &[f32],
    targets: &[f32],
    grad: &mut [f32],
    cols: usize,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut loss_col = vec![0f32; cols];
    let mut grad_col = vec![0f32; cols];
    for (r, (lr, tr)) in logits.chunks(cols).zip(targets.chunks(cols)).enumerate() {
        let (lr, tr) = (&lr[..cols], &tr[..cols]);
        let (lc, gc) = (&mut loss_col[..cols], &mut grad_col[..cols]);
        let gr = &mut grad[r * cols..(r + 1) * cols];
        for j in 0..cols {
            let (l, t) = (lr[j], tr[j]);
            let e = exp_approx(-l.abs());
            lc[j] += l.max(0.0) - l * t + log1p_unit(e);
            let sig = if l >= 0.0 { 1.0 } else { e } / (1.0 + e);
            let d = (sig - t) * scale;
            gr[j] = d;
            gc[j] += d;
        }
    }
    (loss_col, grad_col)
}

fn check_bce_inputs(op: &str, l1: &Layout, l2: &Layout) -> Result<usize> {
    if l1.shape() != l2.shape() {
        bail!("{op}: logits {:?} vs targets {:?}", l1.dims(), l2.dims())
    }
    Ok(l1.dims().last().copied().unwrap_or(1).max(1))
}

/// The loss, its gradient and the gradient's column sums, from one pass.
#[derive(Debug)]
pub struct BceOutput {
    /// Sum of the loss over all elements.
    pub loss: f64,
    /// `scale * (sigmoid(logits) - targets)`, shaped like the logits.
    pub grad: Tensor,
    /// Column sums of `grad` (the gradient of an output bias), `[cols]`.
    pub grad_col_sum: Tensor,
}

/// Computes the BCE sum and `scale * (sigmoid(x) - t)` together; the sums land in the op.
struct BceGrad {
    scale: f32,
    sums: RefCell<Option<(f64, Vec<f32>)>>,
}

impl BceGrad {
    fn new(scale: f32) -> Self {
        Self {
            scale,
            sums: RefCell::new(None),
        }
    }

    fn run(self, logits: &Tensor, targets: &Tensor) -> Result<BceOutput> {
        let grad = logits
            .contiguous()?
            .apply_op2_no_bwd(&targets.contiguous()?, &self)?;
        let Some((loss, col)) = self.sums.into_inner() else {
            bail!("bce-grad: no sums")
        };
        let n = col.len();
        Ok(BceOutput {
            loss,
            grad,
            grad_col_sum: Tensor::from_vec(col, n, logits.device())?,
        })
    }
}

impl CustomOp2 for BceGrad {
    fn name(&self) -> &'static str {
        "bce-with-logits-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let cols = check_bce_inputs(self.name(), l1, l2)?;
        let (x, t) = (
            f32_data(s1, l1, self.name())?,
            f32_data(s2, l2, self.name())?,
        );
        let mut grad = vec![0f32; x.len()];
        let len = chunk_rows(cols) * cols;
        let scale = self.scale;
        let parts = map_chunks_mut(&mut grad, len, |i, g| {
            let (a, b) = (i * len, i * len + g.len());
            bce_rows(&x[a..b], &t[a..b], g, cols, scale)
        });
        let (loss_parts, grad_parts): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        let loss = sum_parts(&loss_parts, cols).iter().map(|&v| v as f64).sum();
        *self.sums.borrow_mut() = Some((loss, sum_parts(&grad_parts, cols)));
        Ok((CpuStorage::F32(grad), l1.shape().clone()))
    }
}

/// Sum over all elements of the stable BCE-with-logits loss, as a differentiable scalar.
///
/// in one pass, for a hand-written backward pass.
pub fn bce_with_logits_grad(logits: &Tensor, targets: &Tensor, scale: f32) -> Result<BceOutput> {
    BceGrad::new(scale).run(logits, targets)
}

/// `[mu | logvar]`, `eps` -> `z = mu + exp(logvar / 2) * eps`; the summed KL lands in the op.
struct Reparam {
    kl: RefCell<f64>,
}

impl CustomOp2 for Reparam {
    fn name(&self) -> &'static str {
        "reparam-kl"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, two_l) = dims2(l1, self.name())?;
        let l = two_l / 2;
        if two_l % 2 != 0 || l2.dims() != [n, l] {
            bail!(
                "reparam-kl: head {:?} with noise {:?}",
                l1.dims(),
                l2.dims()
            )
        }
        let (h, eps) = (
            f32_data(s1, l1, self.name())?,
            f32_data(s2, l2, self.name())?,
        );
        let mut z = vec![0f32; n * l];
        let mut kl = 0f64;
        for r in 0..n {
            let (mu, lv) = (
                &h[r * two_l..r * two_l + l],
                &h[r * two_l + l..(r + 1) * two_l],
            );
            for j in 0..l {
                let var = lv[j].exp();
                z[r * l + j] = mu[j] + (0.5 * lv[j]).exp() * eps[r * l + j];
                kl += 0.5 * (mu[j] * mu[j] + var - 1.0 - lv[j]) as f64;
            }
        }
        *self.kl.borrow_mut() = kl;
        Ok((CpuStorage::F32(z), Shape::from((n, l))))
    }
}

/// The reparameterisation trick on a fused encoder head: returns `z` `[n, latent]` and the
/// KL divergence to N(0, I) summed over the batch.
pub fn reparam_kl(head: &Tensor, eps: &Tensor) -> Result<(Tensor, f64)> {
    let op = Reparam {
        kl: RefCell::new(0.0),
    };
    let z = head
        .contiguous()?
        .apply_op2_no_bwd(&eps.contiguous()?, &op)?;
    Ok((z, op.kl.into_inner()))
}

/// Gradient w.r.t. `[mu | logvar]` of `loss(z) + kl_weight * KL`, given `dz`; column sums in the op.
struct ReparamBackward {
    kl_weight: f32,
    col_sum: RefCell<Option<Vec<f32>>>,
}

impl CustomOp3 for ReparamBackward {
    fn name(&self) -> &'static str {
        "reparam-kl-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, two_l) = dims2(l1, self.name())?;
        let l = two_l / 2;
        if two_l % 2 != 0 || l2.dims() != [n, l] || l3.dims() != [n, l] {
            bail!(
                "reparam-kl-backward: head {:?}, noise {:?}, dz {:?}",
                l1.dims(),
                l2.dims(),
                l3.dims()
            )
        }
        let h = f32_data(s1, l1, self.name())?;
        let eps = f32_data(s2, l2, self.name())?;
        let dz = f32_data(s3, l3, self.name())?;
        let w = self.kl_weight;
        let mut d = vec![0f32; n * two_l];
        let mut sum = vec![0f32; two_l];
        for r in 0..n {
            for j in 0..l {
                let (mu, lv) = (h[r * two_l + j], h[r * two_l + l + j]);
                let std = (0.5 * lv).exp();
                let g = dz[r * l + j];
                let dmu = g + w * mu;
                let dlv = 0.5 * g * eps[r * l + j] * std + 0.5 * w * (std * std - 1.0);
                d[r * two_l + j] = dmu;
                d[r * two_l + l + j] = dlv;
                sum[j] += dmu;
                sum[l + j] += dlv;
            }
        }
        *self.col_sum.borrow_mut() = Some(sum);
        Ok((CpuStorage::F32(d), l1.shape().clone()))
    }
}

/// Backward of `reparam_kl` with the KL scaled by `kl_weight`: returns the gradient w.r.t. the
/// head `[n, 2 * latent]` and its column sums (the head bias gradient).
pub fn reparam_kl_backward(
    head: &Tensor,
    eps: &Tensor,
    dz: &Tensor,
    kl_weight: f32,
) -> Result<(Tensor, Tensor)> {
    let op = ReparamBackward {
        kl_weight,
        col_sum: RefCell::new(None),
    };
    let d = head
        .contiguous()?
        .apply_op3_no_bwd(&eps.contiguous()?, &dz.contiguous()?, &op)?;
    let Some(sum) = op.col_sum.into_inner() else {
        bail!("reparam-kl-backward: no sums")
    };
    let n = sum.len();
    Ok((d, Tensor::from_vec(sum, n, head.device())?))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_close, numeric_grad, uniform, vec_of};
    use super::*;
    use crate::core::model::{bce_with_logits_per_image, kl_per_image, matrix, Vae};

    fn bce_f64(l: f64, t: f64) -> f64 {
        l.max(0.0) - l * t + (-l.abs()).exp().ln_1p()
    }

    #[test]
    fn bce_forward_matches_plain_candle_and_is_stable() {
        let (rows, cols) = (37, 29);
        let mut logits = uniform(1, rows * cols, -12.0, 12.0);
        logits[..6].copy_from_slice(&[100.0, -100.0, 100.0, -100.0, 0.0, 30.0]);
        let mut targets = uniform(2, rows * cols, 0.0, 1.0);
        targets[..6].copy_from_slice(&[1.0, 0.0, 0.0, 1.0, 0.5, 1.0]);
        let (l, t) = (
            matrix(&logits, rows, cols).unwrap(),
            matrix(&targets, rows, cols).unwrap(),
        );
        let plain = bce_with_logits_per_image(&l, &t)
            .unwrap()
            .sum_all()
            .unwrap();
        let plain = plain.to_scalar::<f32>().unwrap() as f64;
        let exact: f64 = logits
            .iter()
            .zip(&targets)
            .map(|(&l, &t)| bce_f64(l as f64, t as f64))
            .sum();
        let v = bce_with_logits_grad(&l, &t, 1.0).unwrap().loss;
        assert!(v.is_finite());
        assert!((v - exact).abs() <= 1e-5 * exact, "{v} vs exact {exact}");
        assert!(
            (v - plain).abs() <= 1e-4 * exact,
            "{v} vs plain candle {plain}"
        );
        // The extreme logits alone: two right answers cost ~0, two wrong ones 100 each.
        let x = matrix(&[100.0, -100.0, 100.0, -100.0], 1, 4).unwrap();
        let y = matrix(&[1.0, 0.0, 0.0, 1.0], 1, 4).unwrap();
        let out = bce_with_logits_grad(&x, &y, 1.0).unwrap();
        assert!((out.loss - 200.0).abs() < 1e-3, "{}", out.loss);
        let g = vec_of(&out.grad);
        assert_close(&g, &[0.0, 0.0, 1.0, -1.0], 1e-6, "grad at +-100");
    }

    #[test]
    fn bce_gradient_matches_finite_differences() {
        let (rows, cols) = (5, 7);
        let logits = uniform(3, rows * cols, -6.0, 6.0);
        let targets = uniform(4, rows * cols, 0.0, 1.0);
        let t64: Vec<f64> = targets.iter().map(|&v| v as f64).collect();
        let x64: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
        let want = numeric_grad(&x64, |x| {
            x.iter().zip(&t64).map(|(&l, &t)| bce_f64(l, t)).sum()
        });
        let (l, t) = (
            matrix(&logits, rows, cols).unwrap(),
            matrix(&targets, rows, cols).unwrap(),
        );
        let scale = 0.5;
        let out = bce_with_logits_grad(&l, &t, scale).unwrap();
        let scaled: Vec<f64> = want.iter().map(|w| w * scale as f64).collect();
        assert_close(&vec_of(&out.grad), &scaled, 1e-6, "fused grad");
        let col: Vec<f64> = (0..cols)
            .map(|j| (0..rows).map(|r| scaled[r * cols + j]).sum())
            .collect();
        assert_close(&vec_of(&out.grad_col_sum), &col, 1e-6, "column sums");
    }

    #[test]
    fn reparam_kl_matches_plain_candle_and_finite_differences() {
        let (n, l) = (5, 3);
        let head = uniform(9, n * 2 * l, -1.5, 1.5);
        let eps = uniform(10, n * l, -2.0, 2.0);
        let (h, e) = (
            matrix(&head, n, 2 * l).unwrap(),
            matrix(&eps, n, l).unwrap(),
        );
        let (z, kl) = reparam_kl(&h, &e).unwrap();
        let (mu, lv) = (h.narrow(1, 0, l).unwrap(), h.narrow(1, l, l).unwrap());
        let want_z = Vae::reparameterize(&mu, &lv, &e).unwrap();
        let want_z: Vec<f64> = vec_of(&want_z).iter().map(|&v| v as f64).collect();
        assert_close(&vec_of(&z), &want_z, 1e-6, "z");
        let want_kl = kl_per_image(&mu, &lv).unwrap().sum_all().unwrap();
        let want_kl = want_kl.to_scalar::<f32>().unwrap() as f64;
        assert!(
            (kl - want_kl).abs() < 1e-5 * want_kl.abs().max(1.0),
            "{kl} vs {want_kl}"
        );

        // L = sum(c * z) + w * KL, differentiated w.r.t. the head.
        let c = uniform(11, n * l, -1.0, 1.0);
        let w = 0.3;
        let e64: Vec<f64> = eps.iter().map(|&v| v as f64).collect();
        let h64: Vec<f64> = head.iter().map(|&v| v as f64).collect();
        let want = numeric_grad(&h64, |h| {
            let mut total = 0.0;
            for r in 0..n {
                for j in 0..l {
                    let (mu, lv) = (h[r * 2 * l + j], h[r * 2 * l + l + j]);
                    let z = mu + (0.5 * lv).exp() * e64[r * l + j];
                    total += c[r * l + j] as f64 * z;
                    total += w * 0.5 * (mu * mu + lv.exp() - 1.0 - lv);
                }
            }
            total
        });
        let dz = matrix(&c, n, l).unwrap();
        let (d, db) = reparam_kl_backward(&h, &e, &dz, w as f32).unwrap();
        assert_close(&vec_of(&d), &want, 1e-5, "head grad");
        let col: Vec<f64> = (0..2 * l)
            .map(|j| (0..n).map(|r| want[r * 2 * l + j]).sum())
            .collect();
        assert_close(&vec_of(&db), &col, 1e-5, "head bias grad");
    }
}
