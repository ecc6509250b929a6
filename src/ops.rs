//! Training kernels: the summed BCE-with-logits loss and the Adam update.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Sum over all elements of the stable BCE-with-logits loss, as a differentiable scalar.
pub fn bce_with_logits_sum(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    crate::model::bce_with_logits_per_image(logits, targets)?.sum_all()
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

/// Adam (no weight decay) over a fixed list of variables, with its moments exposed for checkpoints.
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
        let m = vars
            .iter()
            .map(|v| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        let v = m.clone();
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
        self.step += 1;
        let p = self.params;
        let t = self.step as i32;
        let c1 = 1.0 / (1.0 - p.beta1.powi(t));
        let c2 = 1.0 / (1.0 - p.beta2.powi(t));
        for ((var, m), v) in self.vars.iter().zip(&mut self.m).zip(&mut self.v) {
            let Some(g) = grads.get(var) else { continue };
            *m = ((&*m * p.beta1)? + (g * (1.0 - p.beta1))?)?;
            *v = ((&*v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let update = ((&*m * (p.lr * c1))? / ((&*v * c2)?.sqrt()? + p.eps)?)?;
            var.set(&var.sub(&update)?)?;
        }
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
        self.m = m;
        self.v = v;
        self.step = step;
        Ok(())
    }
}
