//! Writing: atomic replacement that never leaves half a file.

use super::support::*;
use crate::common::dir_entries;

#[test]
fn write_atomic_replaces_the_target_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    format::write_atomic(&path, b"first").unwrap();
    format::write_atomic(&path, b"second, longer").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
    assert_eq!(dir_entries(dir.path()), ["model.safetensors"]);
    // A path in a folder that does not exist: an error naming the path, and nothing written.
    let missing = dir.path().join("no/such/folder/model.safetensors");
    let err = format::write_atomic(&missing, b"x").unwrap_err();
    assert!(matches!(err, FormatError::Io { .. }), "{err:?}");
    let msg = err.to_string();
    assert_readable(&msg);
    assert!(msg.contains("no/such/folder/model.safetensors"), "{msg}");
    // The rename fails onto a folder; the temp file is removed.
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("inside"), b"keep").unwrap();
    assert!(format::write_atomic(&folder, b"x").is_err());
    assert_eq!(dir_entries(dir.path()), ["folder", "model.safetensors"]);
    assert_eq!(std::fs::read(folder.join("inside")).unwrap(), b"keep");
}
