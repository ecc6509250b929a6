//! Any bytes through the npm digit JSON reader: accepted files hold whole images with pixels in [0, 1].
#![no_main]

use libfuzzer_sys::fuzz_target;
use vae_explorer::core::data;

fuzz_target!(|input: &[u8]| {
    if let Ok(pixels) = data::read_digit_json(input, "digits") {
        assert!(!pixels.is_empty() && pixels.len() % 784 == 0);
        assert!(pixels.iter().all(|p| (0.0..=1.0).contains(p)));
        let split = data::split_digits(std::slice::from_ref(&pixels));
        assert_eq!(split.train.len() + split.test.len(), pixels.len() / 784);
    }
});
