//! GeoTIFF, COG and NetCDF outputs through GDAL, written strip by strip.
//!
//! Each strip of output rows is read from the store (chunks decoded in
//! parallel) and handed to GDAL, which compresses tiles on its own threads
//! while the next strip decodes. A plain GeoTIFF is written in place, its
//! memory a few strips whatever its size; COG and NetCDF go through a
//! staging dataset that GDAL then copies (in memory, bounded by the export's
//! cell limit, for NetCDF), and a COG's overviews are filled from the
//! store's own coarser levels.

use super::{ExportFormat, OutputGrid};
use crate::engine::{CancelToken, Progress, ProgressSink, Resampling, Store};
use crate::gdal_io::OutputError;
use crate::gdal_io::cell::GdalCell;
use crate::gdal_io::source::srs_from;
use crate::gdal_io::warp;
use gdal::raster::{Buffer, RasterBand, RasterCreationOptions};
use gdal::{Dataset, DriverManager, Metadata as _};
use std::path::Path;

/// `path` as GDAL takes it.
fn utf8(path: &Path) -> Result<&str, OutputError> {
    path.to_str()
        .ok_or_else(|| OutputError::Format("the output path is not UTF-8".into()))
}

/// Output rows per strip.
const STRIP_ROWS: usize = 256;

/// Writes the output grid to `path` in `format`, reprojected to `crs` when
/// given.
///
/// # Errors
/// GDAL failures, store read failures, or cancellation, as one line.
pub fn write<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    format: ExportFormat,
    crs: Option<&str>,
    path: &Path,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<Written, OutputError> {
    let path = utf8(path)?;
    let (driver, options) = driver_options(store, format)?;
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let overviews = if format == ExportFormat::Cog {
        overview_count(output)
    } else {
        0
    };
    let total: usize = (0..=overviews).map(|k| output.rows.div_ceil(1 << k)).sum();
    let phase = Progress::phase(progress, "export", total as u64);
    if format == ExportFormat::GTiff && crs.is_none() {
        let size = (output.cols, output.rows);
        if let Some(has_data) = super::passthrough::try_write::<T>(store, output, path, &options)? {
            phase.add(total as u64, 0);
            return Ok(Written { size, has_data });
        }
        let dataset = create::<T>(store, output, driver, path, &options)?;
        let has_data = fill::<T>(store, output, (&dataset, 0), 0, &phase, cancel)?;
        dataset.close()?;
        return Ok(Written { size, has_data });
    }
    let staging_path = format!(
        "/vsimem/gridstore-export-{}-{:p}.tif",
        std::process::id(),
        std::ptr::from_ref(output)
    );
    let result = (|| {
        // Overviews need a GeoTIFF to live in; otherwise memory will do.
        let mut staging = if overviews > 0 {
            create::<T>(store, output, "GTiff", &staging_path, &["TILED=YES"])?
        } else {
            create::<T>(store, output, "MEM", "", &[])?
        };
        one_instant(&mut staging, output, format)?;
        let has_data = fill::<T>(store, output, (&staging, 0), 0, &phase, cancel)?;
        if overviews > 0 {
            let factors: Vec<i32> = (1..=overviews).map(|k| 1 << k).collect();
            staging.build_overviews("NONE", &factors, &[])?;
            for k in 1..=overviews {
                fill::<T>(store, output, (&staging, 0), k, &phase, cancel)?;
            }
        }
        finish(&staging, output, driver, &options, crs, path, has_data)
    })();
    gdal::vsi::unlink_mem_file(&staging_path).ok();
    result
}

/// Writes the output grid at each of `instants` (time index, instant, in
/// time order) to one NetCDF at `path`: a variable over (time, y, x) and a
/// CF time coordinate in seconds since 1970-01-01 UTC, proleptic Gregorian,
/// as xarray decodes it. Reprojected to `crs` when given. The store has one
/// band.
///
/// # Errors
/// GDAL failures, store read failures, or cancellation, as one line.
pub fn write_instants<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    instants: &[(u32, i64)],
    crs: Option<&str>,
    path: &Path,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<Written, OutputError> {
    let path = utf8(path)?;
    let (driver, options) = driver_options(store, super::ExportFormat::NetCdf)?;
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let phase = Progress::phase(progress, "export", (instants.len() * output.rows) as u64);
    // The file's time is the time coordinate, not one instant's tags.
    let output = OutputGrid {
        instant: None,
        ..output.clone()
    };
    let bands = store.structure().band_count();
    let mut staging = create_bands::<T>(store, &output, ("MEM", "", &[]), instants.len() * bands)?;
    let times: Vec<i64> = instants.iter().map(|(_, i)| *i).collect();
    cf_time(&mut staging, &times, bands)?;
    let mut has_data = false;
    for (k, (t, _)) in instants.iter().enumerate() {
        let at = OutputGrid {
            t: *t,
            ..output.clone()
        };
        // Time outer, band inner: GDAL's order for NETCDF_DIM_EXTRA={time,band}.
        has_data |= fill::<T>(store, &at, (&staging, k * bands), 0, &phase, cancel)?;
    }
    finish(&staging, &output, driver, &options, crs, path, has_data)
}

