//! Header level: truncated, mis-sized and corrupted files.

use super::support::*;

#[test]
fn truncated_file_is_refused_at_every_cut() {
    let bytes = sample_bytes();
    let data_start = 8 + header_len(&bytes);
    // Every cut through the length and the header, then cuts spread through the tensor data.
    let mut cuts: Vec<usize> = (0..data_start + 64).collect();
    cuts.extend((data_start + 64..bytes.len()).step_by(997));
    cuts.push(bytes.len() - 1);
    for cut in cuts {
        let prefix = &bytes[..cut];
        let result = std::panic::catch_unwind(|| format::load(prefix));
        let err = match result {
            Err(_) => panic!("load panicked on the first {cut} bytes"),
            Ok(Ok(_)) => panic!("the first {cut} of {} bytes loaded", bytes.len()),
            Ok(Err(e)) => e,
        };
        assert!(
            matches!(err, FormatError::Safetensors(_)),
            "cut {cut}: {err:?}"
        );
        let msg = err.to_string();
        assert_readable(&msg);
        assert!(msg.contains("truncated"), "cut {cut}: {msg:?}");
    }
    // Trailing bytes are refused as well.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 16]);
    assert_refused!(longer, FormatError::Safetensors(_), "extra bytes");
}

#[test]
fn wrong_header_length_is_refused() {
    let bytes = sample_bytes();
    let n = header_len(&bytes) as u64;
    for wrong in [0, 1, n - 1, n + 1, n + 8, bytes.len() as u64 - 7] {
        assert_refused!(with_header_len(&bytes, wrong), FormatError::Safetensors(_));
    }
    for huge in [200_000_000, u64::MAX / 2, u64::MAX] {
        assert_refused!(
            with_header_len(&bytes, huge),
            FormatError::Safetensors(_),
            "header too large"
        );
    }
}

#[test]
fn header_not_json_is_refused() {
    let bytes = sample_bytes();
    let n = header_len(&bytes);
    let mut garbage = bytes.clone();
    garbage[8..8 + n].fill(b'x');
    assert_refused!(garbage, FormatError::Safetensors(_), "JSON");
    let mut not_utf8 = bytes.clone();
    not_utf8[8..8 + n].fill(0xff);
    assert_refused!(not_utf8, FormatError::Safetensors(_), "UTF-8");
    // Valid JSON that is not a safetensors header.
    let header = br#"[1, 2, 3]"#;
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header);
    assert_refused!(file, FormatError::Safetensors(_));
    // An empty file and a file of zeros.
    assert_refused!(Vec::<u8>::new(), FormatError::Safetensors(_));
    assert_refused!([0u8; 64], FormatError::Safetensors(_));
}

#[test]
fn corrupted_header_bytes_never_panic() {
    let bytes = sample_bytes();
    let n = header_len(&bytes);
    for i in 8..8 + n {
        for value in [b'"', b'{', b'9', b' ', 0xff] {
            let mut bad = bytes.clone();
            bad[i] = value;
            let result = std::panic::catch_unwind(|| format::load(&bad).map(|_| ()));
            let Ok(result) = result else {
                panic!("load panicked with byte {i} set to {value:#x}");
            };
            if let Err(e) = result {
                assert_readable(&e.to_string());
            }
        }
    }
}
