//! The level arrays as other tools see them (format version 2): sized to
//! the data, with coordinates and a CRS that xarray, rioxarray and GDAL
//! read with no plugin, growing in every direction.
#![allow(clippy::unwrap_used)]

mod util;

use gridstore::engine::persistence::layout::Layout;
use gridstore::engine::{Store, Window};
use gridstore::storage::{FolderStorage, StorageError, StoreKey};
use std::path::Path;
use std::sync::Arc;
use util::tool;
use util::utm::{create, structure, value, write};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// What xarray and rioxarray see of one level: the coordinates' first
/// values and counts, the CRS, the transform, and every value (nodata as
/// NaN).
#[derive(Debug, serde::Deserialize)]
struct Seen {
    dims: Vec<String>,
    x0: f64,
    y0: f64,
    cols: usize,
    rows: usize,
    epsg: Option<u32>,
    transform: [f64; 6],
    values: Vec<Option<f64>>,
}

const XARRAY: &str = r#"
import sys, json, warnings, xarray as xr, rioxarray, numpy as np
warnings.simplefilter("error")
# rioxarray's own use of affine, not ours.
warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
store, levels = sys.argv[1], sys.argv[2:]
seen = []
for level in levels:
    da = xr.open_zarr(store, group=level)["data"]
    t = da.rio.transform()
    v = da.values.astype("float64").ravel()
    seen.append({
        "dims": list(da.dims), "x0": float(da.x[0]) if da.x.size else 0.0,
        "y0": float(da.y[0]) if da.y.size else 0.0,
        "cols": int(da.x.size), "rows": int(da.y.size),
        "epsg": da.rio.crs.to_epsg() if da.rio.crs else None,
        "transform": [t.c, t.a, t.b, t.f, t.d, t.e],
        "values": [None if np.isnan(x) else float(x) for x in v],
    })
print(json.dumps(seen))
"#;

