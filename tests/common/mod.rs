//! Helpers that more than one integration test uses.

use std::path::Path;

/// The names in a folder, sorted: to check that a write left nothing behind.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