/// Makes the bands of `staging` the steps of a CF time dimension at
/// `instants` (seconds since the epoch) in the NetCDF GDAL copies it to,
/// each step `bands` bands of a `band` dimension when there are several:
/// a variable over (time, y, x) or (time, band, y, x), and a time
/// coordinate xarray decodes.
fn cf_time(staging: &mut Dataset, instants: &[i64], bands: usize) -> Result<(), OutputError> {
    let values: Vec<String> = instants.iter().map(ToString::to_string).collect();
    let mut items = vec![
        // NC_DOUBLE (6): xarray decodes a double time; whole seconds are
        // exact up to 2^53.
        ("NETCDF_DIM_time_DEF", format!("{{{},6}}", instants.len())),
        (
            "NETCDF_DIM_time_VALUES",
            format!("{{{}}}", values.join(",")),
        ),
        (
            "time#units",
            "seconds since 1970-01-01 00:00:00".to_string(),
        ),
        ("time#calendar", "proleptic_gregorian".to_string()),
        ("time#standard_name", "time".to_string()),
        ("time#long_name", "time".to_string()),
        ("time#axis", "T".to_string()),
    ];
    if bands > 1 {
        let numbers: Vec<String> = (1..=bands).map(|b| b.to_string()).collect();
        items.extend([
            ("NETCDF_DIM_EXTRA", "{time,band}".to_string()),
            // NC_INT (4): the band numbers, from 1 as GDAL counts them.
            ("NETCDF_DIM_band_DEF", format!("{{{bands},4}}")),
            (
                "NETCDF_DIM_band_VALUES",
                format!("{{{}}}", numbers.join(",")),
            ),
            ("band#long_name", "band".to_string()),
        ]);
    } else {
        items.push(("NETCDF_DIM_EXTRA", "{time}".to_string()));
    }
    for (key, value) in items {
        staging.set_metadata_item(key, &value, "")?;
    }
    Ok(())
}

/// A one-band NetCDF of one instant gets a time dimension of one step, so
/// that its time is a coordinate, not only an attribute.
fn one_instant(
    staging: &mut Dataset,
    output: &OutputGrid,
    format: super::ExportFormat,
) -> Result<(), OutputError> {
    match output.instant {
        Some(instant) if format == super::ExportFormat::NetCdf && staging.raster_count() == 1 => {
            cf_time(staging, &[instant], 1)
        }
        _ => Ok(()),
    }
}

/// Writes `raster` (cells already on the output grid, such as a blend of
/// two instants) to `path` in `format`, reprojected to `crs` when given. A
/// COG's overviews are GDAL's, from these cells, by the store's resampling.
///
/// # Errors
/// GDAL failures, as one line.
pub fn write_raster<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    raster: &crate::engine::Raster<T>,
    format: ExportFormat,
    crs: Option<&str>,
    path: &Path,
) -> Result<Written, OutputError> {
    let path = utf8(path)?;
    let (driver, mut options) = driver_options(store, format)?;
    options.retain(|o| !o.starts_with("OVERVIEWS"));
    let resampling = match output.method {
        Resampling::Nearest => "OVERVIEW_RESAMPLING=NEAREST",
        _ => "OVERVIEW_RESAMPLING=AVERAGE",
    };
    if format == ExportFormat::Cog {
        options.push(resampling.to_string());
    }
    let mut staging = in_memory(store, output, raster)?;
    one_instant(&mut staging, output, format)?;
    let nodata = store.nodata::<T>();
    let has_data = raster.data.iter().any(|v| v.is_valid(nodata));
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    finish(&staging, output, driver, &options, crs, path, has_data)
}