/// What xarray sees of each of `levels`, in one run of Python.
fn xarray(store: &Path, levels: &[u8]) -> Vec<Seen> {
    let out = std::process::Command::new("python3")
        .args(["-c", XARRAY, s(store)])
        .args(levels.iter().map(u8::to_string))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xarray failed on levels {levels:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// xarray reads level `level` exactly as gridstore does: the array's
/// coordinates are the centres of the cells gridstore reads there, and
/// every value (and every nodata) is the same.
fn check_level(seen: Seen, store: &Store, level: u8) {
    let side = u64::from(store.layout().shard_side(level));
    assert_eq!(seen.dims, ["y", "x"]);
    assert_eq!(seen.epsg, Some(32631), "rioxarray finds the CRS");
    let grid = store.grid();
    let [cx, cy] = grid.cell_size(level);
    let (col, row) = grid.fractional_cell(level, seen.x0 - cx / 2.0, seen.y0 + cy / 2.0);
    assert!(
        col.fract() == 0.0 && row.fract() == 0.0,
        "x/y are cell centres"
    );
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let window = Window {
        row: row as u64,
        col: col as u64,
        rows: seen.rows as u64,
        cols: seen.cols as u64,
    };
    let gt = [seen.x0 - cx / 2.0, cx, 0.0, seen.y0 + cy / 2.0, 0.0, -cy];
    assert_eq!(
        seen.transform, gt,
        "rioxarray's transform is the coordinates'"
    );
    let expected = store.read_window::<f32>(0, level, &window).unwrap();
    let expected: Vec<Option<f64>> = expected
        .iter()
        .map(|v| (*v != -9999.0).then_some(f64::from(*v)))
        .collect();
    assert_eq!(
        seen.values, expected,
        "level {level} values differ in xarray"
    );
    // The array spans the data: its outer rows and columns of shards (of
    // chunks, unsharded) each hold some.
    let [w, h] = grid.chunk_shape();
    let (w, h) = (u64::from(w) * side, u64::from(h) * side);
    let data = store
        .data_window::<f32>(0)
        .unwrap()
        .unwrap()
        .coarsened(level);
    assert!(window.row <= data.row && window.row + h > data.row);
    assert!(window.col <= data.col && window.col + w > data.col);
    let (end_row, end_col) = (window.row + window.rows, window.col + window.cols);
    assert!(end_row >= data.row + data.rows && end_row < data.row + data.rows + h);
    assert!(end_col >= data.col + data.cols && end_col < data.col + data.cols + w);
}

/// Each ingest west, north, east and south of the data grows the arrays
/// (moving their origins west and north), and after each xarray reads
/// every level as gridstore does.
#[test]
fn a_store_grows_in_every_direction_and_xarray_follows() {
    for layout in [Layout::Zarr2, Layout::Zarr3 { shard: 2 }] {
        grows_in_every_direction(layout);
    }
}

fn grows_in_every_direction(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.gs");
    let store = create(&path, layout);
    let centre: u64 = 512;
    let at = |dr: i64, dc: i64, rows, cols| Window {
        row: centre.checked_add_signed(dr).unwrap(),
        col: centre.checked_add_signed(dc).unwrap(),
        rows,
        cols,
    };
    let writes = [
        ("centre", at(3, 5, 40, 30)),
        ("west", at(10, -70, 20, 30)),
        ("north", at(-90, 0, 25, 17)),
        ("east", at(0, 100, 9, 40)),
        ("south", at(120, -20, 33, 11)),
    ];
    for (name, window) in writes {
        write(&store, window);
        let levels = [0, 1, 3];
        for (seen, level) in xarray(&path, &levels).into_iter().zip(levels) {
            check_level(seen, &store, level);
        }
        // The store reads back what was written, wherever it lies now.
        let back = store.read_window::<f32>(0, 0, &window).unwrap();
        assert_eq!(
            back[[0, 0, 0]],
            value(window.row, window.col),
            "{layout} after {name}"
        );
        let report = store
            .verify::<f32>(
                &gridstore::engine::NoProgress,
                &gridstore::engine::CancelToken::new(),
            )
            .unwrap();
        assert!(
            report.damage.is_empty(),
            "after {name}: {:?}",
            report.damage
        );
    }
    // Reopened from disk, the footprint is the same.
    let reopened = Store::open(Arc::new(FolderStorage::open(&path).unwrap())).unwrap();
    assert_eq!(reopened.footprint(), store.footprint());
}

/// GDAL 3.6's Zarr driver opens level 0 with the right CRS and
/// geotransform.
#[test]
fn gdal_opens_level_0_with_its_crs_and_geotransform() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gdal.gs");
    let store =
        Store::create(Arc::new(FolderStorage::create(&path).unwrap()), structure()).unwrap();
    let window = Window {
        row: 500,
        col: 470,
        rows: 37,
        cols: 50,
    };
    write(&store, window);
    let tif = dir.path().join("level0.tif");
    let name = format!("ZARR:\"{}\":/0/data", s(&path));
    tool("gdal_translate", &["-q", &name, s(&tif)]);
    let read = util::read(s(&tif), None);
    let gt = read.geotransform;
    let grid = store.grid();
    let (col, row) = grid.fractional_cell(0, gt[0], gt[3]);
    assert_eq!((gt[1], gt[5]), (10.0, -10.0));
    assert_eq!((row.fract(), col.fract()), (0.0, 0.0));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (row, col) = (row as u64, col as u64);
    // The first data cell is where gridstore has it.
    let (r, c) = ((window.row - row) as usize, (window.col - col) as usize);
    assert_eq!(
        read.bands[0][r * read.cols + c],
        f64::from(value(window.row, window.col))
    );
    let ds = gdal::Dataset::open(&tif).unwrap();
    let srs = ds.spatial_ref().unwrap();
    assert_eq!(srs.auth_code().unwrap(), 32631);
}

/// The GeoZarr conventions, checked by geozarr-toolkit's models: the root
/// names multiscales, `proj:` and `spatial:` in `zarr_conventions`, its
/// `multiscales` layout has a level per array, each derived from the one
/// below with the store's aggregator, and each level group carries
/// `proj:code` and a `spatial:transform` and `spatial:shape` that match
/// what rioxarray reads.
#[test]
fn the_geozarr_conventions_validate() {
    for layout in [Layout::Zarr2, Layout::Zarr3 { shard: 8 }] {
        geozarr_validates(layout);
    }
}

fn geozarr_validates(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("geozarr.gs");
    let store = create(&path, layout);
    write(
        &store,
        Window {
            row: 500,
            col: 470,
            rows: 37,
            cols: 50,
        },
    );
    let script = r#"
import sys, json, zarr, xarray as xr, rioxarray, warnings
warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
from geozarr_toolkit.helpers.validation import (
    validate_zarr_conventions, validate_multiscales, validate_proj, validate_spatial,
    validate_multiscales_structure)
store = sys.argv[1]
root = zarr.open_group(store, mode="r")
problems = []
for name, (ok, errors) in [
    ("conventions", validate_zarr_conventions(dict(root.attrs))),
    ("multiscales", validate_multiscales(dict(root.attrs))),
    ("proj", validate_proj(dict(root.attrs))),
    ("structure", validate_multiscales_structure(root)),
]:
    if not ok:
        problems.append((name, errors))
names = [c["name"] for c in root.attrs["zarr_conventions"]]
layout = root.attrs["multiscales"]["layout"]
levels = []
for entry in layout:
    attrs = dict(root[entry["asset"]].attrs)
    for name, (ok, errors) in [("level spatial", validate_spatial(attrs)), ("level proj", validate_proj(attrs))]:
        if not ok:
            problems.append((name, entry["asset"], errors))
    da = xr.open_zarr(store, group=entry["asset"])["data"]
    t = da.rio.transform()
    levels.append({
        "asset": entry["asset"], "derived_from": entry.get("derived_from"),
        "resampling": entry.get("resampling_method"), "scale": entry["transform"]["scale"],
        "transform": attrs["spatial:transform"], "shape": attrs["spatial:shape"],
        "rio": [t.a, t.b, t.c, t.d, t.e, t.f], "rio_shape": [int(da.y.size), int(da.x.size)],
        "code": attrs.get("proj:code"),
    })
print(json.dumps({"problems": problems, "names": names, "levels": levels}))
"#;
    let seen: serde_json::Value =
        serde_json::from_slice(&util::python(script, &[s(&path)])).unwrap();
    assert_eq!(seen["problems"], serde_json::json!([]), "{seen}");
    assert_eq!(
        seen["names"],
        serde_json::json!(["multiscales", "proj:", "spatial:"])
    );
    let levels = seen["levels"].as_array().unwrap();
    assert_eq!(levels.len(), usize::from(store.grid().top_level()) + 1);
    for (k, level) in levels.iter().enumerate() {
        assert_eq!(level["asset"], k.to_string());
        assert_eq!(level["code"], "EPSG:32631");
        assert_eq!(level["transform"], level["rio"], "level {k}: {level}");
        assert_eq!(level["shape"], level["rio_shape"], "level {k}");
        if k == 0 {
            assert!(level["derived_from"].is_null());
        } else {
            assert_eq!(level["derived_from"], (k - 1).to_string());
            assert_eq!(level["resampling"], "mean");
            assert_eq!(level["scale"], serde_json::json!([2.0, 2.0]));
        }
    }
}

/// A reader opened before another writer moved the arrays' origins reads
/// every chunk where it now is, through every chunk-level read, not the
/// chunk that the old key would name.
#[test]
fn a_reader_opened_before_the_arrays_move_reads_each_chunk_where_it_is() {
    for layout in [Layout::Zarr2, Layout::Zarr3 { shard: 4 }] {
        reads_each_chunk_where_it_is(layout);
    }
}

fn reads_each_chunk_where_it_is(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moved.gs");
    let writer = create(&path, layout);
    let centre = Window {
        row: 512,
        col: 512,
        rows: 20,
        cols: 20,
    };
    write(&writer, centre);
    let reader = Store::open(Arc::new(FolderStorage::open(&path).unwrap())).unwrap();
    let loc = gridstore::engine::ChunkLoc::new(0, 32, 32);
    let before = reader.read_chunk::<f32>(0, loc).unwrap().unwrap();
    // West and north by several chunks: every level's origin moves.
    write(
        &writer,
        Window {
            row: 400,
            col: 380,
            rows: 5,
            cols: 5,
        },
    );
    assert_ne!(reader.footprint(), writer.footprint(), "not refreshed yet");
    assert_eq!(reader.read_chunk::<f32>(0, loc).unwrap().unwrap(), before);
    assert_eq!(
        reader.stored_chunk(0, loc).unwrap(),
        writer.stored_chunk(0, loc).unwrap()
    );
    let west = gridstore::engine::ChunkLoc::new(0, 25, 23);
    assert!(reader.chunk_exists(0, west).unwrap());
    assert!(
        !reader
            .chunk_exists(0, gridstore::engine::ChunkLoc::new(0, 24, 23))
            .unwrap()
    );
    assert_eq!(reader.footprint(), writer.footprint());
}

/// Storage whose metadata writes fail on demand (a full disk), to check
/// that a store's view of its arrays moves only with what is on disk.
#[derive(Debug)]
struct FailingMetadata {
    inner: gridstore::storage::MemoryStorage,
    fail: std::sync::atomic::AtomicBool,
}

impl gridstore::storage::Storage for FailingMetadata {
    fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size(key)
    }
    fn put(&self, key: &StoreKey, value: &[u8]) -> Result<(), StorageError> {
        if key.as_str().ends_with(".zarray") && self.fail.load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StorageError::io(
                "test",
                std::io::Error::other("no space left (test)"),
            ));
        }
        self.inner.put(key, value)
    }
    fn delete(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<(StoreKey, u64)>, StorageError> {
        self.inner.list(prefix)
    }
    fn stage(&self, key: &StoreKey, value: Option<&[u8]>) -> Result<(), StorageError> {
        self.inner.stage(key, value)
    }
    fn commit(&self, key: &StoreKey) -> Result<bool, StorageError> {
        self.inner.commit(key)
    }
    fn discard(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.discard(key)
    }
    fn lock_writer(&self) -> Result<Box<dyn gridstore::storage::WriterLock>, StorageError> {
        self.inner.lock_writer()
    }
    fn version(&self, key: &StoreKey) -> Result<Option<String>, StorageError> {
        self.inner.version(key)
    }
    fn location(&self) -> String {
        self.inner.location()
    }
    fn backend_name(&self) -> &'static str {
        "failing"
    }
}

