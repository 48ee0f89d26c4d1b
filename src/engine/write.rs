//! Writes at the base level and the re-aggregation of their ancestors.
//!
//! Every write touches level 0 only. The chunks it changed are then
//! re-aggregated level by level up to the root, each parent from its four
//! children, so after any sequence of writes and clears every level equals
//! the aggregation of the level below it. No two threads ever write the same
//! chunk: work is grouped by target chunk.

use super::aggregate::{is_valid, parent_chunk};
use super::error::EngineError;
use super::grid::{ChunkLoc, Window};
use super::job::{CancelToken, NoProgress, Progress, ProgressSink};
use super::{Element, Extent, Store};
use ndarray::{Array3, ArrayView3, s};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};

/// Decoded chunks kept between levels of one write; `None` is a chunk known
/// to be absent.
pub type ChunkCache<T> = HashMap<ChunkLoc, Option<Array3<T>>>;

/// Whether chunk writes are visible at once or staged until committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Replace the stored chunk at once (atomically).
    Live,
    /// Stage the chunk; readers see the old one until it is committed.
    Staged,
}

/// How [`Store::aggregate_up`] writes its chunks and schedules its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Whether chunks go live at once or are staged.
    pub visibility: Visibility,
    /// Whether the parents of a level are computed in parallel.
    pub parallel: bool,
}

impl Schedule {
    /// Live writes; the parents of each level computed in parallel.
    pub const LIVE: Self = Self {
        visibility: Visibility::Live,
        parallel: true,
    };

    /// Staged writes, one parent after another: for work that already runs
    /// in parallel blocks. (Nested parallelism would let rayon start more
    /// blocks than it has threads while a block waits, and grow memory.)
    pub const STAGED_IN_BLOCK: Self = Self {
        visibility: Visibility::Staged,
        parallel: false,
    };
}

/// What a write does to the base cells of a window.
#[derive(Debug, Clone, Copy)]
pub enum Patch<'a, T> {
    /// Overlay: cells with data replace the stored cells; nodata cells in the
    /// patch leave the stored cells alone.
    Data(ArrayView3<'a, T>),
    /// Set every cell of the window to nodata.
    Clear,
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Base chunks written or removed.
    pub base_chunks: u64,
    /// Aggregated chunks recomputed.
    pub pyramid_chunks: u64,
}

impl Store {
    /// Writes `data` (bands, rows, cols) into the base cells of `window` at
    /// time `instant`, then re-aggregates every ancestor up to the root.
    ///
    /// # Errors
    /// Read-only store, shape or type mismatch, a window outside the domain,
    /// time errors, corrupt chunks, or I/O.
    pub fn write<T: Element>(
        &self,
        instant: Option<i64>,
        window: Window,
        data: ArrayView3<'_, T>,
    ) -> Result<WriteReport, EngineError> {
        let (bands, rows, cols) = data.dim();
        let want = (
            self.structure().band_count(),
            window.rows as usize,
            window.cols as usize,
        );
        if (bands, rows, cols) != want {
            return Err(EngineError::Shape {
                expected: want,
                got: data.dim(),
            });
        }
        self.patch(
            instant,
            window,
            Patch::Data(data),
            &NoProgress,
            &CancelToken::new(),
        )
    }

