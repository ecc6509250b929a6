//! Training kernels: fused BCE-with-logits, bias + activation, reparameterisation with KL, and Adam.
//!
//! Each kernel is one pass over contiguous f32 data, split into fixed row chunks that run on
//! rayon natively and serially on wasm32. Partial sums are combined in chunk order, so results
//! do not depend on thread timing.

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{
    bail, CpuStorage, CustomOp2, CustomOp3, InplaceOp1, InplaceOp2, Layout, Result, Shape, Tensor,
    Var,
};

use crate::model::Activation;

// ---------------------------------------------------------------------------------------------
// Storage access and chunked parallel loops.

fn f32_data<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{op}: expected f32 data")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        bail!("{op}: expected a contiguous tensor")
    };
    Ok(&v[a..b])
}

fn f32_data_mut<'a>(s: &'a mut CpuStorage, l: &Layout, op: &str) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{op}: expected f32 data")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        bail!("{op}: expected a contiguous tensor")
    };
    Ok(&mut v[a..b])
}

/// `[rows, cols]` of a rank-2 layout.
fn dims2(l: &Layout, op: &str) -> Result<(usize, usize)> {
    match l.dims() {
        &[r, c] => Ok((r, c)),
        d => bail!("{op}: expected a matrix, got shape {d:?}"),
    }
}

/// Runs `f(chunk_index, chunk)` over `chunk_len`-sized pieces of `out`; results in chunk order.
fn map_chunks_mut<R, F>(out: &mut [f32], chunk_len: usize, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize, &mut [f32]) -> R + Sync + Send,
{
    let chunk_len = chunk_len.max(1);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        if out.len() > chunk_len {
            return out
                .par_chunks_mut(chunk_len)
                .enumerate()
                .map(|(i, c)| f(i, c))
                .collect();
        }
    }
    out.chunks_mut(chunk_len)
        .enumerate()
        .map(|(i, c)| f(i, c))
        .collect()
}

/// Rows per work unit for a `cols`-wide matrix: about 16k elements, so small tensors stay serial.
fn chunk_rows(cols: usize) -> usize {
    (16 * 1024 / cols.max(1)).max(1)
}

/// Runs `f` with the tensor's f32 data writable in place (an `InplaceOp1`, so candle locks it).
fn with_f32_mut(t: &Tensor, f: impl FnOnce(&mut [f32]) -> Result<()>) -> Result<()> {
    struct Op<F>(RefCell<Option<F>>);
    impl<F: FnOnce(&mut [f32]) -> Result<()>> InplaceOp1 for Op<F> {
        fn name(&self) -> &'static str {
            "with-f32-mut"
        }
        fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
            let Some(f) = self.0.borrow_mut().take() else {
                bail!("with-f32-mut: called twice")
            };
            f(f32_data_mut(s, l, "with-f32-mut")?)
        }
    }
    t.inplace_op1(&Op(RefCell::new(Some(f))))
}

/// Sums `parts` (each `n` long) element-wise, in order.
fn sum_parts(parts: &[Vec<f32>], n: usize) -> Vec<f32> {
    let mut total = vec![0f32; n];
    for p in parts {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// Defines `$name`, which runs `$body` compiled for AVX2 when the CPU has it (x86_64 only).
///
/// The body is plain IEEE arithmetic with no FMA contraction, so both builds give the same bits.
macro_rules! avx2_dispatch {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $body:ident) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the running CPU has AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Vectorisable exp and log1p (plain arithmetic, so LLVM turns the loops into SIMD).

/// e^x for x in [-87, 88] (clamped outside), within about 2 ulp.
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let k = t - MAGIC;
    let ki = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((ki + 127) as u32) << 23)
}

/// ln(1 + e) for e in [0, 1], as 2 atanh(e / (2 + e)) by its series.
#[inline(always)]
fn log1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let mut p = 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    2.0 * s * p
}

// ---------------------------------------------------------------------------------------------
// BCE with logits.

