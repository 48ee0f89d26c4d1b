//! Command-line arguments (clap) and their parsing into engine types.

use crate::engine::grid::period::{Period, TimeLevel};
use crate::engine::persistence::layout::Layout;
use crate::engine::{Aggregator, Codec, DType, Extent, Resampling};
use crate::storage::Backend;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// gridstore: chunked, multi-resolution raster stores with a self-maintaining pyramid.
///
/// `gridstore STORE` opens the explorer on STORE; with no arguments it
/// opens on a demo store.
#[derive(Debug, Parser)]
#[command(name = "gridstore", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do; without a command the explorer opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The command line with `gridstore STORE` read as `gridstore gui STORE`:
/// a first argument that is neither an option nor a command, and names an
/// existing file or folder. (Anything else is left for clap, which names a
/// misspelt command and suggests the right one.)
pub fn with_store_shorthand(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory as _;
    let mut args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let Some(first) = args.get(1) else {
        return args;
    };
    let text = first.to_string_lossy();
    let is_command = Cli::command()
        .get_subcommands()
        .any(|c| c.get_name() == text || c.get_all_aliases().any(|a| a == text))
        || text == "help";
    if !text.starts_with('-') && !is_command && std::path::Path::new(first).exists() {
        args.insert(1, "gui".into());
    }
    args
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new, empty store.
    Create(CreateArgs),
    /// Show a store's structure, levels and master chunk.
    Info {
        /// The store folder.
        store: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Ingest rasters (any format GDAL reads) into the base level.
    Ingest {
        /// The store folder.
        store: PathBuf,
        /// Raster files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The instant of the rasters, for stores with a time axis (YYYY-MM-DD[THH:MM[:SS]]).
        #[arg(long)]
        time: Option<String>,
        /// Each file's instant from its name, by a strftime-like PATTERN
        /// (%Y %m %d %H %M %S %j), e.g. 'rain_%Y%m%d%H.tif'. Every name is
        /// read before anything is ingested.
        #[arg(long, value_name = "PATTERN", conflicts_with = "time")]
        time_from_name: Option<String>,
        /// Allow lossy conversion of the cell type (e.g. float into u8).
        #[arg(long)]
        cast: bool,
        /// Ingest even when source cells hold the store's nodata value
        /// (they then read as nodata); without it such an ingest fails and
        /// changes nothing.
        #[arg(long)]
        allow_nodata_loss: bool,
    },
    /// Export an extent to GeoTIFF, COG, NetCDF or PNG.
    Export(ExportArgs),
    /// Set an extent to nodata and re-aggregate.
    Clear {
        /// The store folder.
        store: PathBuf,
        /// MINX,MINY,MAXX,MAXY in the store's CRS.
        #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true)]
        bbox: Extent,
        /// Only this instant (default: every instant).
        #[arg(long)]
        time: Option<String>,
    },
    /// Copy a store to another backend or layout, or upgrade a store of an
    /// older format version, every value checked after the copy.
    Convert {
        /// The store to copy.
        src: PathBuf,
        /// The new store (must not exist, or be an empty folder).
        dst: PathBuf,
        /// How the new store is kept: folder, packed or hdf5 (default: as
        /// the store to copy).
        #[arg(long)]
        backend: Option<Backend>,
        /// How its chunks lie: zarr2 or zarr3 (default: as the store to
        /// copy).
        #[arg(long)]
        layout: Option<LayoutArg>,
        /// With --layout zarr3: chunks per side of a level-0 shard
        /// (default: as the store to copy if it is zarr3, else 8).
        #[arg(long)]
        shard: Option<u32>,
        /// The calendar periods the new store keeps maps of (day, week,
        /// month, year, or none; default: as the store to copy), built
        /// from its instants.
        #[arg(long, value_name = "LIST")]
        time_levels: Option<String>,
    },
    /// Rebuild a packed store's index from its packs, finish or roll back
    /// interrupted writes, remove killed writers' temporary files, and
    /// rebuild the per-level statistics where they are not kept.
    Repair {
        /// The store folder.
        store: PathBuf,
        /// Rebuild the per-level statistics from the chunks even where they
        /// are kept (after verify found them damaged).
        #[arg(long)]
        statistics: bool,
    },
    /// Reclaim the space of rewritten and removed chunks (packed stores).
    Compact {
        /// The store folder.
        store: PathBuf,
    },
    /// Show or clear the function cache (exports and quicklooks kept for
    /// reuse, in $GRIDSTORE_CACHE_DIR or ~/.cache/gridstore).
    Cache {
        /// What to do.
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Show the ingest history and notes, or attach a note.
    History {
        /// The store folder.
        store: PathBuf,
        /// Attach this note (to the store, or with --ingest to one ingest).
        #[arg(long)]
        note: Option<String>,
        /// The ingest (its number in the history) the note is about.
        #[arg(long, requires = "note")]
        ingest: Option<u64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check every chunk's checksum and every aggregate; exit 1 on damage.
    Verify {
        /// The store folder.
        store: PathBuf,
    },
    /// Print a point's values over time: every instant, or one value per
    /// period (day, week, month, year, 6h, …) aggregated with the store's
    /// aggregator.
    Series(SeriesArgs),
    /// List stored chunks.
    Chunks {
        /// The store folder.
        store: PathBuf,
        /// Only this level.
        #[arg(long)]
        level: Option<u8>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Open the explorer (the default without a command).
    Gui {
        /// The store folder (default: a demo store built from assets/).
        store: Option<PathBuf>,
        /// Save a screenshot here once the visible tiles are loaded, then exit.
        #[arg(long)]
        screenshot: Option<PathBuf>,
        /// Pin this level.
        #[arg(long)]
        level: Option<u8>,
        /// Show this extent (MINX,MINY,MAXX,MAXY in the store's CRS).
        #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true)]
        bbox: Option<Extent>,
        /// Run a fixed pan/zoom tour across every level, then exit.
        #[arg(long, requires = "frame_log")]
        tour: bool,
        /// Where the tour writes one line per frame (last field: UI time in ms).
        #[arg(long)]
        frame_log: Option<PathBuf>,
        /// A raster to ingest halfway through the tour.
        #[arg(long, requires = "tour")]
        tour_ingest: Option<PathBuf>,
        /// Colour the map with this colour map (instead of a categorical
        /// store's own colour table).
        #[arg(long)]
        colormap: Option<ColorMapArg>,
        /// Show one band (N), or three as red, green and blue (R,G,B),
        /// counted from 1.
        #[arg(long, value_parser = parse_bands)]
        bands: Option<BandList>,
        /// Fix the colour stretch at MIN,MAX (default: from the data in
        /// view).
        #[arg(long, value_parser = parse_stretch, allow_hyphen_values = true)]
        stretch: Option<(f64, f64)>,
        /// Show this stored instant (YYYY-MM-DD[THH:MM[:SS]], UTC) of a store
        /// with a time axis.
        #[arg(long, value_parser = parse_gui_instant)]
        time: Option<i64>,
        /// Show the store's maps of this time level (day, week, month or
        /// year), at the period holding --time (2024-05 names a month).
        #[arg(long, value_parser = parse_time_level)]
        period: Option<TimeLevel>,
        /// Shade the relief of the (first) band shown: blended with its
        /// colours, or alone in greys.
        #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "blend")]
        hillshade: Option<HillshadeArg>,
    },
    /// Report p50 and p99 of a frame log written by `gui --tour`.
    FrameStats {
        /// The frame log.
        log: PathBuf,
    },
    /// Build a demo store from the sample rasters in assets/ and show it.
    Demo {
        /// Where to put the demo store (replaced if it exists).
        #[arg(long, default_value = "target/demo-store")]
        store: PathBuf,
    },
}

/// Arguments of `create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The new store: a folder (must not exist, or be empty), or with
    /// --backend hdf5 a file (must not exist).
    pub store: PathBuf,
    /// Take CRS, cell size, origin (top-left corner), dtype, nodata and
    /// bands from this raster; the options below override what it gives
    /// (--crs only for a raster that has no CRS). A raster without a nodata
    /// value gets one that none of its cells holds.
    #[arg(long)]
    pub like: Option<PathBuf>,
    /// CRS as EPSG:code, WKT or PROJ string.
    #[arg(long, required_unless_present = "like")]
    pub crs: Option<String>,
    /// Base cell size (square), or X,Y.
    #[arg(long, required_unless_present = "like", value_parser = parse_cell_size)]
    pub cell_size: Option<[f64; 2]>,
    /// A point on the cell grid (X,Y); the domain is centred on it.
    #[arg(long, required_unless_present = "like", value_parser = parse_pair, allow_hyphen_values = true)]
    pub origin: Option<[f64; 2]>,
    /// Cell type: u8, i8, u16, i16, u32, i32, f32, f64.
    #[arg(long)]
    pub dtype: Option<DType>,
    /// Nodata value (default: the --like raster's, or a value it does not
    /// hold; else NaN for floats, the type's max for unsigned, min for
    /// signed), or "none": every value is data, and cells never written
    /// read as 0 (floats keep NaN, which is never a value, as nodata).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_nodata)]
    pub nodata: Option<NodataArg>,
    /// Chunk size WxH (or one number for square chunks).
    #[arg(long, value_parser = parse_chunk)]
    pub chunk: Option<[u32; 2]>,
    /// Pyramid aggregation: mean, min, max, sum, count, mode, nearest.
    #[arg(long)]
    pub aggregate: Option<Aggregator>,
    /// How sources are warped onto the grid: nearest, average, bilinear.
    #[arg(long)]
    pub resampling: Option<Resampling>,
    /// Chunk codec: zstd, zstd:LEVEL, lz4, none.
    #[arg(long)]
    pub codec: Option<Codec>,
    /// Number of bands (adds a band axis).
    #[arg(long)]
    pub bands: Option<u32>,
    /// Time axis: "irregular", or "regular:ORIGIN:STEP" with STEP like 3600, 1h, 1d.
    #[arg(long)]
    pub time: Option<String>,
    /// Calendar periods (UTC) to keep aggregate maps of, kept exact on
    /// every write: a list of day, week, month, year, or "none" (the
    /// default). Needs a time axis (--time, or a --like raster with a time
    /// dimension).
    #[arg(long, value_name = "LIST")]
    pub time_levels: Option<String>,
    /// The domain spans chunk * 2^N cells per axis (the pyramid has N+1 levels).
    #[arg(long)]
    pub domain_levels: Option<u8>,
    /// How the store is kept: folder (one file per chunk, readable by Zarr
    /// tools), packed (pack files with an index; faster, gridstore only) or
    /// hdf5 (the whole store in one HDF5 file).
    #[arg(long, default_value = "folder")]
    pub backend: Backend,
    /// How the chunks lie: zarr2 (one file per chunk; every Zarr reader,
    /// GDAL 3.4+ and QGIS 3 included) or zarr3 (Zarr v3 shards of many
    /// chunks, checksummed; for object storage and Zarr v3 readers).
    #[arg(long, default_value = "zarr2")]
    pub layout: LayoutArg,
    /// With --layout zarr3: chunks per side of a level-0 shard, a power of
    /// two from 2 to 16 (default 8: 2048² cells with 256² chunks).
    #[arg(long)]
    pub shard: Option<u32>,
}

/// A colour map's name on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorMapArg {
    /// Perceptually uniform purple–green–yellow.
    Viridis,
    /// Perceptually uniform black–purple–orange–cream.
    Magma,
    /// Perceptually uniform blue–yellow, for colour-vision deficiency.
    Cividis,
    /// A rainbow with smooth lightness.
    Turbo,
    /// Black to white.
    Greyscale,
    /// Blue lowlands through green and brown to white peaks.
    Terrain,
    /// Diverging red–white–blue.
    #[value(name = "rdbu")]
    RdBu,
    /// White to dark blue (precipitation).
    Blues,
}

impl From<ColorMapArg> for crate::render::ColorMap {
    fn from(arg: ColorMapArg) -> Self {
        match arg {
            ColorMapArg::Viridis => Self::Viridis,
            ColorMapArg::Magma => Self::Magma,
            ColorMapArg::Cividis => Self::Cividis,
            ColorMapArg::Turbo => Self::Turbo,
            ColorMapArg::Greyscale => Self::Greyscale,
            ColorMapArg::Terrain => Self::Terrain,
            ColorMapArg::RdBu => Self::RdBu,
            ColorMapArg::Blues => Self::Blues,
        }
    }
}

/// How `gui --hillshade` shades the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HillshadeArg {
    /// Blended with the colours.
    Blend,
    /// Alone, in greys.
    Alone,
}

/// A layout's name on the command line (its shard is given apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// Zarr v2, one object per chunk.
    Zarr2,
    /// Zarr v3 with sharding.
    Zarr3,
}

