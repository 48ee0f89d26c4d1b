//! Period maps: for each time level of a store (day, week, month, year),
//! one map per calendar period that holds an instant, at every spatial
//! level, kept exact on every write.
//!
//! Each time level is a store of its own under `periods/<level>/` (see
//! docs/FORMAT.md, "Time levels"): the same grid and cell type, an
//! irregular time axis whose instants are the periods' first instants, and
//! a spatial pyramid of its own. So every reader of a store reads a period
//! map as it reads an instant, and the write protocol, the journal and
//! `verify` of stores hold for them.
//!
//! A period's level-0 map is the time aggregate of the maps inside it, in
//! time order, with the store's aggregator: the instants' maps, or, for a
//! period tiled by a finer stored one (a month by days) and an aggregator
//! that composes (sum, min, max, count, nearest), the finer periods' maps.
//! Every write of an instant recomputes the periods holding it, over the
//! write's window only, after the spatial levels (the journal's
//! `aggregating` phase covers both).
//!
//! A later instant steps a period's map in one read of it rather than a
//! fold of everything inside it (sum, min, max, count, nearest). A mean
//! steps through the period's sums (format version 4): beside each time
//! level's maps, a store of each period's sum of its values with data and
//! their count, per cell, which take the instant in one addition; the map
//! is their quotient. Folded, a mean's sums are its finer periods' sums
//! added (a month's, its days'), so that a correction costs a day's
//! instants, not a year's.

use crate::engine::error::EngineError;
use crate::engine::grid::period::{Period, TimeLevel, aggregate_values};
use crate::engine::grid::structure::MAX_BANDS;
use crate::engine::grid::{ChunkLoc, Window};
use crate::engine::job::{CancelToken, JobEvent, ProgressSink};
use crate::engine::pyramid::aggregate::computed;
use crate::engine::pyramid::verify::Damage;
use crate::engine::pyramid::write::{BaseWrite, BlockReader, Cells, WriteError};
use crate::engine::{Aggregator, Element, Nodata, Store, Structure, TimeAxis};
use crate::storage::{DynStorage, Within};
use ndarray::Array3;
use rayon::prelude::*;
use std::sync::Arc;

/// The folder of every time level's store.
pub const PREFIX: &str = "periods/";

/// The folder of a time level's store.
fn folder(level: TimeLevel) -> String {
    format!("{PREFIX}{}", level.name())
}

/// The folder of the sums behind a time level's mean maps.
fn sums_folder(level: TimeLevel) -> String {
    format!("{PREFIX}{}-sums", level.name())
}

/// The first format version whose mean stores keep their periods' sums.
const SUMS_SINCE: u32 = 4;

/// Whether a store of `structure` and format `version` keeps its periods'
/// sums beside their maps: a mean with a nodata value (without one, a
/// cell never written is a 0 that counts, which absent sums cannot say)
/// of at most half the bands a store may have.
fn keeps_sums(structure: &Structure, version: u32) -> bool {
    structure.aggregate == Aggregator::Mean
        && structure.nodata.is_some()
        && structure.band_count() <= MAX_BANDS / 2
        && version >= SUMS_SINCE
}

/// One time level's maps: a store of its own.
#[derive(Debug)]
pub(crate) struct PeriodMaps {
    pub(crate) level: TimeLevel,
    pub(crate) store: Arc<Store>,
    /// For a mean (format 4 on): each period's sum of its values with data
    /// and their count, per cell (see [`sums_structure`]).
    pub(crate) sums: Option<Arc<Store>>,
}

/// The structure of the store of a time level of a store of `structure`:
/// the same grid and cells, an irregular time axis of period starts, no
/// time levels, and a pyramid of `count` maps that sums them.
#[must_use]
pub fn period_structure(structure: &Structure) -> Structure {
    Structure {
        time: Some(TimeAxis::Irregular),
        time_levels: Vec::new(),
        aggregate: match structure.aggregate {
            Aggregator::Count => Aggregator::Sum,
            other => other,
        },
        ..structure.clone()
    }
}

/// The structure of the store of the sums behind a time level's mean
/// maps: their grid, and per band of the store two f64 bands, the sum of
/// its values with data in time order (the store's bands first) and how
/// many there are (then theirs); NaN (nodata) where there are none.
#[must_use]
pub fn sums_structure(structure: &Structure) -> Structure {
    let bands = u32::try_from(structure.band_count()).unwrap_or(u32::MAX);
    Structure {
        dtype: crate::engine::DType::F64,
        nodata: Some(f64::NAN),
        bands: Some(bands.saturating_mul(2)),
        aggregate: Aggregator::Sum,
        ..period_structure(structure)
    }
}

/// The part of `storage` under `folder`.
fn part(storage: &DynStorage, folder: &str) -> Result<DynStorage, EngineError> {
    Ok(Arc::new(Within::new(storage.clone(), folder)?))
}

/// Creates the store of `level`'s maps (or, `base_only`, sums, which are
/// read at level 0 only) under `folder`.
fn create_part(
    storage: &DynStorage,
    folder: &str,
    structure: Structure,
    layout: crate::engine::persistence::layout::Layout,
    (level, base_only): (TimeLevel, bool),
) -> Result<Arc<Store>, EngineError> {
    let mut store = Store::create_with_layout(part(storage, folder)?, structure, layout)?;
    // Rewritten with every instant: no per-level statistics to keep.
    store.set_statistics_token(false)?;
    store.period_level = Some(level);
    store.base_only = base_only;
    store.write_metadata(
        &store.time_state(),
        &store.footprint(),
        crate::engine::store::MetadataChange::Root,
    )?;
    Ok(Arc::new(store))
}

