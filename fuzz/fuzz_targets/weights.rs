//! Any bytes through the weights loader (model files, checkpoints, split parts): an error is fine, a panic is a bug.
//!
//! A file that loads must also pack into the browser's decoder and decode like the candle model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vae_explorer::core::{format, model};
use vae_explorer::web::packed_decoder::{PackedDecoder, PixelSink};

fuzz_target!(|data: &[u8]| {
    // A split model's decoder part goes through the same checks; the same bytes as both parts too.
    if let Ok(part) = format::load_decoder_part(data) {
        PackedDecoder::new(&part.decoder).expect("a loaded decoder part packs");
    }
    let _ = format::load_split(data, data);
    if let Ok(file) = format::load(data) {
        let bytes = format::save(&file).expect("a loaded file saves");
        let again = format::load(&bytes).expect("a saved file loads");
        assert_eq!(again.meta, file.meta);
        assert_eq!(again.atlas, file.atlas);

        let packed = PackedDecoder::new(&file.vae.decoder).expect("a loaded decoder packs");
        let z = &file.meta.latent_mean;
        let mut fast = vec![0.0; packed.pixels()];
        packed.decode_rows(z, 0, &mut PixelSink::Intensities(&mut fast));
        let logits = model::matrix(z, 1, z.len())
            .and_then(|z| file.vae.decode_logits(&z))
            .and_then(|x| x.flatten_all()?.to_vec1::<f32>())
            .expect("candle decodes");
        // Weights so large that a sum overflows have no one right answer (inf - inf is NaN in one order of
        // summation and inf in another), so the two decoders are compared where the logits are finite.
        if logits.iter().all(|l| !l.is_infinite()) {
            for (a, l) in fast.iter().zip(&logits) {
                let b = 1.0 / (1.0 + (-l).exp());
                assert!(
                    (a - b).abs() <= 1e-4 || (a.is_nan() && b.is_nan()),
                    "{a} vs {b}"
                );
            }
        }
    }
    let _ = format::load_parts(data, Some("optimizer."));
});
