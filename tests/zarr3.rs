//! The `zarr3` layout: Zarr v3 shards that zarr-python reads value for
//! value, partial reads that fetch one inner chunk's bytes, each shard
//! written once per write, checksums that name the damaged object, and
//! conversion between the layouts.
#![allow(clippy::unwrap_used)]

mod util;

use gridstore::engine::persistence::layout::Layout;
use gridstore::engine::persistence::shard;
use gridstore::engine::{CancelToken, ChunkLoc, NoProgress, Store, Window};
use gridstore::storage::{ByteRange, FolderStorage, Storage};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use util::counting::Counting;
use util::utm::{create, structure, value, write};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const ZARR3: Layout = Layout::Zarr3 { shard: 4 };

/// Data over several shards, not aligned to them.
const DATA: Window = Window {
    row: 500,
    col: 470,
    rows: 150,
    cols: 90,
};

fn verified(store: &Store) -> Vec<gridstore::engine::Damage> {
    store
        .verify::<f32>(&NoProgress, &CancelToken::new())
        .unwrap()
        .damage
}

/// zarr-python 3 reads every level of a zarr3 store (and of the same data
/// in zarr2) with the values gridstore reads, nodata where gridstore has
/// none.
#[test]
fn zarr_python_reads_every_level_of_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, json, zarr, numpy as np
g = zarr.open_group(sys.argv[1], mode="r")
out = {}
for level in sys.argv[2:]:
    a = g[level + "/data"]
    v = a[:].astype("float64")
    out[level] = {"shape": list(a.shape), "sum": float(np.nansum(np.where(v == -9999.0, 0, v))),
                  "valid": int(np.count_nonzero(v != -9999.0)),
                  "format": g.metadata.zarr_format}
print(json.dumps(out))
"#;
    for layout in [Layout::Zarr2, ZARR3] {
        let path = dir.path().join(format!("{layout}.gs"));
        let store = create(&path, layout);
        write(&store, DATA);
        let top = store.grid().top_level();
        let levels: Vec<String> = (0..=top).map(|l| l.to_string()).collect();
        let mut args = vec![s(&path)];
        args.extend(levels.iter().map(String::as_str));
        let seen: serde_json::Value = serde_json::from_slice(&util::python(script, &args)).unwrap();
        for level in 0..=top {
            let footprint = store.footprint().array_window(store.grid(), level);
            let [w, h] = store.grid().chunk_shape();
            let window = Window {
                row: footprint.row * u64::from(h),
                col: footprint.col * u64::from(w),
                rows: footprint.rows * u64::from(h),
                cols: footprint.cols * u64::from(w),
            };
            let cells = store.read_window::<f32>(0, level, &window).unwrap();
            let valid: Vec<f64> = cells
                .iter()
                .filter(|v| **v != -9999.0)
                .map(|v| f64::from(*v))
                .collect();
            let got = &seen[level.to_string()];
            assert_eq!(
                got["shape"],
                serde_json::json!([window.rows, window.cols]),
                "{layout} level {level}"
            );
            assert_eq!(got["valid"], valid.len(), "{layout} level {level}");
            let sum: f64 = valid.iter().sum();
            assert!(
                (got["sum"].as_f64().unwrap() - sum).abs() <= sum.abs() * 1e-12,
                "{layout} level {level}: {} against {sum}",
                got["sum"]
            );
            let format = if layout == Layout::Zarr2 { 2 } else { 3 };
            assert_eq!(got["format"], format);
        }
    }
}

/// Reading one inner chunk reads its shard's index and that chunk's
/// bytes, nothing more; and a write stages each shard it changes once.
#[test]
fn one_inner_chunk_reads_only_its_bytes_and_each_shard_is_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("count.gs");
    let storage = Arc::new(Counting::create(&path));
    let store = Store::create_with_layout(storage.clone(), structure(), Layout::Zarr3 { shard: 8 })
        .unwrap();
    write(&store, DATA);
    let staged = storage.staged.lock().unwrap().clone();
    let shards: Vec<&String> = staged.keys().filter(|k| k.contains("/data/c/")).collect();
    assert!(shards.len() > 4, "{staged:?}");
    assert!(
        staged.values().all(|n| *n == 1),
        "a shard staged more than once: {staged:?}"
    );
    drop(store);
    let reader = Store::open(storage.clone()).unwrap();
    let (row, col) = (33u32, 30u32);
    let loc = ChunkLoc::new(0, row, col);
    let key = reader.chunk_key(0, loc).unwrap();
    let (shard_bytes, _) = storage
        .inner
        .get_range(&key, ByteRange::Suffix(u64::MAX))
        .unwrap()
        .unwrap();
    let inner = shard::split(&shard_bytes, 64).unwrap();
    let stored: Vec<usize> = inner.iter().flatten().map(|c| c.len()).collect();
    assert!(stored.len() > 1, "the shard holds several chunks");
    // Shards are aligned to the domain: the chunk's place in its shard.
    let own = inner[(row as usize % 8) * 8 + col as usize % 8]
        .unwrap()
        .len() as u64;
    storage.read.store(0, Ordering::SeqCst);
    assert!(reader.read_chunk::<f32>(0, loc).unwrap().is_some());
    let read = storage.read.load(Ordering::SeqCst);
    assert_eq!(
        read,
        own + shard::index_len(64) as u64,
        "one chunk of a {}-byte shard",
        shard_bytes.len()
    );
    assert!(read * 4 < shard_bytes.len() as u64);
}

