//! The engine's one write protocol: blocks of base cells in, an exact
//! pyramid out.
//!
//! Every write goes through [`Store::write_base`]: an instant, a window of
//! base cells, and where its cells come from (a block reader supplied by the
//! caller, or "clear"). The engine cuts the window into *blocks*, one per
//! chunk of level [`BLOCK_LEVELS`] (8×8 base chunks), and runs them on the
//! rayon pool. Each block asks the reader for its cells, overlays them on the
//! stored base chunks, and re-aggregates its own subtree up to the block
//! level in memory, *staging* every chunk (invisible to readers). Blocks
//! never share a chunk, so no chunk is written by two workers. Once every
//! block is staged the write commits through the journal and the levels
//! above the blocks are recomputed, starting from the blocks' top chunks
//! kept in memory. A failure or cancel before the commit changes nothing.
//!
//! After any sequence of writes and clears every level equals the
//! aggregation of the level below it.

use crate::engine::error::EngineError;
use crate::engine::grid::{ChunkLoc, Window};
use crate::engine::job::{CancelToken, NoProgress, Progress, ProgressSink};
use crate::engine::pyramid::aggregate::parent_chunk;
use crate::engine::{Element, Extent, Store};
use ndarray::{Array3, ArrayView3, s};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

/// Levels of the pyramid computed inside one block: a block is
/// `2^BLOCK_LEVELS` base chunks on a side, and its subtree is aggregated in
/// memory by the worker that wrote it.
pub const BLOCK_LEVELS: u8 = 3;

/// The most bytes of block top chunks a write keeps in memory for the
/// levels above the blocks (beyond it, they are read back from storage).
const KEPT_TOPS_BYTES: u64 = 256 << 20;

/// Decoded chunks kept between levels of one write; `None` is a chunk known
/// to be absent.
pub(crate) type ChunkCache<T> = HashMap<ChunkLoc, Option<Array3<T>>>;

/// Whether chunk writes are visible at once or staged until committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    /// Replace the stored chunk at once (atomically).
    Live,
    /// Stage the chunk; readers see the old one until it is committed.
    Staged,
}

/// How [`Store::aggregate_up`] writes its chunks and schedules its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
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

/// Reads the cells of a write block by block. Any
/// `Fn(Window) -> Result<Array3<T>, E> + Sync` is one.
pub trait BlockReader<T>: Sync {
    /// Why a read failed.
    type Error: Send;

    /// The cells of `window` (base cells inside the write's window) as
    /// (bands, rows, cols). Cells with data replace the stored cells;
    /// nodata cells leave them alone. Called from several threads at once,
    /// once per block, never twice for one cell.
    ///
    /// # Errors
    /// Whatever the source gives; the write is then rolled back.
    fn read(&self, window: Window) -> Result<Array3<T>, Self::Error>;

    /// As [`BlockReader::read`], with the cells (rows, cols) that hold no
    /// data, for a store without nodata, where no cell value can say so:
    /// `true` leaves the stored cell alone. By default there are none.
    ///
    /// # Errors
    /// As [`BlockReader::read`].
    fn read_with_holes(&self, window: Window) -> Result<Block<T>, Self::Error> {
        self.read(window).map(|cells| Block { cells, holes: None })
    }

