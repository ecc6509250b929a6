//! The Adam optimiser as one fused in-place pass per parameter, with its moments exposed for
//! checkpoints.

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Result, Tensor, Var};

use super::{f32_data, f32_data_mut, with_f32, with_f32_mut};
/// A copy of the optimizer's variables, moments and step count, to go back to (`Adam::rewind`).
#[derive(Debug, Clone, Default)]
pub struct AdamSnapshot {
    values: Vec<Vec<f32>>,
    step: u64,
}

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
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
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
        #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
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

    /// Applies one update from gradients given in variable order (`None` leaves one alone).
    pub fn step_with(&mut self, grads: &[Option<Tensor>]) -> Result<()> {
        if grads.len() != self.vars.len() {
            bail!(
                "adam: {} gradients for {} variables",
                grads.len(),
                self.vars.len()
            )
        }
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

    /// Copies every variable, both moments and the step count into `snapshot` (reusing its buffers).
    pub fn save_into(&self, snapshot: &mut AdamSnapshot) -> Result<()> {
        let tensors = self.vars.iter().map(Var::as_tensor);
        let tensors: Vec<&Tensor> = tensors.chain(&self.m).chain(&self.v).collect();
        snapshot.values.resize_with(tensors.len(), Vec::new);
        for (t, buf) in tensors.into_iter().zip(&mut snapshot.values) {
            with_f32(t, |data| {
                buf.clear();
                buf.extend_from_slice(data);
            })?;
        }
        snapshot.step = self.step;
        Ok(())
    }

    /// Writes a snapshot from `save_into` back, in place.
    pub fn rewind(&mut self, snapshot: &AdamSnapshot) -> Result<()> {
        let tensors = self.vars.iter().map(Var::as_tensor);
        let tensors: Vec<&Tensor> = tensors.chain(&self.m).chain(&self.v).collect();
        if tensors.len() != snapshot.values.len() {
            bail!(
                "adam: a snapshot of {} tensors for {}",
                snapshot.values.len(),
                tensors.len()
            )
        }
        for (t, values) in tensors.into_iter().zip(&snapshot.values) {
            with_f32_mut(t, |data| {
                if data.len() != values.len() {
                    bail!("adam: a snapshot of the wrong size")
                }
                data.copy_from_slice(values);
                Ok(())
            })?;
        }
        self.step = snapshot.step;
        Ok(())
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
    use super::super::test_support::{assert_close, uniform, vec_of};
    use super::*;
    use candle_core::{DType, Device};

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
                // The trainer's path: one variable at a time as its gradient is ready.
                adam.begin_step();
                for (i, g) in tensors.iter().enumerate() {
                    adam.update_var(i, g.as_ref().unwrap()).unwrap();
                }
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
