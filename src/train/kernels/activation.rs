//! Bias + activation after an affine layer, forward (in place) and backward.

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Result, Tensor};

use super::{chunk_rows, dims2, f32_data, f32_data_mut, map_chunks_mut, sum_parts};
use crate::core::model::Activation;

/// In place: `t = act(t + bias)`, bias broadcast over rows; `None` adds the bias only.
struct BiasAct(Option<Activation>);

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
                    None => (0..cols).for_each(|j| row[j] += b[j]),
                    Some(Activation::Relu) => {
                        (0..cols).for_each(|j| row[j] = (row[j] + b[j]).max(0.0))
                    }
                    Some(Activation::Tanh) => {
                        (0..cols).for_each(|j| row[j] = (row[j] + b[j]).tanh())
                    }
                }
            }
        });
        Ok(())
    }
}

/// Adds `bias` to every row of `t` and applies `act` (`None` for an output layer), in place.
/// `t` must not be shared (a fresh matmul output), since every tensor on its storage sees the change.
pub fn bias_act_(t: &Tensor, bias: &Tensor, act: Option<Activation>) -> Result<()> {
    t.inplace_op2(bias, &BiasAct(act))
}

avx2_dispatch! {
    /// `d = d * act'(y)` over whole rows; returns the column sums of the new `d`.
    fn act_backward_rows(act: Activation, d: &mut [f32], y: &[f32], cols: usize) -> Vec<f32>
        => act_backward_rows_body
}

#[inline(always)]
fn act_backward_rows_body(act: Activation, d: &mut [f32], y: &[f32], cols: usize) -> Vec<f32> {
    let mut sum = vec![0f32; cols];
    for (dr, yr) in d.chunks_mut(cols).zip(y.chunks(cols)) {
        let (dr, yr, s) = (&mut dr[..cols], &yr[..cols], &mut sum[..cols]);
        match act {
            Activation::Relu => {
                for j in 0..cols {
                    dr[j] = if yr[j] > 0.0 { dr[j] } else { 0.0 };
                }
            }
            Activation::Tanh => {
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
    act: Activation,
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
pub fn act_backward_(d: &Tensor, y: &Tensor, act: Activation) -> Result<Tensor> {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_close, numeric_grad, uniform, vec_of};
    use super::*;
    use crate::core::model::matrix;
    use candle_core::Device;

    #[test]
    fn bias_act_matches_plain_candle() {
        let (rows, cols) = (70, 300); // several row chunks
        let x = matrix(&uniform(5, rows * cols, -2.0, 2.0), rows, cols).unwrap();
        let b = Tensor::from_vec(uniform(6, cols, -1.0, 1.0), cols, &Device::Cpu).unwrap();
        let pre = x.broadcast_add(&b).unwrap();
        for (act, want) in [
            (None, pre.clone()),
            (Some(Activation::Relu), pre.relu().unwrap()),
            (Some(Activation::Tanh), pre.tanh().unwrap()),
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
        for act in [Activation::Relu, Activation::Tanh] {
            let f = |z: f64| match act {
                Activation::Relu => z.max(0.0),
                Activation::Tanh => z.tanh(),
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
}