avx2_dispatch! {
    /// One row chunk of BCE: writes `scale * (sigmoid(l) - t)` to `grad` (if given) and returns
    /// the per-column loss sums and gradient sums.
    fn bce_rows(
        logits: &[f32],
        targets: &[f32],
        grad: Option<&mut [f32]>,
        cols: usize,
        scale: f32
    ) -> (Vec<f32>, Vec<f32>) => bce_rows_body
}

#[inline(always)]
fn bce_rows_body(
    logits: &[f32],
    targets: &[f32],
    mut grad: Option<&mut [f32]>,
    cols: usize,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut loss_col = vec![0f32; cols];
    let mut grad_col = vec![0f32; cols];
    for (r, (lr, tr)) in logits.chunks(cols).zip(targets.chunks(cols)).enumerate() {
        let (lr, tr) = (&lr[..cols], &tr[..cols]);
        let (lc, gc) = (&mut loss_col[..cols], &mut grad_col[..cols]);
        if let Some(g) = grad.as_deref_mut() {
            let gr = &mut g[r * cols..(r + 1) * cols];
            for j in 0..cols {
                let (l, t) = (lr[j], tr[j]);
                let e = exp_approx(-l.abs());
                lc[j] += l.max(0.0) - l * t + log1p_unit(e);
                let sig = if l >= 0.0 { 1.0 } else { e } / (1.0 + e);
                let d = (sig - t) * scale;
                gr[j] = d;
                gc[j] += d;
            }
        } else {
            for j in 0..cols {
                let (l, t) = (lr[j], tr[j]);
                let e = exp_approx(-l.abs());
                lc[j] += l.max(0.0) - l * t + log1p_unit(e);
            }
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

/// Forward: the summed loss (a scalar). Backward: `(sigmoid(x) - t) * g` for the logits.
struct BceSum;

impl CustomOp2 for BceSum {
    fn name(&self) -> &'static str {
        "bce-with-logits-sum"
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
        let rows = chunk_rows(cols);
        let chunks: Vec<(&[f32], &[f32])> =
            x.chunks(rows * cols).zip(t.chunks(rows * cols)).collect();
        let parts = run_indexed(chunks.len(), |i| {
            bce_rows(chunks[i].0, chunks[i].1, None, cols, 1.0).0
        });
        let total: f64 = sum_parts(&parts, cols).iter().map(|&v| v as f64).sum();
        Ok((CpuStorage::F32(vec![total as f32]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad_res
            .to_dtype(candle_core::DType::F32)?
            .to_scalar::<f32>()?;
        let out = BceGrad::new(g).run(logits, targets)?;
        // The targets are data: their gradient (-logits * g) is never wanted.
        Ok((Some(out.grad), None))
    }
}

/// Runs `f(i)` for i in 0..n, on rayon natively; results in index order.
fn run_indexed<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(not(target_arch = "wasm32"))]
    if n > 1 {
        use rayon::prelude::*;
        return (0..n).into_par_iter().map(f).collect();
    }
    (0..n).map(f).collect()
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
            bce_rows(&x[a..b], &t[a..b], Some(g), cols, scale)
        });
        let (loss_parts, grad_parts): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        let loss = sum_parts(&loss_parts, cols).iter().map(|&v| v as f64).sum();
        *self.sums.borrow_mut() = Some((loss, sum_parts(&grad_parts, cols)));
        Ok((CpuStorage::F32(grad), l1.shape().clone()))
    }
}

/// Sum over all elements of the stable BCE-with-logits loss, as a differentiable scalar.
///
/// One fused pass forward; the backward pass is `(sigmoid(x) - t) * g` for the logits only.
pub fn bce_with_logits_sum(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, BceSum)
}

/// The BCE sum with its gradient `scale * (sigmoid(x) - t)` and that gradient's column sums,
/// in one pass, for a hand-written backward pass.
pub fn bce_with_logits_grad(logits: &Tensor, targets: &Tensor, scale: f32) -> Result<BceOutput> {
    BceGrad::new(scale).run(logits, targets)
}

// ---------------------------------------------------------------------------------------------
// Bias + activation, forward and backward.

/// The pointwise function after an affine layer (the identity for output layers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// No nonlinearity.
    Identity,
    /// max(x, 0).
    Relu,
    /// tanh(x).
    Tanh,
}

