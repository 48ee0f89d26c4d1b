//! Exporting an extent of a store to GeoTIFF, COG, NetCDF or PNG.
//!
//! Cells come from the engine's retrieval (the coarsest level at least as
//! fine as asked for, resampled onto the output grid). A COG's overviews are
//! the store's own coarser levels, read the same way, never recomputed by
//! GDAL. Every output is written to a temporary name beside the target and
//! renamed into place, so a failed export leaves no partial file.

use super::cell::GdalCell;
use super::source::{one_line, srs_from};
use super::{IoError, warp};
use crate::engine::{
    CancelToken, Element, EngineError, Extent, Progress, ProgressSink, Raster, Resampling, Store,
};
use crate::render::{ColorMap, Stretch, to_rgba};
use crate::with_dtype;
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::{Dataset, DriverManager};
use std::path::{Path, PathBuf};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Tiled, zstd-compressed GeoTIFF.
    GTiff,
    /// Cloud-optimised GeoTIFF with the store's levels as overviews.
    Cog,
    /// NetCDF-4.
    NetCdf,
    /// Colour-mapped PNG quicklook with a world file.
    Png,
}

impl ExportFormat {
    /// The format implied by a file extension.
    #[must_use]
    pub fn from_extension(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "tif" | "tiff" => Some(Self::GTiff),
            "nc" => Some(Self::NetCdf),
            "png" => Some(Self::Png),
            _ => None,
        }
    }
}

/// The output cell size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolution {
    /// The cells of a pyramid level.
    Level(u8),
    /// Square cells of this size, in CRS units.
    Cell(f64),
    /// An output of this many columns and rows.
    Size(usize, usize),
}

/// What to export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    /// The extent; `None` for the extent of all data.
    pub bbox: Option<Extent>,
    /// The CRS of `bbox` (EPSG code or WKT), when not the store's.
    pub bbox_crs: Option<String>,
    /// The output cell size.
    pub resolution: Resolution,
    /// The output format.
    pub format: ExportFormat,
    /// The instant, for stores with a time axis.
    pub instant: Option<i64>,
    /// Resampling; `None` picks the store's (nearest for categorical data).
    pub resampling: Option<Resampling>,
    /// Output CRS, when not the store's; GDAL warps the result.
    pub crs: Option<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportReport {
    /// The output file.
    pub path: PathBuf,
    /// Columns and rows.
    pub size: (usize, usize),
    /// The level the cells came from.
    pub level: u8,
    /// The output geotransform (before any reprojection).
    pub geotransform: [f64; 6],
}

