//! Rasters gridstore did not write, opened read-only as stores, so that the
//! explorer and the command line show, inspect and export them as they do
//! their own: any raster GDAL reads (a GeoTIFF, a COG, a NetCDF, a VRT…),
//! and Zarr stores other tools wrote (v2 or v3, a GeoZarr multiscale group
//! or an array with x and y coordinates, as xarray and rioxarray write).
//!
//! A [`ForeignStorage`] is a storage backend that writes nothing. It holds
//! the metadata of a store modelled on the raster, in memory, and makes
//! each chunk when it is read, from the raster's cells through a
//! [`CellReader`]. A chunk of level `L` has `2^L` source cells a side per
//! cell, averaged (the most common for categorical data), which the
//! reader takes from the raster's own overviews or coarser levels where it
//! has them. Nothing is written into or beside the raster.

mod gdal;
mod zarr;

use crate::engine::grid::Window;
use crate::engine::persistence::codec;
use crate::engine::persistence::footprint::Footprint;
use crate::engine::persistence::layout::Layout;
use crate::engine::persistence::zarr as keys;
use crate::engine::{
    Aggregator, BandInfo, ChunkLoc, Codec, Element, Extent, Grid, Palette, Store, Structure,
};
use crate::storage::{MemoryStorage, Storage, StorageError, StoreKey, WriterLock};
use crate::with_dtype;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The name of this backend, as `Storage::backend_name` gives it.
pub const BACKEND: &str = "foreign";

/// How the cells of a coarser level come from the raster's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// One source cell per cell (level 0).
    Exact,
    /// The mean of the valid source cells.
    Mean,
    /// The most common valid source value (categorical data).
    Mode,
    /// One of the source cells (min, max and the like, where a mean would
    /// make values that never occur).
    Nearest,
}

/// Where a foreign store's cells come from.
pub trait CellReader: Send + Sync {
    /// The cells of `band` (0-based) over the raster's rows `rows` and
    /// columns `cols` (north-up, row 0 at the top), as `out` = (columns,
    /// rows) cells, row-major: each output cell over an equal share of the
    /// source cells, reduced as `reduce` says. Nodata (and NaN) is the
    /// store's nodata.
    ///
    /// # Errors
    /// The raster cannot be read, in one line.
    fn read(
        &self,
        band: usize,
        rows: Range<u64>,
        cols: Range<u64>,
        out: (usize, usize),
        reduce: Reduce,
    ) -> Result<Vec<f64>, String>;
}

/// A raster, modelled as a store.
pub struct Model {
    /// The store's structure (its codec is ignored: chunks are made whole).
    pub structure: Structure,
    /// The raster's extent, in the structure's CRS.
    pub extent: Extent,
    /// What each band is, when known.
    pub band_info: Vec<BandInfo>,
    /// Its colour table, for single-band categorical rasters.
    pub palette: Option<Palette>,
    /// A version of the raster's bytes: a change gives another.
    pub version: String,
    /// What it is, for people ("GeoTIFF, read through GDAL").
    pub description: String,
    /// Where its cells come from.
    pub reader: Box<dyn CellReader>,
}

/// A raster seen as the storage of a read-only store.
pub struct ForeignStorage {
    path: PathBuf,
    /// The metadata of the store modelled on the raster.
    meta: MemoryStorage,
    structure: Structure,
    grid: Grid,
    footprint: Footprint,
    /// The raster's cells in the store's base cells.
    raster: Window,
    /// The raster's version when opened: every value's version.
    version: String,
    reader: Box<dyn CellReader>,
}

impl std::fmt::Debug for ForeignStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignStorage")
            .field("path", &self.path)
            .field("raster", &self.raster)
            .finish_non_exhaustive()
    }
}