impl From<Activation> for Act {
    fn from(a: Activation) -> Self {
        match a {
            Activation::Relu => Self::Relu,
            Activation::Tanh => Self::Tanh,
        }
    }
}

/// In place: `t = act(t + bias)`, bias broadcast over rows.
struct BiasAct(Act);

impl InplaceOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-act"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (_, cols) = dims2(l1, self.name())?;
        if l2.dims() != [cols] {
            bail!("bias-act: bias {:?} for {cols} columns", l2.dims())
        }
        let b = f32_data(s2, l2, self.name())?;
        let y = f32_data_mut(s1, l1, self.name())?;
        let act = self.0;
        map_chunks_mut(y, chunk_rows(cols) * cols, |_, y| {
            for row in y.chunks_mut(cols) {
                let (row, b) = (&mut row[..cols], &b[..cols]);
                match act {
                    Act::Identity => (0..cols).for_each(|j| row[j] += b[j]),
                    Act::Relu => (0..cols).for_each(|j| row[j] = (row[j] + b[j]).max(0.0)),
                    Act::Tanh => (0..cols).for_each(|j| row[j] = (row[j] + b[j]).tanh()),
                }
            }
        });
        Ok(())
    }
}

/// Adds `bias` to every row of `t` and applies `act`, in place. `t` must not be shared
/// (a fresh matmul output), since every tensor on its storage sees the change.
pub fn bias_act_(t: &Tensor, bias: &Tensor, act: Act) -> Result<()> {
    t.inplace_op2(bias, &BiasAct(act))
}

avx2_dispatch! {
    /// `d = d * act'(y)` over whole rows; returns the column sums of the new `d`.
    fn act_backward_rows(act: Act, d: &mut [f32], y: &[f32], cols: usize) -> Vec<f32>
        => act_backward_rows_body
}

#[inline(always)]
fn act_backward_rows_body(act: Act, d: &mut [f32], y: &[f32], cols: usize) -> Vec<f32> {
    let mut sum = vec![0f32; cols];
    for (dr, yr) in d.chunks_mut(cols).zip(y.chunks(cols)) {
        let (dr, yr, s) = (&mut dr[..cols], &yr[..cols], &mut sum[..cols]);
        match act {
            Act::Identity => {}
            Act::Relu => {
                for j in 0..cols {
                    dr[j] = if yr[j] > 0.0 { dr[j] } else { 0.0 };
                }
            }
            Act::Tanh => {
                for j in 0..cols {
                    dr[j] *= 1.0 - yr[j] * yr[j];
                }
            }
        }
        for j in 0..cols {
            s[j] += dr[j];
        }
    }
    sum
}

/// In place: `d = d * act'(y)` where `y = act(pre)`; the column sums of the result land in the op.
struct ActBackward {
    act: Act,
    col_sum: RefCell<Option<Vec<f32>>>,
}

impl InplaceOp2 for ActBackward {
    fn name(&self) -> &'static str {
        "act-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (_, cols) = dims2(l1, self.name())?;
        if l1.shape() != l2.shape() {
            bail!(
                "act-backward: grad {:?} vs output {:?}",
                l1.dims(),
                l2.dims()
            )
        }
        let y = f32_data(s2, l2, self.name())?;
        let d = f32_data_mut(s1, l1, self.name())?;
        let act = self.act;
        let len = chunk_rows(cols) * cols;
        let parts = map_chunks_mut(d, len, |i, d| {
            act_backward_rows(act, d, &y[i * len..i * len + d.len()], cols)
        });
        *self.col_sum.borrow_mut() = Some(sum_parts(&parts, cols));
        Ok(())
    }
}

/// Backward through `y = act(x W + b)`: turns `d` (the gradient w.r.t. `y`) in place into the
/// gradient w.r.t. the pre-activation, and returns its column sums (the gradient of `b`).
/// `d` must not be shared (a fresh matmul output).
pub fn act_backward_(d: &Tensor, y: &Tensor, act: Act) -> Result<Tensor> {
    let op = ActBackward {
        act,
        col_sum: RefCell::new(None),
    };
    d.inplace_op2(y, &op)?;
    let Some(sum) = op.col_sum.into_inner() else {
        bail!("act-backward: no sums")
    };
    let n = sum.len();
    Tensor::from_vec(sum, n, d.device())
}

