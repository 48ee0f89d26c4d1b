//! The extent of the data actually stored.

use crate::engine::error::EngineError;
use crate::engine::grid::Window;
use crate::engine::{Element, Store};
use ndarray::s;

impl Store {
    /// The smallest base-level window holding every data cell at time index
    /// `t`, or `None` for an empty store. A store without a time axis keeps
    /// it in its root metadata (a read of O(1)); otherwise, and where it
    /// is not kept yet, it is found from the chunks.
    ///
    /// # Errors
    /// Corrupt chunks or I/O.
    pub fn data_window<T: Element>(&self, t: u32) -> Result<Option<Window>, EngineError> {
        if self.structure().time.is_none() {
            self.refresh()?;
            if let Some(kept) = self.kept_data_window()? {
                return Ok(Some(kept));
            }
        }
        self.scan_data_window::<T>(t)
    }

    /// [`Store::data_window`] found from the chunks, whatever the root
    /// keeps: lists the base chunks, then reads only the chunks on the
    /// edges of their bounding box.
    ///
    /// # Errors
    /// Corrupt chunks or I/O.
    pub fn scan_data_window<T: Element>(&self, t: u32) -> Result<Option<Window>, EngineError> {
        let chunks: Vec<_> = self
            .list_chunks(0)?
            .into_iter()
            .filter(|(ct, _, _)| *ct == t)
            .map(|(_, l, _)| l)
            .collect();
        let Some(first) = chunks.first() else {
            return Ok(None);
        };
        let (mut r0, mut r1, mut c0, mut c1) = (first.row, first.row, first.col, first.col);
        for l in &chunks {
            (r0, r1, c0, c1) = (r0.min(l.row), r1.max(l.row), c0.min(l.col), c1.max(l.col));
        }
        let nodata = self.nodata::<T>();
        let mut bounds: Option<Window> = None;
        for loc in chunks
            .iter()
            .filter(|l| l.row == r0 || l.row == r1 || l.col == c0 || l.col == c1)
        {
            let Some(chunk) = self.read_chunk::<T>(t, *loc)? else {
                continue;
            };
            let cw = self.grid().chunk_window(*loc);
            let (_, rows, cols) = chunk.dim();
            let valid_rows: Vec<usize> = (0..rows)
                .filter(|r| {
                    chunk
                        .slice(s![.., *r, ..])
                        .iter()
                        .any(|v| v.is_valid(nodata))
                })
                .collect();
            let valid_cols: Vec<usize> = (0..cols)
                .filter(|c| {
                    chunk
                        .slice(s![.., .., *c])
                        .iter()
                        .any(|v| v.is_valid(nodata))
                })
                .collect();
            let (Some(fr), Some(lr), Some(fc), Some(lc)) = (
                valid_rows.first(),
                valid_rows.last(),
                valid_cols.first(),
                valid_cols.last(),
            ) else {
                continue;
            };
            let w = Window {
                row: cw.row + *fr as u64,
                col: cw.col + *fc as u64,
                rows: (lr - fr + 1) as u64,
                cols: (lc - fc + 1) as u64,
            };
            bounds = Some(bounds.map_or(w, |b| b.union(&w)));
        }
        Ok(bounds)
    }
}

/// The smallest window (in the chunk's cells, relative to its first cell)
/// holding every data cell of `chunk`, or `None` when it has none.
pub(crate) fn chunk_data_window<T: Element>(
    chunk: &ndarray::Array3<T>,
    nodata: crate::engine::Nodata<T>,
) -> Option<Window> {
    let (_, rows, cols) = chunk.dim();
    let row_has = |r: usize| {
        chunk
            .slice(s![.., r, ..])
            .iter()
            .any(|v| v.is_valid(nodata))
    };
    let col_has = |c: usize| {
        chunk
            .slice(s![.., .., c])
            .iter()
            .any(|v| v.is_valid(nodata))
    };
    let first_row = (0..rows).find(|r| row_has(*r))?;
    let last_row = (first_row..rows).rev().find(|r| row_has(*r))?;
    let first_col = (0..cols).find(|c| col_has(*c))?;
    let last_col = (first_col..cols).rev().find(|c| col_has(*c))?;
    Some(Window {
        row: first_row as u64,
        col: first_col as u64,
        rows: (last_row - first_row + 1) as u64,
        cols: (last_col - first_col + 1) as u64,
    })
}
