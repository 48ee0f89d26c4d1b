//! Retrieval: windows at a level, extents at any resolution, and points.
//!
//! A read picks the coarsest level that is at least as fine as asked for and
//! resamples from it onto the requested grid. When the requested grid is the
//! level's own grid, cells are copied unchanged.

use crate::engine::error::EngineError;
use crate::engine::grid::period::aggregate_values;
use crate::engine::grid::{ChunkLoc, Window};
use crate::engine::{Element, Extent, Nodata, Resampling, Store};
use ndarray::{Array3, s};
use rayon::prelude::*;

/// A grid of cells with its GDAL geotransform.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster<T> {
    /// Cells as (bands, rows, cols).
    pub data: Array3<T>,
    /// `[x0, cell_x, 0, y0, 0, -cell_y]`.
    pub geotransform: [f64; 6],
    /// The pyramid level the cells came from.
    pub level: u8,
}

/// The store's aggregate over an area: of one band's cells with data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AreaValue {
    /// The aggregate; `None` when no cell holds data.
    pub value: Option<f64>,
    /// How many cells hold data.
    pub valid: usize,
}

/// Relative slack when comparing cell sizes.
const SIZE_SLACK: f64 = 1e-9;

impl Store {
    /// Reads the cells of `window` at `level` at time index `t`; cells
    /// without data are nodata.
    ///
    /// # Errors
    /// A level that does not exist, corrupt chunks, or I/O.
    pub fn read_window<T: Element>(
        &self,
        t: u32,
        level: u8,
        window: &Window,
    ) -> Result<Array3<T>, EngineError> {
        self.grid().check_level(level)?;
        self.check_dtype::<T>()?;
        let nodata = self.nodata::<T>();
        let bands = self.structure().band_count();
        let mut out = Array3::from_elem(
            (bands, window.rows as usize, window.cols as usize),
            nodata.fill(),
        );
        let Some(window) = window.intersect(&self.grid().full_window(level)) else {
            return Ok(out);
        };
        let locs: Vec<ChunkLoc> = self.grid().chunks_in(level, &window).collect();
        let chunks: Vec<(ChunkLoc, Option<Array3<T>>)> = locs
            .par_iter()
            .map(|loc| Ok((*loc, self.read_chunk::<T>(t, *loc)?)))
            .collect::<Result<_, EngineError>>()?;
        let origin = (window.row, window.col);
        for (loc, chunk) in chunks {
            let Some(chunk) = chunk else { continue };
            let cw = self.grid().chunk_window(loc);
            let Some(o) = cw.intersect(&window) else {
                continue;
            };
            let src = chunk.slice(s![
                ..,
                (o.row - cw.row) as usize..(o.row - cw.row + o.rows) as usize,
                (o.col - cw.col) as usize..(o.col - cw.col + o.cols) as usize
            ]);
            let (r0, c0) = ((o.row - origin.0) as usize, (o.col - origin.1) as usize);
            out.slice_mut(s![.., r0..r0 + o.rows as usize, c0..c0 + o.cols as usize])
                .assign(&src);
        }
        Ok(out)
    }

    /// The store's aggregate of the cells of `band` in `window` at `level`
    /// and time index `t` that hold data (nodata never counts).
    ///
    /// # Errors
    /// As [`Store::read_window`].
    pub fn area_value<T: Element>(
        &self,
        t: u32,
        level: u8,
        window: &Window,
        band: usize,
    ) -> Result<AreaValue, EngineError> {
        let cells = self.read_window::<T>(t, level, window)?;
        Ok(self.aggregate_area(&cells, band))
    }

    /// The store's aggregate of the cells of `band` in `cells` (bands,
    /// rows, cols) that hold data, in reading order.
    #[must_use]
    pub fn aggregate_area<T: Element>(&self, cells: &Array3<T>, band: usize) -> AreaValue {
        let nodata = self.nodata::<T>();
        let values: Vec<f64> = cells
            .index_axis(ndarray::Axis(0), band)
            .iter()
            .filter(|v| v.is_valid(nodata))
            .map(|v| v.to_f64())
            .collect();
        AreaValue {
            value: aggregate_values(&values, self.structure().aggregate),
            valid: values.len(),
        }
    }

    /// The coarsest level whose cells are no larger than `cell_size`.
    #[must_use]
    pub fn level_for(&self, cell_size: [f64; 2]) -> u8 {
        let grid = self.grid();
        (0..=grid.top_level())
            .rev()
            .find(|&l| {
                let [cx, cy] = grid.cell_size(l);
                cx <= cell_size[0] * (1.0 + SIZE_SLACK) && cy <= cell_size[1] * (1.0 + SIZE_SLACK)
            })
            .unwrap_or(0)
    }

