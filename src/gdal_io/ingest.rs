//! Ingesting any GDAL raster into the base level of a store.
//!
//! This module knows the source: it opens and checks it, plans how its
//! cells land on the store's grid (read directly, or through a warped VRT),
//! and reads any window of them. The write itself, blocks on the rayon pool,
//! the pyramid and the commit, is the engine's ([`Store::write_base`]),
//! which calls [`SourceReader`] once per block. Memory stays bounded by the
//! block size, whatever the size of the source.

use super::cell::{GdalCell, read_window};
use super::source::{Source, gdal_reason, one_line};
use super::time_steps::TimeSteps;
use super::{IoError, fits, warp};
use crate::engine::{
    BaseWrite, Block, BlockReader, CancelToken, Cells, EngineError, Extent, IngestRecord, JobEvent,
    Nodata, ProgressSink, Resampling, Store, Window, WriteError, WriteKind,
};
use crate::with_dtype;
use gdal::Dataset;
use ndarray::Array3;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// GDAL's block cache during ingest, unless `GDAL_CACHEMAX` is set: blocks
/// line up with source tiles, so a small cache suffices and peak memory
/// stays bounded whatever the source's size.
const INGEST_CACHE_MB: &str = "64";

/// Options of one ingest.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// The instant the raster belongs to, for stores with a time axis.
    pub instant: Option<i64>,
    /// Allow lossy conversion of the cell type (e.g. float into u8).
    pub cast: bool,
    /// Let source cells that hold the store's nodata value become nodata
    /// (otherwise such an ingest fails and changes nothing).
    pub allow_nodata_loss: bool,
}

/// What an ingest did.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    /// The source file.
    pub path: PathBuf,
    /// Whether GDAL warped the source onto the store's grid.
    pub warped: bool,
    /// The base window the source covers.
    pub window: Window,
    /// Base chunks written.
    pub base_chunks: u64,
    /// Aggregated chunks recomputed.
    pub pyramid_chunks: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Instants written: the time steps of a raster with a time
    /// dimension, else 1.
    pub instants: usize,
}

/// Where to read from, and which base cells the reads land on.
struct Plan {
    /// What each worker opens: the source itself, or a warped VRT.
    dataset_path: String,
    /// The base cells covered.
    window: Window,
    warped: bool,
}

impl Drop for Plan {
    fn drop(&mut self) {
        if self.warped {
            // Best effort: an in-memory VRT left behind only costs memory.
            gdal::vsi::unlink_mem_file(&self.dataset_path).ok();
        }
    }
}

