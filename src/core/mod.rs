//! The core: the model, its weights file, the datasets (and the lab's dataset pack) and the held-out metrics, in plain Rust
//! with no browser or command-line code.

pub mod data;
pub mod format;
pub mod metrics;
pub mod model;
pub mod pack;
