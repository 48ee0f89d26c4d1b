//! The footprint: which part of each level's domain the level's Zarr array
//! spans, and so where a chunk's key puts it.
//!
//! Format version 1 sized every level's array to the whole domain (a 4 TB
//! array for a small DEM). From version 2 each array spans the chunks that
//! the data ever reached, rounded out to whole shards: the footprint keeps
//! that extent at the base level, in chunks, and every level's array window
//! follows from it. Writes grow it (a write that fails shrinks it back; a
//! clear never shrinks it). When it grows west or north, the arrays'
//! origins move and every stored chunk of the moved levels gets a new key
//! (see `persistence::reshape`).

use crate::engine::grid::{ChunkLoc, Grid, Window};
use serde::{Deserialize, Serialize};

/// Which part of each level's domain the level's array spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Footprint {
    /// Format version 1: every level spans its whole domain.
    Domain,
    /// Format version 2: every level spans the chunks over `base`, rounded
    /// out to whole shards: `shard` chunks per side at level 0, half as
    /// many at each level above, at least one.
    Data {
        /// Chunks per side of a level-0 shard (1 when chunks are not
        /// sharded).
        shard: u32,
        /// Base chunks the data ever reached, in chunk units; `None` before
        /// the first write.
        base: Option<Window>,
    },
}

impl Footprint {
    /// The base chunks the data ever reached; `None` before the first
    /// write, and for a version-1 footprint, which spans everything.
    #[must_use]
    pub fn base(&self) -> Option<Window> {
        match self {
            Self::Data { base, .. } => *base,
            Self::Domain => None,
        }
    }

    /// The chunks of `level` that its array spans (in chunk units, domain
    /// indices); empty for a store not yet written.
    #[must_use]
    pub fn array_window(&self, grid: &Grid, level: u8) -> Window {
        let side = u64::from(grid.chunks_per_side(level));
        match self {
            Self::Domain => Window {
                row: 0,
                col: 0,
                rows: side,
                cols: side,
            },
            Self::Data { base: None, .. } => Window {
                row: 0,
                col: 0,
                rows: 0,
                cols: 0,
            },
            Self::Data {
                shard,
                base: Some(base),
            } => {
                let chunks = base.coarsened(level);
                // Shards cover the same ground at every level (see
                // `Layout::shard_side`).
                let s = u64::from(shard.checked_shr(u32::from(level)).unwrap_or(0).max(1));
                let row = chunks.row / s * s;
                let col = chunks.col / s * s;
                let row_end = (chunks.row + chunks.rows).next_multiple_of(s).min(side);
                let col_end = (chunks.col + chunks.cols).next_multiple_of(s).min(side);
                Window {
                    row,
                    col,
                    rows: row_end - row,
                    cols: col_end - col,
                }
            }
        }
    }

    /// The chunk's index in its level's array (row, column), or `None` when
    /// the array does not span it (the chunk then holds no data).
    #[must_use]
    pub fn index_of(&self, grid: &Grid, loc: ChunkLoc) -> Option<(u64, u64)> {
        let window = self.array_window(grid, loc.level);
        let (row, col) = (u64::from(loc.row), u64::from(loc.col));
        let inside = (window.row..window.row + window.rows).contains(&row)
            && (window.col..window.col + window.cols).contains(&col);
        inside.then(|| (row - window.row, col - window.col))
    }

    /// The chunk at index (row, column) of `level`'s array, or `None`
    /// outside it.
    #[must_use]
    pub fn loc_at(&self, grid: &Grid, level: u8, row: u64, col: u64) -> Option<ChunkLoc> {
        let window = self.array_window(grid, level);
        if row >= window.rows || col >= window.cols {
            return None;
        }
        Some(ChunkLoc::new(
            level,
            u32::try_from(window.row + row).ok()?,
            u32::try_from(window.col + col).ok()?,
        ))
    }

