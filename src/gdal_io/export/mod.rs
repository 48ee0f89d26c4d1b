//! Exporting an extent of a store to GeoTIFF, COG, NetCDF or PNG.
//!
//! Cells come from the engine's retrieval (the coarsest level at least as
//! fine as asked for, resampled onto the output grid). A COG's overviews are
//! the store's own coarser levels, read the same way, never recomputed by
//! GDAL. Every output is written to a temporary name beside the target and
//! renamed into place, so a failed export leaves no partial file.

mod between;
mod cached;
mod gdal_out;
pub(super) use gdal_out::Written;
mod passthrough;
mod png;

pub use between::Between;

use super::cell::GdalCell;
use super::source::{parse_crs, srs_from};
use super::{IoError, OutputError};
use crate::engine::catalogue::cache::Provenance as _;
use crate::engine::grid::period::TimeLevel;
use crate::engine::{
    CancelToken, EngineError, Extent, FunctionCache, Progress, ProgressSink, Resampling, Store,
};
use crate::with_dtype;
use gdal::Metadata as _;
use std::path::{Path, PathBuf};

/// Sets every band's nodata (none in a store without nodata) and, when the store has a colour table and its
/// cells are 8 or 16-bit unsigned (what TIFF palettes hold), band 1's table.
fn describe(
    dataset: &mut gdal::Dataset,
    store: &Store,
    output: &OutputGrid,
) -> Result<(), gdal::errors::GdalError> {
    let structure = store.structure();
    // The instant the cells are of: TIFF's own DateTime tag (GeoTIFF
    // outputs) and an ISO 8601 item every GDAL reader lists.
    if let Some(instant) = output.instant {
        let iso = crate::engine::grid::time::format_instant(instant);
        let tiff = iso.replacen('-', ":", 2).replace('T', " ").replace('Z', "");
        dataset.set_metadata_item("TIFFTAG_DATETIME", &tiff, "")?;
        dataset.set_metadata_item("GRIDSTORE_INSTANT", &iso, "")?;
        // A period map: which period, and the store's aggregate over it.
        if let Some(level) = store.period_level() {
            let period = level.period();
            let end = crate::engine::grid::time::format_instant(period.next(instant));
            dataset.set_metadata_item("GRIDSTORE_PERIOD", level.name(), "")?;
            dataset.set_metadata_item("GRIDSTORE_PERIOD_LABEL", &period.label(instant), "")?;
            dataset.set_metadata_item("GRIDSTORE_PERIOD_END", &end, "")?;
        }
    }
    for b in 1..=dataset.raster_count() {
        dataset.rasterband(b)?.set_no_data_value(structure.nodata)?;
    }
    let palette_fits = matches!(
        structure.dtype,
        crate::engine::DType::U8 | crate::engine::DType::U16
    ) && dataset.raster_count() == 1;
    if let Some(palette) = store.palette().filter(|_| palette_fits) {
        let mut table = gdal::raster::ColorTable::default();
        for (i, [r, g, b, a]) in palette.colors().iter().enumerate() {
            let entry = gdal::raster::ColorEntry::rgba(
                i16::from(*r),
                i16::from(*g),
                i16::from(*b),
                i16::from(*a),
            );
            table.set_color_entry(u16::try_from(i).unwrap_or(u16::MAX), &entry);
        }
        dataset.rasterband(1)?.set_color_table(&table);
    }
    Ok(())
}

/// Largest output, in cells, for a streamed GeoTIFF (2^40).
const MAX_CELLS: f64 = 1_099_511_627_776.0;

