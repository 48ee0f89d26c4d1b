//! Time levels: after any sequence of writes, re-writes and clears of
//! instants, every stored period map equals the aggregate of the instants
//! inside it (computed here cell by cell with `by_period`, an independent
//! fold over the values), its pyramid is exact, and a writer killed while
//! it rewrites the period maps leaves a store whose periods match its
//! instants after recovery.
#![allow(clippy::unwrap_used)]

mod util;

use gridstore::engine::grid::period::{TimeLevel, by_period};
use gridstore::engine::grid::time::parse_instant;
use gridstore::engine::persistence::layout::Layout;
use gridstore::engine::{
    Aggregator, CancelToken, Codec, Crs, DType, JobEvent, NoProgress, Resampling, Store, Structure,
    TimeAxis, Window,
};
use gridstore::storage::{FolderStorage, MemoryStorage};
use ndarray::Array3;
use proptest::prelude::*;
use std::sync::Arc;

const NODATA: f32 = -9999.0;

/// Instants across two days, two months and two years, in no order.
const INSTANTS: [&str; 7] = [
    "2024-01-01T05:00",
    "2023-12-31T23:00",
    "2024-01-01T00:00",
    "2024-01-02T00:00",
    "2024-02-15T12:00",
    "2025-03-01T00:00",
    "2024-01-07T10:00",
];

fn structure(aggregate: Aggregator) -> Structure {
    Structure {
        crs: Crs {
            wkt: "LOCAL_CS[\"test\"]".into(),
            epsg: None,
            name: "test".into(),
        },
        anchor: [1000.0, 2000.0],
        cell_size: [10.0, 10.0],
        chunk: [4, 4],
        domain_levels: 4,
        dtype: DType::F32,
        nodata: Some(f64::from(NODATA)),
        codec: Codec::default(),
        aggregate,
        resampling: Resampling::Average,
        bands: None,
        time: Some(TimeAxis::Irregular),
        time_levels: TimeLevel::ALL.to_vec(),
    }
}

/// One step of a sequence: a write (or re-write) of cells, or a clear.
#[derive(Debug, Clone)]
enum Step {
    Write {
        instant: usize,
        window: Window,
        values: Vec<f32>,
    },
    Clear {
        instant: usize,
        window: Window,
    },
}

fn window() -> impl Strategy<Value = Window> {
    (28u64..32, 28u64..32, 2u64..7, 2u64..7).prop_map(|(row, col, rows, cols)| Window {
        row,
        col,
        rows,
        cols,
    })
}

fn step() -> impl Strategy<Value = Step> {
    let write = (0..INSTANTS.len(), window()).prop_flat_map(|(instant, window)| {
        // Small whole numbers: sums and means are exact in f32, so the
        // order of the fold cannot hide a wrong one.
        let cell = prop_oneof![1 => Just(NODATA), 3 => (0i16..6).prop_map(f32::from)];
        proptest::collection::vec(cell, (window.rows * window.cols) as usize).prop_map(
            move |values| Step::Write {
                instant,
                window,
                values,
            },
        )
    });
    let clear =
        (0..INSTANTS.len(), window()).prop_map(|(instant, window)| Step::Clear { instant, window });
    prop_oneof![3 => write, 1 => clear]
}

fn apply(store: &Store, step: &Step) {
    match step {
        Step::Write {
            instant,
            window,
            values,
        } => {
            let cells = Array3::from_shape_vec(
                (1, window.rows as usize, window.cols as usize),
                values.clone(),
            )
            .unwrap();
            let at = parse_instant(INSTANTS[*instant]).unwrap();
            store.write(Some(at), *window, cells.view()).unwrap();
        }
        Step::Clear { instant, window } => {
            let at = parse_instant(INSTANTS[*instant]).unwrap();
            // An instant never written holds nothing to clear.
            let Ok(t) = store.time_index(Some(at), false) else {
                return;
            };
            let extent = store.grid().window_extent(0, window);
            store
                .clear::<f32>(t, &extent, &NoProgress, &CancelToken::new())
                .unwrap();
        }
    }
}

