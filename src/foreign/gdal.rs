//! Any raster GDAL reads, as a foreign store: modelled as `create --like`
//! models it, its cells read through GDAL, which takes coarser levels from
//! the raster's overviews (a COG's, or a GeoTIFF's `.ovr`).

use super::{CellReader, Model, Reduce};
use crate::gdal_io::{LikeOverrides, Source, structure_like};
use gdal::Dataset;
use gdal::raster::ResampleAlg;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The raster at `path`, modelled as a store.
///
/// # Errors
/// A file GDAL cannot read, or one a store cannot model (rotated, without
/// a CRS, of a cell type no store holds), in one line naming it.
pub(super) fn model(path: &Path) -> Result<Model, String> {
    let like = structure_like(path, &LikeOverrides::default()).map_err(|e| e.to_string())?;
    let (source, _) = Source::open(path, None).map_err(|e| e.to_string())?;
    let [min_x, min_y, max_x, max_y] = source.bounds();
    let driver = gdal::Dataset::open(path)
        .map(|d| d.driver().long_name())
        .unwrap_or_else(|_| "a raster".into());
    let extent = crate::engine::Extent::new(min_x, min_y, max_x, max_y)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Model {
        structure: like.structure,
        extent,
        band_info: source.band_info,
        palette: source.colors,
        version: crate::storage::file_version(path)
            .ok()
            .flatten()
            .unwrap_or_default(),
        description: format!("{driver}, read through GDAL"),
        reader: Box::new(GdalReader {
            path: path.into(),
            datasets: Mutex::new(Vec::new()),
        }),
    })
}

/// Reads a raster's cells through GDAL.
struct GdalReader {
    path: PathBuf,
    /// Open datasets, one per thread reading at once (a GDAL dataset is
    /// not `Sync`).
    datasets: Mutex<Vec<Dataset>>,
}

impl CellReader for GdalReader {
    fn read(
        &self,
        band: usize,
        rows: Range<u64>,
        cols: Range<u64>,
        out: (usize, usize),
        reduce: Reduce,
    ) -> Result<Vec<f64>, String> {
        let taken = self
            .datasets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let reason = |e: gdal::errors::GdalError| {
            format!(
                "{}: {}",
                self.path.display(),
                crate::gdal_io::gdal_reason(&e)
            )
        };
        let dataset = match taken {
            Some(dataset) => dataset,
            None => Dataset::open(&self.path).map_err(reason)?,
        };
        let alg = match reduce {
            Reduce::Exact => None,
            Reduce::Mean => Some(ResampleAlg::Average),
            Reduce::Mode => Some(ResampleAlg::Mode),
            Reduce::Nearest => Some(ResampleAlg::NearestNeighbour),
        };
        let read = (|| {
            let band = dataset.rasterband(band + 1)?;
            #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
            let buffer = band.read_as::<f64>(
                (cols.start as isize, rows.start as isize),
                (
                    (cols.end - cols.start) as usize,
                    (rows.end - rows.start) as usize,
                ),
                out,
                alg,
            )?;
            Ok(buffer.into_shape_and_vec().1)
        })()
        .map_err(reason);
        self.datasets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(dataset);
        read
    }
}