/// Opens what is at `path`: a store gridstore wrote (for writing when
/// `writer`), else a Zarr store or any raster GDAL reads, read-only.
///
/// # Errors
/// One line naming `path`: nothing there, a store that does not open, a
/// raster asked to be written, or neither a store nor a raster.
pub fn open_store_or_raster(path: &Path, writer: bool) -> Result<Store, String> {
    let hdf5 = path.is_file() && crate::storage::hdf5::is_hdf5(path);
    if !path.exists() && crate::gdal_io::is_connection(path) {
        return match gdal::model(path).and_then(|model| open_model(path, model)) {
            Ok(_) if writer => Err(StorageError::ReadOnly { path: path.into() }.to_string()),
            opened => opened,
        };
    }
    let foreign = path.exists() && !written_by_gridstore(path);
    if foreign && writer && (path.is_file() || zarr::has_json_root(path)) {
        return Err(StorageError::ReadOnly { path: path.into() }.to_string());
    }
    if foreign {
        let opened = if zarr::is_zarr(path) {
            zarr::model(path).and_then(|model| open_model(path, model))
        } else {
            gdal::model(path).and_then(|model| open_model(path, model))
        };
        match opened {
            Ok(_) if writer => {
                return Err(StorageError::ReadOnly { path: path.into() }.to_string());
            }
            Ok(store) => return Ok(store),
            // A folder that is neither: say why it is not a store, unless
            // it is another tool's Zarr store that could not be read (a
            // root that is not even JSON may be a damaged store of ours).
            Err(e) if path.is_file() || zarr::has_json_root(path) => return Err(e),
            Err(_) => {}
        }
    }
    if !path.is_dir() && !hdf5 {
        let what = if path.exists() {
            "not a folder or an HDF5 file"
        } else {
            "no such folder or file"
        };
        return Err(format!("cannot open store {}: {what}", path.display()));
    }
    let storage = crate::storage::open(path)
        .map_err(|e| format!("cannot open store {}: {e}", path.display()))?;
    let store = if writer {
        Store::open_writer(storage)
    } else {
        Store::open(storage)
    };
    store.map_err(|e| match e {
        crate::engine::EngineError::Storage(s) => s.to_string(),
        other => other.to_string(),
    })
}

/// Whether gridstore wrote what is at `path`: a packed store, or a folder
/// or HDF5 file whose root metadata has gridstore's attributes.
#[must_use]
pub fn written_by_gridstore(path: &Path) -> bool {
    if path.join(crate::storage::packed::BACKEND_FILE).exists() {
        return true;
    }
    if path.is_file() && !crate::storage::hdf5::is_hdf5(path) {
        return false;
    }
    let Ok(storage) = crate::storage::open(path) else {
        return false;
    };
    [".zattrs", "zarr.json"].into_iter().any(|name| {
        let Ok(key) = StoreKey::new(name) else {
            return false;
        };
        let Ok(Some(bytes)) = storage.get(&key) else {
            return false;
        };
        serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|doc| {
            doc.get("gridstore").is_some()
                || doc
                    .get("attributes")
                    .and_then(|a| a.get("gridstore"))
                    .is_some()
        })
    })
}

/// Whether `store` is a raster gridstore did not write, opened read-only.
#[must_use]
pub fn is_foreign(store: &Store) -> bool {
    store.storage().backend_name() == BACKEND
}

/// The key, in a foreign store's in-memory metadata only, of what the
/// raster is.
const DESCRIPTION_KEY: &str = "foreign/description";

/// What a foreign store's raster is ("GeoTIFF, read through GDAL"); `None`
/// for a store gridstore wrote.
#[must_use]
pub fn description(store: &Store) -> Option<String> {
    if !is_foreign(store) {
        return None;
    }
    let key = StoreKey::new(DESCRIPTION_KEY).ok()?;
    let bytes = store.storage().get(&key).ok()??;
    String::from_utf8(bytes).ok()
}

