//! The weights format: round trips, and every way a file can be refused (one test per error).
//!
//! Malformed files are built from a valid one, either through the `safetensors` crate (tensor and
//! metadata level) or by editing bytes (header level).

#[path = "../common/mod.rs"]
mod common;
#[macro_use]
mod support;

mod atlas;
mod header;
mod metadata;
mod round_trip;
mod split;
mod tensors;
mod writing;
