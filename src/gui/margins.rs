//! The one-cell margins shaded relief needs around a tile: the edge rows
//! and columns of its eight neighbouring chunks. Each chunk's edges are
//! kept (a few kilobytes) in a bounded cache that the tile workers share,
//! so that a view's tiles decode their neighbours once between them rather
//! than eight times each. A neighbour decoded for its edges is also kept
//! whole for a while: its own tile, usually asked for next, takes it rather
//! than decoding it again.

use crate::engine::{ChunkLoc, Element, Store};
use ndarray::{Array2, Array3, ArrayView2};
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A chunk's outer rows and columns of one band (NaN without data).
#[derive(Debug, Clone, PartialEq)]
pub struct Edges {
    top: Vec<f32>,
    bottom: Vec<f32>,
    left: Vec<f32>,
    right: Vec<f32>,
}

impl Edges {
    /// The edges of `plane`.
    #[must_use]
    pub fn of(plane: &ArrayView2<'_, f32>) -> Self {
        let (rows, cols) = plane.dim();
        Self {
            top: plane.row(0).to_vec(),
            bottom: plane.row(rows - 1).to_vec(),
            left: plane.column(0).to_vec(),
            right: plane.column(cols - 1).to_vec(),
        }
    }
}

/// Which edges: `(time index, chunk, band)`.
type Key = (u32, ChunkLoc, usize);

/// Most chunks whose edges are kept (4 KB each for 256² chunks).
const CAPACITY: usize = 8192;

/// Most bytes of whole chunks kept after their edges were read.
const DECODED_BYTES: usize = 64 << 20;

/// A whole chunk decoded for its edges: where (time index, chunk), its
/// cells (an `Array3` of the store's element type) and their size in bytes.
type DecodedChunk = ((u32, ChunkLoc), Box<dyn Any + Send>, usize);

/// Whole chunks decoded for their edges, oldest first.
#[derive(Default)]
struct Decoded {
    chunks: VecDeque<DecodedChunk>,
    bytes: usize,
}

/// Chunks' edges, shared by the tile workers.
#[derive(Default)]
pub struct MarginCache {
    kept: Mutex<HashMap<Key, Arc<Edges>>>,
    decoded: Mutex<Decoded>,
    /// Bumped when the store's cells change: edges read before are not
    /// kept.
    epoch: AtomicU64,
}

