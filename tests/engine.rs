//! The engine through its library API, on both backends: after any sequence
//! of writes and clears, every level equals the aggregation of the level
//! below it, recomputed here independently of the engine's kernels.
#![allow(clippy::unwrap_used)]

use gridstore::engine::persistence::layout::Layout;
use gridstore::engine::{
    Aggregator, CancelToken, Codec, Crs, DType, Extent, NoProgress, Resampling, Store, Structure,
    TimeAxis, Window,
};
use gridstore::storage::{Backend, DynStorage, MemoryStorage};
use ndarray::Array3;
use proptest::prelude::*;
use std::sync::Arc;

const NODATA: f64 = -1.0;

fn structure(aggregate: Aggregator, dtype: DType, codec: Codec) -> Structure {
    Structure {
        crs: Crs {
            wkt: "LOCAL_CS[\"test\"]".into(),
            epsg: None,
            name: "test".into(),
        },
        anchor: [0.0, 0.0],
        cell_size: [1.0, 1.0],
        chunk: [4, 4],
        domain_levels: 4,
        dtype,
        nodata: Some(if dtype == DType::U8 { 255.0 } else { NODATA }),
        codec,
        aggregate,
        resampling: Resampling::Average,
        bands: None,
        time: None,
        time_levels: Vec::new(),
    }
}

/// The whole level as f64, nodata as None.
fn level(store: &Store, l: u8) -> (Vec<Option<f64>>, usize) {
    let w = store.grid().full_window(l);
    let s = store.structure();
    let values: Vec<Option<f64>> = gridstore::with_dtype!(store.structure().dtype, T => {
        let a = store.read_window::<T>(0, l, &w).unwrap();
        a.iter().map(|v| {
            let f = gridstore::engine::Element::to_f64(*v);
            (!s.is_nodata(f)).then_some(f)
        }).collect()
    });
    (values, w.cols as usize)
}

/// The reference definition of docs/FORMAT.md, written naively.
fn reference(
    children: &[Option<f64>],
    a: Aggregator,
    child_level: u8,
    dtype: DType,
    nodata: Option<f64>,
) -> Option<f64> {
    let valid: Vec<f64> = children.iter().flatten().copied().collect();
    if valid.is_empty() {
        return None;
    }
    let round = |v: f64| if dtype.is_float() { v } else { v.round() };
    let exact = match a {
        Aggregator::Mean => round(valid.iter().sum::<f64>() / valid.len() as f64),
        Aggregator::Sum => valid.iter().sum(),
        Aggregator::Count if child_level == 0 => valid.len() as f64,
        Aggregator::Count => valid.iter().sum(),
        Aggregator::Min => valid.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregator::Max => valid.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregator::Nearest => valid[0],
        Aggregator::Mode => {
            let mut best = (valid[0], 0);
            for v in &valid {
                let n = valid.iter().filter(|x| *x == v).count();
                if n > best.1 {
                    best = (*v, n);
                }
            }
            best.0
        }
    };
    // Narrow: integers saturate; a result equal to nodata moves one step
    // towards the exact value (floats are compared with a tolerance).
    let (lo, hi) = dtype.range();
    let narrowed = if dtype.is_float() {
        exact
    } else {
        exact.clamp(lo, hi)
    };
    let Some(nodata) = nodata.filter(|n| !dtype.is_float() && narrowed == *n) else {
        return Some(narrowed);
    };
    let step = if exact > nodata || nodata == lo {
        1.0
    } else {
        -1.0
    };
    let stepped = narrowed + step;
    Some(if stepped > hi || stepped < lo {
        narrowed - step
    } else {
        stepped
    })
}

