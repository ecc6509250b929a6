//! vae-explorer: a variational autoencoder core (model, weights format, datasets), its trainer,
//! and the browser's side; the command-line edges live in `src/bin/`.
//!
//! Data flows one way: `core` knows nothing of `train` or `web`, and `train` nothing of `web`.

// Every public item says why it exists (clippy -D warnings makes this an error).
#![warn(missing_docs)]

pub mod core;
// In wasm32 only the lab's build (feature `lab`) carries the trainer; the explorer's builds do not.
#[cfg(any(not(target_arch = "wasm32"), feature = "lab"))]
pub mod train;
pub mod web;