/// `raster` (cells on the output grid) as an in-memory GDAL dataset.
fn in_memory<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    raster: &crate::engine::Raster<T>,
) -> Result<Dataset, OutputError> {
    let staging = create::<T>(store, output, "MEM", "", &[])?;
    for (b, plane) in raster.data.outer_iter().enumerate() {
        let values: Vec<T::Io> = plane.iter().map(|v| v.to_io()).collect();
        staging.rasterband(b + 1)?.write(
            (0, 0),
            (output.cols, output.rows),
            &mut Buffer::new((output.cols, output.rows), values),
        )?;
    }
    Ok(staging)
}

/// `raster` (cells on the output grid, in the store's CRS) warped to
/// `crs` with the output's resampling and size (`-tr`, `-ts`), in memory.
///
/// # Errors
/// GDAL failures, as one line.
pub fn warp_raster<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    raster: &crate::engine::Raster<T>,
    crs: &str,
) -> Result<crate::engine::Raster<T>, OutputError> {
    let staging = in_memory(store, output, raster)?;
    let warped = warp_in_memory(&staging, output, crs)?;
    let (cols, rows) = warped.raster_size();
    let mut cells = Vec::with_capacity(warped.raster_count() * cols * rows);
    for b in 1..=warped.raster_count() {
        let band = warped.rasterband(b)?;
        cells.extend(crate::gdal_io::cell::read_window::<T>(
            &band,
            (0, 0),
            (cols, rows),
        )?);
    }
    let data = ndarray::Array3::from_shape_vec((warped.raster_count(), rows, cols), cells)?;
    Ok(crate::engine::Raster {
        data,
        geotransform: warped.geo_transform()?,
        level: raster.level,
    })
}

/// `staging` warped to `crs` with the output's resampling and size, in
/// memory (its metadata items kept, as gdalwarp keeps them).
fn warp_in_memory(
    staging: &Dataset,
    output: &OutputGrid,
    crs: &str,
) -> Result<Dataset, OutputError> {
    let mut args: Vec<String> = [
        "-of",
        "MEM",
        "-t_srs",
        crs,
        "-r",
        warp_method(output.method),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    args.extend(output.warp.iter().cloned());
    warp::warp(staging, "", &args)
}

/// gdalwarp's name of a resampling.
fn warp_method(method: Resampling) -> &'static str {
    match method {
        Resampling::Nearest => "near",
        Resampling::Average => "average",
        Resampling::Bilinear => "bilinear",
    }
}

/// The GDAL driver and creation options of `format`: outputs compress like
/// the store (zstd at the store's level, 3 when it uses another codec), on
/// every core.
fn driver_options(
    store: &Store,
    format: ExportFormat,
) -> Result<(&'static str, Vec<String>), OutputError> {
    let level = match store.structure().codec {
        crate::engine::Codec::Zstd { level } => level,
        _ => 3,
    };
    let common = [
        "COMPRESS=ZSTD".to_string(),
        format!("ZSTD_LEVEL={level}"),
        "BIGTIFF=IF_SAFER".to_string(),
        "NUM_THREADS=ALL_CPUS".to_string(),
    ];
    let with = |extra: &str| [&common[..], &[extra.to_string()]].concat();
    Ok(match format {
        ExportFormat::GTiff => ("GTiff", with("TILED=YES")),
        ExportFormat::Cog => ("COG", with("OVERVIEWS=FORCE_USE_EXISTING")),
        ExportFormat::NetCdf => (
            "netCDF",
            vec!["FORMAT=NC4".to_string(), "COMPRESS=DEFLATE".to_string()],
        ),
        ExportFormat::Png => {
            return Err(OutputError::Format("PNG is written without GDAL".into()));
        }
    })
}