/// Opens the store of `level`'s maps (or, `base_only`, sums) under
/// `folder`, which must be of `expected` structure.
fn open_part(
    storage: &DynStorage,
    folder: &str,
    expected: &Structure,
    (level, base_only): (TimeLevel, bool),
    writer: bool,
) -> Result<Arc<Store>, EngineError> {
    let not_a_store = |reason: String| EngineError::NotAStore {
        location: storage.location(),
        reason,
    };
    let opened = if writer {
        Store::open_writer_unchecked(part(storage, folder)?)
    } else {
        Store::open(part(storage, folder)?)
    };
    let store =
        opened.map_err(|e| not_a_store(format!("its {level} maps ({folder}) do not open: {e}")))?;
    // As JSON: a NaN nodata is not equal to itself as a float.
    let same = serde_json::to_value(store.structure()).ok() == serde_json::to_value(expected).ok();
    if !same {
        return Err(not_a_store(format!(
            "its {level} maps ({folder}) have another grid than the store"
        )));
    }
    if store.period_level != Some(level) || store.base_only != base_only {
        return Err(not_a_store(format!(
            "its {level} maps ({folder}) say they are not"
        )));
    }
    Ok(Arc::new(store))
}

/// Creates the stores of `structure`'s time levels in `storage` (of this
/// build's format version: with sums behind mean maps).
pub(crate) fn create(
    storage: &DynStorage,
    structure: &Structure,
    layout: crate::engine::persistence::layout::Layout,
) -> Result<Vec<PeriodMaps>, EngineError> {
    let version = crate::engine::persistence::zarr::FORMAT_VERSION;
    structure
        .time_levels
        .iter()
        .map(|&level| {
            Ok(PeriodMaps {
                level,
                store: create_part(
                    storage,
                    &folder(level),
                    period_structure(structure),
                    layout,
                    (level, false),
                )?,
                sums: keeps_sums(structure, version)
                    .then(|| {
                        create_part(
                            storage,
                            &sums_folder(level),
                            sums_structure(structure),
                            layout,
                            (level, true),
                        )
                    })
                    .transpose()?,
            })
        })
        .collect()
}

/// Opens the stores of `structure`'s time levels in `storage`, a store of
/// format `version`, for writing when `writer` (their own unfinished
/// writes are finished first).
pub(crate) fn open(
    storage: &DynStorage,
    structure: &Structure,
    version: u32,
    writer: bool,
) -> Result<Vec<PeriodMaps>, EngineError> {
    structure
        .time_levels
        .iter()
        .map(|&level| {
            let maps = |folder: &str, expected: &Structure, base_only| {
                open_part(storage, folder, expected, (level, base_only), writer)
            };
            Ok(PeriodMaps {
                level,
                store: maps(&folder(level), &period_structure(structure), false)?,
                sums: keeps_sums(structure, version)
                    .then(|| maps(&sums_folder(level), &sums_structure(structure), true))
                    .transpose()?,
            })
        })
        .collect()
}

/// How the maps inside a period fold into its map, cell by cell, in time
/// order; nodata never leaks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    Mean,
    Sum,
    Min,
    Max,
    /// The number of maps with data.
    Count,
    /// The first value with data.
    First,
    /// The most frequent value; the earliest of equally frequent ones.
    Mode,
}

impl Fold {
    /// The fold of `aggregate` over instants, or over finer periods' maps
    /// (`of_periods`), where a count is a sum of counts.
    fn of(aggregate: Aggregator, of_periods: bool) -> Self {
        match aggregate {
            Aggregator::Mean => Self::Mean,
            Aggregator::Sum => Self::Sum,
            Aggregator::Count if of_periods => Self::Sum,
            Aggregator::Count => Self::Count,
            Aggregator::Min => Self::Min,
            Aggregator::Max => Self::Max,
            Aggregator::Nearest => Self::First,
            Aggregator::Mode => Self::Mode,
        }
    }

    /// Whether a map of the period can take a later map's cells in one
    /// step, without the maps before it.
    fn steps(self) -> bool {
        !matches!(self, Self::Mean | Self::Mode)
    }

    /// A period's cell of one map `v` alone.
    fn first<T: Element>(self, v: T, nodata: Nodata<T>) -> T {
        match self {
            Self::Count if v.is_valid(nodata) => computed(1.0, nodata),
            _ => v,
        }
    }

    /// A period's cell after a later map's cell `v` (see [`Fold::steps`]);
    /// `None` when the cell type cannot hold the step exactly (an integer
    /// sum or count that saturates or would be the nodata value), where the
    /// fold of all the maps may differ.
    fn step<T: Element>(self, period: T, v: T, nodata: Nodata<T>) -> Option<T> {
        if !v.is_valid(nodata) {
            return Some(period);
        }
        if !period.is_valid(nodata) {
            return Some(self.first(v, nodata));
        }
        let exactly = |value: f64| {
            let narrowed = computed::<T>(value, nodata);
            (T::DTYPE.is_float() || narrowed.to_f64() == value).then_some(narrowed)
        };
        // An integer sum or count held at its type's bound, or one step
        // off the nodata value, may have been narrowed there: what it
        // stands for is no longer known.
        let narrowed = !T::DTYPE.is_float()
            && (period == computed::<T>(f64::INFINITY, nodata)
                || period == computed::<T>(f64::NEG_INFINITY, nodata)
                || nodata
                    .marker()
                    .is_some_and(|n| period == n.step(true) || period == n.step(false)));
        if narrowed && matches!(self, Self::Sum | Self::Count) {
            return None;
        }
        match self {
            Self::Sum => {
                let sum = period.to_f64() + v.to_f64();
                if sum.is_nan() { None } else { exactly(sum) }
            }
            Self::Count => exactly(period.to_f64() + 1.0),
            Self::Min if v < period => Some(v),
            Self::Max if v > period => Some(v),
            _ => Some(period),
        }
    }

    /// Whether a period's map folds from its finer periods' maps as from
    /// its instants' (so a month can be computed from its days).
    fn composes(aggregate: Aggregator) -> bool {
        !matches!(aggregate, Aggregator::Mean | Aggregator::Mode)
    }
}

