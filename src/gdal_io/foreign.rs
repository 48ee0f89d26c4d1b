//! Rasters gridstore did not write (a GeoTIFF, a COG, a NetCDF, a VRT…),
//! opened read-only as stores, so that the explorer and the command line
//! show, inspect and export them as they do their own.
//!
//! A [`RasterStorage`] is a storage backend that writes nothing: it holds
//! the metadata of a store modelled on the raster (`create --like`, in
//! memory) and makes each chunk when it is read, from the raster through
//! GDAL. A chunk of level `L` reads its window with `2^L` source cells per
//! cell, averaged (or the most common class for categorical rasters), so
//! GDAL takes it from the raster's overviews where it has them. Nothing is
//! written beside the raster: no `.aux.xml`, no cache.

use super::IoError;
use super::cell::GdalCell;
use super::source::{LikeOverrides, Source, gdal_reason, structure_like};
use crate::engine::grid::Window;
use crate::engine::persistence::codec;
use crate::engine::persistence::footprint::Footprint;
use crate::engine::persistence::layout::Layout;
use crate::engine::persistence::zarr;
use crate::engine::{Aggregator, ChunkLoc, Codec, Grid, Store, Structure};
use crate::storage::{DynStorage, MemoryStorage, Storage, StorageError, StoreKey, WriterLock};
use crate::with_dtype;
use gdal::Dataset;
use gdal::raster::ResampleAlg;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The name of this backend, as `Storage::backend_name` gives it.
pub const BACKEND: &str = "raster";

/// A raster seen as the storage of a read-only store.
pub struct RasterStorage {
    path: PathBuf,
    /// The metadata of the store modelled on the raster.
    meta: MemoryStorage,
    structure: Structure,
    grid: Grid,
    footprint: Footprint,
    /// The raster's cells in the store's base cells.
    raster: Window,
    /// The raster file's version when opened: every value's version.
    version: String,
    /// Open datasets, one per thread reading at once (a GDAL dataset is
    /// not `Sync`).
    datasets: Mutex<Vec<Dataset>>,
}

impl std::fmt::Debug for RasterStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RasterStorage")
            .field("path", &self.path)
            .field("raster", &self.raster)
            .finish_non_exhaustive()
    }
}

/// Opens the raster at `path` read-only as a store.
///
/// # Errors
/// A file GDAL cannot read, or one a store cannot model (rotated, without
/// a CRS, of a cell type no store holds).
pub fn open_raster(path: &Path) -> Result<Store, IoError> {
    let like = structure_like(path, &LikeOverrides::default())?;
    let (source, _) = Source::open(path, None)?;
    let mut structure = like.structure;
    // Chunks are made on each read: nothing to gain from compressing them.
    structure.codec = Codec::None;
    let grid = Grid::new(&structure);
    let [min_x, min_y, max_x, max_y] = source.bounds();
    let extent =
        crate::engine::Extent::new(min_x, min_y, max_x, max_y).map_err(|e| IoError::Mismatch {
            path: path.into(),
            reason: e.to_string(),
        })?;
    let not_modelled = |reason: String| IoError::Mismatch {
        path: path.into(),
        reason,
    };
    let raster = grid
        .cells_centred_in(0, &extent)
        .ok_or_else(|| not_modelled("covers no cell of its own grid".into()))?;
    let meta = MemoryStorage::new();
    {
        let model =
            Store::create_with_layout(Arc::new(meta.clone()), structure.clone(), Layout::Zarr2)
                .map_err(|e| not_modelled(e.to_string()))?;
        model
            .reshape(model.footprint().grown(&grid, &raster))
            .map_err(|e| not_modelled(e.to_string()))?;
        // What a store keeps as it writes, a raster never had: its levels
        // are summed from listings.
        model
            .set_statistics_token(false)
            .map_err(|e| not_modelled(e.to_string()))?;
        if source.band_info.iter().any(|b| !b.is_empty()) {
            model
                .set_band_info(source.band_info.clone())
                .map_err(|e| not_modelled(e.to_string()))?;
        }
        if let Some(colors) = &source.colors
            && structure.bands.is_none()
        {
            model
                .set_palette(colors.clone())
                .map_err(|e| not_modelled(e.to_string()))?;
        }
    }
    let footprint = match Store::open(Arc::new(meta.clone())) {
        Ok(model) => model.footprint(),
        Err(e) => return Err(not_modelled(e.to_string())),
    };
    let version = crate::storage::file_version(path)
        .ok()
        .flatten()
        .unwrap_or_default();
    let storage: DynStorage = Arc::new(RasterStorage {
        path: path.into(),
        meta,
        structure,
        grid,
        footprint,
        raster,
        version,
        datasets: Mutex::new(Vec::new()),
    });
    Store::open(storage).map_err(|e| not_modelled(e.to_string()))
}