/// Opens the raster `model` describes as a read-only store.
fn open_model(path: &Path, model: Model) -> Result<Store, String> {
    let not_modelled = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut structure = model.structure;
    // Chunks are made on each read: nothing to gain from compressing them.
    structure.codec = Codec::None;
    let grid = Grid::new(&structure);
    let raster = grid
        .cells_centred_in(0, &model.extent)
        .ok_or_else(|| not_modelled(&"covers no cell of its own grid"))?;
    let meta = MemoryStorage::new();
    {
        let store =
            Store::create_with_layout(Arc::new(meta.clone()), structure.clone(), Layout::Zarr2)
                .map_err(|e| not_modelled(&e))?;
        store
            .reshape(store.footprint().grown(&grid, &raster))
            .map_err(|e| not_modelled(&e))?;
        // The data's window is the raster's (found in O(1), and right for
        // rasters without nodata, whose chunks' cells beyond the raster
        // are not nodata). It is kept for a contents state: the journal's,
        // which marking statistics as kept gives it.
        store
            .set_statistics_token(true)
            .map_err(|e| not_modelled(&e))?;
        let state = store
            .settled_state()
            .map_err(|e| not_modelled(&e))?
            .ok_or_else(|| not_modelled(&"no contents state"))?;
        // What a store keeps as it writes, a raster never had: its levels
        // are summed from listings.
        store
            .set_statistics_token(false)
            .map_err(|e| not_modelled(&e))?;
        store
            .keep_data_window(Some(raster), &state)
            .map_err(|e| not_modelled(&e))?;
        if model.band_info.iter().any(|b| !b.is_empty())
            && model.band_info.len() == structure.band_count()
        {
            store
                .set_band_info(model.band_info)
                .map_err(|e| not_modelled(&e))?;
        }
        if let Some(palette) = model.palette
            && structure.bands.is_none()
        {
            store.set_palette(palette).map_err(|e| not_modelled(&e))?;
        }
    }
    let key = StoreKey::new(DESCRIPTION_KEY).map_err(|e| not_modelled(&e))?;
    meta.put(&key, model.description.as_bytes())
        .map_err(|e| not_modelled(&e))?;
    let footprint = Store::open(Arc::new(meta.clone()))
        .map_err(|e| not_modelled(&e))?
        .footprint();
    let storage = ForeignStorage {
        path: path.into(),
        meta,
        structure,
        grid,
        footprint,
        raster,
        version: model.version,
        reader: model.reader,
    };
    Store::open(Arc::new(storage)).map_err(|e| not_modelled(&e))
}

impl ForeignStorage {
    fn read_only(&self) -> StorageError {
        StorageError::ReadOnly {
            path: self.path.clone(),
        }
    }

    /// The chunk of `loc` as stored bytes; `None` when it holds no data.
    fn chunk(&self, loc: ChunkLoc) -> Result<Option<Vec<u8>>, StorageError> {
        with_dtype!(self.structure.dtype, T => self.make::<T>(loc))
    }

