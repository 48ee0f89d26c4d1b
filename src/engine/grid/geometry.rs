//! Grid math: levels, chunk locations, cell windows and extents.
//!
//! Level 0 is the base. Level `k` cell `(r, c)` covers base cells
//! `[r·2^k, (r+1)·2^k) × [c·2^k, (c+1)·2^k)`. Cell and chunk indices count
//! from the north-west corner of the *domain*, a square of
//! `chunk · 2^D` base cells per axis centred on the structure's anchor, where
//! `D` is `domain_levels`. Level `D` has exactly one chunk, the root.

use crate::engine::Structure;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Relative tolerance (in cells) under which a coordinate counts as lying on
/// a cell edge. Keeps round trips exact despite floating-point noise.
const SNAP: f64 = 1e-6;

/// Where a chunk sits: its level, and its row and column within the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChunkLoc {
    /// The pyramid level, 0 for the base.
    pub level: u8,
    /// Row of the chunk, counted southwards from the domain's north edge.
    pub row: u32,
    /// Column of the chunk, counted eastwards from the domain's west edge.
    pub col: u32,
}

impl ChunkLoc {
    /// The chunk at `level`, `row`, `col`.
    #[must_use]
    pub fn new(level: u8, row: u32, col: u32) -> Self {
        Self { level, row, col }
    }

    /// The chunk one level up that contains this one.
    #[must_use]
    pub fn parent(self) -> Self {
        Self {
            level: self.level + 1,
            row: self.row / 2,
            col: self.col / 2,
        }
    }

    /// The four chunks one level down, in reading order (NW, NE, SW, SE).
    /// `None` at level 0.
    #[must_use]
    pub fn children(self) -> Option<[Self; 4]> {
        let level = self.level.checked_sub(1)?;
        let (r, c) = (self.row * 2, self.col * 2);
        Some([
            Self {
                level,
                row: r,
                col: c,
            },
            Self {
                level,
                row: r,
                col: c + 1,
            },
            Self {
                level,
                row: r + 1,
                col: c,
            },
            Self {
                level,
                row: r + 1,
                col: c + 1,
            },
        ])
    }

    /// Which quadrant of its parent this chunk is: `(row offset, col offset)`.
    #[must_use]
    pub fn quadrant(self) -> (usize, usize) {
        ((self.row % 2) as usize, (self.col % 2) as usize)
    }
}

impl fmt::Display for ChunkLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}/{}/{}", self.level, self.row, self.col)
    }
}

/// A half-open rectangle of cells at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// First row.
    pub row: u64,
    /// First column.
    pub col: u64,
    /// Number of rows.
    pub rows: u64,
    /// Number of columns.
    pub cols: u64,
}

impl Window {
    /// The overlap of two windows, if any.
    #[must_use]
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        let row = self.row.max(other.row);
        let col = self.col.max(other.col);
        let row_end = (self.row + self.rows).min(other.row + other.rows);
        let col_end = (self.col + self.cols).min(other.col + other.cols);
        (row < row_end && col < col_end).then(|| Self {
            row,
            col,
            rows: row_end - row,
            cols: col_end - col,
        })
    }

    /// The cells `levels` levels coarser that this window touches: each
    /// coarser cell covers `2^levels` cells per side, so the edges round
    /// outward.
    #[must_use]
    pub fn coarsened(&self, levels: u8) -> Self {
        let f = 1u64 << levels;
        let row = self.row / f;
        let col = self.col / f;
        Self {
            row,
            col,
            rows: (self.row + self.rows).div_ceil(f) - row,
            cols: (self.col + self.cols).div_ceil(f) - col,
        }
    }

    /// The cells `levels` levels finer that this window covers exactly.
    #[must_use]
    pub fn refined(&self, levels: u8) -> Self {
        let f = 1u64 << levels;
        Self {
            row: self.row * f,
            col: self.col * f,
            rows: self.rows * f,
            cols: self.cols * f,
        }
    }

    /// Whether the window holds no cells.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows == 0 || self.cols == 0
    }

    /// The smallest window holding both.
    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        let row = self.row.min(other.row);
        let col = self.col.min(other.col);
        let row_end = (self.row + self.rows).max(other.row + other.rows);
        let col_end = (self.col + self.cols).max(other.col + other.cols);
        Self {
            row,
            col,
            rows: row_end - row,
            cols: col_end - col,
        }
    }
}

