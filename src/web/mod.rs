//! The browser's side: the packed decoder kernel, the grid sweep and the memory budgets (compiled
//! natively too, so tests compare them with the candle model), and the wasm binding that wraps them.

#[cfg(target_arch = "wasm32")]
pub mod binding;
pub mod budget;
pub mod grid;
#[cfg(all(target_arch = "wasm32", feature = "lab"))]
pub mod lab;
mod lanes;
pub mod packed_decoder;