impl MarginCache {
    /// Forgets every chunk's edges (the store's cells changed).
    pub fn forget(&self) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        kept.clear();
        *self.decoded() = Decoded::default();
    }

    /// The count of changes to the store's cells seen so far: taken when a
    /// tile is asked for, and given to [`MarginCache::with_margin`].
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn decoded(&self) -> std::sync::MutexGuard<'_, Decoded> {
        self.decoded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cells of chunk `loc` at time index `t`: taken from the chunks
    /// decoded for their edges, else read.
    ///
    /// # Errors
    /// The chunk cannot be read.
    pub fn read_chunk<T: Element>(
        &self,
        store: &Store,
        t: u32,
        loc: ChunkLoc,
    ) -> Result<Option<Array3<T>>, String> {
        let taken = {
            let mut decoded = self.decoded();
            let at = decoded.chunks.iter().position(|(k, _, _)| *k == (t, loc));
            at.and_then(|i| decoded.chunks.remove(i))
                .map(|(_, chunk, size)| {
                    decoded.bytes -= size;
                    chunk
                })
        };
        if let Some(chunk) = taken.and_then(|c| c.downcast::<Array3<T>>().ok()) {
            return Ok(Some(*chunk));
        }
        store.read_chunk::<T>(t, loc).map_err(|e| e.to_string())
    }

    /// Keeps a chunk decoded (in `epoch`) for its edges, for its own tile.
    fn keep_decoded<T: Element>(&self, epoch: u64, at: (u32, ChunkLoc), chunk: Array3<T>) {
        let size = chunk.len() * std::mem::size_of::<T>();
        let mut decoded = self.decoded();
        if self.epoch.load(Ordering::SeqCst) != epoch || size > DECODED_BYTES {
            return;
        }
        while decoded.bytes + size > DECODED_BYTES {
            let Some((_, _, old)) = decoded.chunks.pop_front() else {
                break;
            };
            decoded.bytes -= old;
        }
        decoded.bytes += size;
        decoded.chunks.push_back((at, Box::new(chunk), size));
    }

    /// Keeps `edges` read in `epoch`, unless the cells changed since;
    /// forgets everything first when full.
    fn keep(&self, epoch: u64, key: Key, edges: Arc<Edges>) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        if kept.len() >= CAPACITY {
            kept.clear();
        }
        kept.insert(key, edges);
    }

    fn get(&self, key: &Key) -> Option<Arc<Edges>> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// The edges of chunk `loc` (`None` outside the grid or without data),
    /// from the cache or read and kept.
    ///
    /// # Errors
    /// The chunk cannot be read.
    fn edges<T: Element>(
        &self,
        store: &Store,
        epoch: u64,
        t: u32,
        loc: ChunkLoc,
        band: usize,
    ) -> Result<Option<Arc<Edges>>, String> {
        let key = (t, loc, band);
        if let Some(edges) = self.get(&key) {
            return Ok(Some(edges));
        }
        let Some(chunk) = store.read_chunk::<T>(t, loc).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let plane = as_f32(
            &chunk.index_axis(ndarray::Axis(0), band),
            store.nodata::<T>(),
        );
        let edges = Arc::new(Edges::of(&plane.view()));
        self.keep(epoch, key, edges.clone());
        self.keep_decoded(epoch, (t, loc), chunk);
        Ok(Some(edges))
    }

    /// `plane` (the tile's band, as f32) with a one-cell margin from its
    /// neighbours at the same level and instant; NaN where a neighbour is
    /// outside the grid or holds no data there. Keeps the tile's own edges,
    /// and what it reads, only if the cells have not changed since `epoch`
    /// ([`MarginCache::epoch`] when the tile was asked for: a tile queued
    /// before a change keeps nothing it read after it).
    ///
    /// # Errors
    /// A neighbour cannot be read.
    pub fn with_margin<T: Element>(
        &self,
        store: &Store,
        epoch: u64,
        (t, loc, band): (u32, ChunkLoc, usize),
        plane: &ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>, String> {
        self.keep(epoch, (t, loc, band), Arc::new(Edges::of(plane)));
        let (rows, cols) = plane.dim();
        let mut out = Array2::from_elem((rows + 2, cols + 2), f32::NAN);
        out.slice_mut(ndarray::s![1..=rows, 1..=cols]).assign(plane);
        let side = i64::from(store.grid().chunks_per_side(loc.level));
        let neighbour = |dr: i64, dc: i64| -> Result<Option<Arc<Edges>>, String> {
            let (r, c) = (i64::from(loc.row) + dr, i64::from(loc.col) + dc);
            if r < 0 || c < 0 || r >= side || c >= side {
                return Ok(None);
            }
            let at = ChunkLoc {
                level: loc.level,
                row: u32::try_from(r).unwrap_or(0),
                col: u32::try_from(c).unwrap_or(0),
            };
            self.edges::<T>(store, epoch, t, at, band)
        };
        if let Some(n) = neighbour(-1, 0)? {
            out.slice_mut(ndarray::s![0, 1..=cols])
                .assign(&ndarray::aview1(&n.bottom));
        }
        if let Some(s) = neighbour(1, 0)? {
            out.slice_mut(ndarray::s![rows + 1, 1..=cols])
                .assign(&ndarray::aview1(&s.top));
        }
        if let Some(w) = neighbour(0, -1)? {
            out.slice_mut(ndarray::s![1..=rows, 0])
                .assign(&ndarray::aview1(&w.right));
        }
        if let Some(e) = neighbour(0, 1)? {
            out.slice_mut(ndarray::s![1..=rows, cols + 1])
                .assign(&ndarray::aview1(&e.left));
        }
        let corner = |edges: Option<Arc<Edges>>, pick: fn(&Edges) -> f32| edges.map(|e| pick(&e));
        if let Some(v) = corner(neighbour(-1, -1)?, |e| e.bottom[e.bottom.len() - 1]) {
            out[(0, 0)] = v;
        }
        if let Some(v) = corner(neighbour(-1, 1)?, |e| e.bottom[0]) {
            out[(0, cols + 1)] = v;
        }
        if let Some(v) = corner(neighbour(1, -1)?, |e| e.top[e.top.len() - 1]) {
            out[(rows + 1, 0)] = v;
        }
        if let Some(v) = corner(neighbour(1, 1)?, |e| e.top[0]) {
            out[(rows + 1, cols + 1)] = v;
        }
        Ok(out)
    }
}