    /// Sets every base cell in `extent` to nodata at time index `t` and
    /// re-aggregates. Chunks that become all nodata are removed.
    ///
    /// # Errors
    /// As [`Store::write`].
    pub fn clear<T: Element>(
        &self,
        t: u32,
        extent: &Extent,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<WriteReport, EngineError> {
        let Some(window) = self.grid().cover_clipped(0, extent) else {
            return Ok(WriteReport::default());
        };
        if t >= self.time_state().length.max(1) {
            return Err(EngineError::Time(format!("time index {t} holds no data")));
        }
        self.patch::<T>(self.instant_of(t), window, Patch::Clear, progress, cancel)
    }

    fn patch<T: Element>(
        &self,
        instant: Option<i64>,
        window: Window,
        patch: Patch<'_, T>,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<WriteReport, EngineError> {
        self.check_writable()?;
        let domain = self.grid().full_window(0);
        if window.intersect(&domain) != Some(window) {
            let extent = self.grid().window_extent(0, &window);
            return Err(super::grid::GridError::OutsideDomain {
                extent,
                domain: self.grid().domain(),
            }
            .into());
        }
        // Staged and committed as a whole: a failure or cancel changes nothing.
        let txn = self.begin_write(instant, window, 0)?;
        txn.announce(progress);
        let mut cache = ChunkCache::new();
        let changed = match self.apply_base(
            txn.t(),
            window,
            patch,
            &mut cache,
            Visibility::Staged,
            cancel,
        ) {
            Ok(changed) => changed,
            Err(e) => {
                txn.abort()?;
                return Err(e);
            }
        };
        let base_chunks = changed.len() as u64;
        let pyramid_chunks = txn.commit::<T>(progress, cancel)?;
        Ok(WriteReport {
            base_chunks,
            pyramid_chunks,
        })
    }

    /// Applies a patch to the base chunks under `window` (a level-0 window),
    /// writing each changed chunk and leaving its new contents in `cache`.
    /// Returns the base chunks that hold data before or after the patch
    /// (their ancestors need recomputing; an interrupted write is repaired
    /// through the journal, not by re-touching chunks).
    ///
    /// # Errors
    /// Corrupt chunks or I/O.
    pub fn apply_base<T: Element>(
        &self,
        t: u32,
        window: Window,
        patch: Patch<'_, T>,
        cache: &mut ChunkCache<T>,
        visibility: Visibility,
        cancel: &CancelToken,
    ) -> Result<BTreeSet<ChunkLoc>, EngineError> {
        let nodata = self.nodata::<T>();
        let mut touched = BTreeSet::new();
        for loc in self.grid().chunks_in(0, &window) {
            cancel.check()?;
            let chunk_window = self.grid().chunk_window(loc);
            let Some(overlap) = chunk_window.intersect(&window) else {
                continue;
            };
            let full = overlap == chunk_window;
            let old = match patch {
                // A whole chunk cleared: only whether it exists matters.
                Patch::Clear if full => self
                    .chunk_exists(t, loc)?
                    .then(|| Array3::from_elem(self.chunk_dim(), nodata)),
                _ => match self.read_chunk::<T>(t, loc) {
                    Ok(old) => old,
                    // A write over a corrupt chunk replaces it; the cells it
                    // does not cover were lost with the corruption.
                    Err(EngineError::Corrupt { .. }) => None,
                    Err(e) => return Err(e),
                },
            };
            let new = match patch {
                Patch::Clear if full => None,
                Patch::Clear => old.clone().map(|mut c| {
                    local(&mut c, &chunk_window, &overlap).fill(nodata);
                    c
                }),
                Patch::Data(data) => {
                    let mut c = old
                        .clone()
                        .unwrap_or_else(|| Array3::from_elem(self.chunk_dim(), nodata));
                    let src = data.slice(s![
                        ..,
                        (overlap.row - window.row) as usize
                            ..(overlap.row - window.row + overlap.rows) as usize,
                        (overlap.col - window.col) as usize
                            ..(overlap.col - window.col + overlap.cols) as usize
                    ]);
                    local(&mut c, &chunk_window, &overlap).zip_mut_with(&src, |dst, v| {
                        if is_valid(*v, nodata) {
                            *dst = *v;
                        }
                    });
                    Some(c)
                }
            };
            let new = new.filter(|c| !super::aggregate::all_nodata(&c.view(), nodata));
            if !super::aggregate::same_chunk(new.as_ref(), old.as_ref()) {
                self.put_chunk(t, loc, new.as_ref(), visibility)?;
            }
            if old.is_some() || new.is_some() {
                touched.insert(loc);
            }
            cache.insert(loc, new);
        }
        Ok(touched)
    }

    /// Re-aggregates the ancestors of `changed` (chunks of one level) up to
    /// level `up_to`, reading children from `cache` when there and from
    /// storage otherwise. Parents of a level are computed in parallel.
    /// Returns the number of chunks recomputed.
    ///
    /// # Errors
    /// Corrupt chunks, I/O, or cancellation.
    // The job context (progress, cancel) rides along with the operation's own
    // parameters; bundling them would only move the count elsewhere.
    #[allow(clippy::too_many_arguments)]
    pub fn aggregate_up<T: Element>(
        &self,
        t: u32,
        changed: BTreeSet<ChunkLoc>,
        mut cache: ChunkCache<T>,
        up_to: u8,
        schedule: Schedule,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<u64, EngineError> {
        let Some(first) = changed.first().map(|c| c.level) else {
            return Ok(0);
        };
        let mut current = changed;
        let total: u64 = (first + 1..=up_to)
            .map(|l| ancestors_at(&current, l).len() as u64)
            .sum();
        let progress = Progress::phase(progress, "pyramid", total);
        let mut done = 0;
        for level in first + 1..=up_to {
            cancel.check()?;
            let parents: Vec<ChunkLoc> = ancestors_at(&current, level).into_iter().collect();
            let one = |&parent: &ChunkLoc| {
                cancel.check()?;
                let chunk = self.compute_parent(t, parent, &cache)?;
                let old_exists = self.chunk_exists(t, parent)?;
                if chunk.is_some() || old_exists {
                    self.put_chunk(t, parent, chunk.as_ref(), schedule.visibility)?;
                }
                progress.add(1, self.chunk_bytes() as u64);
                Ok((parent, chunk))
            };
            let results: Vec<(ChunkLoc, Option<Array3<T>>)> = if schedule.parallel {
                parents
                    .par_iter()
                    .map(one)
                    .collect::<Result<_, EngineError>>()?
            } else {
                parents
                    .iter()
                    .map(one)
                    .collect::<Result<_, EngineError>>()?
            };
            done += results.len() as u64;
            cache.clear();
            cache.extend(results);
            current = parents.into_iter().collect();
        }
        Ok(done)
    }

    /// Computes a parent chunk from its children (cache first, then storage).
    ///
    /// # Errors
    /// Corrupt children or I/O.
    pub fn compute_parent<T: Element>(
        &self,
        t: u32,
        parent: ChunkLoc,
        cache: &ChunkCache<T>,
    ) -> Result<Option<Array3<T>>, EngineError> {
        let Some(children) = parent.children() else {
            return Ok(None);
        };
        let mut loaded: [Option<Array3<T>>; 4] = [None, None, None, None];
        let mut borrowed: [Option<&Array3<T>>; 4] = [None; 4];
        for (i, child) in children.iter().enumerate() {
            match cache.get(child) {
                Some(hit) => borrowed[i] = hit.as_ref(),
                None => loaded[i] = self.read_chunk(t, *child)?,
            }
        }
        for (i, l) in loaded.iter().enumerate() {
            if l.is_some() {
                borrowed[i] = l.as_ref();
            }
        }
        let structure = self.structure();
        Ok(parent_chunk(
            borrowed,
            structure.aggregate,
            self.nodata(),
            parent.level - 1,
            self.chunk_dim(),
        ))
    }
}

/// The distinct ancestors at `level` of chunks that all sit below it.
fn ancestors_at(chunks: &BTreeSet<ChunkLoc>, level: u8) -> BTreeSet<ChunkLoc> {
    chunks
        .iter()
        .map(|c| {
            let up = level - c.level;
            ChunkLoc::new(level, c.row >> up, c.col >> up)
        })
        .collect()
}

/// The part of a chunk that `overlap` (both level-0 windows) covers.
fn local<'a, T>(
    chunk: &'a mut Array3<T>,
    chunk_window: &Window,
    overlap: &Window,
) -> ndarray::ArrayViewMut3<'a, T> {
    let r0 = (overlap.row - chunk_window.row) as usize;
    let c0 = (overlap.col - chunk_window.col) as usize;
    chunk.slice_mut(s![
        ..,
        r0..r0 + overlap.rows as usize,
        c0..c0 + overlap.cols as usize
    ])
}