/// Damage to a shard (its index, its length, one inner chunk) is named in
/// the read's error and in verify's report, and a write over it leaves the
/// rest of the store alone.
#[test]
fn damaged_shards_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.gs");
    let store = create(&path, ZARR3);
    write(&store, DATA);
    let loc = ChunkLoc::new(0, 32, 30);
    let key = store.chunk_key(0, loc).unwrap();
    let file = path.join(key.as_str());
    let good = std::fs::read(&file).unwrap();
    let n = good.len();
    let chunks = shard::split(&good, 16).unwrap();
    let first = chunks.iter().position(Option::is_some).unwrap();
    let first_loc = ChunkLoc::new(
        0,
        32 / 4 * 4 + first as u32 / 4,
        30 / 4 * 4 + first as u32 % 4,
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "index",
            {
                let mut b = good.clone();
                b[n - 8] ^= 1;
                b
            },
            "index fails its CRC-32C",
        ),
        ("truncated", good[..n / 2].to_vec(), "damaged or truncated"),
        (
            "inner",
            {
                let mut b = good.clone();
                b[2] ^= 0x10;
                b
            },
            "inner chunk fails its CRC-32C",
        ),
    ];
    for (what, bytes, reason) in cases {
        std::fs::write(&file, &bytes).unwrap();
        let reader = Store::open(Arc::new(FolderStorage::open(&path).unwrap())).unwrap();
        let e = reader
            .read_chunk::<f32>(0, first_loc)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(key.as_str()) && e.contains(reason),
            "{what}: {e}"
        );
        let damage = verified(&reader);
        assert!(
            damage
                .iter()
                .any(|d| d.key.starts_with(key.as_str()) && d.reason.contains(reason)),
            "{what}: {damage:?}"
        );
        // The CLI says it in one line.
        let out = util::gridstore(&["verify", s(&path)]);
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(key.as_str()));
    }
    // A write into part of a shard whose index is damaged is refused,
    // naming it, and changes nothing; one over the whole shard replaces it.
    let mut bad = good.clone();
    bad[n - 8] ^= 1;
    std::fs::write(&file, &bad).unwrap();
    let before = util::snapshot(&path);
    let part = Window {
        row: 32 * 16,
        col: 30 * 16,
        rows: 8,
        cols: 8,
    };
    let data = ndarray::Array3::from_elem((1, 8, 8), 1.5f32);
    let e = store
        .write(None, part, data.view())
        .unwrap_err()
        .to_string();
    assert!(e.contains(key.as_str()) && e.contains("CRC-32C"), "{e}");
    assert_eq!(util::snapshot(&path), before, "the store is unchanged");
    let whole = Window {
        row: 32 * 16,
        col: 28 * 16,
        rows: 4 * 16,
        cols: 4 * 16,
    };
    write(&store, whole);
    assert!(verified(&store).is_empty());
    // The top level's one-chunk shard, damaged, is simply rewritten.
    let top = store.grid().top_level();
    let top_key = store.chunk_key(0, ChunkLoc::new(top, 0, 0)).unwrap();
    let top_file = path.join(top_key.as_str());
    let mut bytes = std::fs::read(&top_file).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    std::fs::write(&top_file, &bytes).unwrap();
    write(&store, DATA);
    assert!(verified(&store).is_empty());
}