/// Folds `maps` (in time order, each (bands, rows, cols) of one shape) into
/// one map. With no map, every cell is nodata (or 0 without nodata).
fn fold<T: Element>(
    maps: &[Array3<T>],
    fold: Fold,
    nodata: Nodata<T>,
    shape: (usize, usize, usize),
) -> Array3<T> {
    let mut out = Array3::from_elem(shape, nodata.fill());
    let mut values: Vec<T> = Vec::with_capacity(maps.len());
    for (i, cell) in out.iter_mut().enumerate() {
        values.clear();
        values.extend(
            maps.iter()
                .filter_map(|m| m.as_slice_memory_order().map(|s| s[i]))
                .filter(|v| v.is_valid(nodata)),
        );
        if let Some(v) = fold_values(&values, fold, nodata) {
            *cell = v;
        }
    }
    out
}

/// The fold of one cell's valid values, in time order; `None` for none:
/// the aggregate a series of values per period takes
/// ([`aggregate_values`]), narrowed to the cell type as the pyramid's are.
fn fold_values<T: Element>(values: &[T], fold: Fold, nodata: Nodata<T>) -> Option<T> {
    let first = *values.first()?;
    let aggregate = match fold {
        Fold::Mean => Aggregator::Mean,
        Fold::Sum => Aggregator::Sum,
        Fold::Count => Aggregator::Count,
        Fold::Min => Aggregator::Min,
        Fold::Max => Aggregator::Max,
        Fold::First => Aggregator::Nearest,
        Fold::Mode => Aggregator::Mode,
    };
    let as_f64: Vec<f64> = values.iter().map(|v| v.to_f64()).collect();
    let value = aggregate_values(&as_f64, aggregate)?;
    Some(match fold {
        // An undefined sum (+inf and -inf) takes the first value: values
        // with data never make nodata.
        Fold::Mean | Fold::Sum if value.is_nan() => first,
        Fold::Mean | Fold::Sum | Fold::Count => computed(value, nodata),
        // One of the values: exact in the cell type.
        Fold::Min | Fold::Max | Fold::First | Fold::Mode => T::from_f64(value),
    })
}

/// A period's sums (see [`sums_structure`]) after a later map's `cells`:
/// each value with data added to its band's sum as [`fold_values`] adds
/// them (in time order, from the first on its own), and counted. `false`
/// when a sum is no longer a number (infinities of both signs: there the
/// mean is the first value, which the sums do not keep).
fn add_to_sums<T: Element>(sums: &mut Array3<f64>, cells: &Array3<T>, nodata: Nodata<T>) -> bool {
    let bands = cells.dim().0;
    let (mut total, mut count) = sums.view_mut().split_at(ndarray::Axis(0), bands);
    let mut numbers = true;
    ndarray::Zip::from(&mut total)
        .and(&mut count)
        .and(cells)
        .for_each(|total, count, v| {
            if !v.is_valid(nodata) {
                return;
            }
            accumulate((total, count), (v.to_f64(), 1.0));
            numbers &= !total.is_nan();
        });
    numbers
}

/// A period's sums after a finer period's `finer` sums: each added to its
/// band's sum and count, the first on its own.
fn add_sums(sums: &mut Array3<f64>, finer: &Array3<f64>) {
    let bands = sums.dim().0 / 2;
    let (mut total, mut count) = sums.view_mut().split_at(ndarray::Axis(0), bands);
    let (finer_total, finer_count) = finer.view().split_at(ndarray::Axis(0), bands);
    ndarray::Zip::from(&mut total)
        .and(&mut count)
        .and(&finer_total)
        .and(&finer_count)
        .for_each(|total, count, finer_total, finer_count| {
            if !finer_count.is_nan() {
                accumulate((total, count), (*finer_total, *finer_count));
            }
        });
}

/// A sum and count (NaN: none yet) after `sum` of `n` more values: the
/// first on its own, as the fold's sum starts, later ones added.
fn accumulate((total, count): (&mut f64, &mut f64), (sum, n): (f64, f64)) {
    if count.is_nan() {
        *total = std::iter::once(sum).sum();
        *count = n;
    } else {
        *total += sum;
        *count += n;
    }
}

/// A mean map from its period's sums: each sum over its count, narrowed as
/// the fold narrows it; `None` when a counted sum is not a number (see
/// [`add_to_sums`]).
fn quotient<T: Element>(sums: &Array3<f64>, nodata: Nodata<T>) -> Option<Array3<T>> {
    let bands = sums.dim().0 / 2;
    let (total, count) = sums.view().split_at(ndarray::Axis(0), bands);
    let mut map = Array3::from_elem(total.dim(), nodata.fill());
    let mut numbers = true;
    ndarray::Zip::from(&mut map)
        .and(&total)
        .and(&count)
        .for_each(|cell, total, count| {
            if count.is_nan() {
                return;
            }
            if total.is_nan() {
                numbers = false;
            } else {
                *cell = computed(total / count, nodata);
            }
        });
    numbers.then_some(map)
}

/// Writes the map of the period starting at `start` in `store` over
/// `window`: every cell the one `reader` gives. Never cancelled: a period
/// map is written past its instant's commit point.
fn replace_map<T: Element, R: BlockReader<T>>(
    store: &Store,
    start: i64,
    window: Window,
    reader: R,
    progress: &dyn ProgressSink,
) -> Result<(), WriteError<R::Error>> {
    let write = BaseWrite {
        instant: Some(start),
        window,
        cells: Cells::Replace(reader),
    };
    store
        .write_base(write, progress, &CancelToken::new())
        .map(drop)
}

/// The engine's error of a period map's write whose reader fails only
/// with one.
fn engine_error(e: WriteError<EngineError>) -> EngineError {
    match e {
        WriteError::Source(e) | WriteError::Engine(e) => e,
    }
}

/// Why a period's map did not take a later map's cells in one step.
enum Step {
    /// A cell's step is not exact in the cell type.
    Inexact,
    /// Reading failed.
    Engine(EngineError),
}

impl From<EngineError> for Step {
    fn from(e: EngineError) -> Self {
        Self::Engine(e)
    }
}