/// A rectangle in CRS coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Extent {
    /// West edge.
    pub min_x: f64,
    /// South edge.
    pub min_y: f64,
    /// East edge.
    pub max_x: f64,
    /// North edge.
    pub max_y: f64,
}

impl Extent {
    /// An extent from its edges.
    ///
    /// # Errors
    /// A reason when an edge is not finite or the extent is empty.
    pub fn new(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Result<Self, GridError> {
        let edges = [min_x, min_y, max_x, max_y];
        if !edges.iter().all(|v| v.is_finite()) {
            return Err(GridError::NotFinite);
        }
        if min_x >= max_x || min_y >= max_y {
            return Err(GridError::EmptyExtent { edges });
        }
        Ok(Self {
            min_x,
            min_y,
            max_x,
            max_y,
        })
    }

    /// Width in CRS units.
    #[must_use]
    pub fn width(&self) -> f64 {
        self.max_x - self.min_x
    }

    /// Height in CRS units.
    #[must_use]
    pub fn height(&self) -> f64 {
        self.max_y - self.min_y
    }
}

impl fmt::Display for Extent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{}",
            self.min_x, self.min_y, self.max_x, self.max_y
        )
    }
}

/// Grid math errors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GridError {
    /// The extent reaches outside the store's domain.
    #[error("extent {extent} lies outside the store's domain {domain}")]
    OutsideDomain {
        /// The requested extent.
        extent: Extent,
        /// The domain.
        domain: Extent,
    },
    /// An extent with an edge that is not a finite number.
    #[error("extent edges must be finite")]
    NotFinite,
    /// An extent with no area.
    #[error(
        "extent {},{},{},{} is empty (need MINX<MAXX and MINY<MAXY)",
        edges[0], edges[1], edges[2], edges[3]
    )]
    EmptyExtent {
        /// Its edges: min x, min y, max x, max y.
        edges: [f64; 4],
    },
    /// A level above the root.
    #[error("level {level} does not exist (the store has levels 0 to {top})")]
    NoSuchLevel {
        /// The requested level.
        level: u8,
        /// The root level.
        top: u8,
    },
}

/// The grid of a store, derived from its [`Structure`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// The anchor (x, y): the corner of base cell `half`.
    anchor: [f64; 2],
    /// Base cell index (col, row) of the anchor: the domain centre.
    half: [u64; 2],
    /// Base cell size (x, y), positive.
    cell: [f64; 2],
    /// Chunk width and height in cells.
    chunk: [u32; 2],
    /// The root level `D`.
    top: u8,
}

impl Grid {
    /// The grid of a (validated) structure.
    #[must_use]
    pub fn new(structure: &Structure) -> Self {
        let top = structure.domain_levels;
        let half = |axis: usize| u64::from(structure.chunk[axis]) << (top - 1);
        Self {
            anchor: structure.anchor,
            half: [half(0), half(1)],
            cell: structure.cell_size,
            chunk: structure.chunk,
            top,
        }
    }

    /// The root level (the number of levels minus one).
    #[must_use]
    pub fn top_level(&self) -> u8 {
        self.top
    }

    /// The single chunk at the root level.
    #[must_use]
    pub fn root(&self) -> ChunkLoc {
        ChunkLoc::new(self.top, 0, 0)
    }

    /// Chunk width and height in cells.
    #[must_use]
    pub fn chunk_shape(&self) -> [u32; 2] {
        self.chunk
    }

    /// Checks that `level` exists.
    ///
    /// # Errors
    /// [`GridError::NoSuchLevel`].
    pub fn check_level(&self, level: u8) -> Result<(), GridError> {
        if level > self.top {
            return Err(GridError::NoSuchLevel {
                level,
                top: self.top,
            });
        }
        Ok(())
    }