/// Largest output, in cells, for formats staged in memory (2^30).
const MAX_STAGED_CELLS: f64 = 1_073_741_824.0;

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
    /// An output of this many columns and rows; one of them 0: square
    /// cells, the other side following from the extent.
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
    /// The instant, for stores with a time axis: with `period`, the first
    /// instant of the period.
    pub instant: Option<i64>,
    /// Read the store's maps of this time level (see
    /// `Store::period_maps`) instead of its instants.
    pub period: Option<TimeLevel>,
    /// Resampling; `None` picks the store's (nearest for categorical data).
    pub resampling: Option<Resampling>,
    /// Output CRS, when not the store's; GDAL warps the result.
    pub crs: Option<String>,
    /// Snap the extent outward to the cells of the level read, so cells are
    /// copied rather than resampled.
    pub snap: bool,
    /// At an instant the store does not hold, blend the stored instants
    /// around it (linearly in time) instead of failing.
    pub interpolate: bool,
    /// Write the file even when `bbox` holds no data (otherwise that fails,
    /// naming the data's extent).
    pub allow_empty: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportReport {
    /// The output file.
    pub path: PathBuf,
    /// Columns and rows of the file written.
    pub size: (usize, usize),
    /// Whether any exported cell holds data.
    pub has_data: bool,
    /// The level the cells came from.
    pub level: u8,
    /// The output geotransform (before any reprojection).
    pub geotransform: [f64; 6],
    /// Whether the files came from the function cache.
    pub from_cache: bool,
    /// The stored instants blended, for an interpolated instant.
    pub between: Option<Between>,
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
    export_with(store, request, out, None, progress, cancel).map(|(report, _)| report)
}

/// The store `request` reads: `store`, or the store of its time level's
/// maps.
fn maps_read<'a>(store: &'a Store, request: &ExportRequest) -> Result<&'a Store, IoError> {
    let Some(level) = request.period else {
        return Ok(store);
    };
    store
        .period_maps(level)
        .map(AsRef::as_ref)
        .ok_or_else(|| IoError::Mismatch {
            path: store.location().into(),
            reason: format!(
                "keeps no {level} maps (create --time-levels, or convert --time-levels)"
            ),
        })
}