/// Whether a stored period map holds what folding its maps gives: the
/// same cells, except that a float sum taken a map at a time (see
/// [`Fold::step`]) may differ from the sum of all by the rounding of its
/// steps, at most one per instant of the period (`n`): `n · ε` of the sum
/// of the magnitudes of what it holds, ε the cell type's.
fn agrees<T: Element>(
    stored: &Array3<T>,
    expected: &Array3<T>,
    inside: &Inside<'_>,
    window: Window,
    n: usize,
) -> Result<bool, EngineError> {
    let same = crate::engine::pyramid::aggregate::same_chunk(Some(stored), Some(expected));
    if same || inside.fold != Fold::Sum || !T::DTYPE.is_float() {
        return Ok(same);
    }
    let nodata = inside.store.nodata::<T>();
    // Each step rounds to within ε of the running sum, at most Σ|v|.
    let magnitude = inside.magnitude::<T>(window)?;
    let epsilon = if T::DTYPE.size() == 4 {
        f64::from(f32::EPSILON)
    } else {
        f64::EPSILON
    };
    #[allow(clippy::cast_precision_loss)]
    let tolerance = n.max(1) as f64 * epsilon;
    Ok(stored.dim() == expected.dim()
        && ndarray::Zip::from(stored)
            .and(expected)
            .and(&magnitude)
            .all(|a, b, m| match (a.is_valid(nodata), b.is_valid(nodata)) {
                (false, false) => true,
                (true, true) => {
                    let (a, b) = (a.to_f64(), b.to_f64());
                    a == b || (a - b).abs() <= tolerance * m.max(a.abs()).max(b.abs())
                }
                _ => false,
            }))
}

/// Whether a period's stored sums are those folded anew from what it holds
/// (`expected`): the same counts, and sums the same but for the rounding
/// of the other order of a period stepped an instant at a time (after
/// its finer periods' sums were added), at most `n · ε` (f64's) of the
/// sum of the magnitudes of its `n` instants' values (`magnitude`, read
/// only where a sum differs).
fn sums_agree(
    stored: &Array3<f64>,
    expected: &Array3<f64>,
    magnitude: impl FnOnce() -> Result<Array3<f64>, EngineError>,
    n: usize,
) -> Result<bool, EngineError> {
    use crate::engine::pyramid::aggregate::same_chunk;
    if same_chunk(Some(stored), Some(expected)) {
        return Ok(true);
    }
    if stored.dim() != expected.dim() {
        return Ok(false);
    }
    let bands = stored.dim().0 / 2;
    let (stored_total, stored_count) = stored.view().split_at(ndarray::Axis(0), bands);
    let (total, count) = expected.view().split_at(ndarray::Axis(0), bands);
    if !same_chunk(Some(&stored_count.to_owned()), Some(&count.to_owned())) {
        return Ok(false);
    }
    let magnitude = magnitude()?;
    #[allow(clippy::cast_precision_loss)]
    let tolerance = n.max(1) as f64 * f64::EPSILON;
    Ok(ndarray::Zip::from(&stored_total)
        .and(&total)
        .and(&magnitude)
        .all(|a, b, m| a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= tolerance * m))
}

/// Where a period's map comes from: the time indices, in time order, of
/// the maps inside it in `store` (the store's instants, or a finer time
/// level's periods), and how they fold.
struct Inside<'a> {
    store: &'a Store,
    indices: Vec<u32>,
    fold: Fold,
    /// The time level of the maps, `None` for instants.
    from: Option<TimeLevel>,
}

impl Inside<'_> {
    /// The period's level-0 cells over `window`.
    fn read<T: Element>(&self, window: Window) -> Result<Array3<T>, EngineError> {
        self.read_at::<T>(0, window)
    }

    /// The sum of the magnitudes of the maps' valid level-0 cells over
    /// `window`: what bounds the rounding of a sum of them.
    fn magnitude<T: Element>(&self, window: Window) -> Result<Array3<f64>, EngineError> {
        let nodata = self.store.nodata::<T>();
        let mut sum = Array3::zeros((
            self.store.structure().band_count(),
            window.rows as usize,
            window.cols as usize,
        ));
        for &t in &self.indices {
            let map = self.store.read_window::<T>(t, 0, &window)?;
            ndarray::Zip::from(&mut sum).and(&map).for_each(|s, v| {
                if v.is_valid(nodata) {
                    *s += v.to_f64().abs();
                }
            });
        }
        Ok(sum)
    }

    /// The period's sums (see [`sums_structure`]) over `window`: of its
    /// instants' level-0 cells, or, with `finer` (the sums of the finer
    /// periods it holds, these indices), of theirs.
    fn sums<T: Element>(
        &self,
        finer: Option<&Store>,
        window: Window,
    ) -> Result<Array3<f64>, EngineError> {
        let mut sums = Array3::from_elem(
            (
                2 * self.store.structure().band_count(),
                window.rows as usize,
                window.cols as usize,
            ),
            f64::NAN,
        );
        for &t in &self.indices {
            match finer {
                Some(finer) => add_sums(&mut sums, &finer.read_window::<f64>(t, 0, &window)?),
                None => {
                    let map = self.store.read_window::<T>(t, 0, &window)?;
                    add_to_sums(&mut sums, &map, self.store.nodata::<T>());
                }
            }
        }
        Ok(sums)
    }

    /// The fold of the maps' cells of `level` over `window` (at level 0,
    /// the period's cells).
    fn read_at<T: Element>(&self, level: u8, window: Window) -> Result<Array3<T>, EngineError> {
        let maps = self
            .indices
            .iter()
            .map(|&t| self.store.read_window::<T>(t, level, &window))
            .collect::<Result<Vec<_>, _>>()?;
        let shape = (
            self.store.structure().band_count(),
            window.rows as usize,
            window.cols as usize,
        );
        Ok(fold(&maps, self.fold, self.store.nodata::<T>(), shape))
    }
}

impl Store {
    /// The calendar periods this store keeps maps of, finest first.
    #[must_use]
    pub fn time_levels(&self) -> &[TimeLevel] {
        &self.structure().time_levels
    }