/// A write whose growth of the arrays fails to reach the disk leaves the
/// store's view where the disk is: the next write in the same process
/// grows the arrays again, and every value is found after reopening.
#[test]
fn a_growth_that_fails_moves_nothing() {
    let storage = Arc::new(FailingMetadata {
        inner: gridstore::storage::MemoryStorage::new(),
        fail: std::sync::atomic::AtomicBool::new(false),
    });
    let store = Store::create(storage.clone(), structure()).unwrap();
    let window = Window {
        row: 512,
        col: 512,
        rows: 20,
        cols: 20,
    };
    let data = ndarray::Array3::from_elem((1, 20, 20), 7.0f32);
    storage
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(store.write(None, window, data.view()).is_err());
    storage
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    store.write(None, window, data.view()).unwrap();
    drop(store);
    let reopened = Store::open(storage).unwrap();
    let back = reopened.read_window::<f32>(0, 0, &window).unwrap();
    assert!(back.iter().all(|v| *v == 7.0), "every value is found");
    let report = reopened
        .verify::<f32>(
            &gridstore::engine::NoProgress,
            &gridstore::engine::CancelToken::new(),
        )
        .unwrap();
    assert!(report.damage.is_empty(), "{:?}", report.damage);
}

/// The data's window that the root keeps is used only for the contents it
/// was kept for: once another writer (an older gridstore, which does not
/// keep it) has changed the contents token, readers find the window from
/// the chunks.
#[test]
fn a_data_window_kept_for_other_contents_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("window.gs");
    let store = create(&path, Layout::Zarr2);
    let window = Window {
        row: 500,
        col: 470,
        rows: 37,
        cols: 50,
    };
    write(&store, window);
    drop(store);
    let open = || Store::open(Arc::new(FolderStorage::open(&path).unwrap())).unwrap();
    assert_eq!(open().data_window::<f32>(0).unwrap(), Some(window));
    // A window the root keeps is what readers use...
    let root = path.join(".zattrs");
    let mut attrs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&root).unwrap()).unwrap();
    attrs["gridstore"]["data"]["rows"] = serde_json::json!(1);
    std::fs::write(&root, serde_json::to_vec(&attrs).unwrap()).unwrap();
    assert_eq!(open().data_window::<f32>(0).unwrap().unwrap().rows, 1);
    // ... until the contents token moves on without it.
    let journal = path.join("journal/.zattrs");
    let mut j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    j["gridstore_journal"]["state"] = serde_json::json!("0123456789abcdef0123456789abcdef");
    std::fs::write(&journal, serde_json::to_vec(&j).unwrap()).unwrap();
    assert_eq!(open().data_window::<f32>(0).unwrap(), Some(window));
    assert_eq!(open().scan_data_window::<f32>(0).unwrap(), Some(window));
}