    /// Cell size (x, y) at `level`.
    #[must_use]
    pub fn cell_size(&self, level: u8) -> [f64; 2] {
        let f = f64::from(1u32 << level);
        [self.cell[0] * f, self.cell[1] * f]
    }

    /// Chunks per axis at `level`.
    #[must_use]
    pub fn chunks_per_side(&self, level: u8) -> u32 {
        1 << (self.top - level)
    }

    /// Cells per axis at `level`: (columns, rows).
    #[must_use]
    pub fn cells(&self, level: u8) -> [u64; 2] {
        let n = u64::from(self.chunks_per_side(level));
        [u64::from(self.chunk[0]) * n, u64::from(self.chunk[1]) * n]
    }

    /// The GDAL geotransform of a raster whose first cell is cell
    /// `(row, col)` of `level`.
    #[must_use]
    pub fn geotransform(&self, level: u8, (row, col): (u64, u64)) -> [f64; 6] {
        let [cx, cy] = self.cell_size(level);
        [
            self.x_of(level, col),
            cx,
            0.0,
            self.y_of(level, row),
            0.0,
            -cy,
        ]
    }

    /// The x of the west edge of column `col` at `level`. Computed from the
    /// anchor, so edges near the data are exact.
    #[must_use]
    pub fn x_of(&self, level: u8, col: u64) -> f64 {
        let offset = (col << level) as f64 - self.half[0] as f64;
        self.anchor[0] + offset * self.cell[0]
    }

    /// The y of the north edge of row `row` at `level`.
    #[must_use]
    pub fn y_of(&self, level: u8, row: u64) -> f64 {
        let offset = (row << level) as f64 - self.half[1] as f64;
        self.anchor[1] - offset * self.cell[1]
    }

    /// The extent of the whole domain.
    #[must_use]
    pub fn domain(&self) -> Extent {
        self.window_extent(0, &self.full_window(0))
    }

    /// Every cell of `level`.
    #[must_use]
    pub fn full_window(&self, level: u8) -> Window {
        let [cols, rows] = self.cells(level);
        Window {
            row: 0,
            col: 0,
            rows,
            cols,
        }
    }

    /// The cells of one chunk.
    #[must_use]
    pub fn chunk_window(&self, loc: ChunkLoc) -> Window {
        let (w, h) = (u64::from(self.chunk[0]), u64::from(self.chunk[1]));
        Window {
            row: u64::from(loc.row) * h,
            col: u64::from(loc.col) * w,
            rows: h,
            cols: w,
        }
    }

    /// The extent of a window at `level`.
    #[must_use]
    pub fn window_extent(&self, level: u8, window: &Window) -> Extent {
        Extent {
            min_x: self.x_of(level, window.col),
            max_x: self.x_of(level, window.col + window.cols),
            max_y: self.y_of(level, window.row),
            min_y: self.y_of(level, window.row + window.rows),
        }
    }

    /// The extent of one chunk.
    #[must_use]
    pub fn chunk_extent(&self, loc: ChunkLoc) -> Extent {
        self.window_extent(loc.level, &self.chunk_window(loc))
    }

    /// Fractional (column, row) of a point at `level`, snapped to whole
    /// numbers within [`SNAP`].
    #[must_use]
    pub fn fractional_cell(&self, level: u8, x: f64, y: f64) -> (f64, f64) {
        let f = f64::from(1u32 << level);
        let col = ((x - self.anchor[0]) / self.cell[0] + self.half[0] as f64) / f;
        let row = ((self.anchor[1] - y) / self.cell[1] + self.half[1] as f64) / f;
        (snap(col), snap(row))
    }