    /// Called once every block was read and staged, before the write
    /// commits: a last chance to refuse it, for example after looking at
    /// everything that was read.
    ///
    /// # Errors
    /// The reason to refuse; the write is then rolled back.
    fn finish(&self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl<T, E: Send, F> BlockReader<T> for F
where
    F: Fn(Window) -> Result<Array3<T>, E> + Sync,
{
    type Error = E;

    fn read(&self, window: Window) -> Result<Array3<T>, E> {
        self(window)
    }
}

/// The cells of one block, and which of them hold no data when no cell
/// value can say so (see [`BlockReader::read_with_holes`]).
#[derive(Debug, Clone)]
pub struct Block<T> {
    /// The cells, (bands, rows, cols).
    pub cells: Array3<T>,
    /// (rows, cols): `true` where the block holds no data.
    pub holes: Option<ndarray::Array2<bool>>,
}

/// Where the cells of a write come from.
pub enum Cells<R> {
    /// Each block's cells from the caller's reader.
    Read(R),
    /// Every cell of the window becomes nodata.
    Clear,
    /// Every cell of the window takes the reader's cell, nodata included
    /// (its holes are ignored): for maps computed whole, such as a
    /// period's.
    Replace(R),
}

/// One write of base cells: when, where, and what.
pub struct BaseWrite<R> {
    /// The instant written, for stores with a time axis (a new instant is
    /// added to the axis when the write commits).
    pub instant: Option<i64>,
    /// The base cells written; inside the domain.
    pub window: Window,
    /// Where the cells come from.
    pub cells: Cells<R>,
}

/// The reader of a write that reads nothing ([`Cells::Clear`]).
pub type NoReader<T> = fn(Window) -> Result<Array3<T>, std::convert::Infallible>;

/// Why a write failed: its block reader, or the engine. Either way the
/// store is as it was before the write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<E> {
    /// The caller's block reader failed.
    #[error(transparent)]
    Source(E),
    /// The engine failed (storage, corrupt chunks, cancellation, …).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl WriteError<std::convert::Infallible> {
    /// The engine error of a write whose reader cannot fail.
    #[must_use]
    pub fn into_engine(self) -> EngineError {
        match self {
            Self::Engine(e) => e,
            Self::Source(never) => match never {},
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Base chunks written or removed.
    pub base_chunks: u64,
    /// Aggregated chunks recomputed.
    pub pyramid_chunks: u64,
}

/// What a write does to the base cells of a window.
#[derive(Debug, Clone, Copy)]
enum Patch<'a, T> {
    /// Overlay: cells with data replace the stored cells; nodata cells in the
    /// patch, and its holes, leave the stored cells alone.
    Data(ArrayView3<'a, T>, Option<ndarray::ArrayView2<'a, bool>>),
    /// Set every cell of the window to nodata.
    Clear,
    /// Every cell of the window takes the patch's cell, nodata included.
    Replace(ArrayView3<'a, T>),
}

/// What one block, or every block of a write, staged.
pub(crate) struct Staged<T> {
    /// Base chunks written or removed.
    pub base_chunks: u64,
    /// Aggregates recomputed inside the blocks.
    pub aggregates: u64,
    /// The blocks' top chunks (at the block level) that changed: where the
    /// levels above start.
    pub changed_tops: BTreeSet<ChunkLoc>,
    /// Those of them kept in memory.
    pub tops: ChunkCache<T>,
    /// Base cells holding every data cell of the changed base chunks.
    pub data: Option<Window>,
}

impl<T> Staged<T> {
    fn nothing() -> Self {
        Self {
            base_chunks: 0,
            aggregates: 0,
            changed_tops: BTreeSet::new(),
            tops: ChunkCache::new(),
            data: None,
        }
    }
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
        let block = |w: Window| {
            Ok::<_, std::convert::Infallible>(
                data.slice(s![
                    ..,
                    (w.row - window.row) as usize..(w.row - window.row + w.rows) as usize,
                    (w.col - window.col) as usize..(w.col - window.col + w.cols) as usize
                ])
                .to_owned(),
            )
        };
        let write = BaseWrite {
            instant,
            window,
            cells: Cells::Read(block),
        };
        self.write_base(write, &NoProgress, &CancelToken::new())
            .map_err(WriteError::into_engine)
    }

    /// Sets every base cell whose centre lies in `extent` to nodata at time
    /// index `t` and re-aggregates, and records the clear in the history.
    /// Chunks that become all nodata are removed.
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
        // The cells whose centres lie in the extent, as GDAL rasterizes:
        // a cell the extent only grazes keeps its value.
        let Some(window) = self.grid().cells_centred_in(0, extent) else {
            return Ok(WriteReport::default());
        };
        if t >= self.time_state().length.max(1) {
            return Err(EngineError::Time(format!("time index {t} holds no data")));
        }
        let started = std::time::Instant::now();
        let instant = self.instant_of(t);
        let write = BaseWrite {
            instant,
            window,
            cells: Cells::<NoReader<T>>::Clear,
        };
        let report = self
            .write_base(write, progress, cancel)
            .map_err(WriteError::into_engine)?;
        let e = self.grid().window_extent(0, &window);
        let record = crate::engine::IngestRecord {
            kind: crate::engine::WriteKind::Clear,
            source: String::new(),
            bytes: 0,
            checksum: String::new(),
            finished: crate::engine::grid::time::now_utc(),
            extent: [e.min_x, e.min_y, e.max_x, e.max_y],
            instant: instant.map(crate::engine::grid::time::format_instant),
            cells: window.rows * window.cols,
            base_chunks: report.base_chunks,
            pyramid_chunks: report.pyramid_chunks,
            seconds: started.elapsed().as_secs_f64(),
            warped: false,
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        // The cells are cleared: a history that cannot be written only warns.
        if let Err(e) = self.record_ingest(&record) {
            progress.event(crate::engine::JobEvent::Warning(format!(
                "cleared, but the history was not recorded ({e})"
            )));
        }
        Ok(report)
    }

    /// The one way to write: puts the cells of `write` into the base level
    /// and recomputes every ancestor, staged and committed as a whole. A
    /// failure of the reader or the engine, or a cancel, before the commit
    /// point leaves the store as it was; after it (a crash), the journal
    /// lets the next writer finish the write.
    ///
    /// # Errors
    /// [`WriteError::Source`] with the reader's error, or
    /// [`WriteError::Engine`]: read-only store, a window outside the domain,
    /// a block of the wrong shape, time errors, corrupt chunks, I/O,
    /// cancellation.
    pub fn write_base<T: Element, R: BlockReader<T>>(
        &self,
        write: BaseWrite<R>,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<WriteReport, WriteError<R::Error>> {
        self.check_writable()?;
        self.check_dtype::<T>()?;
        let BaseWrite {
            instant,
            window,
            cells,
        } = write;
        let domain = self.grid().full_window(0);
        if window.is_empty() || window.intersect(&domain) != Some(window) {
            let extent = self.grid().window_extent(0, &window);
            return Err(
                EngineError::from(crate::engine::grid::GridError::OutsideDomain {
                    extent,
                    domain: self.grid().domain(),
                })
                .into(),
            );
        }
        let block_level = self.layout().block_level(self.grid());
        // A clear never reaches beyond the data; cells may.
        let grow = !matches!(cells, Cells::Clear);
        let txn = self.begin_write(instant, window, block_level, grow)?;
        txn.announce(progress);
        // Period maps take a new instant's cells in one step when it held
        // none of the window's chunks before (see `engine::periods`).
        let fresh = match &cells {
            Cells::Clear => false,
            _ if self.periods.is_empty() => false,
            _ => match self.holds_none(txn.t(), window) {
                Ok(fresh) => fresh,
                Err(e) => {
                    txn.abort().ok();
                    return Err(e.into());
                }
            },
        };
        let staged = self
            .stage_blocks(txn.t(), window, block_level, &cells, progress, cancel)
            .and_then(|staged| match &cells {
                Cells::Read(reader) | Cells::Replace(reader) => {
                    reader.finish().map(|()| staged).map_err(WriteError::Source)
                }
                Cells::Clear => Ok(staged),
            });
        let staged = match staged {
            Ok(staged) => staged,
            Err(e) => {
                // The cause is what to report: an abort that fails leaves
                // the journal's record, and the next writer rolls it back.
                txn.abort().ok();
                return Err(e);
            }
        };
        let (base_chunks, aggregates) = (staged.base_chunks, staged.aggregates);
        let clear = matches!(cells, Cells::Clear);
        // The data's window grows before the chunks become visible, so it
        // always holds every data cell (a write that rolls back leaves a
        // window for contents that never were: readers then find it from
        // the chunks). It names the contents the write will leave.
        let keeps_data = self.structure().time.is_none() && self.format_version() >= 2;
        let before = if keeps_data {
            self.kept_data_window()?
        } else {
            None
        };
        if !clear
            && keeps_data
            && let (Some(new), Some(state)) = (staged.data, txn.planned_state())
        {
            // Not kept yet (an empty store, or one written before it was
            // kept): found from the chunks once; unreadable, it stays
            // unkept and readers find it from the chunks.
            let old = match before {
                Some(kept) => Ok(Some(kept)),
                None => self.scan_data_window::<T>(0),
            };
            if let Ok(old) = old
                && let Err(e) = self.keep_data_window(union(old, Some(new)), &state)
            {
                txn.abort().ok();
                return Err(e.into());
            }
        }
        let above = txn.commit::<T>(staged, fresh, progress)?;
        if clear && keeps_data && base_chunks > 0 {
            self.keep_after_clear::<T>(before, window);
        }
        Ok(WriteReport {
            base_chunks,
            pyramid_chunks: aggregates + above,
        })
    }

    /// Keeps the data's window after a clear of `cleared` committed: the
    /// same as `before` unless the clear reached one of its edges, where
    /// it is found again from the chunks. Best effort: a window not kept
    /// is found from the chunks by readers.
    fn keep_after_clear<T: Element>(&self, before: Option<Window>, cleared: Window) {
        let Ok(Some(state)) = self.settled_state() else {
            return;
        };
        let window = match before {
            Some(w) if !touches_edge(&w, &cleared) => Ok(Some(w)),
            _ => self.scan_data_window::<T>(0),
        };
        if let Ok(window) = window {
            self.keep_data_window(window, &state).ok();
        }
    }

    /// Stages every block of `window` on the rayon pool: its base chunks
    /// and their aggregates up to `block_level`.
    fn stage_blocks<T: Element, R: BlockReader<T>>(
        &self,
        t: u32,
        window: Window,
        block_level: u8,
        cells: &Cells<R>,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Staged<T>, WriteError<R::Error>> {
        let blocks: Vec<ChunkLoc> = self
            .grid()
            .chunks_in(block_level, &window.coarsened(block_level))
            .collect();
        let phase = match cells {
            Cells::Read(_) => "ingest",
            Cells::Clear => "clear",
            Cells::Replace(_) => "period maps",
        };
        let progress = Progress::phase(progress, phase, blocks.len() as u64);
        let kept_bytes = AtomicU64::new(0);
        let staged: Vec<Staged<T>> = blocks
            .par_iter()
            .map(|&block| {
                cancel.check()?;
                let block_window = self.grid().chunk_window(block).refined(block_level);
                let Some(part) = block_window.intersect(&window) else {
                    return Ok(Staged::nothing());
                };
                let staged = self.stage_block(t, part, block_level, cells, &kept_bytes, cancel)?;
                // Sharded, the block's chunks fill its own shards: each is
                // written once, whole.
                self.flush_shards(
                    (0..=block_level)
                        .map(|level| {
                            let up = block_level - level;
                            ChunkLoc::new(level, block.row << up, block.col << up)
                        })
                        .filter_map(|loc| self.chunk_key(t, loc)),
                )?;
                let bytes = part.rows * part.cols * self.chunk_dim().0 as u64;
                progress.add(1, bytes * T::DTYPE.size() as u64);
                Ok(staged)
            })
            .collect::<Result<_, WriteError<R::Error>>>()?;
        let mut all = Staged::nothing();
        for block in staged {
            all.base_chunks += block.base_chunks;
            all.aggregates += block.aggregates;
            all.changed_tops.extend(block.changed_tops);
            all.tops.extend(block.tops);
            all.data = union(all.data, block.data);
        }
        Ok(all)
    }

    /// Stages one block: reads its cells (`part`, base cells), overlays
    /// them, and aggregates its subtree up to `block_level`.
    fn stage_block<T: Element, R: BlockReader<T>>(
        &self,
        t: u32,
        part: Window,
        block_level: u8,
        cells: &Cells<R>,
        kept_bytes: &AtomicU64,
        cancel: &CancelToken,
    ) -> Result<Staged<T>, WriteError<R::Error>> {
        let mut cache = ChunkCache::new();
        let touched = match cells {
            Cells::Read(reader) => {
                let Block { cells: data, holes } =
                    reader.read_with_holes(part).map_err(WriteError::Source)?;
                let want = (self.chunk_dim().0, part.rows as usize, part.cols as usize);
                let holes_fit = holes.as_ref().is_none_or(|h| h.dim() == (want.1, want.2));
                if data.dim() != want || !holes_fit {
                    return Err(EngineError::Shape {
                        expected: want,
                        got: data.dim(),
                    }
                    .into());
                }
                // The cells live on in `cache` as chunks; `data` goes here.
                let patch = Patch::Data(data.view(), holes.as_ref().map(|h| h.view()));
                self.apply_base(t, part, patch, &mut cache, cancel)?
            }
            Cells::Clear => self.apply_base(t, part, Patch::<T>::Clear, &mut cache, cancel)?,
            Cells::Replace(reader) => {
                let data = reader.read(part).map_err(WriteError::Source)?;
                let want = (self.chunk_dim().0, part.rows as usize, part.cols as usize);
                if data.dim() != want {
                    return Err(EngineError::Shape {
                        expected: want,
                        got: data.dim(),
                    }
                    .into());
                }
                self.apply_base(t, part, Patch::Replace(data.view()), &mut cache, cancel)?
            }
        };
        let (touched, data) = touched;
        let base_chunks = touched.len() as u64;
        if touched.is_empty() {
            return Ok(Staged::nothing());
        }
        let (aggregates, top) = self.aggregate_up(
            t,
            touched,
            cache,
            block_level,
            Schedule::STAGED_IN_BLOCK,
            &NoProgress,
            cancel,
        )?;
        let top_bytes: u64 = top
            .values()
            .flatten()
            .map(|c| (c.len() * T::DTYPE.size()) as u64)
            .sum();
        let within =
            kept_bytes.fetch_add(top_bytes, Ordering::Relaxed) + top_bytes <= KEPT_TOPS_BYTES;
        Ok(Staged {
            base_chunks,
            aggregates,
            changed_tops: top.keys().copied().collect(),
            tops: if within { top } else { ChunkCache::new() },
            data,
        })
    }

    /// Applies a patch to the base chunks under `window` (a level-0 window),
    /// staging each changed chunk and leaving its new contents in `cache`.
    /// Returns the base chunks that hold data before or after the patch
    /// (their ancestors need recomputing; an interrupted write is repaired
    /// through the journal, not by re-touching chunks), and the base cells
    /// holding every data cell of those chunks after it.
    ///
    /// # Errors
    /// Corrupt chunks or I/O.
    fn apply_base<T: Element>(
        &self,
        t: u32,
        window: Window,
        patch: Patch<'_, T>,
        cache: &mut ChunkCache<T>,
        cancel: &CancelToken,
    ) -> Result<(BTreeSet<ChunkLoc>, Option<Window>), EngineError> {
        let nodata = self.nodata::<T>();
        let mut touched = BTreeSet::new();
        let mut data = None;
        for loc in self.grid().chunks_in(0, &window) {
            cancel.check()?;
            let chunk_window = self.grid().chunk_window(loc);
            let Some(overlap) = chunk_window.intersect(&window) else {
                continue;
            };
            let full = overlap == chunk_window;
            let old = match patch {
                // A whole chunk cleared: only whether it exists matters.
                // (A chunk in a shard whose index is damaged may exist.)
                Patch::Clear if full => exists_or_damaged(self.chunk_exists(t, loc))?
                    .then(|| Array3::from_elem(self.chunk_dim(), nodata.fill())),
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
                    local(&mut c, &chunk_window, &overlap).fill(nodata.fill());
                    c
                }),
                Patch::Replace(data) => {
                    let mut c = old
                        .clone()
                        .unwrap_or_else(|| Array3::from_elem(self.chunk_dim(), nodata.fill()));
                    let (rows, cols) = within(&window, &overlap);
                    local(&mut c, &chunk_window, &overlap).assign(&data.slice(s![.., rows, cols]));
                    Some(c)
                }
                Patch::Data(data, holes) => {
                    let mut c = old
                        .clone()
                        .unwrap_or_else(|| Array3::from_elem(self.chunk_dim(), nodata.fill()));
                    let (rows, cols) = within(&window, &overlap);
                    let src = data.slice(s![.., rows.clone(), cols.clone()]);
                    let mut dst = local(&mut c, &chunk_window, &overlap);
                    match holes {
                        None => dst.zip_mut_with(&src, |dst, v| {
                            if v.is_valid(nodata) {
                                *dst = *v;
                            }
                        }),
                        Some(holes) => {
                            let holes = holes.slice(s![rows, cols]);
                            for (mut band, src) in dst.outer_iter_mut().zip(src.outer_iter()) {
                                ndarray::Zip::from(&mut band)
                                    .and(&src)
                                    .and(&holes)
                                    .for_each(|dst, v, hole| {
                                        if !hole && v.is_valid(nodata) {
                                            *dst = *v;
                                        }
                                    });
                            }
                        }
                    }
                    Some(c)
                }
            };
            let new = new.filter(|c| !crate::engine::grid::dtype::all_nodata(&c.view(), nodata));
            if !crate::engine::pyramid::aggregate::same_chunk(new.as_ref(), old.as_ref()) {
                self.put_chunk(t, loc, new.as_ref(), Visibility::Staged)?;
            }
            if old.is_some() || new.is_some() {
                touched.insert(loc);
            }
            if let Some(cells) = new
                .as_ref()
                .and_then(|c| crate::engine::pyramid::bounds::chunk_data_window(c, nodata))
            {
                let at = Window {
                    row: chunk_window.row + cells.row,
                    col: chunk_window.col + cells.col,
                    ..cells
                };
                data = union(data, Some(at));
            }
            cache.insert(loc, new);
        }
        Ok((touched, data))
    }

    /// Re-aggregates the ancestors of `changed` (chunks of one level) up to
    /// level `up_to`, reading children from `cache` when there and from
    /// storage otherwise. Parents of a level are computed in parallel.
    /// Returns the number of chunks recomputed, and the chunks of the last
    /// level reached (`cache` itself when there was nothing to do).
    // The job context (progress, cancel) rides along with the operation's own
    // parameters; bundling them would only move the count elsewhere.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn aggregate_up<T: Element>(
        &self,
        t: u32,
        changed: BTreeSet<ChunkLoc>,
        mut cache: ChunkCache<T>,
        up_to: u8,
        schedule: Schedule,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<(u64, ChunkCache<T>), EngineError> {
        let Some(first) = changed.first().map(|c| c.level) else {
            return Ok((0, cache));
        };
        if self.base_only {
            return Ok((0, cache));
        }
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
                let old_exists = exists_or_damaged(self.chunk_exists(t, parent))?;
                if chunk.is_some() || old_exists {
                    self.put_chunk(t, parent, chunk.as_ref(), schedule.visibility)?;
                } else {
                    // Removed by an earlier, interrupted pass of this write:
                    // its statistics go too.
                    self.note_summary(t, parent, None);
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
        Ok((done, cache))
    }

    /// Computes a parent chunk from its children (cache first, then storage).
    pub(crate) fn compute_parent<T: Element>(
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

/// Whether a chunk is stored, counting one whose shard's index is damaged
/// (writing it replaces the shard, or fails naming it).
fn exists_or_damaged(exists: Result<bool, EngineError>) -> Result<bool, EngineError> {
    match exists {
        Err(EngineError::Corrupt { .. }) => Ok(true),
        other => other,
    }
}

/// Whether `cleared` reaches a cell of `window`'s first or last row or
/// column (where the data's extent may shrink).
fn touches_edge(window: &Window, cleared: &Window) -> bool {
    let edges = [
        Window { rows: 1, ..*window },
        Window {
            row: window.row + window.rows - 1,
            rows: 1,
            ..*window
        },
        Window { cols: 1, ..*window },
        Window {
            col: window.col + window.cols - 1,
            cols: 1,
            ..*window
        },
    ];
    edges.iter().any(|edge| edge.intersect(cleared).is_some())
}

/// The window holding both (either may be absent).
/// The rows and columns of `part` within `window`'s cells (`part` lies in
/// `window`).
fn within(window: &Window, part: &Window) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let row = (part.row - window.row) as usize;
    let col = (part.col - window.col) as usize;
    (row..row + part.rows as usize, col..col + part.cols as usize)
}

fn union(a: Option<Window>, b: Option<Window>) -> Option<Window> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.union(&b)),
        (a, b) => a.or(b),
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