    fn make<T: Element>(&self, loc: ChunkLoc) -> Result<Option<Vec<u8>>, StorageError> {
        let [cw, ch] = self.grid.chunk_shape();
        let (cols, rows) = (cw as usize, ch as usize);
        let nodata = crate::engine::Nodata::<T>::of(self.structure.nodata);
        // Beyond the raster: nodata, or without one NaN for floats (never
        // a value) and 0 for integers (not shown: beyond the data window).
        let fill = T::from_f64(self.structure.nodata.unwrap_or(if T::DTYPE.is_float() {
            f64::NAN
        } else {
            0.0
        }));
        let bands = self.structure.band_count();
        let mut cells = vec![fill; bands * rows * cols];
        // The chunk's first cell, in base cells.
        let scale = 1u64 << loc.level;
        let window = self.grid.chunk_window(loc);
        let (row, col) = (window.row * scale, window.col * scale);
        let row_spans = spans(row, rows, scale, self.raster.row, self.raster.rows);
        let col_spans = spans(col, cols, scale, self.raster.col, self.raster.cols);
        let reduce = match (loc.level, self.structure.aggregate) {
            (0, _) => Reduce::Exact,
            (_, Aggregator::Mode) => Reduce::Mode,
            (_, Aggregator::Mean | Aggregator::Sum) => Reduce::Mean,
            _ => Reduce::Nearest,
        };
        let failed = |reason: String| StorageError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        for band in 0..bands {
            let plane = &mut cells[band * rows * cols..(band + 1) * rows * cols];
            for r in &row_spans {
                for c in &col_spans {
                    let out = (c.out.len(), r.out.len());
                    let values = self
                        .reader
                        .read(
                            band,
                            r.source.start - self.raster.row..r.source.end - self.raster.row,
                            c.source.start - self.raster.col..c.source.end - self.raster.col,
                            out,
                            reduce,
                        )
                        .map_err(failed)?;
                    for (i, row) in values.chunks_exact(out.0).enumerate() {
                        let at = (r.out.start + i) * cols + c.out.start;
                        for (cell, v) in plane[at..at + out.0].iter_mut().zip(row) {
                            *cell = if v.is_nan() { fill } else { T::from_f64(*v) };
                        }
                    }
                }
            }
        }
        if !cells.iter().any(|v| v.is_valid(nodata)) {
            return Ok(None);
        }
        let mut raw = Vec::with_capacity(cells.len() * self.structure.dtype.size());
        for v in cells {
            v.write_le(&mut raw);
        }
        codec::encode(self.structure.codec, &raw)
            .map(Some)
            .map_err(|e| StorageError::io(&self.path, e))
    }

    /// The chunk a key names, if it is one of the footprint's.
    fn chunk_of(&self, key: &StoreKey) -> Option<ChunkLoc> {
        let (_, level, (row, col)) = keys::parse_chunk_key(&self.structure, key.as_str())?;
        self.footprint.loc_at(&self.grid, level, row, col)
    }

    /// The raw size of a chunk.
    fn chunk_size(&self) -> u64 {
        let [w, h] = self.grid.chunk_shape();
        (u64::from(w) * u64::from(h))
            * self.structure.band_count() as u64
            * self.structure.dtype.size() as u64
    }
}

/// The part of one axis of a chunk that a read fills: output cells `out`
/// from source cells `source` (base cells of the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) out: Range<usize>,
    pub(crate) source: Range<u64>,
}

/// How one axis of a chunk is read: its `len` cells, the first over base
/// cell `start`, each over `scale` base cells, from the raster's base cells
/// `lo..lo + n`. Cells wholly over the raster are read in one span of
/// `scale` source cells each; a cell only partly over it (at the raster's
/// edge) in a span of its own, over the source cells it has, so that no
/// cell is stretched over another's.
pub(crate) fn spans(start: u64, len: usize, scale: u64, lo: u64, n: u64) -> Vec<Span> {
    let hi = lo + n;
    let mut out: Vec<Span> = Vec::new();
    for i in 0..len {
        let first = start + i as u64 * scale;
        let (a, b) = (first.max(lo), (first + scale).min(hi));
        if a >= b {
            continue;
        }
        let whole = b - a == scale;
        match out.last_mut() {
            Some(last)
                if whole
                    && last.out.end == i
                    && last.source.end == a
                    && last.source.end - last.source.start
                        == (last.out.end - last.out.start) as u64 * scale =>
            {
                last.out.end = i + 1;
                last.source.end = b;
            }
            _ => out.push(Span {
                out: i..i + 1,
                source: a..b,
            }),
        }
    }
    out
}