    /// The cells of `level` that an extent touches (outward-rounded). An
    /// edge within a millionth of a cell of a cell edge counts as on it, so
    /// that coordinates carrying floating-point noise do not add a cell.
    ///
    /// # Errors
    /// [`GridError::OutsideDomain`] when any part of the extent lies outside,
    /// [`GridError::NoSuchLevel`] above the root.
    pub fn cover(&self, level: u8, extent: &Extent) -> Result<Window, GridError> {
        self.check_level(level)?;
        let outside = || GridError::OutsideDomain {
            extent: *extent,
            domain: self.domain(),
        };
        let (c0, r0) = self.fractional_cell(level, extent.min_x, extent.max_y);
        let (c1, r1) = self.fractional_cell(level, extent.max_x, extent.min_y);
        let [cols, rows] = self.cells(level);
        if c0 < 0.0 || r0 < 0.0 || c1 > cols as f64 || r1 > rows as f64 || !(c0 < c1 && r0 < r1) {
            return Err(outside());
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (c0, r0, c1, r1) = (
            c0.floor() as u64,
            r0.floor() as u64,
            c1.ceil() as u64,
            r1.ceil() as u64,
        );
        Ok(Window {
            row: r0,
            col: c0,
            rows: (r1 - r0).max(1),
            cols: (c1 - c0).max(1),
        })
    }

    /// Like [`Grid::cover`], but clipped to the domain; `None` when the
    /// extent misses the domain.
    #[must_use]
    pub fn cover_clipped(&self, level: u8, extent: &Extent) -> Option<Window> {
        let d = self.window_extent(level, &self.full_window(level));
        let clipped = Extent::new(
            extent.min_x.max(d.min_x),
            extent.min_y.max(d.min_y),
            extent.max_x.min(d.max_x),
            extent.max_y.min(d.max_y),
        )
        .ok()?;
        self.cover(level, &clipped).ok()
    }

    /// The cells of `level` whose centres lie in `extent` (west and north
    /// edges in, east and south edges out, as GDAL rasterizes), clipped to
    /// the domain; `None` when there are none.
    #[must_use]
    pub fn cells_centred_in(&self, level: u8, extent: &Extent) -> Option<Window> {
        let (c0, r0) = self.fractional_cell(level, extent.min_x, extent.max_y);
        let (c1, r1) = self.fractional_cell(level, extent.max_x, extent.min_y);
        let cells = self.cells(level);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let first = |v: f64, n: u64| ((v - 0.5).ceil().max(0.0) as u64).min(n);
        let (col, col_end) = (first(c0, cells[0]), first(c1, cells[0]));
        let (row, row_end) = (first(r0, cells[1]), first(r1, cells[1]));
        (col < col_end && row < row_end).then(|| Window {
            row,
            col,
            rows: row_end - row,
            cols: col_end - col,
        })
    }

    /// The chunks of `level` that hold any cell of `window`, row by row.
    pub fn chunks_in(&self, level: u8, window: &Window) -> impl Iterator<Item = ChunkLoc> + use<> {
        let (w, h) = (u64::from(self.chunk[0]), u64::from(self.chunk[1]));
        let rows = chunk_range(window.row, window.rows, h);
        let cols = chunk_range(window.col, window.cols, w);
        rows.flat_map(move |r| cols.clone().map(move |c| ChunkLoc::new(level, r, c)))
    }

    /// The chunk and the cell within it that hold the point, at `level`.
    #[must_use]
    pub fn locate(&self, level: u8, x: f64, y: f64) -> Option<(ChunkLoc, usize, usize)> {
        let (c, r) = self.fractional_cell(level, x, y);
        let [cols, rows] = self.cells(level);
        if c < 0.0 || r < 0.0 || c >= cols as f64 || r >= rows as f64 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (c, r) = (c.floor() as u64, r.floor() as u64);
        let (w, h) = (u64::from(self.chunk[0]), u64::from(self.chunk[1]));
        #[allow(clippy::cast_possible_truncation)]
        let loc = ChunkLoc::new(level, (r / h) as u32, (c / w) as u32);
        #[allow(clippy::cast_possible_truncation)]
        Some((loc, (r % h) as usize, (c % w) as usize))
    }
}

#[allow(clippy::cast_possible_truncation)]
fn chunk_range(start: u64, len: u64, size: u64) -> std::ops::Range<u32> {
    if len == 0 {
        return 0..0;
    }
    (start / size) as u32..((start + len - 1) / size + 1) as u32
}

fn snap(v: f64) -> f64 {
    let r = v.round();
    if (v - r).abs() < SNAP { r } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::structure::tests::sample;
    use proptest::prelude::*;

    fn grid() -> Grid {
        Grid::new(&sample())
    }

    #[test]
    fn anchor_sits_at_the_domain_centre_on_a_cell_corner_of_every_level() {
        let g = grid();
        // sample(): anchor (1000, 2000), cell 10, chunk 4, D = 4 -> 64 cells/side.
        assert_eq!(
            g.geotransform(0, (0, 0)),
            [1000.0 - 320.0, 10.0, 0.0, 2000.0 + 320.0, 0.0, -10.0]
        );
        assert_eq!(g.x_of(0, 32), 1000.0);
        assert_eq!(g.y_of(2, 8), 2000.0);
        for level in 0..=g.top_level() {
            let (c, r) = g.fractional_cell(level, 1000.0, 2000.0);
            assert_eq!((c.fract(), r.fract()), (0.0, 0.0));
        }
        assert_eq!(g.chunks_per_side(g.top_level()), 1);
    }

    #[test]
    fn disjoint_windows_do_not_intersect() {
        let a = Window {
            row: 0,
            col: 10,
            rows: 5,
            cols: 5,
        };
        let b = Window {
            row: 2,
            col: 0,
            rows: 5,
            cols: 5,
        };
        assert_eq!(a.intersect(&b), None);
        assert_eq!(b.intersect(&a), None);
        assert!(grid().cover(9, &grid().domain()).is_err());
    }

    #[test]
    fn outside_the_domain_is_an_error() {
        let g = grid();
        let e = Extent::new(0.0, 0.0, 10.0, 10.0).unwrap();
        assert!(matches!(
            g.cover(0, &e),
            Err(GridError::OutsideDomain { .. })
        ));
        assert!(g.cover_clipped(0, &e).is_none());
    }

    fn loc_strategy() -> impl Strategy<Value = ChunkLoc> {
        (0u8..=4).prop_flat_map(|level| {
            let n = 1u32 << (4 - level);
            (Just(level), 0..n, 0..n).prop_map(|(l, r, c)| ChunkLoc::new(l, r, c))
        })
    }

    proptest! {
        #[test]
        fn the_cells_centred_in_an_extent_are_exactly_those(level in 0u8..=2, x0 in 0.0f64..600.0, y0 in 0.0f64..600.0, w in 0.5f64..60.0, h in 0.5f64..60.0) {
            let g = grid();
            let d = g.domain();
            let e = Extent::new(d.min_x + x0, d.min_y + y0, d.min_x + x0 + w, d.min_y + y0 + h).unwrap();
            let inside = |col: u64, row: u64| {
                let c = g.window_extent(level, &Window { row, col, rows: 1, cols: 1 });
                let (cx, cy) = ((c.min_x + c.max_x) / 2.0, (c.min_y + c.max_y) / 2.0);
                cx >= e.min_x && cx < e.max_x && cy > e.min_y && cy <= e.max_y
            };
            let [cols, rows] = g.cells(level);
            let picked = g.cells_centred_in(level, &e);
            for row in 0..rows {
                for col in 0..cols {
                    let in_window = picked.is_some_and(|p| {
                        (p.row..p.row + p.rows).contains(&row) && (p.col..p.col + p.cols).contains(&col)
                    });
                    prop_assert_eq!(in_window, inside(col, row), "cell {},{}", col, row);
                }
            }
        }

        #[test]
        fn coarsening_covers_the_window_and_no_more(row in 0u64..500, col in 0u64..500, rows in 1u64..300, cols in 1u64..300, levels in 0u8..6) {
            let w = Window { row, col, rows, cols };
            let coarse = w.coarsened(levels);
            let back = coarse.refined(levels);
            // The coarser cells cover the window...
            prop_assert_eq!(back.intersect(&w), Some(w));
            // ...and each edge is less than one coarser cell beyond it.
            let f = 1u64 << levels;
            prop_assert!(w.row - back.row < f && w.col - back.col < f);
            prop_assert!(back.row + back.rows - (w.row + w.rows) < f);
            prop_assert!(back.col + back.cols - (w.col + w.cols) < f);
            // A window of whole coarser cells goes there and back unchanged.
            prop_assert_eq!(back.coarsened(levels), coarse);
        }

        #[test]
        fn location_extent_round_trip(loc in loc_strategy()) {
            let g = grid();
            let extent = g.chunk_extent(loc);
            let chunks: Vec<_> = g.chunks_in(loc.level, &g.cover(loc.level, &extent).unwrap()).collect();
            prop_assert_eq!(chunks, vec![loc]);
        }

        #[test]
        fn children_tile_the_parent_exactly(loc in loc_strategy()) {
            let g = grid();
            prop_assume!(loc.level > 0);
            let children = loc.children().unwrap();
            let parent = g.chunk_extent(loc);
            let mut area = 0.0;
            for child in children {
                prop_assert_eq!(child.parent(), loc);
                let e = g.chunk_extent(child);
                prop_assert!(e.min_x >= parent.min_x && e.max_x <= parent.max_x);
                prop_assert!(e.min_y >= parent.min_y && e.max_y <= parent.max_y);
                area += e.width() * e.height();
            }
            prop_assert!((area - parent.width() * parent.height()).abs() < 1e-6 * area);
            // No two children overlap: their windows at the child level are disjoint.
            for (i, a) in children.iter().enumerate() {
                for b in &children[i + 1..] {
                    prop_assert!(g.chunk_window(*a).intersect(&g.chunk_window(*b)).is_none());
                }
            }
            // Together their windows are the parent's window one level down.
            let pw = g.chunk_window(loc);
            let union = children.iter().map(|c| g.chunk_window(*c)).reduce(|a, b| a.union(&b)).unwrap();
            prop_assert_eq!((union.row, union.col, union.rows, union.cols), (pw.row * 2, pw.col * 2, pw.rows * 2, pw.cols * 2));
        }

        #[test]
        fn cover_contains_the_extent(level in 0u8..=4, x0 in 0.0f64..600.0, y0 in 0.0f64..600.0, w in 0.5f64..40.0, h in 0.5f64..40.0) {
            let g = grid();
            let d = g.domain();
            let e = Extent::new(d.min_x + x0, d.min_y + y0, d.min_x + x0 + w, d.min_y + y0 + h).unwrap();
            let win = g.cover(level, &e).unwrap();
            let back = g.window_extent(level, &win);
            // Edges within SNAP cells of a cell edge count as on it.
            let [sx, sy] = g.cell_size(level).map(|c| c * SNAP);
            prop_assert!(back.min_x <= e.min_x + sx && back.max_x >= e.max_x - sx);
            prop_assert!(back.min_y <= e.min_y + sy && back.max_y >= e.max_y - sy);
            // Tight: shrinking by one cell on any side would lose part of the extent.
            let [cx, cy] = g.cell_size(level);
            prop_assert!(back.width() < e.width() + 2.0 * cx + 1e-9);
            prop_assert!(back.height() < e.height() + 2.0 * cy + 1e-9);
        }

        #[test]
        fn locate_finds_the_cell_of_a_point(level in 0u8..=4, fx in 0.0f64..1.0, fy in 0.0f64..1.0) {
            let g = grid();
            let d = g.window_extent(level, &g.full_window(level));
            let (x, y) = (d.min_x + fx * d.width() * 0.999, d.max_y - fy * d.height() * 0.999);
            let (loc, r, c) = g.locate(level, x, y).unwrap();
            let e = g.chunk_extent(loc);
            prop_assert!(x >= e.min_x && x < e.max_x && y <= e.max_y && y > e.min_y);
            let [cx, cy] = g.cell_size(level);
            prop_assert!(x >= e.min_x + c as f64 * cx - 1e-9 && x < e.min_x + (c + 1) as f64 * cx + 1e-9);
            prop_assert!(y <= e.max_y - r as f64 * cy + 1e-9 && y > e.max_y - (r + 1) as f64 * cy - 1e-9);
        }
    }
}