impl LayoutArg {
    /// The layout, with `shard` chunks per level-0 shard side.
    ///
    /// # Errors
    /// `--shard` given with zarr2.
    pub fn layout(self, shard: Option<u32>) -> Result<Layout, String> {
        match (self, shard) {
            (Self::Zarr2, None) => Ok(Layout::Zarr2),
            (Self::Zarr2, Some(_)) => {
                Err("--shard goes with --layout zarr3 (zarr2 keeps one object per chunk)".into())
            }
            (Self::Zarr3, shard) => Ok(Layout::Zarr3 {
                shard: shard.unwrap_or(Layout::DEFAULT_SHARD),
            }),
        }
    }
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The store folder.
    pub store: PathBuf,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// MINX,MINY,MAXX,MAXY (default: the extent of all data).
    #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true)]
    pub bbox: Option<Extent>,
    /// CRS of --bbox, when not the store's.
    #[arg(long, requires = "bbox")]
    pub bbox_crs: Option<String>,
    /// Export the cells of this pyramid level.
    #[arg(long, conflicts_with_all = ["resolution", "size"])]
    pub level: Option<u8>,
    /// Output cell size in CRS units.
    #[arg(long, conflicts_with = "size")]
    pub resolution: Option<f64>,
    /// Output size WxH in pixels; one side alone (W, Wx or xH) keeps the
    /// cells square.
    #[arg(long, value_parser = parse_size)]
    pub size: Option<[usize; 2]>,
    /// gtiff, cog, netcdf or png (default: from the extension, else gtiff).
    #[arg(long)]
    pub format: Option<String>,
    /// The instant, for stores with a time axis.
    #[arg(long)]
    pub time: Option<String>,
    /// Every stored instant from A to B (inclusive, for example
    /// 2024-05-01/2024-05-31T23:00), as one NetCDF with a CF time dimension.
    #[arg(long, value_name = "A/B", value_parser = parse_time_range, conflicts_with_all = ["time", "interpolate"])]
    pub time_range: Option<(i64, i64)>,
    /// With --time: the calendar period holding it (day, week, month or
    /// year, UTC), read from the store's map of it (`create
    /// --time-levels`); --time may then name the period (2024, 2024-05,
    /// 2024-05-02).
    #[arg(long, requires = "time", conflicts_with = "interpolate", value_parser = parse_period)]
    pub period: Option<Period>,
    /// Resampling: nearest, average, bilinear (default: the store's).
    #[arg(long)]
    pub resampling: Option<Resampling>,
    /// Output CRS (EPSG:code or WKT), when not the store's; --resolution
    /// and --size then describe the output in that CRS.
    #[arg(long)]
    pub crs: Option<String>,
    /// Snap the extent outward to the cells of the level read (like gdalwarp
    /// -tap), so cells are copied rather than resampled.
    #[arg(long)]
    pub snap: bool,
    /// At a --time between stored instants, blend the two around it
    /// linearly (each read kept in the function cache).
    #[arg(long, requires = "time")]
    pub interpolate: bool,
    /// Neither answer from nor keep in the function cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Write the file even when --bbox holds no data (otherwise that is an
    /// error naming the data's extent).
    #[arg(long)]
    pub allow_empty: bool,
}