/// Ingests one raster into the base level and re-aggregates the pyramid.
/// A raster with a time dimension (a netCDF's CF time) goes into a store
/// with a time axis one band per instant, each at its own: every step is
/// checked before the first is written.
///
/// # Errors
/// A one-line [`IoError`] naming the file: unreadable, not georeferenced, not
/// fitting the store, outside the domain, a bad time dimension, a read
/// failure, or cancellation. Chunks already written stay valid; re-running
/// completes the ingest.
pub fn ingest(
    store: &Store,
    path: &Path,
    options: &IngestOptions,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<IngestReport, IoError> {
    let steps = if super::source::is_connection(path) || path.exists() {
        match Dataset::open(path) {
            Ok(dataset) => TimeSteps::of(&dataset, path)?,
            // Source::open names what is wrong with it.
            Err(_) => None,
        }
    } else {
        None
    };
    let dtype = store.structure().dtype;
    // One step is one map: at its own instant only into a time axis
    // without --time.
    let timed = store.structure().time.is_some() && options.instant.is_none();
    let Some(steps) = steps.filter(|s| s.instants.len() > 1 || timed) else {
        return with_dtype!(dtype, T => ingest_typed::<T>(store, path, None, options, progress, cancel));
    };
    let refuse = |reason: String| IoError::Mismatch {
        path: path.into(),
        reason,
    };
    if store.structure().time.is_none() {
        return Err(refuse(format!(
            "its {} bands are {} time steps ({}); ingest it into a store with a time axis (create --like {} makes one)",
            steps.bands.iter().map(Vec::len).sum::<usize>(),
            steps.instants.len(),
            steps.source,
            path.display()
        )));
    }
    if options.instant.is_some() {
        return Err(refuse(format!(
            "has {} time steps ({}), each ingested at its own instant; drop --time",
            steps.instants.len(),
            steps.source
        )));
    }
    // Every instant must fit the axis before anything is written.
    for &instant in &steps.instants {
        store
            .planned_time_index(Some(instant))
            .map_err(|e| IoError::engine(path, e))?;
    }
    let started = Instant::now();
    let mut total: Option<IngestReport> = None;
    // What holds for the file (no CRS, outside the CRS's area) is said once.
    let said = Mutex::new(std::collections::HashSet::new());
    let progress = |event: JobEvent| match &event {
        JobEvent::Warning(text) if !said.lock().is_ok_and(|mut s| s.insert(text.clone())) => {}
        _ => progress.event(event),
    };
    for (&instant, bands) in steps.instants.iter().zip(&steps.bands) {
        cancel.check().map_err(|e| IoError::engine(path, e))?;
        let options = IngestOptions {
            instant: Some(instant),
            ..options.clone()
        };
        let report = with_dtype!(dtype, T => ingest_typed::<T>(store, path, Some(bands), &options, &progress, cancel))?;
        total = Some(match total {
            None => report,
            Some(sum) => IngestReport {
                window: sum.window.union(&report.window),
                base_chunks: sum.base_chunks + report.base_chunks,
                pyramid_chunks: sum.pyramid_chunks + report.pyramid_chunks,
                warped: sum.warped || report.warped,
                ..sum
            },
        });
    }
    // A GRIB store's bands are its fields: named once, as `keep_band_info`
    // names a raster's.
    if steps.fields.len() == store.structure().band_count()
        && steps.fields.iter().any(|f| !f.is_empty())
        && store.band_info().is_empty()
    {
        store
            .set_band_info(steps.fields.clone())
            .map_err(|e| IoError::engine(path, e))?;
    }
    let mut total = total.ok_or_else(|| refuse("has no time steps".into()))?;
    total.seconds = started.elapsed().as_secs_f64();
    total.instants = steps.instants.len();
    Ok(total)
}

/// Ingests `path` (only its `bands`, when given: one time step).
fn ingest_typed<T: GdalCell>(
    store: &Store,
    path: &Path,
    bands: Option<&[usize]>,
    options: &IngestOptions,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<IngestReport, IoError> {
    let started = Instant::now();
    if std::env::var_os("GDAL_CACHEMAX").is_none() {
        gdal::config::set_config_option("GDAL_CACHEMAX", INGEST_CACHE_MB).ok();
    }
    let store_srs =
        super::source::srs_from(&store.structure().crs.wkt).map_err(|e| IoError::Mismatch {
            path: path.into(),
            reason: format!("store CRS unusable: {e}"),
        })?;
    // A raster without a CRS is taken to be in the store's. One time step
    // is read through GDAL's view of the file's bands of that step.
    let view = bands.map(|b| {
        let list: Vec<String> = b.iter().map(usize::to_string).collect();
        PathBuf::from(format!("vrt://{}?bands={}", path.display(), list.join(",")))
    });
    let (source, dataset) = Source::open(view.as_deref().unwrap_or(path), Some(&store_srs))?;
    if source.crs_assumed {
        progress.event(JobEvent::Warning(format!(
            "{}: has no CRS; taken to be the store's ({})",
            path.display(),
            store.structure().crs.name
        )));
    }
    check_fit(store, &source, options.cast)?;
    let Some(plan) = plan(store, &store_srs, &source, &dataset)? else {
        return Err(IoError::Mismatch {
            path: path.into(),
            reason: "covers no cell of the store's grid".into(),
        });
    };
    drop(dataset);
    for notice in notices(store, &store_srs, &source, &plan) {
        progress.event(JobEvent::Warning(notice));
    }
    let engine = |e: EngineError| IoError::engine(path, e);
    let reader = SourceReader::<T>::new(&plan, store, path, options.allow_nodata_loss)?;
    let write = BaseWrite {
        instant: options.instant,
        window: plan.window,
        cells: Cells::Read(&reader),
    };
    let written = store
        .write_base(write, progress, cancel)
        .map_err(|e| match e {
            WriteError::Source(e) => e,
            WriteError::Engine(e) => engine(e),
        })?;
    if let Some(warning) = reader.loss_warning() {
        progress.event(JobEvent::Warning(warning));
    }
    keep_colors(store, &source, progress).map_err(engine)?;
    // A time step's band describes its instant, not what the store holds.
    if bands.is_none() {
        keep_band_info(store, &source).map_err(engine)?;
    }
    let report = IngestReport {
        path: path.into(),
        warped: plan.warped,
        window: plan.window,
        base_chunks: written.base_chunks,
        pyramid_chunks: written.pyramid_chunks,
        seconds: started.elapsed().as_secs_f64(),
        instants: 1,
    };
    // The data is in: a history that cannot be written only warns.
    if let Err(e) = store.record_ingest(&history_record(store, &report, options.instant)) {
        progress.event(JobEvent::Warning(format!(
            "{}: ingested, but the history was not recorded ({e})",
            path.display()
        )));
    }
    Ok(report)
}

/// GDAL datasets of one source, one per block being read: `Dataset` is
/// `Send` but not `Sync`, so a block takes one (opening it the first
/// time) and gives it back for the next block.
struct DatasetPool {
    path: String,
    idle: Mutex<Vec<Dataset>>,
}

impl DatasetPool {
    fn new(path: &str) -> Self {
        Self {
            path: path.to_string(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&Dataset) -> R) -> gdal::errors::Result<R> {
        let lock = || {
            self.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let taken = lock().pop();
        let dataset = match taken {
            Some(dataset) => dataset,
            None => Dataset::open(&self.path)?,
        };
        let result = f(&dataset);
        lock().push(dataset);
        Ok(result)
    }

    /// Closes every dataset, which frees their blocks in GDAL's cache.
    fn close_all(&self) {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// The engine's block reader for one source: reads any window of the
/// planned base cells, with source nodata turned into the store's, and
/// counts the data cells that hold the store's nodata value (they would
/// read as nodata), and, in a store without nodata, the cells without data
/// (they would read as 0). Unless the loss is allowed, such cells refuse
/// the write once every block was read, naming how many there are.
struct SourceReader<'a, T> {
    datasets: DatasetPool,
    plan: &'a Plan,
    validity: Validity,
    nodata: Nodata<T>,
    nodata_text: String,
    path: &'a Path,
    allow_loss: bool,
    collisions: AtomicU64,
    unmarked: AtomicU64,
}

impl<'a, T: GdalCell> SourceReader<'a, T> {
    fn new(
        plan: &'a Plan,
        store: &Store,
        path: &'a Path,
        allow_loss: bool,
    ) -> Result<Self, IoError> {
        let datasets = DatasetPool::new(&plan.dataset_path);
        let read_error = |e: gdal::errors::GdalError| IoError::Read {
            path: path.into(),
            reason: gdal_reason(&e),
        };
        let validity = datasets
            .with(|dataset| Validity::of(dataset, plan))
            .map_err(read_error)?
            .map_err(read_error)?;
        Ok(Self {
            datasets,
            plan,
            validity,
            nodata: store.nodata(),
            nodata_text: store.structure().nodata_text(),
            path,
            allow_loss,
            collisions: AtomicU64::new(0),
            unmarked: AtomicU64::new(0),
        })
    }

    /// The warning of an ingest that was allowed to lose cells to nodata
    /// (or, in a store without nodata, cells without data to 0).
    fn loss_warning(&self) -> Option<String> {
        let n = self.collisions.load(Ordering::Relaxed);
        let unmarked = self.unmarked.load(Ordering::Relaxed);
        if unmarked > 0 {
            return Some(format!(
                "{}: {unmarked} cells hold no data; where the store held nothing they read as 0 (it has no nodata)",
                self.path.display()
            ));
        }
        (n > 0).then(|| {
            format!(
                "{}: {n} data cells hold the store's nodata value ({}) and read as nodata",
                self.path.display(),
                self.nodata_text
            )
        })
    }
}

impl<T: GdalCell> BlockReader<T> for &SourceReader<'_, T> {
    type Error = IoError;

    fn read(&self, window: Window) -> Result<Array3<T>, IoError> {
        self.read_with_holes(window).map(|block| block.cells)
    }

    fn read_with_holes(&self, window: Window) -> Result<Block<T>, IoError> {
        let read_error = |reason| IoError::Read {
            path: self.path.into(),
            reason,
        };
        let (data, lost) = self
            .datasets
            .with(|dataset| {
                read_block::<T>(dataset, self.plan, &window, &self.validity, self.nodata)
            })
            .map_err(|e| read_error(one_line(&e.to_string())))?
            .map_err(read_error)?;
        self.collisions
            .fetch_add(lost.collisions, Ordering::Relaxed);
        self.unmarked.fetch_add(lost.unmarked, Ordering::Relaxed);
        Ok(data)
    }

    fn finish(&self) -> Result<(), IoError> {
        // Every block is read: the source's cached blocks need not outlive
        // the reads (the pyramid above the blocks needs the memory).
        self.datasets.close_all();
        if self.allow_loss {
            return Ok(());
        }
        let unmarked = self.unmarked.load(Ordering::Relaxed);
        if unmarked > 0 {
            return Err(IoError::NoNodataToMark {
                path: self.path.into(),
                cells: unmarked,
            });
        }
        let cells = self.collisions.load(Ordering::Relaxed);
        if cells == 0 {
            return Ok(());
        }
        Err(IoError::NodataCollision {
            path: self.path.into(),
            cells,
            nodata: self.nodata_text.clone(),
        })
    }
}

/// What a user may not have meant, said before the ingest: class data
/// (a colour table) into a store that averages, or a source that the warp
/// puts outside the area where the store's CRS is used.
fn notices(
    store: &Store,
    store_srs: &gdal::spatial_ref::SpatialRef,
    source: &Source,
    plan: &Plan,
) -> Vec<String> {
    let structure = store.structure();
    let path = source.path.display();
    let mut notices = Vec::new();
    if source.colors.is_some() && !structure.aggregate.is_categorical() {
        notices.push(format!(
            "{path}: has a colour table (classes), but the store aggregates by {}: its levels mix the classes (a store with --aggregate mode keeps them)",
            structure.aggregate
        ));
    }
    if plan.warped
        && let Some([x0, y0, x1, y1]) = super::source::area_of_use(store_srs)
    {
        let e = store.grid().window_extent(0, &plan.window);
        if e.max_x < x0 || e.min_x > x1 || e.max_y < y0 || e.min_y > y1 {
            notices.push(format!(
                "{path}: lands outside the area where the store's CRS ({}) is used; check that the store is the one meant",
                structure.crs.name
            ));
        }
    }
    notices
}

/// The history entry of a finished ingest.
fn history_record(store: &Store, report: &IngestReport, instant: Option<i64>) -> IngestRecord {
    let e = store.grid().window_extent(0, &report.window);
    let source = std::path::absolute(&report.path).unwrap_or_else(|_| report.path.clone());
    let (bytes, checksum) = file_checksum(&source).map_or_else(
        |_| (0, "unavailable".to_string()),
        |(n, crc)| (n, format!("crc32:{crc:08x}")),
    );
    IngestRecord {
        kind: WriteKind::Ingest,
        source: source.display().to_string(),
        bytes,
        checksum,
        finished: crate::engine::grid::time::now_utc(),
        extent: [e.min_x, e.min_y, e.max_x, e.max_y],
        instant: instant.map(crate::engine::grid::time::format_instant),
        cells: report.window.rows * report.window.cols,
        base_chunks: report.base_chunks,
        pyramid_chunks: report.pyramid_chunks,
        seconds: report.seconds,
        warped: report.warped,
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The size and CRC-32 of a file's bytes (for a GDAL path that is not a
/// file, such as `/vsicurl/…`, an error).
fn file_checksum(path: &Path) -> std::io::Result<(u64, u32)> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok((total, hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
}

/// Gives a single-band integer store the colour table of the first raster
/// that has one; warns when a later raster's table differs.
fn keep_colors(
    store: &Store,
    source: &Source,
    progress: &dyn ProgressSink,
) -> Result<(), EngineError> {
    let structure = store.structure();
    let Some(colors) = &source.colors else {
        return Ok(());
    };
    if structure.band_count() != 1 || structure.dtype.is_float() {
        return Ok(());
    }
    match store.palette() {
        None => store.set_palette(colors.clone()),
        Some(kept) if *kept != *colors => {
            progress.event(JobEvent::Warning(format!(
                "{}: its colour table differs from the store's; the store keeps its own",
                source.path.display()
            )));
            Ok(())
        }
        Some(_) => Ok(()),
    }
}

/// Gives a store the band descriptions of the first raster that describes
/// its bands (a name, unit or colour beyond band 1 being grey), band for
/// band.
fn keep_band_info(store: &Store, source: &Source) -> Result<(), EngineError> {
    use crate::engine::persistence::band_info::ColourRole;
    let info = &source.band_info;
    let described = info.iter().enumerate().any(|(b, i)| {
        i.name.is_some()
            || i.unit.is_some()
            || (i.colour.is_some() && !(b == 0 && i.colour == Some(ColourRole::Gray)))
    });
    if !described || info.len() != store.structure().band_count() || !store.band_info().is_empty() {
        return Ok(());
    }
    store.set_band_info(info.clone())
}

/// Refuses sources whose bands or cell type do not fit the store.
fn check_fit(store: &Store, source: &Source, cast: bool) -> Result<(), IoError> {
    let structure = store.structure();
    let mismatch = |reason: String| IoError::Mismatch {
        path: source.path.clone(),
        reason,
    };
    let bands = structure.band_count();
    if source.bands != bands {
        return Err(mismatch(format!(
            "has {} bands, the store has {bands}",
            source.bands
        )));
    }
    match source.dtype {
        Some(d) if fits(d, structure.dtype) || cast => Ok(()),
        Some(d) => Err(mismatch(format!(
            "holds {} values, which do not fit the store's {} without loss; add --cast to convert",
            d, structure.dtype
        ))),
        None if cast => Ok(()),
        None => Err(mismatch(format!(
            "cell type {} is not supported; add --cast to convert",
            source.gdal_type
        ))),
    }
}

/// Decides whether the source lines up with the grid (read directly) or
/// must be warped by GDAL, and which base cells it covers.
fn plan(
    store: &Store,
    store_srs: &gdal::spatial_ref::SpatialRef,
    source: &Source,
    dataset: &Dataset,
) -> Result<Option<Plan>, IoError> {
    let grid = store.grid();
    let structure = store.structure();
    let path = &source.path;
    let gt = source.geotransform;
    let same_crs = source.srs == *store_srs;
    let [cx, cy] = grid.cell_size(0);
    let same_cells = (gt[1] - cx).abs() <= cx * 1e-9 && (-gt[5] - cy).abs() <= cy * 1e-9;
    let (col, row) = grid.fractional_cell(0, gt[0], gt[3]);
    let on_grid = col.fract() == 0.0 && row.fract() == 0.0;
    let outside = |e: crate::engine::GridError| IoError::engine(path, e.into());
    if same_crs && source.is_north_up() && same_cells && on_grid {
        // The window is the corner cell plus the raster's own size: rounding
        // the far edges could add a column the source does not have.
        let outside_domain = || {
            let b = source.bounds();
            let extent = Extent {
                min_x: b[0],
                min_y: b[1],
                max_x: b[2],
                max_y: b[3],
            };
            IoError::engine(
                path,
                crate::engine::GridError::OutsideDomain {
                    extent,
                    domain: grid.domain(),
                }
                .into(),
            )
        };
        if col < 0.0 || row < 0.0 {
            return Err(outside_domain());
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let window = Window {
            row: row as u64,
            col: col as u64,
            rows: source.size.1 as u64,
            cols: source.size.0 as u64,
        };
        if window.intersect(&grid.full_window(0)) != Some(window) {
            return Err(outside_domain());
        }
        return Ok(Some(Plan {
            dataset_path: path.display().to_string(),
            window,
            warped: false,
        }));
    }
    // Warp: the source's footprint in the store CRS, snapped out to the grid.
    let transform =
        gdal::spatial_ref::CoordTransform::new(&source.srs, store_srs).map_err(|e| {
            IoError::Mismatch {
                path: path.clone(),
                reason: format!("cannot transform to the store CRS: {e}"),
            }
        })?;
    let b = transform
        .transform_bounds(&source.bounds(), 21)
        .map_err(|e| IoError::Mismatch {
            path: path.clone(),
            reason: format!("cannot transform to the store CRS: {e}"),
        })?;
    let extent = Extent::new(b[0], b[1], b[2], b[3]).map_err(outside)?;
    let window = grid.cover(0, &extent).map_err(outside)?;
    let snapped = grid.window_extent(0, &window);
    let method = match structure.resampling {
        _ if structure.aggregate.is_categorical() => "near",
        Resampling::Nearest => "near",
        Resampling::Average => "average",
        Resampling::Bilinear => "bilinear",
    };
    let vrt = format!(
        "/vsimem/gridstore-warp-{}-{:p}.vrt",
        std::process::id(),
        std::ptr::from_ref(source)
    );
    // Coverage goes to an alpha band, not to the store's nodata value: a
    // source cell holding that value stays a data cell, which the reader
    // then counts (and refuses) rather than losing it unseen.
    let args: Vec<String> = [
        "-of",
        "VRT",
        "-t_srs",
        &structure.crs.wkt,
        "-te",
        &snapped.min_x.to_string(),
        &snapped.min_y.to_string(),
        &snapped.max_x.to_string(),
        &snapped.max_y.to_string(),
        "-ts",
        &window.cols.to_string(),
        &window.rows.to_string(),
        "-r",
        method,
        "-dstnodata",
        "None",
        "-dstalpha",
        "-ot",
        gdal_type_name(structure.dtype),
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let warped = warp::warp(dataset, &vrt, &args).map_err(|e| IoError::Read {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    drop(warped);
    Ok(Some(Plan {
        dataset_path: vrt,
        window,
        warped: true,
    }))
}

fn gdal_type_name(dtype: crate::engine::DType) -> &'static str {
    use crate::engine::DType;
    match dtype {
        DType::U8 => "Byte",
        DType::I8 | DType::I16 => "Int16",
        DType::U16 => "UInt16",
        DType::U32 => "UInt32",
        DType::I32 => "Int32",
        DType::F32 => "Float32",
        DType::F64 => "Float64",
    }
}

/// How to tell data from nodata in what a worker reads.
enum Validity {
    /// Every cell is data.
    All,
    /// Cells equal to this value (in the source's own type) are nodata.
    Value(f64),
    /// GDAL's mask band says (per-dataset masks, or a nodata value that the
    /// store's type cannot hold).
    MaskBand,
    /// A warp's alpha band (after the data bands) says: 0 is no coverage.
    Alpha,
}

impl Validity {
    fn of(dataset: &Dataset, plan: &Plan) -> gdal::errors::Result<Self> {
        if plan.warped {
            return Ok(Self::Alpha);
        }
        let band = dataset.rasterband(1)?;
        Ok(match band.no_data_value() {
            Some(v) => Self::Value(v),
            None if band.mask_flags()?.is_all_valid() => Self::All,
            None => Self::MaskBand,
        })
    }
}

/// What a block read found that the store cannot keep as it is.
#[derive(Debug, Default, Clone, Copy)]
struct Lost {
    /// Data cells that hold the store's nodata value (or that a cast
    /// clamped onto it): they read as nodata.
    collisions: u64,
    /// Cells without data in a store without nodata: they read as 0.
    unmarked: u64,
}

/// Reads the source cells under `window` (base cells) as (bands, rows, cols),
/// with source nodata turned into the store's nodata (in a store without
/// nodata: holes, counted as unmarked).
fn read_block<T: GdalCell>(
    dataset: &Dataset,
    plan: &Plan,
    window: &Window,
    validity: &Validity,
    store_nodata: Nodata<T>,
) -> Result<(Block<T>, Lost), String> {
    let (rows, cols) = (window.rows as usize, window.cols as usize);
    // The dataset's pixel (0, 0) is the plan window's top-left cell.
    let at = (
        (window.col - plan.window.col) as usize,
        (window.row - plan.window.row) as usize,
    );
    // A warp's alpha band comes after the data bands.
    let bands = if plan.warped {
        dataset.raster_count() - 1
    } else {
        dataset.raster_count()
    };
    let mut out = Vec::with_capacity(if bands == 1 { 0 } else { bands * rows * cols });
    // What the user is told of: cells that read as nodata though they held
    // data, or as 0 though they held none.
    let mut lost = Lost::default();
    let unmarkable = store_nodata.marker().is_none();
    // Without nodata, the cells without data are holes: they leave what
    // the store holds alone.
    let mut holes = vec![false; if unmarkable { rows * cols } else { 0 }];
    // NaN is no value: it never counts.
    #[allow(clippy::eq_op)]
    let collides = |x: &T| !x.is_valid(store_nodata) && x == x;
    for b in 1..=bands {
        let band = dataset.rasterband(b).map_err(|e| gdal_reason(&e))?;
        let mut values = read_window::<T>(&band, at, (cols, rows)).map_err(|e| gdal_reason(&e))?;
        match validity {
            Validity::All => {
                lost.collisions += values.iter().filter(|x| collides(x)).count() as u64;
            }
            // Compare in the source's type when the store's type holds it.
            Validity::Value(v) if T::DTYPE.holds(*v) => {
                let nodata = T::from_f64(*v);
                #[allow(clippy::eq_op)]
                let is_source_nodata = |x: &T| *x == nodata || (v.is_nan() && x != x);
                for (i, x) in values.iter_mut().enumerate() {
                    if is_source_nodata(x) {
                        *x = store_nodata.fill();
                        if unmarkable {
                            holes[i] = true;
                            // Cells, not values: band 1 counts them.
                            lost.unmarked += u64::from(b == 1);
                        }
                    } else if collides(x) {
                        lost.collisions += 1;
                    }
                }
            }
            Validity::Value(_) | Validity::MaskBand | Validity::Alpha => {
                // A warp's alpha band has the data's type (GDAL then does
                // not take it as the mask itself): read it directly.
                let mask = match validity {
                    Validity::Alpha => dataset.rasterband(bands + 1),
                    _ => band.open_mask_band(),
                }
                .map_err(|e| gdal_reason(&e))?;
                #[allow(clippy::cast_possible_wrap)]
                let flags = mask
                    .read_as::<u8>(
                        (at.0 as isize, at.1 as isize),
                        (cols, rows),
                        (cols, rows),
                        None,
                    )
                    .map_err(|e| gdal_reason(&e))?;
                for (i, (x, m)) in values.iter_mut().zip(flags.data()).enumerate() {
                    if *m == 0 {
                        *x = store_nodata.fill();
                        if unmarkable {
                            holes[i] = true;
                            // Cells, not values: band 1 counts them.
                            lost.unmarked += u64::from(b == 1);
                        }
                    } else if collides(x) {
                        lost.collisions += 1;
                    }
                }
            }
        }
        if bands == 1 {
            out = values;
        } else {
            out.extend(values);
        }
    }
    let cells = Array3::from_shape_vec((bands, rows, cols), out).map_err(|e| e.to_string())?;
    let holes = if unmarkable && lost.unmarked > 0 {
        Some(ndarray::Array2::from_shape_vec((rows, cols), holes).map_err(|e| e.to_string())?)
    } else {
        None
    };
    Ok((Block { cells, holes }, lost))
}