/// Every period map of every time level against `by_period` over the
/// instants' cells, and `verify` (the pyramids, and the period maps
/// against the store's own recomputation) clean.
fn check(store: &Store) -> Result<(), TestCaseError> {
    let all = Window {
        row: 24,
        col: 24,
        rows: 16,
        cols: 16,
    };
    let instants = store.instants_between(i64::MIN, i64::MAX);
    let maps: Vec<Array3<f32>> = instants
        .iter()
        .map(|(t, _)| store.read_window::<f32>(*t, 0, &all).unwrap())
        .collect();
    for &level in store.time_levels() {
        let periods = store.period_maps(level).unwrap();
        let mut starts: Vec<i64> = instants
            .iter()
            .map(|(_, i)| level.period().start(*i))
            .collect();
        starts.dedup();
        prop_assert_eq!(periods.time_state().length as usize, starts.len());
        for start in starts {
            let t = periods.time_index(Some(start), false).unwrap();
            let stored = periods.read_window::<f32>(t, 0, &all).unwrap();
            for ((b, r, c), got) in stored.indexed_iter() {
                let series: Vec<(i64, Option<f64>)> = instants
                    .iter()
                    .zip(&maps)
                    .filter(|((_, i), _)| level.period().start(*i) == start)
                    .map(|((_, i), m)| {
                        let v = m[[b, r, c]];
                        (*i, (v != NODATA).then_some(f64::from(v)))
                    })
                    .collect();
                let expected = by_period(&series, level.period(), store.structure().aggregate)
                    .first()
                    .and_then(|p| p.value);
                #[allow(clippy::cast_possible_truncation)]
                let expected = expected.map_or(NODATA, |v| v as f32);
                prop_assert_eq!(
                    *got,
                    expected,
                    "{} {} at ({}, {})",
                    level,
                    level.period().label(start),
                    r,
                    c
                );
            }
        }
    }
    let report = store
        .verify::<f32>(&NoProgress, &CancelToken::new())
        .unwrap();
    prop_assert!(report.damage.is_empty(), "{:?}", report.damage);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Adds, re-writes and clears of instants, with every aggregator:
    /// every period equals the aggregate of its instants afterwards.
    #[test]
    fn every_period_is_the_aggregate_of_its_instants(
        aggregate in proptest::sample::select(Aggregator::ALL.to_vec()),
        steps in proptest::collection::vec(step(), 2..9),
    ) {
        let store = Store::create(Arc::new(MemoryStorage::new()), structure(aggregate)).unwrap();
        for step in &steps {
            apply(&store, step);
        }
        check(&store)?;
    }
}

/// An instant written after every other of its periods, where it held
/// nothing, is taken into them in one step (the common case: one more
/// hour): with every aggregator, the periods are still the aggregate of
/// their instants, over cells with data in one, both or neither map.
#[test]
fn a_later_instant_is_taken_in_one_step() {
    for aggregate in Aggregator::ALL {
        let store = Store::create(Arc::new(MemoryStorage::new()), structure(aggregate)).unwrap();
        let window = |row, col| Window {
            row,
            col,
            rows: 4,
            cols: 4,
        };
        let values = |seed: u8| {
            (0..16u8)
                .map(|i| match (i + seed) % 5 {
                    0 => NODATA,
                    k => f32::from(k * (seed + 1)),
                })
                .collect::<Vec<f32>>()
        };
        // 2023-12-31T23:00, then 2024-01-01T00:00 and 05:00: each later
        // than the ones before in its day, month and year.
        for (k, (instant, row)) in [(1, 28), (2, 30), (0, 29)].into_iter().enumerate() {
            apply(
                &store,
                &Step::Write {
                    instant,
                    window: window(row, 29),
                    values: values(k as u8),
                },
            );
        }
        check(&store).unwrap();
    }
}