/// What `gridstore series` reads and how it prints it.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("place").required(true).args(["at", "bbox"]))]
pub struct SeriesArgs {
    /// The store folder.
    pub store: PathBuf,
    /// The point, X,Y in the store's CRS.
    #[arg(long, value_name = "X,Y", value_parser = parse_point, allow_hyphen_values = true)]
    pub at: Option<(f64, f64)>,
    /// An area, MINX,MINY,MAXX,MAXY in the store's CRS: each value is the
    /// store's aggregate over the cells whose centres lie in it (with
    /// --period, of the period's map: the stored one when the store keeps
    /// that time level).
    #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true)]
    pub bbox: Option<Extent>,
    /// One value per period: day, week (ISO), month, year, or a length such
    /// as 6h or 3d from the epoch, all in UTC (default: every instant).
    #[arg(long, value_parser = parse_period)]
    pub period: Option<Period>,
    /// Only the instants from A to B (inclusive).
    #[arg(long, value_name = "A/B", value_parser = parse_time_range)]
    pub time_range: Option<(i64, i64)>,
    /// The band, from 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub band: u32,
    /// Read this pyramid level (default: the base level).
    #[arg(long, default_value_t = 0)]
    pub level: u8,
    /// Print JSON instead of text.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV instead of text.
    #[arg(long)]
    pub csv: bool,
}