// ---------------------------------------------------------------------------------------------
// Reparameterisation and KL.

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

// ---------------------------------------------------------------------------------------------
// Adam.

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    /// Step size.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
}

impl Default for AdamParams {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// The per-step constants of one Adam update, in f32.
#[derive(Clone, Copy)]
struct AdamStep {
    b1: f32,
    b2: f32,
    lr_c1: f32,
    c2: f32,
    eps: f32,
}

avx2_dispatch! {
    /// One fused Adam pass over a slice: moments and parameter updated together.
    fn adam_slice(s: AdamStep, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32])
        => adam_slice_body
}

#[inline(always)]
fn adam_slice_body(s: AdamStep, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    let n = p.len();
    let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
    let (a1, a2) = (1.0 - s.b1, 1.0 - s.b2);
    for i in 0..n {
        let gi = g[i];
        let mi = s.b1 * m[i] + a1 * gi;
        let vi = s.b2 * v[i] + a2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] -= (mi * s.lr_c1) / ((vi * s.c2).sqrt() + s.eps);
    }
}

/// Elements per Adam work unit.
#[cfg(not(target_arch = "wasm32"))]
const ADAM_CHUNK: usize = 32 * 1024;

/// The in-place Adam update of one parameter: `m` and `v` are already borrowed mutably.
struct AdamUpdate<'a> {
    step: AdamStep,
    moments: RefCell<Option<(&'a mut [f32], &'a mut [f32])>>,
}

impl InplaceOp2 for AdamUpdate<'_> {
    fn name(&self) -> &'static str {
        "adam-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        if l1.shape() != l2.shape() {
            bail!(
                "adam: parameter {:?} vs gradient {:?}",
                l1.dims(),
                l2.dims()
            )
        }
        let p = f32_data_mut(s1, l1, self.name())?;
        let g = f32_data(s2, l2, self.name())?;
        let Some((m, v)) = self.moments.borrow_mut().take() else {
            bail!("adam: called twice")
        };
        if m.len() != p.len() || v.len() != p.len() {
            bail!("adam: moments do not match the parameter")
        }
        let step = self.step;
        #[cfg(not(target_arch = "wasm32"))]
        if p.len() > ADAM_CHUNK {
            use rayon::prelude::*;
            p.par_chunks_mut(ADAM_CHUNK)
                .zip(m.par_chunks_mut(ADAM_CHUNK))
                .zip(v.par_chunks_mut(ADAM_CHUNK))
                .zip(g.par_chunks(ADAM_CHUNK))
                .for_each(|(((p, m), v), g)| adam_slice(step, p, m, v, g));
            return Ok(());
        }
        adam_slice(step, p, m, v, g);
        Ok(())
    }
}

/// Adam (no weight decay) over a fixed list of variables, with its moments exposed for checkpoints.
///
/// Each update is one in-place pass over parameter, moments and gradient. The moment tensors
/// are updated in place too: copy what `moments` returns to keep a snapshot.
pub struct Adam {
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken so far.
    pub step: u64,
    /// Hyper-parameters.
    pub params: AdamParams,
}

impl Adam {
    /// Starts with zero moments.
    pub fn new(vars: Vec<Var>, params: AdamParams) -> Result<Self> {
        // Each moment gets its own storage, since the update writes them in place.
        let zeros = || {
            vars.iter()
                .map(|v| v.zeros_like())
                .collect::<Result<Vec<_>>>()
        };
        let (m, v) = (zeros()?, zeros()?);
        Ok(Self {
            vars,
            m,
            v,
            step: 0,
            params,
        })
    }