/// The stores of the time levels are Zarr groups of their own under
/// `periods/`, in the store's layout, and the store names them; a mean's
/// sums are a store beside its maps.
#[test]
fn time_levels_are_stores_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.gs");
    let mut s = structure(Aggregator::Sum);
    s.time_levels = vec![TimeLevel::Day, TimeLevel::Year];
    let store = Store::create_with_layout(
        Arc::new(FolderStorage::create(&path).unwrap()),
        s,
        Layout::Zarr3 { shard: 2 },
    )
    .unwrap();
    assert_eq!(store.format_version(), 4);
    assert!(path.join("periods/day/zarr.json").exists());
    assert!(path.join("periods/year/zarr.json").exists());
    assert!(!path.join("periods/month").exists());
    assert!(!path.join("periods/day-sums").exists(), "a sum steps alone");
    assert!(store.period_maps(TimeLevel::Month).is_none());
    let day = store.period_maps(TimeLevel::Day).unwrap();
    assert_eq!(day.period_level(), Some(TimeLevel::Day));
    assert_eq!(day.structure().time, Some(TimeAxis::Irregular));
    // Damaged: a time level's store gone is named when the store opens.
    drop(store);
    std::fs::remove_dir_all(path.join("periods/year")).unwrap();
    let e = Store::open(Arc::new(FolderStorage::open(&path).unwrap())).unwrap_err();
    assert!(e.to_string().contains("year maps"), "{e}");

    // A mean keeps its periods' sums and counts beside its maps: two f64
    // bands per band, at level 0 only (nothing reads them above it).
    let path = dir.path().join("m.gs");
    let mut s = structure(Aggregator::Mean);
    s.time_levels = vec![TimeLevel::Day];
    let store = Store::create(Arc::new(FolderStorage::create(&path).unwrap()), s).unwrap();
    assert!(path.join("periods/day-sums/.zattrs").exists());
    let cells = Array3::from_elem((1, 2, 2), 1.5f32);
    let window = Window {
        row: 30,
        col: 30,
        rows: 2,
        cols: 2,
    };
    store
        .write(
            Some(parse_instant("2024-01-01").unwrap()),
            window,
            cells.view(),
        )
        .unwrap();
    let sums = Store::open(Arc::new(
        FolderStorage::open(path.join("periods/day-sums")).unwrap(),
    ))
    .unwrap();
    assert_eq!(sums.structure().band_count(), 2);
    assert_eq!(sums.list_chunks(0).unwrap().len(), 1);
    assert!(sums.list_chunks(1).unwrap().is_empty(), "no pyramid");
    let day = store.period_maps(TimeLevel::Day).unwrap();
    assert_eq!(day.list_chunks(1).unwrap().len(), 1, "the maps' pyramid");
    let report = store
        .verify::<f32>(&NoProgress, &CancelToken::new())
        .unwrap();
    assert!(report.damage.is_empty(), "{:?}", report.damage);
    drop((store, sums));
    std::fs::remove_dir_all(path.join("periods/day-sums")).unwrap();
    let e = Store::open(Arc::new(FolderStorage::open(&path).unwrap())).unwrap_err();
    assert!(e.to_string().contains("day maps (periods/day-sums)"), "{e}");
}

/// A writer killed while it rewrites the period maps (after its instant
/// is committed) leaves a store that the next writer completes: its
/// periods then match its instants.
#[test]
fn a_writer_killed_among_the_period_maps_is_completed() {
    // A sum steps its maps: killed as the first begins. A mean steps its
    // sums, then its maps, for each of its four time levels: killed as the
    // fifth write begins, which is a map's whose sums are written.
    for (aggregate, both, killed_at) in [(Aggregator::Sum, 6.0, 1), (Aggregator::Mean, 3.0, 5)] {
        killed_among_the_period_maps(aggregate, both, killed_at);
    }
}