/// Copies a filled staging dataset to `path` through `driver`, or warps it
/// there when `crs` is given.
fn finish(
    staging: &Dataset,
    output: &OutputGrid,
    driver: &str,
    options: &[&str],
    crs: Option<&str>,
    path: &str,
    has_data: bool,
) -> Result<Written, OutputError> {
    match crs {
        // NetCDF's time dimension is made only by a copy (CreateCopy reads
        // the staging dataset's NETCDF_DIM_* items): warped in memory first.
        Some(crs) if driver == "netCDF" => {
            let warped = warp_in_memory(staging, output, crs)?;
            let driver = DriverManager::get_driver_by_name(driver)?;
            let options = RasterCreationOptions::from_iter(options.iter().copied());
            let copy = warped.create_copy(&driver, path, &options)?;
            let size = copy.raster_size();
            copy.close()?;
            Ok(Written { size, has_data })
        }
        Some(crs) => {
            let method = warp_method(output.method);
            let mut args: Vec<String> = ["-of", driver, "-t_srs", crs, "-r", method]
                .iter()
                .map(ToString::to_string)
                .collect();
            args.extend(output.warp.iter().cloned());
            for o in options.iter().filter(|o| !o.starts_with("OVERVIEWS")) {
                args.extend(["-co".to_string(), (*o).to_string()]);
            }
            let warped = warp::warp(staging, path, &args)?;
            let size = warped.raster_size();
            warped.close()?;
            Ok(Written { size, has_data })
        }
        None => {
            let driver = DriverManager::get_driver_by_name(driver)?;
            let options = RasterCreationOptions::from_iter(options.iter().copied());
            staging.create_copy(&driver, path, &options)?.close()?;
            Ok(Written {
                size: (output.cols, output.rows),
                has_data,
            })
        }
    }
}

/// Overviews until the smaller side drops under 256 cells.
fn overview_count(output: &OutputGrid) -> u8 {
    let side = output.cols.min(output.rows);
    let mut n = 0;
    while side >> n > 256 && n < 20 {
        n += 1;
    }
    n
}

/// A dataset of the output's size, georeferencing and nodata, with the
/// store's bands.
fn create<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    driver: &str,
    path: &str,
    options: &[&str],
) -> Result<Dataset, OutputError> {
    let bands = store.structure().band_count();
    create_bands::<T>(store, output, (driver, path, options), bands)
}

/// [`create`] with `bands` bands.
fn create_bands<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    (driver, path, options): (&str, &str, &[&str]),
    bands: usize,
) -> Result<Dataset, OutputError> {
    let driver = DriverManager::get_driver_by_name(driver)?;
    let options = RasterCreationOptions::from_iter(options.iter().copied());
    let mut ds = driver.create_with_band_type_with_options::<T::Io, _>(
        path,
        output.cols,
        output.rows,
        bands,
        &options,
    )?;
    ds.set_geo_transform(&output.geotransform())?;
    ds.set_spatial_ref(&srs_from(&store.structure().crs.wkt)?)?;
    super::describe(&mut ds, store, output)?;
    Ok(ds)
}

/// What an output holds.
pub struct Written {
    /// Columns and rows of the file written.
    pub size: (usize, usize),
    /// Whether any cell holds data.
    pub has_data: bool,
}

/// Fills the output (overview `k` when `k > 0`, from the store `2^k` times
/// coarser) strip by strip, the store's bands into the dataset's from
/// `first_band` (0-based) on. Returns whether any cell holds data.
fn fill<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    (dataset, first_band): (&Dataset, usize),
    k: u8,
    phase: &Progress<'_>,
    cancel: &CancelToken,
) -> Result<bool, OutputError> {
    let factor = 1usize << k;
    let nodata = store.nodata::<T>();
    let mut has_data = false;
    let (cols, rows) = (output.cols.div_ceil(factor), output.rows.div_ceil(factor));
    let cell = [
        output.cell[0] * factor as f64,
        output.cell[1] * factor as f64,
    ];
    let level = store.level_for(cell);
    for r0 in (0..rows).step_by(STRIP_ROWS) {
        cancel.check()?;
        let n = STRIP_ROWS.min(rows - r0);
        let strip = output.strip(factor, r0, n);
        let raster = store.read_extent_at::<T>(output.t, level, &strip, cell, output.method)?;
        has_data = has_data || raster.data.iter().any(|v| v.is_valid(nodata));
        for (b, plane) in raster.data.outer_iter().enumerate() {
            let band = dataset.rasterband(first_band + b + 1)?;
            let mut band: RasterBand<'_> = if k == 0 {
                band
            } else {
                band.overview(usize::from(k) - 1)?
            };
            let values: Vec<T::Io> = plane.iter().map(|v| v.to_io()).collect();
            #[allow(clippy::cast_possible_wrap)]
            band.write(
                (0, r0 as isize),
                (cols, n),
                &mut Buffer::new((cols, n), values),
            )?;
        }
        phase.add(n as u64, (n * cols * T::DTYPE.size()) as u64);
    }
    Ok(has_data)
}