/// What `gridstore cache` does.
#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// List the cached results: function, age, size, arguments.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove cached results: all, or those matching every option given.
    Clear {
        /// Only those computed longer ago than this (90s, 15m, 6h, 7d, 2w).
        #[arg(long)]
        older_than: Option<String>,
        /// Only this function's (export, extent, quicklook).
        #[arg(long)]
        function: Option<String>,
        /// Only those whose arguments hold this JSON object's members,
        /// e.g. '{"format": "png"}'.
        #[arg(long)]
        args: Option<String>,
    },
}

/// `--nodata`: a value, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NodataArg {
    /// This value marks nodata.
    Value(f64),
    /// Every value is data.
    None,
}

impl NodataArg {
    /// The structure's nodata: the value, or `None`.
    #[must_use]
    pub fn value(self) -> Option<f64> {
        match self {
            Self::Value(v) => Some(v),
            Self::None => None,
        }
    }
}

fn parse_nodata(s: &str) -> Result<NodataArg, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(NodataArg::None);
    }
    parse_number(s)
        .map(NodataArg::Value)
        .map_err(|e| format!("{e} (give a number, nan, or none)"))
}

fn parse_number(s: &str) -> Result<f64, String> {
    if s.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("'{s}' is not a number"))
}

fn parse_list(s: &str, n: usize) -> Result<Vec<f64>, String> {
    let parts: Vec<&str> = s.split(',').collect();
    if parts.len() != n {
        return Err(format!("'{s}' needs {n} comma-separated numbers"));
    }
    parts
        .into_iter()
        .map(|p| {
            parse_number(p).and_then(|v| {
                if v.is_finite() {
                    Ok(v)
                } else {
                    Err(format!("'{p}' is not finite"))
                }
            })
        })
        .collect()
}