fn check_pyramid(store: &Store) {
    let a = store.structure().aggregate;
    let dtype = store.structure().dtype;
    for l in 1..=store.grid().top_level() {
        let (below, bc) = level(store, l - 1);
        let (here, hc) = level(store, l);
        for r in 0..here.len() / hc {
            for c in 0..hc {
                let kids: Vec<Option<f64>> = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|(dr, dc)| below[(2 * r + dr) * bc + 2 * c + dc])
                    .collect();
                let expected = reference(&kids, a, l - 1, dtype, store.structure().nodata);
                let got = here[r * hc + c];
                match (expected, got) {
                    (None, None) => {}
                    (Some(e), Some(g)) => {
                        let tol = if dtype.is_float() {
                            1e-5 * e.abs().max(1.0)
                        } else {
                            0.0
                        };
                        assert!(
                            (e - g).abs() <= tol,
                            "{a:?} level {l} cell {r},{c}: expected {e}, got {g}"
                        );
                    }
                    _ => panic!("{a:?} level {l} cell {r},{c}: expected {expected:?}, got {got:?}"),
                }
            }
        }
    }
    let report =
        gridstore::with_dtype!(dtype, T => store.verify::<T>(&NoProgress, &CancelToken::new()))
            .unwrap();
    assert!(report.damage.is_empty(), "{:?}", report.damage);
    assert_eq!(report.statistics, gridstore::engine::Statistics::Checked);
    // The statistics kept, read in one object per level, are those of the
    // cells and chunks, counted here from scratch.
    let kept = store.level_statistics().unwrap().expect("statistics kept");
    for (l, summary) in (0..).zip(&kept) {
        let chunks = store.list_chunks(l).unwrap();
        assert_eq!(summary.chunks, chunks.len() as u64, "level {l} chunks");
        assert_eq!(
            summary.bytes,
            chunks.iter().map(|c| c.2).sum::<u64>(),
            "level {l} bytes"
        );
        // The stored chunks' cells (without nodata, absent chunks read as
        // 0 but hold nothing)...
        let data: Vec<f64> = gridstore::with_dtype!(dtype, T => chunks.iter().flat_map(|&(t, loc, _)| {
            let cells = store.read_chunk::<T>(t, loc).unwrap().unwrap();
            let nodata = store.nodata::<T>();
            cells.iter().filter(|v| gridstore::engine::Element::is_valid(**v, nodata))
                .map(|v| gridstore::engine::Element::to_f64(*v)).collect::<Vec<_>>()
        }).collect());
        // ...are the level's data cells, where nodata marks the rest.
        if store.structure().nodata.is_some() {
            let (cells, _) = level(store, l);
            assert_eq!(
                cells.iter().flatten().count(),
                data.len(),
                "level {l} data cells"
            );
        }
        assert_eq!(summary.valid, data.len() as u64, "level {l} valid cells");
        let range = data.iter().fold(None, |r: Option<(f64, f64)>, &v| {
            Some(r.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        });
        assert_eq!(summary.range(), range, "level {l} min and max");
    }
    // The data's window the root keeps is the one the chunks hold.
    let (kept, found) = gridstore::with_dtype!(dtype, T => (
        store.data_window::<T>(0).unwrap(),
        store.scan_data_window::<T>(0).unwrap(),
    ));
    assert_eq!(kept, found, "the kept data window");
}

#[derive(Debug, Clone)]
enum Op {
    Write {
        row: u64,
        col: u64,
        rows: u64,
        cols: u64,
        seed: u32,
        holes: bool,
    },
    Clear {
        row: u64,
        col: u64,
        rows: u64,
        cols: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..60, 0u64..60, 1u64..20, 1u64..20, any::<u32>(), any::<bool>())
            .prop_map(|(row, col, rows, cols, seed, holes)| Op::Write { row, col, rows, cols, seed, holes }),
        1 => (0u64..60, 0u64..60, 1u64..30, 1u64..30).prop_map(|(row, col, rows, cols)| Op::Clear { row, col, rows, cols }),
    ]
}

fn apply(store: &Store, op: &Op) {
    let domain = 64;
    match *op {
        Op::Write {
            row,
            col,
            rows,
            cols,
            seed,
            holes,
        } => {
            let rows = rows.min(domain - row);
            let cols = cols.min(domain - col);
            let n = (rows * cols) as usize;
            gridstore::with_dtype!(store.structure().dtype, T => {
                // Holes: nodata cells, or, without nodata, cells of 0.
                let hole = store.nodata::<T>().fill();
                let values: Vec<T> = (0..n)
                    .map(|i| {
                        let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                        if holes && h % 5 == 0 { hole } else { <T as gridstore::engine::Element>::from_f64(f64::from(h % 7)) }
                    })
                    .collect();
                let data = Array3::from_shape_vec((1, rows as usize, cols as usize), values).unwrap();
                store.write(None, Window { row, col, rows, cols }, data.view()).unwrap();
            });
        }
        Op::Clear {
            row,
            col,
            rows,
            cols,
        } => {
            let g = store.grid();
            let w = Window {
                row,
                col,
                rows: rows.min(domain - row),
                cols: cols.min(domain - col),
            };
            let e = g.window_extent(0, &w);
            gridstore::with_dtype!(store.structure().dtype, T => store.clear::<T>(0, &e, &NoProgress, &CancelToken::new())).unwrap();
        }
    }
}