    /// Reads `extent` on a grid of `cell_size` cells whose top-left corner
    /// is the extent's, from the coarsest level at least as fine, resampled
    /// with `method`.
    ///
    /// # Errors
    /// Corrupt chunks or I/O.
    pub fn read_extent<T: Element>(
        &self,
        t: u32,
        extent: &Extent,
        cell_size: [f64; 2],
        method: Resampling,
    ) -> Result<Raster<T>, EngineError> {
        let level = self.level_for(cell_size);
        self.read_extent_at(t, level, extent, cell_size, method)
    }

    /// Like [`Store::read_extent`], from a given level.
    ///
    /// # Errors
    /// Corrupt chunks, a missing level, or I/O.
    pub fn read_extent_at<T: Element>(
        &self,
        t: u32,
        level: u8,
        extent: &Extent,
        cell_size: [f64; 2],
        method: Resampling,
    ) -> Result<Raster<T>, EngineError> {
        let grid = self.grid();
        grid.check_level(level)?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let cols = ((extent.width() / cell_size[0]).round() as usize).max(1);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rows = ((extent.height() / cell_size[1]).round() as usize).max(1);
        let geotransform = [
            extent.min_x,
            cell_size[0],
            0.0,
            extent.max_y,
            0.0,
            -cell_size[1],
        ];
        let nodata = self.nodata::<T>();
        let bands = self.structure().band_count();
        let level_cell = grid.cell_size(level);
        let (c0, r0) = grid.fractional_cell(level, extent.min_x, extent.max_y);
        let same_size =
            (0..2).all(|i| (level_cell[i] - cell_size[i]).abs() <= cell_size[i] * SIZE_SLACK);
        if same_size && c0.fract() == 0.0 && r0.fract() == 0.0 && c0 >= 0.0 && r0 >= 0.0 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let window = Window {
                row: r0 as u64,
                col: c0 as u64,
                rows: rows as u64,
                cols: cols as u64,
            };
            let data = self.read_window(t, level, &window)?;
            return Ok(Raster {
                data,
                geotransform,
                level,
            });
        }
        // Source cells: the target extent plus one cell of margin for bilinear.
        let margin = Extent {
            min_x: extent.min_x - level_cell[0],
            min_y: extent.min_y - level_cell[1],
            max_x: extent.max_x + level_cell[0],
            max_y: extent.max_y + level_cell[1],
        };
        let mut data = Array3::from_elem((bands, rows, cols), nodata.fill());
        let Some(src_window) = grid.cover_clipped(level, &margin) else {
            return Ok(Raster {
                data,
                geotransform,
                level,
            });
        };
        let src = self.read_window::<T>(t, level, &src_window)?;
        let src_origin = grid.window_extent(level, &src_window);
        // Target cell edges in source cell units.
        let sx = |c: f64| (extent.min_x + c * cell_size[0] - src_origin.min_x) / level_cell[0];
        let sy = |r: f64| (src_origin.max_y - (extent.max_y - r * cell_size[1])) / level_cell[1];
        let xs: Vec<f64> = (0..=cols).map(|c| sx(c as f64)).collect();
        let ys: Vec<f64> = (0..=rows).map(|r| sy(r as f64)).collect();
        for b in 0..bands {
            let plane = src.slice(s![b, .., ..]);
            let mut out = data.slice_mut(s![b, .., ..]);
            for r in 0..rows {
                for c in 0..cols {
                    let v = match method {
                        Resampling::Nearest => nearest(
                            &plane,
                            (xs[c] + xs[c + 1]) / 2.0,
                            (ys[r] + ys[r + 1]) / 2.0,
                            nodata,
                        ),
                        Resampling::Bilinear => bilinear(
                            &plane,
                            (xs[c] + xs[c + 1]) / 2.0,
                            (ys[r] + ys[r + 1]) / 2.0,
                            nodata,
                        ),
                        Resampling::Average => {
                            average(&plane, (xs[c], xs[c + 1]), (ys[r], ys[r + 1]), nodata)
                        }
                    };
                    out[[r, c]] = v.map_or(nodata.fill(), |v| {
                        crate::engine::pyramid::aggregate::computed(v, nodata)
                    });
                }
            }
        }
        Ok(Raster {
            data,
            geotransform,
            level,
        })
    }

    /// Reads `extent` (as [`Store::read_extent`]) at every stored instant in
    /// `[from, to]`, in time order. The time axis is never resampled.
    ///
    /// # Errors
    /// Corrupt chunks or I/O.
    pub fn read_series<T: Element>(
        &self,
        (from, to): (i64, i64),
        extent: &Extent,
        cell_size: [f64; 2],
        method: Resampling,
    ) -> Result<Vec<(i64, Raster<T>)>, EngineError> {
        self.refresh()?;
        self.instants_between(from, to)
            .into_iter()
            .map(|(t, instant)| Ok((instant, self.read_extent(t, extent, cell_size, method)?)))
            .collect()
    }

    /// The value of band `band` at point `(x, y)` at time index `t`, read at
    /// `level` and interpolated with `method` (nearest or bilinear; average
    /// acts as nearest for a point). `None` where there is no data.
    ///
    /// # Errors
    /// Corrupt chunks or I/O.
    pub fn value_at<T: Element>(
        &self,
        t: u32,
        level: u8,
        (x, y): (f64, f64),
        band: usize,
        method: Resampling,
    ) -> Result<Option<f64>, EngineError> {
        let grid = self.grid();
        grid.check_level(level)?;
        let [cx, cy] = grid.cell_size(level);
        let Ok(around) = Extent::new(x - cx, y - cy, x + cx, y + cy) else {
            return Ok(None);
        };
        let Some(window) = grid.cover_clipped(level, &around) else {
            return Ok(None);
        };
        let src = self.read_window::<T>(t, level, &window)?;
        let origin = grid.window_extent(level, &window);
        let (fx, fy) = ((x - origin.min_x) / cx, (origin.max_y - y) / cy);
        let plane = src.slice(s![band.min(src.dim().0 - 1), .., ..]);
        let nodata = self.nodata::<T>();
        Ok(match method {
            Resampling::Bilinear => bilinear(&plane, fx, fy, nodata),
            _ => nearest(&plane, fx, fy, nodata),
        })
    }
}

