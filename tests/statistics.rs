//! Per-level statistics: read in one object per level, exact under
//! overwrites and clears, retired by a writer that does not keep them,
//! damage named, rebuilt by `repair`, and equal to what GDAL reads.
#![allow(clippy::unwrap_used)]

mod util;

use gridstore::engine::persistence::layout::Layout;
use gridstore::engine::{CancelToken, NoProgress, Statistics, Store, Summary, Window};
use gridstore::storage::FolderStorage;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use util::counting::Counting;
use util::utm::{create, value, write};
use util::{gridstore, ok};

const DATA: Window = Window {
    row: 200,
    col: 300,
    rows: 150,
    cols: 170,
};

/// What the level's stored chunks hold, decoded one by one.
fn counted(store: &Store, level: u8) -> Summary {
    let nodata = store.nodata::<f32>();
    store
        .list_chunks(level)
        .unwrap()
        .into_iter()
        .map(|(t, loc, bytes)| {
            let cells = store.read_chunk::<f32>(t, loc).unwrap().unwrap();
            Summary::of_chunk(&cells, nodata, bytes)
        })
        .fold(Summary::EMPTY, Summary::plus)
}

fn verify(store: &Store) -> Statistics {
    let report = store
        .verify::<f32>(&NoProgress, &CancelToken::new())
        .unwrap();
    assert!(report.damage.is_empty(), "{:?}", report.damage);
    report.statistics
}

fn open(path: &Path) -> Store {
    Store::open(Arc::new(FolderStorage::open(path).unwrap())).unwrap()
}

fn open_writer(path: &Path) -> Store {
    Store::open_writer(Arc::new(FolderStorage::open(path).unwrap())).unwrap()
}

/// `info`'s levels cost one read per level and no listing, however many
/// chunks there are, in both layouts.
#[test]
fn level_statistics_read_one_object_per_level() {
    for layout in [Layout::Zarr2, Layout::Zarr3 { shard: 4 }] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.gs");
        write(&create(&path, layout), DATA);
        let storage = Arc::new(Counting::open(&path));
        let store = Store::open(storage.clone()).unwrap();
        let levels = u64::from(store.grid().top_level()) + 1;
        let chunks: u64 = (0..levels as u8)
            .map(|l| store.list_chunks(l).unwrap().len() as u64)
            .sum();
        assert!(chunks > 10 * levels, "{chunks} chunks");
        storage.reads.store(0, Ordering::SeqCst);
        storage.lists.store(0, Ordering::SeqCst);
        let (summaries, kept) = store.level_summaries().unwrap();
        assert!(kept, "{layout:?}");
        // Each level's top node, between two reads of the journal.
        assert_eq!(storage.reads.load(Ordering::SeqCst), levels + 2);
        assert_eq!(storage.lists.load(Ordering::SeqCst), 0);
        for (level, summary) in (0..).zip(&summaries) {
            assert_eq!(*summary, counted(&store, level), "{layout:?} level {level}");
        }
        let base = summaries[0];
        assert_eq!(base.valid, DATA.rows * DATA.cols);
        let corner = |r, c| f64::from(value(DATA.row + r, DATA.col + c));
        assert_eq!(
            base.range(),
            Some((corner(0, 0), corner(DATA.rows - 1, DATA.cols - 1)))
        );
    }
}

/// Overwriting the greatest value (with a low one) and clearing the rows
/// of the least leave the next ones, at every level.
#[test]
fn an_extreme_overwritten_or_cleared_gives_way_to_the_next() {
    for layout in [Layout::Zarr2, Layout::Zarr3 { shard: 2 }] {
        let dir = tempfile::tempdir().unwrap();
        let store = create(&dir.path().join("s.gs"), layout);
        write(&store, DATA);
        let last = Window {
            row: DATA.row + DATA.rows - 1,
            col: DATA.col + DATA.cols - 1,
            rows: 1,
            cols: 1,
        };
        // The cleared rows hold whole chunks (removed) and parts of others.
        let cleared = 40;
        let low = ndarray::Array3::from_elem((1, 1, 1), value(DATA.row + cleared, DATA.col));
        store.write(None, last, low.view()).unwrap();
        let first_rows = Window {
            rows: cleared,
            ..DATA
        };
        let e = store.grid().window_extent(0, &first_rows);
        store
            .clear::<f32>(0, &e, &NoProgress, &CancelToken::new())
            .unwrap();
        let base = store.level_statistics().unwrap().unwrap()[0];
        let next_max = f64::from(value(last.row, last.col - 1));
        let next_min = f64::from(value(DATA.row + cleared, DATA.col));
        assert_eq!(base.range(), Some((next_min, next_max)), "{layout:?}");
        assert_eq!(base.valid, (DATA.rows - cleared) * DATA.cols);
        for level in 0..=store.grid().top_level() {
            assert_eq!(
                store.level_statistics().unwrap().unwrap()[level as usize],
                counted(&store, level),
                "{layout:?} level {level}"
            );
        }
        assert_eq!(verify(&store), Statistics::Checked);
    }
}

