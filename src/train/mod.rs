//! Training: the deterministic trainer and its kernels, the browser lab's session, the step that turns a trained model into
//! a complete weights file, and (natively) the loss-curve chart.

pub mod export;
pub mod kernels;
pub mod lab;
#[cfg(not(target_arch = "wasm32"))]
pub mod plot;
mod trainer;

#[cfg(not(target_arch = "wasm32"))]
pub use trainer::pin_thread_count;
pub use trainer::{gather, BatchDone, Progress, Snapshot, TrainOptions, Trainer, DIVERGED};