/// Parses `X,Y`.
///
/// # Errors
/// A message naming the text.
pub fn parse_pair(s: &str) -> Result<[f64; 2], String> {
    let v = parse_list(s, 2)?;
    Ok([v[0], v[1]])
}

/// Parses a cell size: one number (square cells) or `X,Y`, both positive.
fn parse_cell_size(s: &str) -> Result<[f64; 2], String> {
    let size = if s.contains(',') {
        parse_pair(s)?
    } else {
        parse_list(s, 1).map(|v| [v[0], v[0]])?
    };
    if size.iter().any(|v| *v <= 0.0) {
        return Err(format!("'{s}': cell sizes must be positive"));
    }
    Ok(size)
}

/// Parses `MINX,MINY,MAXX,MAXY`.
///
/// # Errors
/// A message naming the text.
pub fn parse_bbox(s: &str) -> Result<Extent, String> {
    let v = parse_list(s, 4)?;
    Extent::new(v[0], v[1], v[2], v[3]).map_err(|e| e.to_string())
}

/// Bands named on the command line, counted from 1: one, or three for an
/// RGB composite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandList(pub Vec<u32>);

fn parse_bands(s: &str) -> Result<BandList, String> {
    let bands: Vec<u32> = s
        .split(',')
        .map(|b| match b.trim().parse::<u32>() {
            Ok(0) | Err(_) => Err(format!("'{b}' is not a band number (1, 2, …)")),
            Ok(b) => Ok(b),
        })
        .collect::<Result<_, _>>()?;
    if bands.len() != 1 && bands.len() != 3 {
        return Err(format!("'{s}': give one band, or three (red, green, blue)"));
    }
    Ok(BandList(bands))
}

fn parse_gui_instant(s: &str) -> Result<i64, String> {
    crate::engine::grid::time::parse_period_time(s).map_err(|e| e.to_string())
}

fn parse_time_level(s: &str) -> Result<TimeLevel, String> {
    match TimeLevel::parse_list(s)?.as_slice() {
        [one] => Ok(*one),
        _ => Err(format!("'{s}': one of day, week, month, year")),
    }
}

fn parse_point(s: &str) -> Result<(f64, f64), String> {
    let v = parse_list(s, 2)?;
    Ok((v[0], v[1]))
}