/// Exports an extent of `store` to `out`.
///
/// # Errors
/// A one-line [`IoError`] naming the store or output: empty store, bad
/// extent, unwritable output, corrupt chunks, or cancellation.
pub fn export(
    store: &Store,
    request: &ExportRequest,
    out: &Path,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<ExportReport, IoError> {
    with_dtype!(store.structure().dtype, T => export_typed::<T>(store, request, out, progress, cancel))
}

fn export_typed<T: GdalCell>(
    store: &Store,
    request: &ExportRequest,
    out: &Path,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<ExportReport, IoError> {
    let location = PathBuf::from(store.location());
    let engine = |e: EngineError| IoError::engine(&location, e);
    let t = if store.structure().time.is_some() || request.instant.is_some() {
        store.time_index(request.instant, false).map_err(engine)?
    } else {
        0
    };
    let grid = store.grid();
    let extent =
        match request.bbox {
            Some(b) => to_store_crs(store, b, request.bbox_crs.as_deref(), &location)?,
            None => {
                let window = store.data_window::<T>(t).map_err(engine)?.ok_or_else(|| {
                    IoError::Mismatch {
                        path: location.clone(),
                        reason: "the store holds no data to export".into(),
                    }
                })?;
                let base = grid.window_extent(0, &window);
                match request.resolution {
                    // Snap to the level's cells so the export copies them unchanged.
                    Resolution::Level(level) => grid.window_extent(
                        level,
                        &grid.cover(level, &base).map_err(|e| engine(e.into()))?,
                    ),
                    _ => base,
                }
            }
        };
    let cell = match request.resolution {
        Resolution::Level(level) => {
            grid.check_level(level).map_err(|e| engine(e.into()))?;
            grid.cell_size(level)
        }
        Resolution::Cell(r) if r.is_finite() && r > 0.0 => [r, r],
        Resolution::Size(w, h) if w > 0 && h > 0 => {
            [extent.width() / w as f64, extent.height() / h as f64]
        }
        _ => {
            return Err(IoError::Mismatch {
                path: out.into(),
                reason: "resolution and size must be positive".into(),
            });
        }
    };
    let structure = store.structure();
    let method = request
        .resampling
        .unwrap_or(if structure.aggregate.is_categorical() {
            Resampling::Nearest
        } else {
            structure.resampling
        });
    let overviews = if request.format == ExportFormat::Cog {
        overview_count(extent, cell)
    } else {
        0
    };
    let phase = Progress::phase(progress, "export", 1 + u64::from(overviews));
    let raster = store
        .read_extent::<T>(t, &extent, cell, method)
        .map_err(engine)?;
    phase.add(1, (raster.data.len() * T::DTYPE.size()) as u64);
    cancel.check().map_err(engine)?;
    let (_, rows, cols) = raster.data.dim();
    let tmp = temporary_path(out)?;
    let written = match request.format {
        ExportFormat::Png => write_png(&raster, store.nodata::<T>(), &tmp),
        format => write_gdal(
            store, &raster, format, request, &tmp, overviews, t, method, &phase, cancel,
        ),
    };
    let result = written.and_then(|()| std::fs::rename(&tmp, out).map_err(|e| e.to_string()));
    if let Err(reason) = result {
        std::fs::remove_file(&tmp).ok();
        return Err(IoError::Write {
            path: out.into(),
            reason,
        });
    }
    Ok(ExportReport {
        path: out.into(),
        size: (cols, rows),
        level: raster.level,
        geotransform: raster.geotransform,
    })
}

/// Overviews until the smaller side drops under 256 cells.
fn overview_count(extent: Extent, cell: [f64; 2]) -> u8 {
    let side = (extent.width() / cell[0]).min(extent.height() / cell[1]);
    let mut n = 0;
    while side / f64::from(1u32 << n) > 256.0 && n < 20 {
        n += 1;
    }
    n
}

fn temporary_path(out: &Path) -> Result<PathBuf, IoError> {
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| IoError::Write {
            path: out.into(),
            reason: "not a file name".into(),
        })?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(IoError::Write {
            path: out.into(),
            reason: format!("folder {} does not exist", dir.display()),
        });
    }
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("tmp");
    Ok(dir.join(format!(".{name}.{}.partial.{ext}", std::process::id())))
}

fn to_store_crs(
    store: &Store,
    bbox: Extent,
    crs: Option<&str>,
    location: &Path,
) -> Result<Extent, IoError> {
    let Some(crs) = crs else { return Ok(bbox) };
    let bad = |reason: String| IoError::Mismatch {
        path: location.into(),
        reason,
    };
    let from = srs_from(crs)
        .map_err(|e| bad(format!("--bbox-crs '{crs}': {}", one_line(&e.to_string()))))?;
    let to = srs_from(&store.structure().crs.wkt).map_err(|e| bad(e.to_string()))?;
    let transform =
        gdal::spatial_ref::CoordTransform::new(&from, &to).map_err(|e| bad(e.to_string()))?;
    let b = transform
        .transform_bounds(&[bbox.min_x, bbox.min_y, bbox.max_x, bbox.max_y], 21)
        .map_err(|e| bad(format!("cannot transform the bbox: {e}")))?;
    Extent::new(b[0], b[1], b[2], b[3]).map_err(bad)
}