/// A writer of a store of `aggregate` killed as it begins the
/// `killed_at`-th write of a period's map (or sums) of its second
/// instant, and every one after; `both`: the day's first cell afterwards.
fn killed_among_the_period_maps(aggregate: Aggregator, both: f32, killed_at: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.gs");
    let store = Store::create(
        Arc::new(FolderStorage::create(&path).unwrap()),
        structure(aggregate),
    )
    .unwrap();
    let steps = [
        Step::Write {
            instant: 2,
            window: Window {
                row: 30,
                col: 30,
                rows: 2,
                cols: 2,
            },
            values: vec![1.0, 2.0, 3.0, NODATA],
        },
        Step::Write {
            instant: 0,
            window: Window {
                row: 30,
                col: 30,
                rows: 2,
                cols: 2,
            },
            values: vec![5.0, 5.0, 5.0, 5.0],
        },
    ];
    apply(&store, &steps[0]);
    // The second write dies when the period maps' writes begin (after its
    // instant is committed and its levels above are written).
    let begun = std::sync::atomic::AtomicUsize::new(0);
    let dies = |event: JobEvent| {
        if let JobEvent::Phase { name, .. } = event
            && name == "period maps"
        {
            let n = begun.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            assert!(n < killed_at, "killed");
        }
    };
    let Step::Write { window, values, .. } = &steps[1] else {
        unreachable!()
    };
    let cells = Array3::from_shape_vec((1, 2, 2), values.clone()).unwrap();
    let at = parse_instant(INSTANTS[0]).unwrap();
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let block = |w: Window| {
            let r = (w.row - window.row) as usize..(w.row - window.row + w.rows) as usize;
            let c = (w.col - window.col) as usize..(w.col - window.col + w.cols) as usize;
            Ok::<_, std::convert::Infallible>(cells.slice(ndarray::s![.., r, c]).to_owned())
        };
        let write = gridstore::engine::BaseWrite {
            instant: Some(at),
            window: *window,
            cells: gridstore::engine::Cells::Read(block),
        };
        store.write_base(write, &dies, &CancelToken::new())
    }));
    assert!(killed.is_err());
    drop(store);
    let open = || Store::open(Arc::new(FolderStorage::open(&path).unwrap())).unwrap();
    assert_eq!(open().pending_writes().unwrap().len(), 1);
    if aggregate == Aggregator::Sum {
        let day = open();
        let day = day.period_maps(TimeLevel::Day).unwrap();
        assert!(
            !day.pending_writes().unwrap().is_empty(),
            "a period map's own write was cut short too"
        );
    } else {
        assert!(
            begun.load(std::sync::atomic::Ordering::SeqCst) >= killed_at,
            "killed after some sums were written"
        );
    }
    let store = Store::open_writer(Arc::new(FolderStorage::open(&path).unwrap())).unwrap();
    assert!(store.pending_writes().unwrap().is_empty());
    check(&store).unwrap();
    // The day of both instants holds their aggregate.
    let day = store.period_maps(TimeLevel::Day).unwrap();
    let t = day
        .time_index(Some(parse_instant("2024-01-01").unwrap()), false)
        .unwrap();
    let cell = Window {
        row: 30,
        col: 30,
        rows: 1,
        cols: 1,
    };
    assert_eq!(
        day.read_window::<f32>(t, 0, &cell).unwrap()[[0, 0, 0]],
        both
    );
}

/// Creates a store of `dtype` (nodata `nodata`) aggregating with
/// `aggregate`, with day and month levels, and writes `cells` (one value
/// per 2 × 2 window at rows and columns 30..32) at each of `hours` of
/// 2024-01-01, in order; returns it once `verify` finds nothing.
fn written<T: gridstore::engine::Element>(
    dtype: DType,
    nodata: Option<f64>,
    aggregate: Aggregator,
    values: &[[T; 4]],
) -> Store {
    let mut s = structure(aggregate);
    s.dtype = dtype;
    s.nodata = nodata;
    s.time_levels = vec![TimeLevel::Day, TimeLevel::Month];
    let store = Store::create(Arc::new(MemoryStorage::new()), s).unwrap();
    let window = Window {
        row: 30,
        col: 30,
        rows: 2,
        cols: 2,
    };
    for (hour, cells) in values.iter().enumerate() {
        let at = parse_instant(&format!("2024-01-01T{hour:02}:00")).unwrap();
        let cells = Array3::from_shape_vec((1, 2, 2), cells.to_vec()).unwrap();
        store.write(Some(at), window, cells.view()).unwrap();
    }
    let report = store.verify::<T>(&NoProgress, &CancelToken::new()).unwrap();
    assert!(report.damage.is_empty(), "{:?}", report.damage);
    store
}

/// The day map's cells of a store [`written`].
fn day<T: gridstore::engine::Element>(store: &Store) -> Vec<T> {
    let days = store.period_maps(TimeLevel::Day).unwrap();
    let t = days
        .time_index(Some(parse_instant("2024-01-01").unwrap()), false)
        .unwrap();
    let window = Window {
        row: 30,
        col: 30,
        rows: 2,
        cols: 2,
    };
    days.read_window::<T>(t, 0, &window)
        .unwrap()
        .into_raw_vec_and_offset()
        .0
}