/// A `zarr.json` that is garbage or names a codec the store does not
/// write is refused with its name; a Zarr v3 store another tool wrote is
/// not written into.
#[test]
fn foreign_and_damaged_metadata_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.gs");
    drop(create(&path, ZARR3));
    let root = path.join("zarr.json");
    let good = std::fs::read(&root).unwrap();
    std::fs::write(&root, b"{not json").unwrap();
    let out = util::gridstore(&["info", s(&path)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("zarr.json is not JSON"),
        "{err}"
    );
    std::fs::write(&root, &good).unwrap();
    let array = path.join("0/data/zarr.json");
    let text = std::fs::read_to_string(&array).unwrap();
    std::fs::write(&array, text.replace("\"zstd\"", "\"blosc\"")).unwrap();
    let before = util::snapshot(&path);
    let src = util::data("stars_olinda_dem_utm25s.tif");
    let out = util::gridstore(&["ingest", s(&path), s(&src)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("0/data/zarr.json") && err.contains("'blosc'"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(util::snapshot(&path), before, "the store is unchanged");
    let out = util::gridstore(&["verify", s(&path)]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0/data/zarr.json"));

    let foreign = dir.path().join("foreign.zarr");
    util::python(
        "import sys, zarr; zarr.create_array(sys.argv[1], shape=(4, 4), dtype='f4')",
        &[s(&foreign)],
    );
    let before = util::snapshot(&foreign);
    let out = util::gridstore(&["ingest", s(&foreign), s(&src)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("another tool"),
        "{err}"
    );
    assert_eq!(util::snapshot(&foreign), before);
}

/// A zarr3 store holds many times fewer files than the same data in
/// zarr2, and `convert` goes either way with every value equal.
#[test]
fn convert_goes_both_ways_and_shards_need_fewer_files() {
    let dir = tempfile::tempdir().unwrap();
    let z2 = dir.path().join("z2.gs");
    let store = create(&z2, Layout::Zarr2);
    let big = Window {
        row: 256,
        col: 256,
        rows: 512,
        cols: 512,
    };
    write(&store, big);
    drop(store);
    let z3 = dir.path().join("z3.gs");
    let out = util::ok(&["convert", s(&z2), s(&z3), "--layout", "zarr3"]);
    assert!(out.contains("zarr3"), "{out}");
    let back = dir.path().join("back.gs");
    util::ok(&["convert", s(&z3), s(&back), "--layout", "zarr2"]);
    let chunk_files = |p: &Path| {
        util::snapshot(p)
            .keys()
            .filter(|k| k.to_string_lossy().contains("/data/") && !k.ends_with("zarr.json"))
            .filter(|k| !k.to_string_lossy().contains("/data/."))
            .count()
    };
    let (n2, n3) = (chunk_files(&z2), chunk_files(&z3));
    assert!(n2 >= 10 * n3, "zarr2 {n2} chunk files, zarr3 {n3}");
    let open = |p: &Path| Store::open(Arc::new(FolderStorage::open(p).unwrap())).unwrap();
    let (a, b, c) = (open(&z2), open(&z3), open(&back));
    assert_eq!(b.layout(), Layout::Zarr3 { shard: 8 });
    for level in 0..=a.grid().top_level() {
        let window = big.coarsened(level);
        let expected = a.read_window::<f32>(0, level, &window).unwrap();
        assert_eq!(b.read_window::<f32>(0, level, &window).unwrap(), expected);
        assert_eq!(c.read_window::<f32>(0, level, &window).unwrap(), expected);
    }
    assert!(verified(&b).is_empty());
    // The chunk files of the round trip are the original's, byte for byte.
    let chunks = |p: &Path| -> BTreeMap<_, _> {
        util::snapshot(p)
            .into_iter()
            .filter(|(k, _)| k.to_string_lossy().contains("/data/"))
            .map(|(k, v)| (k.strip_prefix(p).unwrap().to_path_buf(), v))
            .collect()
    };
    assert_eq!(chunks(&back), chunks(&z2));
    // Bad shards are refused before anything is made.
    let bad = dir.path().join("bad.gs");
    let out = util::gridstore(&[
        "convert",
        s(&z2),
        s(&bad),
        "--layout",
        "zarr3",
        "--shard",
        "3",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard 3"));
    assert!(!bad.exists());
}

/// The packed and hdf5 backends keep a zarr3 store too: written, read
/// and verified as a folder's.
#[test]
fn packed_and_hdf5_hold_the_zarr3_layout() {
    let dir = tempfile::tempdir().unwrap();
    for backend in [
        gridstore::storage::Backend::Packed,
        gridstore::storage::Backend::Hdf5,
    ] {
        let path = dir.path().join(format!("{backend}.gs"));
        let storage = gridstore::storage::create(&path, backend).unwrap();
        let store = Store::create_with_layout(storage, structure(), ZARR3).unwrap();
        write(&store, DATA);
        drop(store);
        let store = Store::open(gridstore::storage::open(&path).unwrap()).unwrap();
        let back = store.read_window::<f32>(0, 0, &DATA).unwrap();
        assert_eq!(
            back[[0, 3, 5]],
            value(DATA.row + 3, DATA.col + 5),
            "{backend}"
        );
        assert!(verified(&store).is_empty(), "{backend}");
    }
}