/// One band's cells as f32, NaN without data.
#[must_use]
pub fn as_f32<T: Element>(
    plane: &ArrayView2<'_, T>,
    nodata: crate::engine::Nodata<T>,
) -> Array2<f32> {
    plane.map(|v| {
        if v.is_valid(nodata) {
            #[allow(clippy::cast_possible_truncation)]
            {
                v.to_f64() as f32
            }
        } else {
            f32::NAN
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Window;
    use crate::engine::grid::structure::tests::sample;
    use crate::storage::MemoryStorage;

    /// Two chunks side by side (4 x 4 cells each), every cell `v`.
    fn write_both(store: &Store, v: f32) {
        let window = Window {
            row: 0,
            col: 0,
            rows: 4,
            cols: 8,
        };
        let cells = ndarray::Array3::from_elem((1, 4, 8), v);
        store.write(None, window, cells.view()).unwrap();
    }

    #[test]
    fn a_neighbour_decoded_for_its_edges_is_handed_to_its_own_tile_once() {
        let store = Store::create(Arc::new(MemoryStorage::new()), sample()).unwrap();
        write_both(&store, 1.0);
        let margins = MarginCache::default();
        let (left, right) = (ChunkLoc::new(0, 0, 0), ChunkLoc::new(0, 0, 1));
        let plane = Array2::from_elem((4, 4), 1.0f32);
        let dem = margins
            .with_margin::<f32>(&store, margins.epoch(), (0, left, 0), &plane.view())
            .unwrap();
        assert_eq!(dem[(1, 5)], 1.0, "the right neighbour's left edge");
        // Changed behind the cache's back: what it hands over is the chunk
        // it decoded, not a second read.
        write_both(&store, 2.0);
        let first = margins
            .read_chunk::<f32>(&store, 0, right)
            .unwrap()
            .unwrap();
        assert!(first.iter().all(|v| *v == 1.0), "{first:?}");
        let again = margins
            .read_chunk::<f32>(&store, 0, right)
            .unwrap()
            .unwrap();
        assert!(
            again.iter().all(|v| *v == 2.0),
            "handed over once: {again:?}"
        );
        // Forgotten with the edges when the cells change.
        margins.forget();
        margins
            .with_margin::<f32>(&store, margins.epoch(), (0, left, 0), &plane.view())
            .unwrap();
        write_both(&store, 3.0);
        margins.forget();
        let fresh = margins
            .read_chunk::<f32>(&store, 0, right)
            .unwrap()
            .unwrap();
        assert!(fresh.iter().all(|v| *v == 3.0), "{fresh:?}");
        // A tile asked for before a change, run after it, keeps nothing.
        let before = margins.epoch();
        margins.forget();
        margins
            .with_margin::<f32>(&store, before, (0, left, 0), &plane.view())
            .unwrap();
        write_both(&store, 4.0);
        let after = margins
            .read_chunk::<f32>(&store, 0, right)
            .unwrap()
            .unwrap();
        assert!(after.iter().all(|v| *v == 4.0), "{after:?}");
    }

    #[test]
    fn edges_are_the_outer_rows_and_columns() {
        let plane = Array2::from_shape_fn((3, 4), |(r, c)| (r * 10 + c) as f32);
        let e = Edges::of(&plane.view());
        assert_eq!(e.top, [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(e.bottom, [20.0, 21.0, 22.0, 23.0]);
        assert_eq!(e.left, [0.0, 10.0, 20.0]);
        assert_eq!(e.right, [3.0, 13.0, 23.0]);
    }
}