fn memory() -> DynStorage {
    Arc::new(MemoryStorage::new())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn every_level_is_the_aggregation_of_the_level_below(
        ops in proptest::collection::vec(op(), 1..8),
        aggregate in prop::sample::select(Aggregator::ALL.to_vec()),
        dtype in prop::sample::select(vec![DType::F32, DType::I16, DType::U8]),
        without_nodata in any::<bool>(),
        layout in prop::sample::select(vec![Layout::Zarr2, Layout::Zarr3 { shard: 2 }, Layout::Zarr3 { shard: 4 }]),
    ) {
        let mut s = structure(aggregate, dtype, Codec::default());
        // A store where every value is data (integers; count needs nodata).
        if without_nodata && !dtype.is_float() && aggregate != Aggregator::Count {
            s.nodata = None;
        }
        let store = Store::create_with_layout(memory(), s, layout).unwrap();
        for op in &ops {
            apply(&store, op);
        }
        check_pyramid(&store);
    }
}

#[test]
fn every_backend_and_every_codec_keep_the_pyramid() {
    for (backend, codec) in [
        (Backend::Folder, Codec::Zstd { level: 3 }),
        (Backend::Folder, Codec::Lz4),
        (Backend::Folder, Codec::None),
        (Backend::Packed, Codec::Zstd { level: 3 }),
        (Backend::Packed, Codec::None),
        (Backend::Hdf5, Codec::Zstd { level: 3 }),
        (Backend::Hdf5, Codec::Lz4),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.gs");
        let storage: DynStorage = gridstore::storage::create(&path, backend).unwrap();
        let store = Store::create(
            storage.clone(),
            structure(Aggregator::Mean, DType::F32, codec),
        )
        .unwrap();
        apply(
            &store,
            &Op::Write {
                row: 3,
                col: 5,
                rows: 40,
                cols: 30,
                seed: 7,
                holes: true,
            },
        );
        apply(
            &store,
            &Op::Clear {
                row: 10,
                col: 10,
                rows: 5,
                cols: 9,
            },
        );
        check_pyramid(&store);
        drop((store, storage));
        // Opened afresh, as another process would.
        let reopened = Store::open(gridstore::storage::open(&path).unwrap()).unwrap();
        check_pyramid(&reopened);
    }
}

#[test]
fn master_chunk_is_the_lowest_chunk_covering_all_data() {
    let store = Store::create(
        memory(),
        structure(Aggregator::Max, DType::F32, Codec::default()),
    )
    .unwrap();
    assert_eq!(store.master_chunk(0).unwrap(), None);
    // One cell: the master is its base chunk.
    apply(
        &store,
        &Op::Write {
            row: 33,
            col: 33,
            rows: 1,
            cols: 1,
            seed: 1,
            holes: false,
        },
    );
    let m = store.master_chunk(0).unwrap().unwrap();
    assert_eq!((m.level, m.row, m.col), (0, 8, 8));
    // Data across the domain centre: the master is the root.
    apply(
        &store,
        &Op::Write {
            row: 30,
            col: 30,
            rows: 1,
            cols: 1,
            seed: 1,
            holes: false,
        },
    );
    assert_eq!(store.master_chunk(0).unwrap().unwrap(), store.grid().root());
}