/// Where a step is not the fold (a store without nodata, where the first
/// map of a period is data everywhere, and a mean's sums would count none
/// of the 0s never written; an integer sum that saturates on
/// the way; a float sum whose terms cancel), the periods still are the
/// fold of their instants, and `verify` agrees.
#[test]
fn steps_that_are_not_the_fold_are_not_taken() {
    // No nodata: 0 is a value, and a period's first map is the instant's.
    let store = written::<u8>(
        DType::U8,
        None,
        Aggregator::Nearest,
        &[[7, 0, 9, 4], [1, 2, 3, 5]],
    );
    assert_eq!(day::<u8>(&store), [7, 0, 9, 4]);
    let store = written::<u8>(
        DType::U8,
        None,
        Aggregator::Max,
        &[[7, 0, 9, 4], [1, 2, 3, 5]],
    );
    assert_eq!(day::<u8>(&store), [7, 2, 9, 5]);
    let store = written::<u8>(
        DType::U8,
        None,
        Aggregator::Min,
        &[[7, 0, 9, 4], [1, 2, 3, 5]],
    );
    assert_eq!(day::<u8>(&store), [1, 0, 3, 4]);
    // A mean without nodata: the cells of a chunk never written are 0s
    // that count, so it folds rather than stepping sums.
    let store = written::<i16>(
        DType::I16,
        None,
        Aggregator::Mean,
        &[[4, 0, 9, 2], [2, 2, 3, 2]],
    );
    assert_eq!(day::<i16>(&store), [3, 1, 6, 2]);
    // 30000 + 30000 saturates an i16; the sum of all three does not.
    let store = written::<i16>(
        DType::I16,
        Some(-32768.0),
        Aggregator::Sum,
        &[[30000, 1, 1, 1], [30000, 1, 1, 1], [-30000, 1, 1, 1]],
    );
    assert_eq!(day::<i16>(&store), [30000, 3, 3, 3]);
    // 0.1 + 0.2 - 0.3: verify allows the rounding of the steps.
    let store = written::<f32>(
        DType::F32,
        Some(-9999.0),
        Aggregator::Sum,
        &[
            [0.1, 1.0, 1.0, 1.0],
            [0.2, 1.0, 1.0, 1.0],
            [-0.3, 1.0, 1.0, 1.0],
        ],
    );
    assert!(day::<f32>(&store)[0].abs() < 1e-6);
}