    /// The store of a time level's maps: its instants are the periods'
    /// first instants. `None` when the store does not keep that level.
    #[must_use]
    pub fn period_maps(&self, level: TimeLevel) -> Option<&Arc<Store>> {
        self.periods
            .iter()
            .find(|p| p.level == level)
            .map(|p| &p.store)
    }

    /// For the store of a time level's maps (see [`Store::period_maps`]):
    /// that level. Its instants are its periods' first instants.
    #[must_use]
    pub fn period_level(&self) -> Option<TimeLevel> {
        self.period_level
    }

    /// What the period of `period` starting at `start` is made of.
    fn inside(&self, period: Period, start: i64) -> Inside<'_> {
        let end = period.next(start).saturating_sub(1);
        let aggregate = self.structure().aggregate;
        // The coarsest stored finer level that tiles it, when the
        // aggregate composes.
        let finer = self
            .periods
            .iter()
            .rfind(|p| Fold::composes(aggregate) && period.tiled_by(p.level));
        match finer {
            Some(finer) => Inside {
                store: &finer.store,
                indices: finer
                    .store
                    .instants_between(start, end)
                    .into_iter()
                    .map(|(t, _)| t)
                    .collect(),
                fold: Fold::of(aggregate, true),
                from: Some(finer.level),
            },
            None => Inside {
                store: self,
                indices: self
                    .instants_between(start, end)
                    .into_iter()
                    .map(|(t, _)| t)
                    .collect(),
                fold: Fold::of(aggregate, false),
                from: None,
            },
        }
    }

    /// What a mean period of `period` starting at `start` sums: the sums of
    /// the coarsest stored finer level that tiles it (its store and their
    /// indices), else its instants.
    fn sums_inside(&self, period: Period, start: i64) -> (Inside<'_>, Option<&Store>) {
        let end = period.next(start).saturating_sub(1);
        let finer = self
            .periods
            .iter()
            .rfind(|p| p.sums.is_some() && period.tiled_by(p.level));
        match finer.and_then(|f| Some((f, f.sums.as_deref()?))) {
            Some((finer, sums)) => (
                Inside {
                    store: self,
                    indices: sums
                        .instants_between(start, end)
                        .into_iter()
                        .map(|(t, _)| t)
                        .collect(),
                    fold: Fold::Sum,
                    from: Some(finer.level),
                },
                Some(sums),
            ),
            None => (self.inside(period, start), None),
        }
    }

    /// The cells of `level` over `window` of the period of `period`
    /// starting at `start`: read from the store's maps of that time level
    /// when it keeps them (`Some(level)`), else folded from the maps inside
    /// it at that level (`None`), as a stored map is at level 0.
    ///
    /// # Errors
    /// A level the store does not have, corrupt chunks, or I/O.
    pub fn period_cells<T: Element>(
        &self,
        period: Period,
        start: i64,
        level: u8,
        window: &Window,
    ) -> Result<(Array3<T>, Option<TimeLevel>), EngineError> {
        let kept = TimeLevel::of(period).and_then(|l| Some((l, self.period_maps(l)?)));
        if let Some((kept, maps)) = kept {
            let cells = match maps.time_index(Some(start), false) {
                Ok(t) => maps.read_window::<T>(t, level, window)?,
                // A period no write reached: nothing in it.
                Err(_) => Array3::from_elem(
                    (
                        self.chunk_dim().0,
                        window.rows as usize,
                        window.cols as usize,
                    ),
                    self.nodata::<T>().fill(),
                ),
            };
            return Ok((cells, Some(kept)));
        }
        Ok((
            self.inside(period, start).read_at::<T>(level, *window)?,
            None,
        ))
    }

    /// Whether time index `t` holds none of the base chunks under `window`.
    pub(crate) fn holds_none(&self, t: u32, window: Window) -> Result<bool, EngineError> {
        if t >= self.time_state().length {
            return Ok(true);
        }
        for loc in self.grid().chunks_in(0, &window) {
            if self.chunk_exists(t, loc)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The base cells that ever held data, clipped to `window`.
    fn within_data(&self, window: Window) -> Option<Window> {
        let chunks = self.footprint().base()?;
        let [w, h] = self.structure().chunk;
        let cells = Window {
            row: chunks.row * u64::from(h),
            col: chunks.col * u64::from(w),
            rows: chunks.rows * u64::from(h),
            cols: chunks.cols * u64::from(w),
        };
        cells.intersect(&window)
    }

    /// Recomputes, over `window`, the map of every period that holds
    /// `instant`, finest first (a month may be made of its days). Run
    /// after a write of that instant, and again by the recovery of a write
    /// that was interrupted: it only reads the instants.
    ///
    /// With `fresh` (the instant held none of the window's chunks before
    /// the write), a period whose every other instant is earlier takes the
    /// instant's cells in one step (see [`Fold::step`]) when its aggregate
    /// allows, rather than being folded again from what is inside it.
    pub(crate) fn update_periods<T: Element>(
        &self,
        instant: Option<i64>,
        window: Window,
        fresh: bool,
        progress: &dyn ProgressSink,
    ) -> Result<(), EngineError> {
        let (Some(instant), Some(window)) = (instant, self.within_data(window)) else {
            return Ok(());
        };
        // The period stores' chunks are not the instants': their changes
        // would mislead whoever follows this write's.
        let progress = |event: JobEvent| {
            if !matches!(event, JobEvent::Chunks { .. }) {
                progress.event(event);
            }
        };
        let progress = &progress;
        let t = self.time_index(Some(instant), false)?;
        let fold = Fold::of(self.structure().aggregate, false);
        let (appended, folded): (Vec<_>, Vec<_>) = self
            .periods
            .iter()
            .map(|maps| (maps, maps.level.period().start(instant)))
            .partition(|(maps, start)| {
                let end = maps.level.period().next(*start).saturating_sub(1);
                let inside = self.instants_between(*start, end);
                let latest = inside.iter().all(|(_, i)| *i <= instant);
                // A period without a map starts from this instant only
                // when it holds no other.
                let held = |store: &Store| store.time_index(Some(*start), false).is_ok();
                let mapped = inside.len() == 1
                    || (held(&maps.store) && maps.sums.as_deref().is_none_or(held));
                fresh && latest && mapped && (fold.steps() || maps.sums.is_some())
            });
        // Steps need only their own map: taken on all cores at once. Then
        // the others, finest first (a month may be made of its days).
        // A step that a cell type cannot hold exactly (an integer sum that
        // saturates) folds the period again instead.
        let inexact = appended
            .par_iter()
            .map(|(maps, start)| {
                let exact = match &maps.sums {
                    Some(sums) => {
                        self.append_to_mean::<T>(maps, sums, *start, t, window, progress)?
                    }
                    None => self.append_to_period::<T>(maps, *start, t, fold, window, progress)?,
                };
                Ok((!exact).then_some((*maps, *start)))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let mut folded: Vec<(&PeriodMaps, i64)> = folded
            .into_iter()
            .chain(inexact.into_iter().flatten())
            .collect();
        folded.sort_by_key(|(maps, _)| maps.level);
        for (maps, start) in folded {
            self.write_period::<T>(maps, start, window, progress)?;
        }
        Ok(())
    }

    /// Writes the map of the period of `maps` starting at `start` over
    /// `window`: its map there with instant `t`'s cells taken in one step.
    /// Returns false, writing nothing, when a cell's step is not exact in
    /// the cell type (the period must then be folded again).
    fn append_to_period<T: Element>(
        &self,
        maps: &PeriodMaps,
        start: i64,
        t: u32,
        fold: Fold,
        window: Window,
        progress: &dyn ProgressSink,
    ) -> Result<bool, EngineError> {
        let held = maps.store.time_index(Some(start), false).ok();
        let nodata = self.nodata::<T>();
        let reader = |part: Window| -> Result<Array3<T>, Step> {
            let cells = self.read_window::<T>(t, 0, &part)?;
            let Some(p) = held else {
                // The period's first map: the instant's cells, as folded alone.
                return Ok(cells.mapv(|v| fold.first(v, nodata)));
            };
            let mut map = maps.store.read_window::<T>(p, 0, &part)?;
            let mut exact = true;
            ndarray::Zip::from(&mut map).and(&cells).for_each(|m, v| {
                match fold.step(*m, *v, nodata) {
                    Some(next) => *m = next,
                    None => exact = false,
                }
            });
            if exact { Ok(map) } else { Err(Step::Inexact) }
        };
        match replace_map(&maps.store, start, window, reader, progress) {
            Ok(()) => Ok(true),
            Err(WriteError::Source(Step::Inexact)) => Ok(false),
            Err(WriteError::Source(Step::Engine(e)) | WriteError::Engine(e)) => Err(e),
        }
    }

    /// Writes the mean map of the period of `maps` starting at `start` over
    /// `window` with instant `t`'s cells taken in one step: its sums take
    /// them, then the map is their quotient. Returns false, writing
    /// nothing, when a sum is no longer a number (the period must then be
    /// folded again).
    fn append_to_mean<T: Element>(
        &self,
        maps: &PeriodMaps,
        sums: &Store,
        start: i64,
        t: u32,
        window: Window,
        progress: &dyn ProgressSink,
    ) -> Result<bool, EngineError> {
        let held = sums.time_index(Some(start), false).ok();
        let nodata = self.nodata::<T>();
        let bands = 2 * self.structure().band_count();
        let reader = |part: Window| -> Result<Array3<f64>, Step> {
            let cells = self.read_window::<T>(t, 0, &part)?;
            let mut tally = match held {
                Some(p) => sums.read_window::<f64>(p, 0, &part)?,
                None => {
                    Array3::from_elem((bands, part.rows as usize, part.cols as usize), f64::NAN)
                }
            };
            if add_to_sums(&mut tally, &cells, nodata) {
                Ok(tally)
            } else {
                Err(Step::Inexact)
            }
        };
        match replace_map(sums, start, window, reader, progress) {
            Ok(()) => {}
            Err(WriteError::Source(Step::Inexact)) => return Ok(false),
            Err(WriteError::Source(Step::Engine(e)) | WriteError::Engine(e)) => return Err(e),
        }
        let inside = self.inside(maps.level.period(), start);
        self.write_mean::<T>(maps, sums, start, window, &inside, progress)?;
        Ok(true)
    }

    /// Writes the mean map of the period of `maps` starting at `start` over
    /// `window` from its stored sums, folding `inside` only where a sum is
    /// not a number.
    fn write_mean<T: Element>(
        &self,
        maps: &PeriodMaps,
        sums: &Store,
        start: i64,
        window: Window,
        inside: &Inside<'_>,
        progress: &dyn ProgressSink,
    ) -> Result<(), EngineError> {
        let p = sums.time_index(Some(start), false)?;
        let nodata = self.nodata::<T>();
        let reader = |part: Window| match quotient(&sums.read_window::<f64>(p, 0, &part)?, nodata) {
            Some(map) => Ok(map),
            None => inside.read::<T>(part),
        };
        replace_map(&maps.store, start, window, reader, progress).map_err(engine_error)
    }

    /// Writes the map of the period of `maps` starting at `start` over
    /// `window` (and its sums, for a mean), from what is inside it.
    fn write_period<T: Element>(
        &self,
        maps: &PeriodMaps,
        start: i64,
        window: Window,
        progress: &dyn ProgressSink,
    ) -> Result<(), EngineError> {
        let inside = self.inside(maps.level.period(), start);
        if let Some(sums) = &maps.sums {
            let (within, finer) = self.sums_inside(maps.level.period(), start);
            let reader = |part: Window| within.sums::<T>(finer, part);
            replace_map(sums, start, window, reader, progress).map_err(engine_error)?;
            return self.write_mean::<T>(maps, sums, start, window, &inside, progress);
        }
        let reader = |part: Window| inside.read::<T>(part);
        replace_map(&maps.store, start, window, reader, progress).map_err(engine_error)
    }

    /// The first instants of `level`'s periods that hold an instant with
    /// data (a chunk at level 0), in time order.
    fn periods_with_data(&self, level: TimeLevel) -> Result<Vec<i64>, EngineError> {
        let written: std::collections::BTreeSet<u32> = self
            .list_chunks(0)?
            .into_iter()
            .map(|(t, _, _)| t)
            .collect();
        let mut starts: Vec<i64> = written
            .into_iter()
            .filter_map(|t| self.instant_of(t))
            .map(|i| level.period().start(i))
            .collect();
        starts.sort_unstable();
        starts.dedup();
        Ok(starts)
    }

    /// The map of a period this store keeps no maps of (a 6 h period, or a
    /// week), computed over the data's extent from the maps of the finest
    /// stored time level that tiles it (where the aggregate composes), else
    /// from its instants, into a store in memory whose one instant is the
    /// period's start; and what it was computed from ("7 day maps").
    ///
    /// # Errors
    /// Corrupt chunks or I/O.
    pub fn compute_period<T: Element>(
        &self,
        period: Period,
        start: i64,
        progress: &dyn ProgressSink,
    ) -> Result<(Store, String), EngineError> {
        let inside = self.inside(period, start);
        let n = inside.indices.len();
        let from = match inside.from {
            Some(level) => format!("{n} {level} map{}", if n == 1 { "" } else { "s" }),
            None => format!("{n} instant{}", if n == 1 { "" } else { "s" }),
        };
        let memory: DynStorage = Arc::new(crate::storage::MemoryStorage::new());
        let computed = Store::create(memory, period_structure(self.structure()))?;
        match self.within_data(self.grid().full_window(0)) {
            Some(window) => {
                let reader = |part: Window| inside.read::<T>(part);
                replace_map(&computed, start, window, reader, progress).map_err(engine_error)?;
            }
            None => {
                computed.time_index(Some(start), true)?;
            }
        }
        Ok((computed, from))
    }

    /// Builds the maps of the periods whose instants hold data but that
    /// have none (a `convert` killed before it built them), and returns
    /// how many it built.
    ///
    /// # Errors
    /// Corrupt chunks or I/O.
    pub fn build_missing_periods<T: Element>(
        &self,
        progress: &dyn ProgressSink,
    ) -> Result<usize, EngineError> {
        let Some(window) = self.within_data(self.grid().full_window(0)) else {
            return Ok(0);
        };
        let mut built = 0;
        for maps in &self.periods {
            let held = |store: &Store, start| store.time_index(Some(start), false).is_ok();
            for start in self.periods_with_data(maps.level)? {
                if !held(&maps.store, start)
                    || maps.sums.as_deref().is_some_and(|s| !held(s, start))
                {
                    self.write_period::<T>(maps, start, window, progress)?;
                    built += 1;
                }
            }
        }
        Ok(built)
    }

    /// Builds every period map anew from the instants (after `convert`, or
    /// to mend what `verify` found).
    ///
    /// # Errors
    /// I/O or corrupt chunks.
    pub fn rebuild_periods<T: Element>(
        &self,
        progress: &dyn ProgressSink,
    ) -> Result<(), EngineError> {
        let Some(window) = self.within_data(self.grid().full_window(0)) else {
            return Ok(());
        };
        for maps in &self.periods {
            for start in self.periods_with_data(maps.level)? {
                self.write_period::<T>(maps, start, window, progress)?;
            }
        }
        Ok(())
    }

    /// Compares every stored period's level-0 map with a recomputation from
    /// what is inside it, chunk by chunk (when `compare`), and verifies each time level's
    /// store (checksums, its spatial pyramid). Returns the chunks checked
    /// and the damage found, named by their keys in this store.
    pub(crate) fn verify_periods<T: Element>(
        &self,
        compare: bool,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<(u64, Vec<Damage>), EngineError> {
        let mut checked = 0;
        let mut damage = Vec::new();
        let name = |maps: &PeriodMaps, key: &str| format!("{}/{key}", folder(maps.level));
        let sums_name = |maps: &PeriodMaps, key: &str| format!("{}/{key}", sums_folder(maps.level));
        let chunks: Vec<ChunkLoc> = self
            .within_data(self.grid().full_window(0))
            .map(|w| self.grid().chunks_in(0, &w).collect())
            .unwrap_or_default();
        for maps in &self.periods {
            let report = maps.store.verify::<T>(progress, cancel)?;
            checked += report.chunks;
            damage.extend(report.damage.into_iter().map(|d| Damage {
                key: name(maps, &d.key),
                reason: d.reason,
            }));
            if let Some(sums) = &maps.sums {
                let report = sums.verify::<f64>(progress, cancel)?;
                checked += report.chunks;
                damage.extend(report.damage.into_iter().map(|d| Damage {
                    key: sums_name(maps, &d.key),
                    reason: d.reason,
                }));
                if compare {
                    damage.extend(self.compare_sums::<T>(maps, sums, &chunks, cancel)?);
                }
            }
            if !compare {
                continue;
            }
            let periods = maps.store.instants_between(i64::MIN, i64::MAX);
            // Periods whose instants hold data, and every stored map.
            let mut starts = self.periods_with_data(maps.level)?;
            starts.extend(periods.iter().map(|(_, s)| *s));
            starts.sort_unstable();
            starts.dedup();
            let sums_periods = maps
                .sums
                .as_ref()
                .map(|s| s.instants_between(i64::MIN, i64::MAX))
                .unwrap_or_default();
            let sums_held = |start: i64| {
                sums_periods
                    .iter()
                    .find(|(_, s)| *s == start)
                    .map(|(p, _)| *p)
            };
            for start in starts {
                let label = maps.level.period().label(start);
                let t = periods.iter().find(|(_, s)| *s == start).map(|(t, _)| *t);
                let inside = self.inside(maps.level.period(), start);
                // Float sums may have been taken an instant at a time.
                let n = self
                    .instants_between(start, maps.level.period().next(start).saturating_sub(1))
                    .len();
                for &loc in &chunks {
                    cancel.check()?;
                    let window = self.grid().chunk_window(loc);
                    let stored = match t.map(|t| maps.store.read_window::<T>(t, 0, &window)) {
                        Some(Ok(cells)) => cells,
                        // No map: nodata everywhere.
                        None => Array3::from_elem(self.chunk_dim(), self.nodata::<T>().fill()),
                        // Named by the store's own verify above.
                        Some(Err(EngineError::Corrupt { .. })) => continue,
                        Some(Err(e)) => return Err(e),
                    };
                    // A mean's map is the quotient of its sums (which are
                    // compared with what the period holds on their own).
                    let quotient = match (&maps.sums, sums_held(start)) {
                        // Damaged sums are named by their own verify.
                        (Some(sums), Some(p)) => sums
                            .read_window::<f64>(p, 0, &window)
                            .ok()
                            .and_then(|cells| quotient(&cells, self.nodata::<T>())),
                        _ => None,
                    };
                    let expected = match quotient {
                        Some(map) => map,
                        None => inside.read::<T>(window)?,
                    };
                    if !agrees(&stored, &expected, &inside, window, n)? {
                        damage.push(match t {
                            Some(t) => Damage {
                                key: name(maps, &maps.store.chunk_name(t, loc)),
                                reason: format!(
                                    "the {} {label} differs from the aggregate of what it holds",
                                    maps.level
                                ),
                            },
                            None => Damage {
                                key: name(maps, maps.store.layout().root_key()),
                                reason: format!(
                                    "the {} {label} holds instants with data but has no map",
                                    maps.level
                                ),
                            },
                        });
                    }
                }
            }
        }
        Ok((checked, damage))
    }

    /// Compares every stored period's sums behind `maps` with their sums
    /// anew from what it holds (see [`sums_agree`]), chunk by chunk.
    fn compare_sums<T: Element>(
        &self,
        maps: &PeriodMaps,
        sums: &Store,
        chunks: &[ChunkLoc],
        cancel: &CancelToken,
    ) -> Result<Vec<Damage>, EngineError> {
        let mut damage = Vec::new();
        let held = sums.instants_between(i64::MIN, i64::MAX);
        // A mapped period without sums would step from nothing.
        for (_, start) in maps.store.instants_between(i64::MIN, i64::MAX) {
            if !held.iter().any(|(_, s)| *s == start) {
                damage.push(Damage {
                    key: format!("{}/{}", sums_folder(maps.level), sums.layout().root_key()),
                    reason: format!(
                        "the {} {} has a map but no sums",
                        maps.level,
                        maps.level.period().label(start)
                    ),
                });
            }
        }
        for (p, start) in held {
            let period = maps.level.period();
            let label = period.label(start);
            let (within, finer) = self.sums_inside(period, start);
            let instants = self.inside(period, start);
            let n = self
                .instants_between(start, period.next(start).saturating_sub(1))
                .len();
            for &loc in chunks {
                cancel.check()?;
                let window = self.grid().chunk_window(loc);
                let stored = match sums.read_window::<f64>(p, 0, &window) {
                    Ok(cells) => cells,
                    // Named by its own verify.
                    Err(EngineError::Corrupt { .. }) => continue,
                    Err(e) => return Err(e),
                };
                let expected = within.sums::<T>(finer, window)?;
                if !sums_agree(&stored, &expected, || instants.magnitude::<T>(window), n)? {
                    damage.push(Damage {
                        key: format!("{}/{}", sums_folder(maps.level), sums.chunk_name(p, loc)),
                        reason: format!(
                            "the sums of the {} {label} differ from those of what it holds",
                            maps.level
                        ),
                    });
                }
            }
        }
        Ok(damage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_skip_nodata_and_keep_time_order() {
        let nodata = Nodata::value(-1.0f32);
        let v = |x: f32| x;
        let cell = |values: &[f32], f: Fold| {
            let valid: Vec<f32> = values
                .iter()
                .copied()
                .filter(|x| x.is_valid(nodata))
                .collect();
            fold_values(&valid, f, nodata)
        };
        let values = [v(2.0), -1.0, v(4.0), f32::NAN, v(4.0)];
        assert_eq!(cell(&values, Fold::Sum), Some(10.0));
        assert_eq!(cell(&values, Fold::Mean), Some(10.0 / 3.0));
        assert_eq!(cell(&values, Fold::Count), Some(3.0));
        assert_eq!(cell(&values, Fold::Min), Some(2.0));
        assert_eq!(cell(&values, Fold::Max), Some(4.0));
        assert_eq!(cell(&values, Fold::First), Some(2.0));
        assert_eq!(cell(&values, Fold::Mode), Some(4.0));
        assert_eq!(
            cell(&[3.0, 5.0], Fold::Mode),
            Some(3.0),
            "ties: the earliest"
        );
        assert_eq!(cell(&[-1.0, f32::NAN], Fold::Sum), None);
        // A sum that would be the nodata value moves off it.
        assert_ne!(cell(&[-0.5, -0.5], Fold::Sum), Some(-1.0));
        assert_eq!(
            cell(&[f32::INFINITY, f32::NEG_INFINITY], Fold::Sum),
            Some(f32::INFINITY)
        );
    }

    #[test]
    fn a_count_store_sums_its_period_counts_in_space() {
        let mut s = crate::engine::grid::structure::tests::sample();
        s.aggregate = Aggregator::Count;
        s.time = Some(TimeAxis::Irregular);
        s.time_levels = vec![TimeLevel::Day];
        let p = period_structure(&s);
        assert_eq!(p.aggregate, Aggregator::Sum);
        assert!(p.time_levels.is_empty());
        assert_eq!(p.time, Some(TimeAxis::Irregular));
        assert_eq!(Fold::of(Aggregator::Count, true), Fold::Sum);
        assert_eq!(Fold::of(Aggregator::Count, false), Fold::Count);
    }
}
