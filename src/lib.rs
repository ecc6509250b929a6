//! vae-explorer: a variational autoencoder core (model, weights format, datasets) and its edges.

pub mod data;
pub mod fast_decode;
pub mod format;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod package;
pub mod plot;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod web;