fn parse_period(s: &str) -> Result<Period, String> {
    Period::parse(s).map_err(|e| e.to_string())
}

/// `A/B`: two instants, the first not after the second.
fn parse_time_range(s: &str) -> Result<(i64, i64), String> {
    let (a, b) = s
        .split_once('/')
        .ok_or_else(|| format!("'{s}' is not a time range (expected A/B)"))?;
    let parse = |t: &str| crate::engine::grid::time::parse_instant(t).map_err(|e| e.to_string());
    let (a, b) = (parse(a)?, parse(b)?);
    if a > b {
        return Err(format!("'{s}': the range ends before it starts"));
    }
    Ok((a, b))
}

fn parse_stretch(s: &str) -> Result<(f64, f64), String> {
    let v = parse_list(s, 2)?;
    if v[0] >= v[1] {
        return Err(format!("'{s}': the minimum must be below the maximum"));
    }
    Ok((v[0], v[1]))
}

fn parse_wxh(s: &str) -> Result<[u64; 2], String> {
    let lower = s.to_ascii_lowercase();
    let (w, h) = lower.split_once('x').unwrap_or((&lower, &lower));
    let parse = |p: &str| match p.trim().parse::<u64>() {
        Ok(0) => Err(format!("'{s}': width and height must be positive")),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("'{s}' is not WxH")),
    };
    Ok([parse(w)?, parse(h)?])
}

fn parse_chunk(s: &str) -> Result<[u32; 2], String> {
    let [w, h] = parse_wxh(s)?;
    Ok([
        u32::try_from(w).map_err(|e| e.to_string())?,
        u32::try_from(h).map_err(|e| e.to_string())?,
    ])
}

/// Parses `WxH`, or one side (`W`, `Wx` or `xH`) with 0 for the other:
/// square cells.
fn parse_size(s: &str) -> Result<[usize; 2], String> {
    let lower = s.trim().to_ascii_lowercase();
    let side = |p: &str| match p.trim().parse::<usize>() {
        Ok(0) => Err(format!("'{s}': width and height must be positive")),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("'{s}' is not WxH, W or xH")),
    };
    match lower.split_once('x') {
        None => Ok([side(&lower)?, 0]),
        Some((w, "")) => Ok([side(w)?, 0]),
        Some(("", h)) => Ok([0, side(h)?]),
        Some((w, h)) => Ok([side(w)?, side(h)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_alone_opens_the_explorer() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("dem.gs");
        std::fs::create_dir(&store).unwrap();
        let args = |v: &[&str]| -> Vec<std::ffi::OsString> {
            std::iter::once("gridstore")
                .chain(v.iter().copied())
                .map(Into::into)
                .collect()
        };
        let path = store.to_str().unwrap();
        assert_eq!(with_store_shorthand(args(&[path])), args(&["gui", path]));
        // Commands, options and misspelt commands are left for clap.
        for kept in [&["info", path][..], &["--version"], &["ingset", path], &[]] {
            assert_eq!(with_store_shorthand(args(kept)), args(kept));
        }
        let cli = Cli::try_parse_from(with_store_shorthand(args(&[path]))).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Gui { store: Some(_), .. })
        ));
    }

    #[test]
    fn values_parse() {
        assert_eq!(parse_pair("1.5,-2").unwrap(), [1.5, -2.0]);
        assert!(parse_bbox("0,0,1").is_err());
        assert!(parse_bbox("1,0,0,1").is_err());
        assert_eq!(parse_chunk("256x128").unwrap(), [256, 128]);
        assert_eq!(parse_chunk("64").unwrap(), [64, 64]);
        assert!(parse_number("nan").unwrap().is_nan());
        assert_eq!(parse_cell_size("30").unwrap(), [30.0, 30.0]);
        assert!(parse_cell_size("0").is_err(), "a zero cell size is refused");
        assert!(parse_cell_size("10,-5").is_err());
        assert_eq!(parse_size("1024x512").unwrap(), [1024, 512]);
        assert_eq!(parse_size("1024").unwrap(), [1024, 0]);
        assert_eq!(parse_size("1024x").unwrap(), [1024, 0]);
        assert_eq!(parse_size("x300").unwrap(), [0, 300]);
        assert!(parse_size("x").is_err());
        assert!(parse_size("0x5").is_err());
    }
}
