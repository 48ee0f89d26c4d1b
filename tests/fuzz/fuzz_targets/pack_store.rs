//! Any bytes as a packed store's only pack, with its index lost: `repair`
//! rebuilds an index from whatever records are valid (naming the damage),
//! and then every listed key reads back (or fails with an error naming the
//! pack). Nothing panics, nothing reads past the file.
#![no_main]

use gridstore::storage::{PackedStorage, Storage as _};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The marker file of a packed store, made once by a real `create`.
fn marker() -> &'static [u8] {
    static MARKER: OnceLock<Vec<u8>> = OnceLock::new();
    MARKER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let root = dir.path().join("p.gs");
        drop(PackedStorage::create(&root).expect("a new packed store"));
        std::fs::read(root.join(gridstore::storage::packed::BACKEND_FILE)).expect("the marker")
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let root: PathBuf = dir.path().join("p.gs");
    std::fs::create_dir_all(root.join("packs")).expect("the packs folder");
    std::fs::write(
        root.join(gridstore::storage::packed::BACKEND_FILE),
        marker(),
    )
    .expect("the marker");
    // The fuzzer's bytes are the only pack; there is no index yet.
    std::fs::write(root.join("packs/00000001.pack"), data).expect("writing the pack");
    if gridstore::storage::packed::repair(&root).is_err() {
        return;
    }
    let Ok(storage) = PackedStorage::open(&root) else {
        return;
    };
    let Ok(keys) = storage.list("") else {
        return;
    };
    for (key, size) in keys {
        if let Ok(Some(value)) = storage.get(&key) {
            assert_eq!(value.len() as u64, size, "{key}");
        }
        if let Ok(Some(view)) = storage.get_view(&key) {
            assert_eq!(view.len() as u64, size, "{key}");
        }
    }
});