    /// The footprint that also spans the base cells of `window`; itself
    /// for a version-1 footprint, which spans everything.
    #[must_use]
    pub fn grown(&self, grid: &Grid, window: &Window) -> Self {
        match *self {
            Self::Domain => Self::Domain,
            Self::Data { shard, base } => {
                let [w, h] = grid.chunk_shape();
                let chunks = Window {
                    row: window.row / u64::from(h),
                    col: window.col / u64::from(w),
                    rows: (window.row + window.rows).div_ceil(u64::from(h))
                        - window.row / u64::from(h),
                    cols: (window.col + window.cols).div_ceil(u64::from(w))
                        - window.col / u64::from(w),
                };
                let base = Some(base.map_or(chunks, |b| b.union(&chunks)));
                Self::Data { shard, base }
            }
        }
    }

    /// The levels whose array origin differs between `self` and `other`:
    /// every stored chunk of those levels changes key.
    #[must_use]
    pub fn moved_levels(&self, other: &Self, grid: &Grid) -> Vec<u8> {
        (0..=grid.top_level())
            .filter(|&level| {
                let (a, b) = (
                    self.array_window(grid, level),
                    other.array_window(grid, level),
                );
                // An empty array has no chunks to move.
                !a.is_empty() && !b.is_empty() && (a.row, a.col) != (b.row, b.col)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::structure::tests::sample;
    use proptest::prelude::*;

    fn footprint(base: Window) -> Footprint {
        Footprint::Data {
            shard: 1,
            base: Some(base),
        }
    }

    #[test]
    fn a_version_1_footprint_spans_the_domain() {
        let grid = Grid::new(&sample());
        let top = grid.top_level();
        let w = Footprint::Domain.array_window(&grid, 0);
        assert_eq!((w.rows, w.cols), (1 << top, 1 << top));
        let loc = ChunkLoc::new(0, 3, 5);
        assert_eq!(Footprint::Domain.index_of(&grid, loc), Some((3, 5)));
    }

    #[test]
    fn an_empty_footprint_spans_nothing() {
        let grid = Grid::new(&sample());
        let empty = Footprint::Data {
            shard: 1,
            base: None,
        };
        assert!(empty.array_window(&grid, 0).is_empty());
        assert_eq!(empty.index_of(&grid, ChunkLoc::new(0, 0, 0)), None);
    }

    #[test]
    fn growing_west_moves_the_origin_of_the_levels_it_reaches() {
        let grid = Grid::new(&sample());
        let f = footprint(Window {
            row: 4,
            col: 4,
            rows: 2,
            cols: 2,
        });
        let cells = grid.chunk_window(ChunkLoc::new(0, 4, 3));
        let g = f.grown(&grid, &cells);
        assert_eq!(g.array_window(&grid, 0).col, 3);
        // Levels 1 and 2 start a chunk further west too; level 3 spans
        // chunk 0 before and after.
        assert_eq!(f.moved_levels(&g, &grid), vec![0, 1, 2]);
    }

    #[test]
    fn shards_round_the_window_out() {
        let grid = Grid::new(&sample());
        let f = Footprint::Data {
            shard: 4,
            base: Some(Window {
                row: 5,
                col: 3,
                rows: 1,
                cols: 6,
            }),
        };
        let w = f.array_window(&grid, 0);
        assert_eq!((w.row, w.col, w.rows, w.cols), (4, 0, 4, 12));
    }

    proptest! {
        /// Every chunk over the data has an index, and the index leads
        /// back to the chunk.
        #[test]
        fn indices_round_trip(
            row in 0u64..6, col in 0u64..6, rows in 1u64..3, cols in 1u64..3,
            level in 0u8..4, r in 0u32..8, c in 0u32..8, shard in prop::sample::select(vec![1u32, 2, 4]),
        ) {
            let grid = Grid::new(&sample());
            let f = Footprint::Data { shard, base: Some(Window { row, col, rows, cols }) };
            let side = grid.chunks_per_side(level);
            let loc = ChunkLoc::new(level, r % side, c % side);
            let over = Window { row, col, rows, cols }.coarsened(level);
            let holds = (over.row..over.row + over.rows).contains(&u64::from(loc.row))
                && (over.col..over.col + over.cols).contains(&u64::from(loc.col));
            match f.index_of(&grid, loc) {
                Some((i, j)) => prop_assert_eq!(f.loc_at(&grid, level, i, j), Some(loc)),
                None => prop_assert!(!holds, "{loc} holds data but has no index"),
            }
        }
    }
}