/// A writer that does not keep the statistics (an older gridstore drops
/// the journal's field) retires them: nothing reads stale ones, `info`
/// counts from a listing and says so, verify says they are not kept, and
/// `repair` rebuilds exactly the trees an incremental writer keeps.
#[test]
fn a_writer_that_does_not_keep_them_retires_them_until_repair() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.gs");
    let clean = dir.path().join("clean.gs");
    let second = Window {
        row: 400,
        col: 100,
        rows: 40,
        cols: 60,
    };
    let store = create(&path, Layout::Zarr2);
    write(&store, DATA);
    drop(store);
    // What an older gridstore's rewrite of the journal leaves.
    let journal = path.join("journal/.zattrs");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    doc["gridstore_journal"]
        .as_object_mut()
        .unwrap()
        .remove("statistics");
    std::fs::write(&journal, serde_json::to_vec(&doc).unwrap()).unwrap();
    write(&open_writer(&path), second);
    let store = open(&path);
    assert_eq!(store.level_statistics().unwrap(), None);
    assert_eq!(verify(&store), Statistics::NotKept);
    let info = ok(&["info", path.to_str().unwrap()]);
    assert!(info.contains("statistics: not available"), "{info}");
    let verified = ok(&["verify", path.to_str().unwrap()]);
    assert!(
        verified.contains("`gridstore repair` rebuilds them"),
        "{verified}"
    );
    drop(store);

    let repaired = ok(&["repair", path.to_str().unwrap()]);
    assert!(
        repaired.contains("per-level statistics rebuilt"),
        "{repaired}"
    );
    let store = open(&path);
    assert_eq!(verify(&store), Statistics::Checked);
    let incremental = create(&clean, Layout::Zarr2);
    write(&incremental, DATA);
    write(&incremental, second);
    let nodes = |p: &Path| util::snapshot(&p.join("statistics"));
    let strip = |p: &Path| {
        nodes(p)
            .into_iter()
            .map(|(k, v)| (k.strip_prefix(p).unwrap().to_path_buf(), v))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&path), strip(&clean));
    // Kept again, the next write keeps them.
    drop(store);
    write(&open_writer(&path), Window { row: 10, ..second });
    assert_eq!(verify(&open(&path)), Statistics::Checked);
}

/// A damaged node is named by verify with its reason; writes go on
/// (retiring the statistics), and `repair --statistics` rebuilds them.
#[test]
fn a_damaged_node_is_named_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.gs");
    write(&create(&path, Layout::Zarr3 { shard: 4 }), DATA);
    let node = path.join("statistics/0/0/0");
    let mut bytes = std::fs::read(&node).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&node, &bytes).unwrap();
    let out = gridstore(&["verify", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("damaged statistics/0/0/0: statistics node fails its CRC-32C"),
        "{text}"
    );
    assert!(text.contains("gridstore repair --statistics"), "{text}");
    // Info still answers: counted from a listing.
    let info = ok(&["info", path.to_str().unwrap()]);
    assert!(info.contains("statistics: not available"), "{info}");
    write(&open_writer(&path), Window { row: 0, ..DATA });
    assert_eq!(open(&path).level_statistics().unwrap(), None);
    let repaired = ok(&["repair", path.to_str().unwrap(), "--statistics"]);
    assert!(
        repaired.contains("per-level statistics rebuilt"),
        "{repaired}"
    );
    assert_eq!(verify(&open(&path)), Statistics::Checked);
}

/// On a real DEM, `info --json` gives level 0 the cell count, minimum and
/// maximum GDAL reads from the source.
#[test]
fn info_matches_what_gdal_reads_from_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_olinda_dem_utm25s.tif");
    let store = dir.path().join("dem.gs");
    let (store, src) = (store.to_str().unwrap(), src.to_str().unwrap());
    ok(&["create", store, "--like", src, "--layout", "zarr3"]);
    ok(&["ingest", store, src]);
    let info: serde_json::Value = serde_json::from_str(&ok(&["info", store, "--json"])).unwrap();
    assert_eq!(info["statistics_kept"], true);
    let base = &info["levels"][0];
    let grid = util::read(src, None);
    let data: Vec<f64> = grid.bands[0]
        .iter()
        .copied()
        .filter(|v| Some(*v) != grid.nodata)
        .collect();
    assert_eq!(base["valid"], data.len() as u64);
    let min = data.iter().copied().fold(f64::INFINITY, f64::min);
    let max = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(base["min"].as_f64(), Some(min));
    assert_eq!(base["max"].as_f64(), Some(max));
    let text = ok(&["info", store]);
    assert!(text.contains("valid cells"), "{text}");
}

/// A clear that empties the levels above its blocks, interrupted after
/// they were recomputed but before their statistics were: the next writer
/// finishes it, and the statistics lose the removed aggregates.
#[test]
fn a_write_interrupted_before_its_statistics_is_finished_by_the_next_writer() {
    use gridstore::engine::JobEvent;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.gs");
    let patch = Window {
        row: 100,
        col: 100,
        rows: 8,
        cols: 8,
    };
    write(&create(&path, Layout::Zarr2), patch);
    let store = open_writer(&path);
    let e = store.grid().window_extent(0, &patch);
    // Dies when the levels above the blocks have landed.
    let dies = |event: JobEvent| {
        if let JobEvent::Chunks {
            done: true, levels, ..
        } = event
        {
            assert!(levels[0] == 0, "killed");
        }
    };
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.clear::<f32>(0, &e, &dies, &CancelToken::new())
    }));
    assert!(killed.is_err());
    drop(store);
    assert_eq!(open(&path).pending_writes().unwrap().len(), 1);
    let store = open_writer(&path);
    assert!(store.pending_writes().unwrap().is_empty());
    assert_eq!(verify(&store), Statistics::Checked);
    let levels = store.level_statistics().unwrap().unwrap();
    assert!(levels.iter().all(|s| *s == Summary::EMPTY), "{levels:?}");
}