    /// Applies one update from `grads`; variables without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let grads: Vec<Option<Tensor>> = self.vars.iter().map(|v| grads.get(v).cloned()).collect();
        self.apply(&grads)
    }

    /// Applies one update from gradients given in variable order (`None` leaves one alone).
    pub fn step_with(&mut self, grads: &[Option<Tensor>]) -> Result<()> {
        if grads.len() != self.vars.len() {
            bail!(
                "adam: {} gradients for {} variables",
                grads.len(),
                self.vars.len()
            )
        }
        self.apply(grads)
    }

    fn apply(&mut self, grads: &[Option<Tensor>]) -> Result<()> {
        self.begin_step();
        for (i, g) in grads.iter().enumerate() {
            if let Some(g) = g {
                self.update_var(i, g)?;
            }
        }
        Ok(())
    }

    /// Starts a step whose updates then come one variable at a time through `update_var`
    /// (so each gradient can be applied while it is still in cache).
    pub fn begin_step(&mut self) {
        self.step += 1;
    }

    /// Updates variable `index` from its gradient, as part of the step `begin_step` started.
    pub fn update_var(&self, index: usize, grad: &Tensor) -> Result<()> {
        let (Some(var), Some(m), Some(v)) =
            (self.vars.get(index), self.m.get(index), self.v.get(index))
        else {
            bail!("adam: no variable {index}")
        };
        let p = self.params;
        let t = self.step.max(1) as i32;
        let step = AdamStep {
            b1: p.beta1 as f32,
            b2: p.beta2 as f32,
            lr_c1: (p.lr / (1.0 - p.beta1.powi(t))) as f32,
            c2: (1.0 / (1.0 - p.beta2.powi(t))) as f32,
            eps: p.eps as f32,
        };
        let g = grad.to_dtype(candle_core::DType::F32)?.contiguous()?;
        with_f32_mut(m, |m| {
            with_f32_mut(v, |v| {
                let op = AdamUpdate {
                    step,
                    moments: RefCell::new(Some((m, v))),
                };
                var.as_tensor().inplace_op2(&g, &op)
            })
        })
    }

    /// The first and second moments, one pair per variable, for a checkpoint.
    pub fn moments(&self) -> (&[Tensor], &[Tensor]) {
        (&self.m, &self.v)
    }

    /// Restores moments saved by `moments` and the step count.
    pub fn restore(&mut self, m: Vec<Tensor>, v: Vec<Tensor>, step: u64) -> Result<()> {
        if m.len() != self.vars.len() || v.len() != self.vars.len() {
            candle_core::bail!(
                "checkpoint has moments for {} variables, model has {}",
                m.len(),
                self.vars.len()
            );
        }
        for ((var, m), v) in self.vars.iter().zip(&m).zip(&v) {
            if m.dims() != var.dims() || v.dims() != var.dims() {
                candle_core::bail!(
                    "checkpoint moment shape {:?} does not match {:?}",
                    m.dims(),
                    var.dims()
                );
            }
        }
        // Private f32 copies, since the update writes them in place.
        let own = |ts: Vec<Tensor>| -> Result<Vec<Tensor>> {
            ts.iter()
                .map(|t| t.to_dtype(candle_core::DType::F32)?.contiguous()?.copy())
                .collect()
        };
        self.m = own(m)?;
        self.v = own(v)?;
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{bce_with_logits_per_image, kl_per_image, matrix, Vae};
    use candle_core::{DType, Device};
    use rand::{Rng, SeedableRng};

    fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(seed)
    }

    fn uniform(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        let mut r = rng(seed);
        (0..n).map(|_| r.random_range(lo..hi)).collect()
    }

    fn vec_of(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// Central finite differences of `f` at `x`, in f64.
    fn numeric_grad(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        let h = 1e-5;
        (0..x.len())
            .map(|i| {
                let (mut a, mut b) = (x.to_vec(), x.to_vec());
                a[i] += h;
                b[i] -= h;
                (f(&a) - f(&b)) / (2.0 * h)
            })
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (g as f64 - w).abs();
            assert!(err <= tol * (1.0 + w.abs()), "{what}[{i}]: {g} vs {w}");
        }
    }

    fn bce_f64(l: f64, t: f64) -> f64 {
        l.max(0.0) - l * t + (-l.abs()).exp().ln_1p()
    }

    #[test]
    fn exp_and_log1p_approximations_are_accurate() {
        for i in 0..=20_000 {
            let x = -87.0 + 87.0 * i as f32 / 20_000.0;
            let (got, want) = (exp_approx(x) as f64, (x as f64).exp());
            assert!(
                (got - want).abs() <= 3e-7 * want,
                "exp({x}): {got} vs {want}"
            );
            let e = i as f32 / 20_000.0;
            let (got, want) = (log1p_unit(e) as f64, (e as f64).ln_1p());
            assert!(
                (got - want).abs() <= 3e-7 * want.max(1e-30),
                "log1p({e}): {got} vs {want}"
            );
        }
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
        let fused = bce_with_logits_sum(&l, &t)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        let out = bce_with_logits_grad(&l, &t, 1.0).unwrap();
        for v in [fused, out.loss] {
            assert!(v.is_finite());
            assert!((v - exact).abs() <= 1e-5 * exact, "{v} vs exact {exact}");
            assert!(
                (v - plain).abs() <= 1e-4 * exact,
                "{v} vs plain candle {plain}"
            );
        }
        // The extreme logits alone: two right answers cost ~0, two wrong ones 100 each.
        let x = matrix(&[100.0, -100.0, 100.0, -100.0], 1, 4).unwrap();
        let y = matrix(&[1.0, 0.0, 0.0, 1.0], 1, 4).unwrap();
        let v = bce_with_logits_sum(&x, &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((v - 200.0).abs() < 1e-3, "{v}");
        let g = vec_of(&bce_with_logits_grad(&x, &y, 1.0).unwrap().grad);
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
        // Through candle's autograd, with an upstream gradient of 3.
        let var = Var::from_tensor(&l).unwrap();
        let loss = (bce_with_logits_sum(var.as_tensor(), &t).unwrap() * 3.0).unwrap();
        let grads = loss.backward().unwrap();
        let tripled: Vec<f64> = want.iter().map(|w| w * 3.0).collect();
        assert_close(
            &vec_of(grads.get(&var).unwrap()),
            &tripled,
            1e-6,
            "autograd",
        );
    }

    #[test]
    fn bias_act_matches_plain_candle() {
        let (rows, cols) = (70, 300); // several row chunks
        let x = matrix(&uniform(5, rows * cols, -2.0, 2.0), rows, cols).unwrap();
        let b = Tensor::from_vec(uniform(6, cols, -1.0, 1.0), cols, &Device::Cpu).unwrap();
        let pre = x.broadcast_add(&b).unwrap();
        for (act, want) in [
            (Act::Identity, pre.clone()),
            (Act::Relu, pre.relu().unwrap()),
            (Act::Tanh, pre.tanh().unwrap()),
        ] {
            let y = x.copy().unwrap();
            bias_act_(&y, &b, act).unwrap();
            let want: Vec<f64> = vec_of(&want).iter().map(|&v| v as f64).collect();
            assert_close(&vec_of(&y), &want, 1e-6, &format!("{act:?}"));
        }
    }

    #[test]
    fn act_backward_matches_finite_differences() {
        let (rows, cols) = (4, 6);
        let pre = uniform(7, rows * cols, -2.0, 2.0);
        let up = uniform(8, rows * cols, -1.0, 1.0); // upstream gradient
        for act in [Act::Identity, Act::Relu, Act::Tanh] {
            let f = |z: f64| match act {
                Act::Identity => z,
                Act::Relu => z.max(0.0),
                Act::Tanh => z.tanh(),
            };
            // L = sum(up * act(pre)); dL/dpre by finite differences.
            let p64: Vec<f64> = pre.iter().map(|&v| v as f64).collect();
            let want = numeric_grad(&p64, |p| {
                p.iter().zip(&up).map(|(&z, &u)| u as f64 * f(z)).sum()
            });
            let y: Vec<f32> = pre.iter().map(|&z| f(z as f64) as f32).collect();
            let d = matrix(&up, rows, cols).unwrap();
            let db = act_backward_(&d, &matrix(&y, rows, cols).unwrap(), act).unwrap();
            assert_close(&vec_of(&d), &want, 1e-6, &format!("{act:?} grad"));
            let col: Vec<f64> = (0..cols)
                .map(|j| (0..rows).map(|r| want[r * cols + j]).sum())
                .collect();
            assert_close(&vec_of(&db), &col, 1e-6, &format!("{act:?} bias grad"));
        }
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

    /// A textbook Adam in f64 on flat vectors.
    fn reference_adam(p: &mut [f64], m: &mut [f64], v: &mut [f64], g: &[f64], t: i32) {
        let a = AdamParams::default();
        for i in 0..p.len() {
            m[i] = a.beta1 * m[i] + (1.0 - a.beta1) * g[i];
            v[i] = a.beta2 * v[i] + (1.0 - a.beta2) * g[i] * g[i];
            let m_hat = m[i] / (1.0 - a.beta1.powi(t));
            let v_hat = v[i] / (1.0 - a.beta2.powi(t));
            p[i] -= a.lr * m_hat / (v_hat.sqrt() + a.eps);
        }
    }

    #[test]
    fn adam_matches_reference_over_several_steps() {
        // One parameter large enough for the parallel path, one small.
        let shapes = [vec![300, 200], vec![7]];
        let init: Vec<Vec<f32>> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| uniform(20 + i as u64, s.iter().product(), -1.0, 1.0))
            .collect();
        let vars: Vec<Var> = init
            .iter()
            .zip(&shapes)
            .map(|(v, s)| Var::from_vec(v.clone(), s.as_slice(), &Device::Cpu).unwrap())
            .collect();
        let mut adam = Adam::new(vars.clone(), AdamParams::default()).unwrap();
        let mut refs: Vec<[Vec<f64>; 3]> = init
            .iter()
            .map(|v| {
                let p = v.iter().map(|&x| x as f64).collect();
                [p, vec![0.0; v.len()], vec![0.0; v.len()]]
            })
            .collect();
        for step in 1..=5 {
            let grads: Vec<Vec<f32>> = init
                .iter()
                .enumerate()
                .map(|(i, v)| uniform(100 * step + i as u64, v.len(), -2.0, 2.0))
                .collect();
            let tensors: Vec<Option<Tensor>> = grads
                .iter()
                .zip(&shapes)
                .map(|(g, s)| {
                    Some(Tensor::from_vec(g.clone(), s.as_slice(), &Device::Cpu).unwrap())
                })
                .collect();
            if step % 2 == 0 {
                adam.step_with(&tensors).unwrap();
            } else {
                // The GradStore path, through candle's autograd: d(sum(p * g))/dp = g.
                let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu).unwrap();
                for (var, g) in vars.iter().zip(&tensors) {
                    let term = (var.as_tensor() * g.as_ref().unwrap()).unwrap().sum_all();
                    loss = (loss + term.unwrap()).unwrap();
                }
                adam.step(&loss.backward().unwrap()).unwrap();
            }
            for (r, g) in refs.iter_mut().zip(&grads) {
                let g64: Vec<f64> = g.iter().map(|&x| x as f64).collect();
                let [p, m, v] = r;
                reference_adam(p, m, v, &g64, step as i32);
            }
        }
        assert_eq!(adam.step, 5);
        let (m, v) = adam.moments();
        for (i, var) in vars.iter().enumerate() {
            assert_close(&vec_of(var.as_tensor()), &refs[i][0], 1e-6, "parameter");
            assert_close(&vec_of(&m[i]), &refs[i][1], 1e-6, "first moment");
            assert_close(&vec_of(&v[i]), &refs[i][2], 1e-6, "second moment");
        }
    }

    #[test]
    fn adam_restore_takes_private_copies() {
        let var = Var::zeros(4, DType::F32, &Device::Cpu).unwrap();
        let mut adam = Adam::new(vec![var.clone()], AdamParams::default()).unwrap();
        let saved = Tensor::ones(4, DType::F32, &Device::Cpu).unwrap();
        adam.restore(vec![saved.clone()], vec![saved.clone()], 3)
            .unwrap();
        let g = Tensor::ones(4, DType::F32, &Device::Cpu).unwrap();
        adam.step_with(&[Some(g)]).unwrap();
        assert_eq!(vec_of(&saved), vec![1.0; 4]);
        assert_eq!(adam.step, 4);
        assert!(vec_of(var.as_tensor()).iter().all(|&p| p < 0.0));
    }
}