fn write_png<T: Element>(raster: &Raster<T>, nodata: T, path: &Path) -> Result<(), String> {
    let view = raster.data.view();
    let (bands, rows, cols) = raster.data.dim();
    let used = if bands >= 3 { 3 } else { 1 };
    let stretches: Vec<Stretch> = (0..used)
        .map(|b| {
            Stretch::percentiles(&view, b, nodata, 2.0, 98.0)
                .unwrap_or(Stretch { min: 0.0, max: 1.0 })
        })
        .collect();
    let rgba = to_rgba(&view, nodata, ColorMap::Viridis, &stretches);
    let (w, h) = (
        u32::try_from(cols).map_err(|e| e.to_string())?,
        u32::try_from(rows).map_err(|e| e.to_string())?,
    );
    image::save_buffer_with_format(
        path,
        &rgba,
        w,
        h,
        image::ExtendedColorType::Rgba8,
        image::ImageFormat::Png,
    )
    .map_err(|e| e.to_string())?;
    let gt = raster.geotransform;
    let world = format!(
        "{}\n0\n0\n{}\n{}\n{}\n",
        gt[1],
        gt[5],
        gt[0] + gt[1] / 2.0,
        gt[3] + gt[5] / 2.0
    );
    let world_path = path.with_file_name(format!(
        "{}.pgw",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("out")
            .trim_end_matches(".png")
    ));
    std::fs::write(world_path, world).map_err(|e| e.to_string())
}

/// A GDAL dataset (in memory, or a GTiff at `path`) holding `raster`.
fn dataset_of<T: GdalCell>(
    store: &Store,
    raster: &Raster<T>,
    driver: &str,
    path: &str,
    options: &[&str],
) -> Result<Dataset, String> {
    let err = |e: gdal::errors::GdalError| one_line(&e.to_string());
    let (bands, rows, cols) = raster.data.dim();
    let driver = DriverManager::get_driver_by_name(driver).map_err(err)?;
    let options = RasterCreationOptions::from_iter(options.iter().copied());
    let mut ds = driver
        .create_with_band_type_with_options::<T::Io, _>(path, cols, rows, bands, &options)
        .map_err(err)?;
    ds.set_geo_transform(&raster.geotransform).map_err(err)?;
    ds.set_spatial_ref(&srs_from(&store.structure().crs.wkt).map_err(err)?)
        .map_err(err)?;
    for b in 0..bands {
        let mut band = ds.rasterband(b + 1).map_err(err)?;
        band.set_no_data_value(Some(store.structure().nodata))
            .map_err(err)?;
        let values: Vec<T::Io> = raster
            .data
            .index_axis(ndarray::Axis(0), b)
            .iter()
            .map(|v| v.to_io())
            .collect();
        let mut buffer = Buffer::new((cols, rows), values);
        band.write((0, 0), (cols, rows), &mut buffer).map_err(err)?;
    }
    Ok(ds)
}

