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

/// The file a connection string names (the quoted part of
/// `NETCDF:"file.nc":variable`), or the path itself.
fn file_of(path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    let mut quoted = text.split('"');
    match (quoted.next(), quoted.next()) {
        (Some(_), Some(file)) if !file.is_empty() => PathBuf::from(file),
        _ => path.into(),
    }
}

/// The subdatasets of a file without raster bands of its own (a netCDF of
/// several variables): their connection strings.
fn subdatasets(path: &Path) -> Vec<String> {
    use gdal::Metadata as _;
    let Ok(dataset) = Dataset::open(path) else {
        return Vec::new();
    };
    if dataset.raster_count() > 0 {
        return Vec::new();
    }
    dataset
        .metadata_domain("SUBDATASETS")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| {
            let (key, value) = entry.split_once('=')?;
            key.ends_with("_NAME").then(|| value.to_string())
        })
        .collect()
}

/// The raster at `path`, modelled as a store.
///
/// # Errors
/// A file GDAL cannot read, or one a store cannot model (rotated, without
/// a CRS, of a cell type no store holds), in one line naming it.
pub(super) fn model(path: &Path) -> Result<Model, String> {
    let parts = subdatasets(path);
    if let Some(first) = parts.first() {
        return Err(format!(
            "{}: holds {} variables or subdatasets ({}); open one, as '{first}'",
            path.display(),
            parts.len(),
            parts
                .iter()
                .map(|p| p.rsplit(':').next().unwrap_or(p))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let (source, _) = Source::open(path, None).map_err(|e| match e {
        crate::gdal_io::IoError::NoGeoreference { what, .. } => format!(
            "{}: has {what}, so it cannot be placed on a map; georeference it first (gdal_translate -a_srs CRS, and -a_ullr for the corners), or ingest it with `gridstore create STORE --like FILE --crs CRS`",
            path.display()
        ),
        other => other.to_string(),
    })?;
    if !source.is_north_up() {
        return Err(format!(
            "{}: is rotated or not north-up; gridstore shows north-up rasters (warp it first, e.g. gdalwarp)",
            path.display()
        ));
    }
    // The raster's own nodata, or none: its cells beyond the raster are
    // then not shown (no histogram pass over it, which GDAL would write
    // into a VRT).
    let declared = source
        .nodata
        .filter(|v| source.dtype.is_some_and(|d| d.holds(*v)));
    let overrides = LikeOverrides {
        nodata: Some(declared),
        ..LikeOverrides::default()
    };
    let like = structure_like(path, &overrides).map_err(|e| e.to_string())?;
    let [min_x, min_y, max_x, max_y] = source.bounds();
    // What it is, and where its coarser levels come from: GDAL takes them
    // from its overviews, made however their writer chose (averaged or
    // not), else averages its cells.
    let (driver, overviews) = gdal::Dataset::open(path).map_or_else(
        |_| ("a raster".into(), 0),
        |d| {
            let overviews = d
                .rasterband(1)
                .ok()
                .and_then(|b| b.overview_count().ok())
                .unwrap_or(0);
            (d.driver().long_name(), overviews)
        },
    );
    let levels = match overviews {
        0 => "coarser levels averaged from its cells".to_string(),
        1 => "coarser levels from its overview".to_string(),
        n => format!("coarser levels from its {n} overviews"),
    };
    let extent = crate::engine::Extent::new(min_x, min_y, max_x, max_y)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Model {
        structure: like.structure,
        extent,
        band_info: source.band_info,
        palette: source.colors,
        version: crate::storage::file_version(&file_of(path))
            .ok()
            .flatten()
            .unwrap_or_default(),
        description: format!("{driver}, read through GDAL, {levels}"),
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
        crate::storage::hdf5::quiet_thread();
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