/// [`export`], served from `cache` when it holds the same request on the
/// store's current contents, and kept there otherwise (up to 256 MB of
/// files). A failure of the cache itself never fails the export: it is
/// reported in the returned warning.
///
/// # Errors
/// As [`export`].
pub fn export_with(
    store: &Store,
    request: &ExportRequest,
    out: &Path,
    cache: Option<&FunctionCache>,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<(ExportReport, Option<String>), IoError> {
    let store = maps_read(store, request)?;
    let location = PathBuf::from(store.location());
    let token = match cache {
        Some(_) => store
            .state_token()
            .map_err(|e| IoError::engine(&location, e))?,
        None => None,
    };
    let (Some(cache), Some(token)) = (cache, token) else {
        let report = with_dtype!(store.structure().dtype, T => export_typed::<T>(store, request, out, None, progress, cancel))?;
        return Ok((report, None));
    };
    let args = cached::args(&token, &store.place(), request);
    let mut warning = None;
    // Served while every chunk the export read holds (see `engine::catalogue::sources`).
    match cache.get_from::<cached::ExportedFiles>(cached::FUNCTION, &args, store) {
        Ok(Some(files)) => {
            Progress::phase(progress, "export (from the cache)", 1).add(1, 0);
            let report = cached::restore(&files, out)?;
            return Ok((report, None));
        }
        Ok(None) => {}
        Err(e) => warning = Some(format!("cache: {e}")),
    }
    let recording = store.begin();
    let report = with_dtype!(store.structure().dtype, T => export_typed::<T>(store, request, out, Some(cache), progress, cancel))?;
    // Kept with what it read, unless a write changed the store meanwhile.
    let Some(sources) = recording.end() else {
        return Ok((report, warning));
    };
    let kept = match cached::collect(&report, request.format) {
        Ok(Some(files)) => cache
            .put_from(cached::FUNCTION, &args, &files, &sources)
            .map_err(|e| e.to_string()),
        Ok(None) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = kept {
        warning.get_or_insert(format!("cache: {e}"));
    }
    Ok((report, warning))
}

/// Exports every stored instant from `from` to `to` (inclusive) of an
/// extent of `store` to one NetCDF at `out`, a variable over (time, y, x)
/// with a CF time coordinate. `request` says where and how fine, as for
/// [`export`]; its instant and interpolation are not used. Not kept in the
/// function cache. Returns the report and the instants written.
///
/// # Errors
/// As [`export`]; and a store without a time axis, of several bands, with
/// no instant in the range, or an output that is not NetCDF, each one line.
pub fn export_instants(
    store: &Store,
    request: &ExportRequest,
    (from, to): (i64, i64),
    out: &Path,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<(ExportReport, Vec<i64>), IoError> {
    use crate::engine::grid::time::format_instant;
    let store = maps_read(store, request)?;
    let refuse = |path: &Path, reason: String| IoError::Mismatch {
        path: path.into(),
        reason,
    };
    let location = PathBuf::from(store.location());
    if request.format != ExportFormat::NetCdf {
        return Err(refuse(
            out,
            "--time-range writes one NetCDF with a time dimension; give an .nc output or --format netcdf".into(),
        ));
    }
    if store.structure().time.is_none() {
        return Err(refuse(
            &location,
            "the store has no time axis, so no instants to export over --time-range".into(),
        ));
    }
    let instants = store.instants_between(from, to);
    if instants.is_empty() {
        let all = store.instants_between(i64::MIN, i64::MAX);
        let held = match (all.first(), all.last()) {
            (Some((_, a)), Some((_, b))) => format!(
                "the store holds {} from {} to {}",
                all.len(),
                format_instant(*a),
                format_instant(*b)
            ),
            _ => "the store holds no instants yet".into(),
        };
        return Err(refuse(
            &location,
            format!(
                "no stored instants from {} to {}: {held}",
                format_instant(from),
                format_instant(to)
            ),
        ));
    }
    let first = ExportRequest {
        instant: Some(instants[0].1),
        interpolate: false,
        ..request.clone()
    };
    let written = with_dtype!(store.structure().dtype, T => {
        let output = plan_output::<T>(store, &first, out)?;
        // Every instant is staged in memory before GDAL writes the file.
        let bands = store.structure().band_count();
        let cells = output.cols as f64 * output.rows as f64 * (instants.len() * bands) as f64;
        if cells > MAX_STAGED_CELLS {
            return Err(refuse(
                out,
                format!(
                    "{} instants of {} x {} cells{} are {cells:.0} cells, more than the {MAX_STAGED_CELLS:.0} a NetCDF export stages; export a shorter --time-range or a coarser --level",
                    instants.len(),
                    output.cols,
                    output.rows,
                    if bands > 1 { format!(" x {bands} bands") } else { String::new() }
                ),
            ));
        }
        let tmp = temporary_path(out)?;
        let written = gdal_out::write_instants::<T>(
            store,
            &output,
            &instants,
            request.crs.as_deref(),
            &tmp,
            progress,
            cancel,
        );
        (output, tmp, written)
    });
    let (output, tmp, written) = written;
    refuse_empty(store, request, &written, &tmp, output.t)?;
    let written = written
        .and_then(|w| {
            std::fs::rename(&tmp, out)?;
            Ok(w)
        })
        .map_err(|reason| output_failed(reason, (&tmp, out), location, cancel))?;
    let report = ExportReport {
        path: out.into(),
        size: written.size,
        has_data: written.has_data,
        level: output.level,
        geotransform: output.geotransform(),
        from_cache: false,
        between: None,
    };
    Ok((report, instants.into_iter().map(|(_, i)| i).collect()))
}

fn export_typed<T: GdalCell>(
    store: &Store,
    request: &ExportRequest,
    out: &Path,
    cache: Option<&FunctionCache>,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<ExportReport, IoError> {
    let between = between::bracket(store, request)?;
    // An interpolated export is planned on the stored instant before it.
    let planned = match between {
        Some(b) => ExportRequest {
            instant: Some(b.below),
            ..request.clone()
        },
        None => request.clone(),
    };
    let output = OutputGrid {
        // Its cells are of the instant asked for.
        instant: planned.instant.and(request.instant),
        ..plan_output::<T>(store, &planned, out)?
    };
    let location = PathBuf::from(store.location());
    let tmp = temporary_path(out)?;
    if let Some(warning) = size_warning::<T>(store, &output, &tmp) {
        progress.event(crate::engine::JobEvent::Warning(warning));
    }
    // A PNG's georeferencing goes beside it once it is in place.
    let mut png_geotransform = output.geotransform();
    let written = match (between, request.format) {
        (Some(b), format) => {
            Progress::phase(progress, "export", 1);
            let raster = between::blend::<T>(store, &output, request, b, cache)?;
            match format {
                ExportFormat::Png => png_of(store, &output, &raster, request.crs.as_deref(), &tmp)
                    .map(|(w, gt)| {
                        png_geotransform = gt;
                        w
                    }),
                format => gdal_out::write_raster::<T>(
                    store,
                    &output,
                    &raster,
                    format,
                    request.crs.as_deref(),
                    &tmp,
                ),
            }
        }
        (None, ExportFormat::Png) => {
            Progress::phase(progress, "export", 1);
            store
                .read_extent_at::<T>(
                    output.t,
                    output.level,
                    &output.extent,
                    output.cell,
                    output.method,
                )
                .map_err(OutputError::from)
                .and_then(|raster| png_of(store, &output, &raster, request.crs.as_deref(), &tmp))
                .map(|(w, gt)| {
                    png_geotransform = gt;
                    w
                })
        }
        (None, format) => gdal_out::write::<T>(
            store,
            &output,
            format,
            request.crs.as_deref(),
            &tmp,
            progress,
            cancel,
        ),
    };
    refuse_empty(store, request, &written, &tmp, output.t)?;
    let result = written.and_then(|w| {
        std::fs::rename(&tmp, out)?;
        if request.format == ExportFormat::Png {
            let crs = request.crs.as_deref().unwrap_or(&store.structure().crs.wkt);
            let srs = parse_crs(crs).map_err(|e| OutputError::Format(e.to_string()))?;
            png::write_georeference(&png_geotransform, &srs, out)?;
        }
        Ok(w)
    });
    let written = result.map_err(|reason| output_failed(reason, (&tmp, out), location, cancel))?;
    Ok(ExportReport {
        path: out.into(),
        size: written.size,
        has_data: written.has_data,
        level: output.level,
        geotransform: output.geotransform(),
        from_cache: false,
        between,
    })
}

/// An export of `--bbox` that wrote no data is refused (its partial file
/// at `tmp` removed), naming where the data is, unless empty outputs are
/// allowed.
fn refuse_empty(
    store: &Store,
    request: &ExportRequest,
    written: &Result<Written, OutputError>,
    tmp: &Path,
    t: u32,
) -> Result<(), IoError> {
    if let Ok(w) = written
        && !w.has_data
        && !request.allow_empty
        && let Some(bbox) = request.bbox
    {
        std::fs::remove_file(tmp).ok();
        return Err(no_data_in(store, bbox, t, bbox_crs_hint(request)));
    }
    Ok(())
}

/// The error of an output that failed while written at `tmp` for `out`:
/// the partial file removed; a cancellation, or a store that cannot be
/// read, is the store's (at `location`), anything else the output's.
fn output_failed(
    reason: OutputError,
    (tmp, out): (&Path, &Path),
    location: PathBuf,
    cancel: &CancelToken,
) -> IoError {
    std::fs::remove_file(tmp).ok();
    if cancel.is_cancelled() {
        return IoError::engine(location, EngineError::Cancelled);
    }
    match reason {
        OutputError::Engine(e) => IoError::engine(location, e),
        reason => IoError::Write {
            path: out.into(),
            reason,
        },
    }
}

/// Writes `raster` (cells on the output grid) as a PNG at `tmp`, warped to
/// `crs` first when given. Returns what was written and its geotransform.
fn png_of<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    raster: &crate::engine::Raster<T>,
    crs: Option<&str>,
    tmp: &Path,
) -> Result<(Written, [f64; 6]), OutputError> {
    let warped;
    let raster = match crs {
        Some(crs) => {
            warped = gdal_out::warp_raster(store, output, raster, crs)?;
            &warped
        }
        None => raster,
    };
    let written = png::write_png(
        raster,
        store.nodata::<T>(),
        store.palette().as_deref(),
        &store.band_info(),
        tmp,
    )?;
    Ok((written, raster.geotransform))
}

/// A warning for an output that may not fit: more cells, before
/// compression, than the free space beside `tmp` holds (outputs compress,
/// so it may still fit; the user is told before the work, not after).
fn size_warning<T: GdalCell>(store: &Store, output: &OutputGrid, tmp: &Path) -> Option<String> {
    let bands = store.structure().band_count() as u64;
    let raw = (output.cols as u64)
        .saturating_mul(output.rows as u64)
        .saturating_mul(bands)
        .saturating_mul(T::DTYPE.size() as u64);
    let dir = tmp.parent().filter(|p| !p.as_os_str().is_empty())?;
    let free = crate::storage::free_space(dir).ok()?;
    (raw > free).then(|| {
        format!(
            "{} x {} cells take up to {} before compression, and {} are free in {}",
            output.cols,
            output.rows,
            crate::format::human_bytes(raw),
            crate::format::human_bytes(free),
            dir.display()
        )
    })
}

/// A hint for a `--bbox` given with `--crs` but without `--bbox-crs`: the
/// box is read in the store's CRS, which the user may not have meant.
fn bbox_crs_hint(request: &ExportRequest) -> &'static str {
    if request.crs.is_some() && request.bbox_crs.is_none() {
        " (--bbox is in the store's CRS; add --bbox-crs for another)"
    } else {
        ""
    }
}

/// The error of an export whose `bbox` holds no data at time index `t`:
/// it names the data's extent (listing the stored chunks, only now).
fn no_data_in(store: &Store, bbox: Extent, t: u32, hint: &str) -> IoError {
    let data = with_dtype!(store.structure().dtype, T => store.data_window::<T>(t));
    let reason = match data {
        Ok(Some(window)) => format!(
            "--bbox {bbox} holds no data; the data covers {} (add --allow-empty to write an empty file){hint}",
            store.grid().window_extent(0, &window)
        ),
        Ok(None) => "the store holds no data to export".to_string(),
        Err(e) => return IoError::engine(store.location(), e),
    };
    IoError::Mismatch {
        path: store.location().into(),
        reason,
    }
}

/// The grid an export writes: where, how fine, from which level.
#[derive(Clone)]
pub(super) struct OutputGrid {
    /// Time index.
    pub t: u32,
    /// The level cells come from.
    pub level: u8,
    /// The output extent (top-left is the grid origin).
    pub extent: Extent,
    /// Output cell size.
    pub cell: [f64; 2],
    /// Output columns.
    pub cols: usize,
    /// Output rows.
    pub rows: usize,
    /// Resampling from the level onto the output grid.
    pub method: Resampling,
    /// Extra gdalwarp arguments (`-tr`, `-ts`) for a reprojected output.
    pub warp: Vec<String>,
    /// The instant the cells are of (the one asked for, also between two
    /// stored ones), in a store with a time axis.
    pub instant: Option<i64>,
}

impl OutputGrid {
    /// The GDAL geotransform of the output.
    pub fn geotransform(&self) -> [f64; 6] {
        [
            self.extent.min_x,
            self.cell[0],
            0.0,
            self.extent.max_y,
            0.0,
            -self.cell[1],
        ]
    }

    /// Rows `r0 .. r0 + n` of an output grid `factor` times coarser, as an extent.
    pub fn strip(&self, factor: usize, r0: usize, n: usize) -> Extent {
        let (cols, cy) = (self.cols.div_ceil(factor), self.cell[1] * factor as f64);
        let max_y = self.extent.max_y - r0 as f64 * cy;
        Extent {
            min_x: self.extent.min_x,
            max_x: self.extent.min_x + cols as f64 * self.cell[0] * factor as f64,
            max_y,
            min_y: max_y - n as f64 * cy,
        }
    }
}

fn plan_output<T: GdalCell>(
    store: &Store,
    request: &ExportRequest,
    out: &Path,
) -> Result<OutputGrid, IoError> {
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
    // The size of a warped output, in its own CRS, when it is set there.
    let mut warped_size = None;
    let (cell, warp) = match &request.crs {
        None => (
            output_cell(store, request.resolution, &extent, out)?,
            Vec::new(),
        ),
        Some(crs) => {
            // Resolution and size describe the output in its own CRS; the
            // store is read at the level of about that fineness and GDAL warps.
            let target = to_crs(store, extent, crs, &location)?;
            let ratio = [
                extent.width() / target.width(),
                extent.height() / target.height(),
            ];
            let (cell, warp) = match request.resolution {
                Resolution::Cell(r) if r.is_finite() && r > 0.0 => {
                    if r > target.width() || r > target.height() {
                        return Err(IoError::Mismatch {
                            path: out.into(),
                            reason: format!(
                                "--resolution {r} is coarser than the extent, {} x {} in {crs}",
                                crate::format::short_number(target.width()),
                                crate::format::short_number(target.height())
                            ),
                        });
                    }
                    warped_size = Some((target.width() / r, target.height() / r));
                    (
                        [r * ratio[0], r * ratio[1]],
                        vec!["-tr".to_string(), r.to_string(), r.to_string()],
                    )
                }
                Resolution::Size(w, h) if w > 0 || h > 0 => {
                    let c = size_cell(&target, w, h);
                    warped_size = Some((target.width() / c[0], target.height() / c[1]));
                    (
                        size_cell(&extent, w, h),
                        vec!["-ts".to_string(), w.to_string(), h.to_string()],
                    )
                }
                other => (output_cell(store, other, &extent, out)?, Vec::new()),
            };
            // Read the level's own cells; GDAL does all the resampling.
            let level = store.level_for(cell);
            (grid.cell_size(level), warp)
        }
    };
    let extent = if request.snap || request.crs.is_some() {
        let level = store.level_for(cell);
        grid.cover_clipped(level, &extent)
            .map_or(extent, |w| grid.window_extent(level, &w))
    } else {
        extent
    };
    let structure = store.structure();
    let method = request
        .resampling
        .unwrap_or(if structure.aggregate.is_categorical() {
            Resampling::Nearest
        } else {
            structure.resampling
        });
    if grid.cover_clipped(0, &extent).is_none() {
        return Err(IoError::Mismatch {
            path: location,
            reason: format!(
                "the extent {extent} lies outside the store's domain {}{}",
                grid.domain(),
                bbox_crs_hint(request)
            ),
        });
    }
    let (cols, rows) = (extent.width() / cell[0], extent.height() / cell[1]);
    // GeoTIFF streams; the other formats are staged in memory.
    let limit = if request.format == ExportFormat::GTiff && request.crs.is_none() {
        MAX_CELLS
    } else {
        MAX_STAGED_CELLS
    };
    // A warped output is as large as asked for in its CRS.
    let (big_cols, big_rows) =
        warped_size.map_or((cols, rows), |(c, r)| (cols.max(c), rows.max(r)));
    if big_cols.round() * big_rows.round() > limit {
        return Err(IoError::Mismatch {
            path: out.into(),
            reason: format!(
                "an output of {big_cols:.0} x {big_rows:.0} cells is too large (at most {limit:.0} cells{}); choose a coarser --resolution or --level",
                if limit < MAX_CELLS {
                    " for this format; GeoTIFF allows more"
                } else {
                    ""
                }
            ),
        });
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (cols, rows) = (
        (cols.round() as usize).max(1),
        (rows.round() as usize).max(1),
    );
    Ok(OutputGrid {
        t,
        level: store.level_for(cell),
        extent,
        cell,
        cols,
        rows,
        method,
        warp,
        instant: request.instant.filter(|_| store.structure().time.is_some()),
    })
}

/// The output cell size in the store's CRS.
fn output_cell(
    store: &Store,
    resolution: Resolution,
    extent: &Extent,
    out: &Path,
) -> Result<[f64; 2], IoError> {
    let grid = store.grid();
    match resolution {
        Resolution::Level(level) => {
            grid.check_level(level)
                .map_err(|e| IoError::engine(store.location(), e.into()))?;
            Ok(grid.cell_size(level))
        }
        Resolution::Cell(r) if r.is_finite() && r > 0.0 => Ok([r, r]),
        Resolution::Size(w, h) if w > 0 || h > 0 => Ok(size_cell(extent, w, h)),
        _ => Err(IoError::Mismatch {
            path: out.into(),
            reason: "resolution and size must be positive".into(),
        }),
    }
}

/// The cell size that gives `extent` `w` columns and `h` rows; square
/// when one of them is 0.
fn size_cell(extent: &Extent, w: usize, h: usize) -> [f64; 2] {
    let (x, y) = (extent.width() / w as f64, extent.height() / h as f64);
    match (w, h) {
        (0, _) => [y, y],
        (_, 0) => [x, x],
        _ => [x, y],
    }
}

fn temporary_path(out: &Path) -> Result<PathBuf, IoError> {
    if out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') {
        return Err(IoError::Write {
            path: out.into(),
            reason: OutputError::Format("a folder; give the name of the file to write".into()),
        });
    }
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| IoError::Write {
            path: out.into(),
            reason: OutputError::Format("not a file name".into()),
        })?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(IoError::Write {
            path: dir.into(),
            reason: OutputError::Format("no such folder".into()),
        });
    }
    remove_dead_partials(dir, name);
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("tmp");
    Ok(dir.join(format!(".{name}.{}.partial.{ext}", std::process::id())))
}