/// The cost of one more instant does not grow with the instants already
/// in its periods: with every aggregator that steps (mean through its
/// sums), the 40th hour of a day reads what the 10th did, where folding
/// the day again would read 30 more maps of it, and the month's and
/// year's as many. A mode folds again, and reads more. A correction folds
/// the day from its instants, and the periods above from the day's.
#[test]
fn one_more_instant_costs_the_same_however_many_are_in_its_periods() {
    let dir = tempfile::tempdir().unwrap();
    let reads_of = |aggregate: Aggregator| {
        let path = dir.path().join(format!("{aggregate}.gs"));
        let storage = Arc::new(util::counting::Counting::create(&path));
        let store = Store::create(storage.clone(), structure(aggregate)).unwrap();
        let window = Window {
            row: 28,
            col: 28,
            rows: 4,
            cols: 4,
        };
        let mut reads = Vec::new();
        for minute in 0..40i64 {
            let cells = Array3::from_shape_fn((1, 4, 4), |(_, r, c)| {
                if (r + c) % 5 == 0 {
                    NODATA
                } else {
                    (minute + i64::try_from(r * 4 + c).unwrap()) as f32
                }
            });
            let at = parse_instant("2024-01-01").unwrap() + 60 * minute;
            let before = storage.reads.load(std::sync::atomic::Ordering::SeqCst);
            store.write(Some(at), window, cells.view()).unwrap();
            reads.push(storage.reads.load(std::sync::atomic::Ordering::SeqCst) - before);
        }
        let report = store
            .verify::<f32>(&NoProgress, &CancelToken::new())
            .unwrap();
        assert!(report.damage.is_empty(), "{aggregate}: {:?}", report.damage);
        // A correction of the 10th minute folds its day from its 40
        // instants, and the week, month and year from the day's map (or
        // sums) and the month's: not each from the 40 instants again.
        let cells = Array3::from_elem((1, 4, 4), 2.5f32);
        let before = storage.reads.load(std::sync::atomic::Ordering::SeqCst);
        let at = parse_instant("2024-01-01").unwrap() + 60 * 9;
        store.write(Some(at), window, cells.view()).unwrap();
        let correction = storage.reads.load(std::sync::atomic::Ordering::SeqCst) - before;
        let report = store
            .verify::<f32>(&NoProgress, &CancelToken::new())
            .unwrap();
        assert!(report.damage.is_empty(), "{aggregate}: {:?}", report.damage);
        (reads[9], reads[39], correction)
    };
    for aggregate in [
        Aggregator::Mean,
        Aggregator::Sum,
        Aggregator::Min,
        Aggregator::Max,
        Aggregator::Count,
        Aggregator::Nearest,
    ] {
        let (tenth, fortieth, correction) = reads_of(aggregate);
        assert!(
            fortieth <= tenth + 2,
            "{aggregate}: the 40th instant read {fortieth} values, the 10th {tenth}"
        );
        assert!(
            correction < fortieth + 60,
            "{aggregate}: a correction read {correction} values"
        );
    }
    let (tenth, fortieth, _) = reads_of(Aggregator::Mode);
    assert!(
        fortieth >= tenth + 30,
        "a mode folds again: {tenth} then {fortieth} reads"
    );
}

/// A mean's month stepped an hour at a time adds in another order than
/// its days' sums do (((a + b) + c) + d against (a + b) + (c + d)):
/// `verify` allows that rounding of the sums, and each map is the
/// quotient of its sums, a correction composed from the days' sums.
#[test]
fn a_mean_stepped_and_composed_verifies() {
    let mut s = structure(Aggregator::Mean);
    s.time_levels = vec![TimeLevel::Day, TimeLevel::Month];
    let store = Store::create(Arc::new(MemoryStorage::new()), s).unwrap();
    let window = Window {
        row: 30,
        col: 30,
        rows: 1,
        cols: 1,
    };
    let month = |store: &Store| {
        let months = store.period_maps(TimeLevel::Month).unwrap();
        let t = months
            .time_index(Some(parse_instant("2024-01-01").unwrap()), false)
            .unwrap();
        months.read_window::<f32>(t, 0, &window).unwrap()[[0, 0, 0]]
    };
    // ((a + b) + c) + d and (a + b) + (c + d) differ in f64.
    let values = [0.1f32, 1e7, 1e7, 0.001];
    let times = [
        "2024-01-01T00:00",
        "2024-01-01T01:00",
        "2024-01-02T00:00",
        "2024-01-02T01:00",
    ];
    for (v, at) in values.iter().zip(times) {
        let cells = Array3::from_elem((1, 1, 1), *v);
        store
            .write(Some(parse_instant(at).unwrap()), window, cells.view())
            .unwrap();
        let report = store
            .verify::<f32>(&NoProgress, &CancelToken::new())
            .unwrap();
        assert!(report.damage.is_empty(), "after {at}: {:?}", report.damage);
    }
    let mean = values.iter().map(|v| f64::from(*v)).sum::<f64>() / 4.0;
    assert!((f64::from(month(&store)) - mean).abs() <= mean * 1e-7);
    // A correction of the first hour: the month from its days' sums.
    let cells = Array3::from_elem((1, 1, 1), 0.2f32);
    store
        .write(Some(parse_instant(times[0]).unwrap()), window, cells.view())
        .unwrap();
    let report = store
        .verify::<f32>(&NoProgress, &CancelToken::new())
        .unwrap();
    assert!(report.damage.is_empty(), "{:?}", report.damage);
    let sum = f64::from(0.2f32) + 2e7 + f64::from(0.001f32);
    assert!((f64::from(month(&store)) - sum / 4.0).abs() <= sum / 4.0 * 1e-7);
}
