//! The one-cell margins shaded relief needs around a tile: the edge rows
//! and columns of its eight neighbouring chunks. Each chunk's edges are
//! kept (a few kilobytes) in a bounded cache that the tile workers share,
//! so that a view's tiles decode their neighbours once between them rather
//! than eight times each.

use crate::engine::{ChunkLoc, Element, Store};
use ndarray::{Array2, ArrayView2};
use std::collections::HashMap;
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

/// Chunks' edges, shared by the tile workers.
#[derive(Default)]
pub struct MarginCache {
    kept: Mutex<HashMap<Key, Arc<Edges>>>,
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
        Ok(Some(edges))
    }

    /// `plane` (the tile's band, as f32) with a one-cell margin from its
    /// neighbours at the same level and instant; NaN where a neighbour is
    /// outside the grid or holds no data there. Keeps the tile's own edges.
    ///
    /// # Errors
    /// A neighbour cannot be read.
    pub fn with_margin<T: Element>(
        &self,
        store: &Store,
        (t, loc, band): (u32, ChunkLoc, usize),
        plane: &ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>, String> {
        // Taken before any read: edges read across a change are not kept.
        let epoch = self.epoch.load(Ordering::SeqCst);
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