/// Opens what is at `path`: a store gridstore wrote (for writing when
/// `writer`), else a raster GDAL reads, read-only.
///
/// # Errors
/// One line naming `path`: nothing there, a store that does not open, a
/// raster asked to be written, or neither a store nor a raster.
pub fn open_store_or_raster(path: &Path, writer: bool) -> Result<Store, String> {
    let hdf5 = path.is_file() && crate::storage::hdf5::is_hdf5(path);
    if path.exists() && !written_by_gridstore(path) {
        match open_raster(path) {
            Ok(_) if writer => {
                return Err(StorageError::ReadOnly { path: path.into() }.to_string());
            }
            Ok(store) => return Ok(store),
            // A folder that is neither: say why it is not a store.
            Err(e) if path.is_file() => return Err(e.to_string()),
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
fn written_by_gridstore(path: &Path) -> bool {
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

/// Whether `store` is a raster opened read-only by [`open_raster`].
#[must_use]
pub fn is_raster(store: &Store) -> bool {
    store.storage().backend_name() == BACKEND
}

impl RasterStorage {
    fn read_only(&self) -> StorageError {
        StorageError::ReadOnly {
            path: self.path.clone(),
        }
    }

    /// The chunk of `loc` as stored bytes; `None` when it holds no data.
    fn chunk(&self, loc: ChunkLoc) -> Result<Option<Vec<u8>>, StorageError> {
        let dataset = {
            let mut pool = self
                .datasets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pool.pop()
        };
        let dataset = match dataset {
            Some(dataset) => dataset,
            None => Dataset::open(&self.path).map_err(|e| self.failed(&e))?,
        };
        let made = with_dtype!(self.structure.dtype, T => self.make::<T>(&dataset, loc));
        self.datasets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(dataset);
        made
    }

    fn failed(&self, error: &gdal::errors::GdalError) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            reason: gdal_reason(error),
        }
    }

    fn make<T: GdalCell>(
        &self,
        dataset: &Dataset,
        loc: ChunkLoc,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let [cw, ch] = self.grid.chunk_shape();
        let (cols, rows) = (cw as usize, ch as usize);
        let nodata = T::from_f64(self.structure.nodata.unwrap_or(f64::NAN));
        let bands = self.structure.band_count();
        let mut cells = vec![nodata; bands * rows * cols];
        // The chunk's first cell, in base cells.
        let scale = 1u64 << loc.level;
        let window = self.grid.chunk_window(loc);
        let (row, col) = (window.row * scale, window.col * scale);
        let row_spans = spans(row, rows, scale, self.raster.row, self.raster.rows);
        let col_spans = spans(col, cols, scale, self.raster.col, self.raster.cols);
        let resampling = match (loc.level, self.structure.aggregate) {
            (0, _) => None,
            (_, Aggregator::Mode) => Some(ResampleAlg::Mode),
            (_, Aggregator::Min | Aggregator::Max) => Some(ResampleAlg::NearestNeighbour),
            _ => Some(ResampleAlg::Average),
        };
        let mut any = false;
        for band in 0..bands {
            let raster_band = dataset.rasterband(band + 1).map_err(|e| self.failed(&e))?;
            let plane = &mut cells[band * rows * cols..(band + 1) * rows * cols];
            for r in &row_spans {
                for c in &col_spans {
                    let out = (c.out.len(), r.out.len());
                    #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
                    let buffer = raster_band
                        .read_as::<T::Io>(
                            (
                                (c.source.start - self.raster.col) as isize,
                                (r.source.start - self.raster.row) as isize,
                            ),
                            (
                                (c.source.end - c.source.start) as usize,
                                (r.source.end - r.source.start) as usize,
                            ),
                            out,
                            resampling,
                        )
                        .map_err(|e| self.failed(&e))?;
                    let (_, values) = buffer.into_shape_and_vec();
                    for (i, row) in values.chunks_exact(out.0).enumerate() {
                        let at = (r.out.start + i) * cols + c.out.start;
                        for (cell, v) in plane[at..at + out.0].iter_mut().zip(row) {
                            *cell = T::from_io(*v);
                        }
                    }
                    any = true;
                }
            }
        }
        let nodata = crate::engine::Nodata::of(self.structure.nodata);
        if !any || !cells.iter().any(|v| v.is_valid(nodata)) {
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
        let (_, level, (row, col)) = zarr::parse_chunk_key(&self.structure, key.as_str())?;
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
struct Span {
    out: std::ops::Range<usize>,
    source: std::ops::Range<u64>,
}

/// How one axis of a chunk is read: its `len` cells, the first over base
/// cell `start`, each over `scale` base cells, from the raster's base cells
/// `lo..lo + n`. Cells wholly over the raster are read in one span of
/// `scale` source cells each; a cell only partly over it (at the raster's
/// edge) in a span of its own, over the source cells it has, so that no
/// cell is stretched over another's.
fn spans(start: u64, len: usize, scale: u64, lo: u64, n: u64) -> Vec<Span> {
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

impl Storage for RasterStorage {
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
            let array = format!("{}/", zarr::level_prefix(level));
            if !(array.starts_with(prefix) || prefix.starts_with(&array)) {
                continue;
            }
            let window = self.footprint.array_window(&self.grid, level);
            for row in 0..window.rows {
                for col in 0..window.cols {
                    let key = zarr::chunk_key(&self.structure, 0, level, (row, col));
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
        Ok(known.then(|| format!("raster:{}", self.version)))
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