#[test]
fn reads_resample_from_the_right_level() {
    let store = Store::create(
        memory(),
        structure(Aggregator::Mean, DType::F32, Codec::default()),
    )
    .unwrap();
    let values: Vec<f32> = (0..64).map(|i| i as f32).collect();
    let data = Array3::from_shape_vec((1, 8, 8), values).unwrap();
    store
        .write(
            None,
            Window {
                row: 32,
                col: 32,
                rows: 8,
                cols: 8,
            },
            data.view(),
        )
        .unwrap();
    // 2x2 cells → level 1, copied unchanged.
    let e = Extent::new(0.0, -8.0, 8.0, 0.0).unwrap();
    let r = store
        .read_extent::<f32>(0, &e, [2.0, 2.0], Resampling::Nearest)
        .unwrap();
    assert_eq!(r.level, 1);
    assert_eq!(r.data[[0, 0, 0]], (0.0 + 1.0 + 8.0 + 9.0) / 4.0);
    // 3x3 cells: level 1 is the coarsest at least as fine; average resamples it.
    let r = store
        .read_extent::<f32>(0, &e, [3.0, 3.0], Resampling::Average)
        .unwrap();
    assert_eq!((r.level, r.data.dim()), (1, (1, 3, 3)));
    // Area-weighted from level 1: target cell 0 spans level-1 cells 0 (whole)
    // and 1 (half) on each axis, whose centres sit at base rows/cols 0.5 and 2.5.
    let centre = (1.0 * 0.5 + 0.5 * 2.5) / 1.5;
    let expected = (8.0 * centre + centre) as f32;
    assert!(
        (r.data[[0, 0, 0]] - expected).abs() < 1e-4,
        "{} vs {expected}",
        r.data[[0, 0, 0]]
    );
    // Bilinear at a cell centre is that cell's value; between centres it interpolates.
    let v = store
        .value_at::<f32>(0, 0, (0.5, -0.5), 0, Resampling::Bilinear)
        .unwrap();
    assert_eq!(v, Some(0.0));
    let v = store
        .value_at::<f32>(0, 0, (1.0, -1.0), 0, Resampling::Bilinear)
        .unwrap();
    assert_eq!(v, Some((0.0 + 1.0 + 8.0 + 9.0) / 4.0));
    assert_eq!(
        store
            .value_at::<f32>(0, 0, (-3.5, 0.5), 0, Resampling::Nearest)
            .unwrap(),
        None
    );
}

#[test]
fn time_axis_keeps_one_map_per_instant_at_every_level() {
    let mut s = structure(Aggregator::Mean, DType::F32, Codec::default());
    s.time = Some(TimeAxis::Irregular);
    let store = Store::create(memory(), s).unwrap();
    let w = Window {
        row: 32,
        col: 32,
        rows: 4,
        cols: 4,
    };
    for (instant, value) in [(1_000_000, 1.0f32), (500, 5.0), (2_000_000, 9.0)] {
        let data = Array3::from_elem((1, 4, 4), value);
        store.write(Some(instant), w, data.view()).unwrap();
    }
    assert!(
        store
            .write(None, w, Array3::from_elem((1, 4, 4), 1.0f32).view())
            .is_err(),
        "time is required"
    );
    for (instant, value) in [(1_000_000, 1.0f32), (500, 5.0), (2_000_000, 9.0)] {
        let t = store.time_index(Some(instant), false).unwrap();
        for level in 0..=store.grid().top_level() {
            let f = 1u64 << level;
            let cell = Window {
                row: 32 / f,
                col: 32 / f,
                rows: 1,
                cols: 1,
            };
            assert_eq!(
                store.read_window::<f32>(t, level, &cell).unwrap()[[0, 0, 0]],
                value,
                "t {instant} level {level}"
            );
        }
    }
    assert!(store.time_index(Some(7), false).is_err());
    assert_eq!(store.time_state().instants, vec![1_000_000, 500, 2_000_000]);
    // The statistics cover every instant: 16 cells each, 1 to 9.
    let report = store
        .verify::<f32>(&NoProgress, &CancelToken::new())
        .unwrap();
    assert_eq!(report.statistics, gridstore::engine::Statistics::Checked);
    assert!(report.damage.is_empty(), "{:?}", report.damage);
    let base = store.level_statistics().unwrap().unwrap()[0];
    assert_eq!(
        (base.chunks, base.valid, base.range()),
        (3, 48, Some((1.0, 9.0)))
    );
    // A range returns exactly the instants inside it, in time order.
    let e = store.grid().window_extent(0, &w);
    let series = store
        .read_series::<f32>((0, 1_500_000), &e, [2.0, 2.0], Resampling::Average)
        .unwrap();
    let got: Vec<(i64, f32)> = series
        .iter()
        .map(|(i, r)| (*i, r.data[[0, 0, 0]]))
        .collect();
    assert_eq!(got, vec![(500, 5.0), (1_000_000, 1.0)]);
}