#[allow(clippy::too_many_arguments)]
fn write_gdal<T: GdalCell>(
    store: &Store,
    raster: &Raster<T>,
    format: ExportFormat,
    request: &ExportRequest,
    tmp: &Path,
    overviews: u8,
    t: u32,
    method: Resampling,
    phase: &Progress<'_>,
    cancel: &CancelToken,
) -> Result<(), String> {
    let err = |e: gdal::errors::GdalError| one_line(&e.to_string());
    let tmp_str = tmp.to_str().ok_or("output path is not UTF-8")?;
    // Outputs compress like the store: zstd at the store's level (3 when the
    // store uses another codec), on every core.
    let level = match store.structure().codec {
        crate::engine::Codec::Zstd { level } => level,
        _ => 3,
    };
    let zstd_level = format!("ZSTD_LEVEL={level}");
    let tiff: [&str; 5] = ["COMPRESS=ZSTD", &zstd_level, "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS", "TILED=YES"];
    let cog: [&str; 5] = ["COMPRESS=ZSTD", &zstd_level, "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS", "OVERVIEWS=FORCE_USE_EXISTING"];
    let (driver, options): (&str, &[&str]) = match format {
        ExportFormat::GTiff => ("GTiff", &tiff),
        ExportFormat::Cog => ("COG", &cog),
        ExportFormat::NetCdf => ("netCDF", &["FORMAT=NC4", "COMPRESS=DEFLATE"]),
        ExportFormat::Png => return Err("PNG is written without GDAL".into()),
    };
    if format == ExportFormat::GTiff && request.crs.is_none() {
        // Written directly: GDAL compresses tiles on all cores as they flush.
        return dataset_of(store, raster, driver, tmp_str, options).map(drop);
    }
    let staging_path = format!(
        "/vsimem/gridstore-export-{}-{:p}.tif",
        std::process::id(),
        std::ptr::from_ref(raster)
    );
    // Overviews need a GeoTIFF to live in; otherwise an in-memory dataset
    // avoids encoding the cells twice.
    let mut staging = if overviews > 0 {
        dataset_of(store, raster, "GTiff", &staging_path, &["TILED=YES"])?
    } else {
        dataset_of(store, raster, "MEM", "", &[])?
    };
    if overviews > 0 {
        add_store_overviews(
            store,
            raster,
            &mut staging,
            overviews,
            t,
            method,
            phase,
            cancel,
        )?;
    }
    let result = if let Some(crs) = &request.crs {
        let method = match method {
            Resampling::Nearest => "near",
            Resampling::Average => "average",
            Resampling::Bilinear => "bilinear",
        };
        let mut args: Vec<String> = vec![
            "-of".into(),
            driver.into(),
            "-t_srs".into(),
            crs.clone(),
            "-r".into(),
            method.into(),
        ];
        for o in options.iter().filter(|o| !o.starts_with("OVERVIEWS")) {
            args.extend(["-co".to_string(), (*o).to_string()]);
        }
        warp::warp(&staging, tmp_str, &args).map(drop)
    } else {
        let driver = DriverManager::get_driver_by_name(driver).map_err(err)?;
        let options = RasterCreationOptions::from_iter(options.iter().copied());
        staging
            .create_copy(&driver, tmp_str, &options)
            .map(drop)
            .map_err(err)
    };
    drop(staging);
    gdal::vsi::unlink_mem_file(&staging_path).ok();
    result
}

/// Fills the staging GeoTIFF's overviews with the store's coarser levels.
#[allow(clippy::too_many_arguments)]
fn add_store_overviews<T: GdalCell>(
    store: &Store,
    raster: &Raster<T>,
    staging: &mut Dataset,
    count: u8,
    t: u32,
    method: Resampling,
    phase: &Progress<'_>,
    cancel: &CancelToken,
) -> Result<(), String> {
    let err = |e: gdal::errors::GdalError| one_line(&e.to_string());
    let factors: Vec<i32> = (1..=count).map(|k| 1 << k).collect();
    staging
        .build_overviews("NONE", &factors, &[])
        .map_err(err)?;
    let (bands, rows, cols) = raster.data.dim();
    let gt = raster.geotransform;
    for (i, factor) in factors.iter().enumerate() {
        cancel.check().map_err(|e| e.to_string())?;
        let f = f64::from(*factor);
        let (ocols, orows) = (
            cols.div_ceil(*factor as usize),
            rows.div_ceil(*factor as usize),
        );
        let cell = [gt[1] * f, -gt[5] * f];
        let extent = Extent {
            min_x: gt[0],
            max_y: gt[3],
            max_x: gt[0] + ocols as f64 * cell[0],
            min_y: gt[3] - orows as f64 * cell[1],
        };
        let level = store
            .read_extent::<T>(t, &extent, cell, method)
            .map_err(|e| e.to_string())?;
        for b in 0..bands {
            let mut band = staging
                .rasterband(b + 1)
                .map_err(err)?
                .overview(i)
                .map_err(err)?;
            let values: Vec<T::Io> = level
                .data
                .index_axis(ndarray::Axis(0), b)
                .iter()
                .map(|v| v.to_io())
                .collect();
            let mut buffer = Buffer::new((ocols, orows), values);
            band.write((0, 0), (ocols, orows), &mut buffer)
                .map_err(err)?;
        }
        phase.add(1, (level.data.len() * T::DTYPE.size()) as u64);
    }
    Ok(())
}
