//! Any bytes through the IDX readers (raw or gzip): the first two bytes say where images end and labels begin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vae_explorer::core::data;

fuzz_target!(|input: &[u8]| {
    let Some((split, rest)) = input.split_first_chunk::<2>() else {
        return;
    };
    let at = usize::from(u16::from_le_bytes(*split)).min(rest.len());
    let (images, labels) = rest.split_at(at);
    if let Ok((n, height, width, pixels)) = data::read_idx_images(images, "images") {
        assert_eq!(pixels.len(), n * height * width);
    }
    let _ = data::read_idx_labels(labels, "labels");
    if let Ok(set) = data::dataset_from_idx(images, labels, "fuzz") {
        assert_eq!(set.pixels.len(), set.len() * set.image_size());
        assert!(set.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    }
});