type Plane<'a, T> = ndarray::ArrayView2<'a, T>;

fn cell<T: Element>(plane: &Plane<'_, T>, r: i64, c: i64, nodata: Nodata<T>) -> Option<f64> {
    let (rows, cols) = plane.dim();
    if r < 0 || c < 0 || r >= rows as i64 || c >= cols as i64 {
        return None;
    }
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    let v = plane[[r as usize, c as usize]];
    v.is_valid(nodata).then(|| v.to_f64())
}

#[allow(clippy::cast_possible_truncation)]
fn nearest<T: Element>(plane: &Plane<'_, T>, x: f64, y: f64, nodata: Nodata<T>) -> Option<f64> {
    cell(plane, y.floor() as i64, x.floor() as i64, nodata)
}

/// Bilinear between cell centres; nodata neighbours drop out and the
/// remaining weights are renormalised.
#[allow(clippy::cast_possible_truncation)]
fn bilinear<T: Element>(plane: &Plane<'_, T>, x: f64, y: f64, nodata: Nodata<T>) -> Option<f64> {
    let (u, v) = (x - 0.5, y - 0.5);
    let (c0, r0) = (u.floor(), v.floor());
    let (fu, fv) = (u - c0, v - r0);
    let (c0, r0) = (c0 as i64, r0 as i64);
    let mut sum = 0.0;
    let mut weight = 0.0;
    for (dr, wr) in [(0, 1.0 - fv), (1, fv)] {
        for (dc, wc) in [(0, 1.0 - fu), (1, fu)] {
            let w = wr * wc;
            if w > 0.0
                && let Some(value) = cell(plane, r0 + dr, c0 + dc, nodata)
            {
                sum += w * value;
                weight += w;
            }
        }
    }
    (weight > 0.0).then(|| sum / weight)
}

/// Area-weighted mean of the valid source cells overlapping `[x0, x1) ×
/// [y0, y1)` (in source cell units).
#[allow(clippy::cast_possible_truncation)]
fn average<T: Element>(
    plane: &Plane<'_, T>,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    nodata: Nodata<T>,
) -> Option<f64> {
    let mut sum = 0.0;
    let mut weight = 0.0;
    for r in y0.floor() as i64..y1.ceil() as i64 {
        let wr = (y1.min((r + 1) as f64) - y0.max(r as f64)).max(0.0);
        for c in x0.floor() as i64..x1.ceil() as i64 {
            let wc = (x1.min((c + 1) as f64) - x0.max(c as f64)).max(0.0);
            let w = wr * wc;
            if w > 1e-12
                && let Some(value) = cell(plane, r, c, nodata)
            {
                sum += w * value;
                weight += w;
            }
        }
    }
    (weight > 0.0).then(|| sum / weight)
}