/// Removes what killed exports to `name` in `dir` left behind: temporary
/// files `.{name}.{pid}.partial.*` of processes no longer running.
fn remove_dead_partials(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once(".partial.") else {
            continue;
        };
        let alive = pid.parse::<u32>().map_or(true, |pid| {
            pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists()
        });
        if !alive {
            // Best effort: a leftover that cannot be removed costs only space.
            std::fs::remove_file(entry.path()).ok();
        }
    }
}

/// `extent` (in the store's CRS) as bounds in `crs`.
fn to_crs(store: &Store, extent: Extent, crs: &str, location: &Path) -> Result<Extent, IoError> {
    let bad = |reason: String| IoError::Mismatch {
        path: location.into(),
        reason,
    };
    let from = srs_from(&store.structure().crs.wkt).map_err(|e| bad(e.to_string()))?;
    let to = parse_crs(crs).map_err(|e| bad(format!("--crs: {e}")))?;
    let transform =
        gdal::spatial_ref::CoordTransform::new(&from, &to).map_err(|e| bad(e.to_string()))?;
    let b = transform
        .transform_bounds(
            &[extent.min_x, extent.min_y, extent.max_x, extent.max_y],
            21,
        )
        .map_err(|e| bad(format!("cannot transform the extent to {crs}: {e}")))?;
    Extent::new(b[0], b[1], b[2], b[3]).map_err(|e| bad(e.to_string()))
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
    let from = parse_crs(crs).map_err(|e| bad(format!("--bbox-crs: {e}")))?;
    let to = srs_from(&store.structure().crs.wkt).map_err(|e| bad(e.to_string()))?;
    let transform =
        gdal::spatial_ref::CoordTransform::new(&from, &to).map_err(|e| bad(e.to_string()))?;
    let b = transform
        .transform_bounds(&[bbox.min_x, bbox.min_y, bbox.max_x, bbox.max_y], 21)
        .map_err(|e| bad(format!("cannot transform the bbox: {e}")))?;
    Extent::new(b[0], b[1], b[2], b[3]).map_err(|e| bad(e.to_string()))
}