impl Storage for ForeignStorage {
    fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(value) = self.meta.get(key)? {
            return Ok(Some(value));
        }
        match self.chunk_of(key) {
            Some(loc) => self.chunk(loc),
            None => Ok(None),
        }
    }

    fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        if let Some(size) = self.meta.size(key)? {
            return Ok(Some(size));
        }
        Ok(self.chunk_of(key).map(|_| self.chunk_size()))
    }

    fn put(&self, _: &StoreKey, _: &[u8]) -> Result<(), StorageError> {
        Err(self.read_only())
    }

    fn delete(&self, _: &StoreKey) -> Result<(), StorageError> {
        Err(self.read_only())
    }

    fn list(&self, prefix: &str) -> Result<Vec<(StoreKey, u64)>, StorageError> {
        let mut keys = self.meta.list(prefix)?;
        let size = self.chunk_size();
        for level in 0..=self.grid.top_level() {
            let array = format!("{}/", keys::level_prefix(level));
            if !(array.starts_with(prefix) || prefix.starts_with(&array)) {
                continue;
            }
            let window = self.footprint.array_window(&self.grid, level);
            for row in 0..window.rows {
                for col in 0..window.cols {
                    let key = keys::chunk_key(&self.structure, 0, level, (row, col));
                    if key.starts_with(prefix) {
                        keys.push((StoreKey::new(key)?, size));
                    }
                }
            }
        }
        keys.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(keys)
    }

    fn stage(&self, _: &StoreKey, _: Option<&[u8]>) -> Result<(), StorageError> {
        Err(self.read_only())
    }

    fn commit(&self, _: &StoreKey) -> Result<bool, StorageError> {
        Err(self.read_only())
    }

    fn discard(&self, _: &StoreKey) -> Result<(), StorageError> {
        Err(self.read_only())
    }

    fn lock_writer(&self) -> Result<Box<dyn WriterLock>, StorageError> {
        Err(self.read_only())
    }

    fn version(&self, key: &StoreKey) -> Result<Option<String>, StorageError> {
        let known = self.meta.size(key)?.is_some() || self.chunk_of(key).is_some();
        Ok(known.then(|| format!("foreign:{}", self.version)))
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn backend_name(&self) -> &'static str {
        BACKEND
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_cells_are_read_together_and_edge_cells_alone() {
        // Level 1 over a raster of 5 base cells starting at base cell 3.
        let s = spans(0, 4, 2, 3, 5);
        assert_eq!(
            s,
            vec![
                Span {
                    out: 1..2,
                    source: 3..4
                },
                Span {
                    out: 2..4,
                    source: 4..8
                },
            ]
        );
        // Level 0: one span.
        assert_eq!(
            spans(10, 4, 1, 0, 100),
            vec![Span {
                out: 0..4,
                source: 10..14
            }]
        );
        assert!(spans(0, 4, 4, 100, 5).is_empty(), "off the raster");
    }

    proptest! {
        /// Every output cell over the raster is read exactly once, from
        /// exactly its own source cells on the raster.
        #[test]
        fn spans_cover_each_cell_with_its_own_source_cells(
            start in 0u64..200, len in 1usize..40, level in 0u32..5, lo in 0u64..300, n in 1u64..300,
        ) {
            let scale = 1u64 << level;
            let s = spans(start, len, scale, lo, n);
            let mut seen = vec![0; len];
            for span in &s {
                let cells = (span.out.end - span.out.start) as u64;
                let width = span.source.end - span.source.start;
                prop_assert!(cells == 1 || width == cells * scale, "{span:?}");
                for i in span.out.clone() {
                    seen[i] += 1;
                }
                let first = start + span.out.start as u64 * scale;
                prop_assert_eq!(span.source.start, first.max(lo));
                let last = start + span.out.end as u64 * scale;
                prop_assert_eq!(span.source.end, last.min(lo + n));
            }
            for (i, count) in seen.iter().enumerate() {
                let first = start + i as u64 * scale;
                let over = first.max(lo) < (first + scale).min(lo + n);
                prop_assert_eq!(*count, usize::from(over), "cell {}", i);
            }
        }
    }
}