#[test]
fn a_newer_format_is_refused_with_a_clear_error() {
    let storage = memory();
    drop(
        Store::create(
            storage.clone(),
            structure(Aggregator::Mean, DType::F32, Codec::default()),
        )
        .unwrap(),
    );
    let key = gridstore::storage::StoreKey::new(".zattrs").unwrap();
    let text = String::from_utf8(storage.get(&key).unwrap().unwrap()).unwrap();
    storage
        .put(
            &key,
            text.replace("\"format_version\": 4", "\"format_version\": 99")
                .as_bytes(),
        )
        .unwrap();
    let err = Store::open(storage).unwrap_err().to_string();
    assert!(
        err.contains("version 99") && err.contains("upgrade"),
        "{err}"
    );
}

#[test]
fn a_cancelled_clear_changes_nothing_and_writes_serialise() {
    let store = Arc::new(
        Store::create(
            memory(),
            structure(Aggregator::Mean, DType::F32, Codec::default()),
        )
        .unwrap(),
    );
    apply(
        &store,
        &Op::Write {
            row: 0,
            col: 0,
            rows: 64,
            cols: 64,
            seed: 3,
            holes: false,
        },
    );
    let (before, _) = level(&store, 0);
    let cancel = CancelToken::new();
    cancel.cancel();
    let e = store.grid().window_extent(
        0,
        &Window {
            row: 0,
            col: 0,
            rows: 64,
            cols: 64,
        },
    );
    assert!(store.clear::<f32>(0, &e, &NoProgress, &cancel).is_err());
    assert_eq!(
        level(&store, 0).0,
        before,
        "a cancelled clear leaves every cell"
    );
    assert!(store.pending_writes().unwrap().is_empty());
    // Writers on several threads of one process take turns.
    std::thread::scope(|scope| {
        for seed in 0..4u32 {
            let store = store.clone();
            scope.spawn(move || {
                apply(
                    &store,
                    &Op::Write {
                        row: 10,
                        col: 10,
                        rows: 30,
                        cols: 30,
                        seed,
                        holes: true,
                    },
                )
            });
        }
    });
    check_pyramid(&store);
    assert!(store.pending_writes().unwrap().is_empty());
}

/// The contents token (what cached results are keyed by) changes with
/// every write that goes through, not with one that rolls back, and a
/// `Store` whose view another writer made stale has none until reopened.
#[test]
fn the_state_token_follows_the_contents_and_goes_when_a_view_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.gs");
    let storage = gridstore::storage::create(&path, Backend::Folder).unwrap();
    let writer = Store::create(
        storage,
        structure(Aggregator::Mean, DType::F32, Codec::default()),
    )
    .unwrap();
    let first = writer
        .state_token()
        .unwrap()
        .expect("a new store has a token");
    let reader = Store::open(gridstore::storage::open(&path).unwrap()).unwrap();
    assert_eq!(
        reader.state_token().unwrap().as_deref(),
        Some(first.as_str())
    );
    let write = Op::Write {
        row: 1,
        col: 2,
        rows: 6,
        cols: 5,
        seed: 3,
        holes: false,
    };
    apply(&writer, &write);
    let second = writer.state_token().unwrap().unwrap();
    assert_ne!(second, first);
    // The reader read its metadata before the write: no token to key by.
    assert_eq!(reader.state_token().unwrap(), None);
    let fresh = Store::open(gridstore::storage::open(&path).unwrap()).unwrap();
    assert_eq!(fresh.state_token().unwrap(), Some(second.clone()));
    // A write that rolls back (its reader fails, after looking at the
    // token mid-write) leaves the token as it was.
    let seen_mid_write = std::sync::Mutex::new(Vec::new());
    let failing = |_: Window| -> Result<Array3<f32>, &'static str> {
        seen_mid_write
            .lock()
            .unwrap()
            .push(fresh.state_token().unwrap());
        Err("the source broke")
    };
    let write = gridstore::engine::BaseWrite {
        instant: None,
        window: Window {
            row: 0,
            col: 0,
            rows: 4,
            cols: 4,
        },
        cells: gridstore::engine::Cells::Read(failing),
    };
    let result = writer.write_base(write, &NoProgress, &CancelToken::new());
    assert!(matches!(
        result,
        Err(gridstore::engine::WriteError::Source("the source broke"))
    ));
    assert_eq!(
        *seen_mid_write.lock().unwrap(),
        vec![None],
        "a write is under way"
    );
    assert_eq!(writer.state_token().unwrap(), Some(second.clone()));
    assert_eq!(fresh.state_token().unwrap(), Some(second));
}
