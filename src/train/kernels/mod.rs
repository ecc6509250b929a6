//! Training kernels, one file per job: the loss (BCE-with-logits, reparameterisation with KL),
//! bias + activation, the Adam optimiser, and the SIMD dispatch they share.
//!
//! Each kernel is one pass over contiguous f32 data, split into fixed row chunks that run on
//! rayon natively and in the threaded wasm build, and serially in the single-thread one. Partial sums are
//! combined in chunk order, so results do not depend on thread timing. This file holds what they
//! share: storage access and the chunked loops.

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, InplaceOp1, Layout, Result, Storage, Tensor};

#[macro_use]
mod simd;
mod activation;
mod adam;
mod loss;

pub use activation::{act_backward_, bias_act_};
pub use adam::{Adam, AdamParams, AdamSnapshot};
pub use loss::{bce_with_logits_grad, reparam_kl, reparam_kl_backward, BceOutput};

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
    #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
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

/// Runs `f` on a contiguous f32 tensor's data where it lies (no copy).
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        bail!("with-f32: expected a CPU tensor")
    };
    Ok(f(f32_data(cpu, layout, "with-f32")?))
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

#[cfg(test)]
mod test_support {
    //! Inputs and checks shared by the kernels' tests.
    use candle_core::Tensor;
    use rand::{Rng, SeedableRng};

    pub fn uniform(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| r.random_range(lo..hi)).collect()
    }

    pub fn vec_of(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// Central finite differences of `f` at `x`, in f64.
    pub fn numeric_grad(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
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

    pub fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (g as f64 - w).abs();
            assert!(err <= tol * (1.0 + w.abs()), "{what}[{i}]: {g} vs {w}");
        }
    }
}
