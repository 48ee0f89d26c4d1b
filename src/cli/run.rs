//! Dispatches a parsed command line.

use super::args::{Cli, Command, ExportArgs};
use super::progress::BarSink;
use super::{cache, convert, create, history, info, open_store, parse_time};
use crate::engine::grid::period::{Period, TimeLevel};
use crate::engine::persistence::zarr::FORMAT_VERSION;
use crate::engine::{CancelToken, Statistics, Store};
use crate::gdal_io::{
    ExportFormat, ExportRequest, IngestOptions, Resolution, export_instants, export_with, ingest,
};
use crate::with_dtype;
use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs one command and returns its exit code (errors are returned, and
/// `main` turns them into exit code 2).
///
/// # Errors
/// Any failure, as a one-line message naming the file or store.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Some(command) = cli.command else {
        crate::gui::run(crate::gui::GuiOptions::default())?;
        return Ok(ExitCode::SUCCESS);
    };
    // Long jobs stop cleanly on Ctrl-C (the explorer handles its own).
    let cancel = if matches!(command, Command::Gui { .. }) {
        CancelToken::new()
    } else {
        cancel_on_interrupt()
    };
    match command {
        Command::Create(args) => {
            let store = create::create(&args)?;
            println!("created {}", store.location());
            Ok(ExitCode::SUCCESS)
        }
        Command::Info { store, json } => {
            info::print_info(&open_store(&store, false)?, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest {
            store,
            files,
            time,
            time_from_name,
            cast,
            allow_nodata_loss,
        } => {
            let store = open_store(&store, true)?;
            let options = IngestOptions {
                instant: parse_time(time.as_deref())?,
                cast,
                allow_nodata_loss,
            };
            let instants = match time_from_name {
                Some(pattern) => Some(instants_from_names(&store, &files, &pattern)?),
                None => None,
            };
            ingest_files(&store, &files, instants.as_deref(), &options, &cancel)
        }
        Command::Export(args) => export_cmd(&args, &cancel),
        Command::Clear { store, bbox, time } => {
            let store = open_store(&store, true)?;
            let times = match parse_time(time.as_deref())? {
                Some(instant) => vec![store.time_index(Some(instant), false)?],
                None => store.time_indices(),
            };
            let sink = BarSink::new("clear");
            let mut report = crate::engine::WriteReport::default();
            for t in times {
                let r = with_dtype!(store.structure().dtype, T => store.clear::<T>(t, &bbox, &sink, &cancel))?;
                report.base_chunks += r.base_chunks;
                report.pyramid_chunks += r.pyramid_chunks;
            }
            sink.finish();
            let cleared = store.grid().cells_centred_in(0, &bbox).map_or_else(
                || "no cell".to_string(),
                |w| store.grid().window_extent(0, &w).to_string(),
            );
            println!(
                "cleared {cleared} (the cells whose centres lie in {bbox}): {} base chunks, {} aggregates updated",
                report.base_chunks, report.pyramid_chunks
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::History {
            store,
            note,
            ingest,
            json,
        } => {
            match note {
                Some(text) => {
                    open_store(&store, true)?
                        .add_note(&text, ingest)
                        .with_context(|| store.display().to_string())?;
                    println!("note added");
                }
                None => history::print_history(&open_store(&store, false)?, json)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Repair { store, statistics } => repair(&store, statistics),
        Command::Compact { store } => compact(&store),
        Command::Cache { action } => {
            cache::run(&action)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert {
            src,
            dst,
            backend,
            layout,
            shard,
            time_levels,
        } => {
            let backend = backend.unwrap_or_else(|| crate::storage::backend_of(&src));
            let time_levels = time_levels
                .map(|list| crate::engine::grid::period::TimeLevel::parse_list(&list))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--time-levels: {e}"))?;
            let (layout, values, bytes) =
                convert::convert(&src, &dst, backend, layout, shard, time_levels)?;
            println!(
                "converted {} to {} ({backend}, {layout}, format version {FORMAT_VERSION}): {values} objects, {bytes} bytes, all read back equal",
                src.display(),
                dst.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { store } => verify(&open_store(&store, false)?, &cancel),
        Command::Series(args) => {
            super::series::print(&open_store(&args.store, false)?, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Chunks { store, level, json } => {
            info::print_chunks(&open_store(&store, false)?, level, json)
                .with_context(|| store.display().to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { store } => demo(&store),
        Command::FrameStats { log } => {
            let text = std::fs::read_to_string(&log)
                .with_context(|| format!("cannot read {}", log.display()))?;
            println!(
                "{}",
                crate::gui::frame_stats(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", log.display()))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Gui {
            store,
            screenshot,
            level,
            bbox,
            tour,
            frame_log,
            tour_ingest,
            colormap,
            bands,
            stretch,
            time,
            period,
            hillshade,
        } => {
            crate::gui::run(crate::gui::GuiOptions {
                store,
                level,
                bbox,
                screenshot,
                recent_file: None,
                tour: if tour { frame_log } else { None },
                tour_ingest,
                cache_dir: None,
                color_map: colormap.map(Into::into),
                stretch,
                bands: bands.map(|b| b.0),
                dialogs: None,
                time,
                period,
                hillshade: hillshade.map(|h| h == crate::cli::args::HillshadeArg::Alone),
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A token that Ctrl-C cancels; a second Ctrl-C exits at once.
fn cancel_on_interrupt() -> CancelToken {
    let cancel = CancelToken::new();
    let token = cancel.clone();
    let installed = ctrlc::set_handler(move || {
        if token.is_cancelled() {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping cleanly (Ctrl-C again to quit at once)");
        token.cancel();
    });
    // Without a handler Ctrl-C simply kills the process, which the journal
    // also recovers from; nothing else to do.
    installed.ok();
    cancel
}

/// Each file's instant from its name by `pattern`, all read before any is
/// ingested: a name that does not fit, or two files of one instant, stop the
/// ingest before it changes anything.
fn instants_from_names(
    store: &Store,
    files: &[PathBuf],
    pattern: &str,
) -> anyhow::Result<Vec<i64>> {
    use crate::engine::grid::time::format_instant;
    use crate::engine::grid::time_from_name::instant_from_name;
    if store.structure().time.is_none() {
        bail!(
            "{}: the store has no time axis, so no instants to take from names",
            store.location()
        );
    }
    let mut seen = std::collections::HashMap::new();
    let mut instants = Vec::with_capacity(files.len());
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let instant = instant_from_name(pattern, &name)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        if let Some(other) = seen.insert(instant, file) {
            bail!(
                "{} and {} both hold {}; give each instant one file",
                other.display(),
                file.display(),
                format_instant(instant)
            );
        }
        instants.push(instant);
    }
    Ok(instants)
}

fn ingest_files(
    store: &Store,
    files: &[PathBuf],
    instants: Option<&[i64]>,
    options: &IngestOptions,
    cancel: &CancelToken,
) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for (k, file) in files.iter().enumerate() {
        let options = IngestOptions {
            instant: instants.map_or(options.instant, |i| Some(i[k])),
            ..options.clone()
        };
        let options = &options;
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let sink = BarSink::new(name);
        let result = ingest(store, file, options, &sink, cancel);
        sink.finish();
        match result {
            Ok(r) => println!(
                "ingested {}: {}{} x {} cells{}, {} base chunks, {} aggregates, {:.2} s",
                file.display(),
                if r.instants > 1 {
                    format!("{} instants of ", r.instants)
                } else {
                    String::new()
                },
                r.window.cols,
                r.window.rows,
                if r.warped { " (warped)" } else { "" },
                r.base_chunks,
                r.pyramid_chunks,
                r.seconds
            ),
            Err(e) if e.is_cancelled() => {
                eprintln!("cancelled: {}", file.display());
                failed += 1;
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    match failed {
        0 => Ok(ExitCode::SUCCESS),
        // The error itself was the one line printed.
        _ if files.len() == 1 => Ok(ExitCode::from(2)),
        _ => bail!("{failed} of {} files failed", files.len()),
    }
}

fn export_cmd(args: &ExportArgs, cancel: &CancelToken) -> anyhow::Result<ExitCode> {
    let opened = open_store(&args.store, false)?;
    let mut computed = None;
    let (period, instant) = match (args.period, args.time.as_deref()) {
        (Some(period), Some(time)) => match period_map(&opened, period, time)? {
            PeriodMap::Stored(level, start) => (Some(level), Some(start)),
            PeriodMap::Computed(store, start) => {
                computed = Some(store);
                (None, Some(start))
            }
        },
        _ => (None, parse_time(args.time.as_deref())?),
    };
    let store: &Store = computed.as_deref().unwrap_or(&opened);
    let format = match args
        .format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("gtiff" | "geotiff" | "tif") => ExportFormat::GTiff,
        Some("cog") => ExportFormat::Cog,
        Some("netcdf" | "nc") => ExportFormat::NetCdf,
        Some("png") => ExportFormat::Png,
        Some(other) => bail!("unknown format '{other}' (expected gtiff, cog, netcdf or png)"),
        None => match ExportFormat::from_extension(&args.output) {
            Some(format) => format,
            None if args.output.extension().is_none() => ExportFormat::GTiff,
            None => bail!(
                "cannot tell the format of {} from its extension; add --format gtiff|cog|netcdf|png",
                args.output.display()
            ),
        },
    };
    // A file named for one format holding another would mislead every tool.
    let named = ExportFormat::from_extension(&args.output);
    let fits = |named: ExportFormat| {
        named == format || (named == ExportFormat::GTiff && format == ExportFormat::Cog)
    };
    if let Some(named) = named.filter(|n| !fits(*n)) {
        bail!(
            "{}: its extension says {named:?}, --format says {format:?}; give the output the format's extension",
            args.output.display()
        );
    }
    let resolution = match (args.level, args.resolution, args.size) {
        (Some(l), _, _) => Resolution::Level(l),
        (_, Some(r), _) => Resolution::Cell(r),
        (_, _, Some([w, h])) => Resolution::Size(w, h),
        _ => Resolution::Level(0),
    };
    let request = ExportRequest {
        bbox: args.bbox,
        bbox_crs: args.bbox_crs.clone(),
        resolution,
        format,
        instant,
        period,
        resampling: args.resampling,
        crs: args.crs.clone(),
        snap: args.snap,
        interpolate: args.interpolate,
        allow_empty: args.allow_empty,
    };
    if let Some(range) = args.time_range {
        let sink = BarSink::new("export");
        let result = export_instants(store, &request, range, &args.output, &sink, cancel);
        sink.finish();
        let (report, instants) = result?;
        if !report.has_data {
            eprintln!("warning: the exported extent holds no data");
        }
        let when = |i: &i64| crate::engine::grid::time::format_instant(*i);
        let span = match instants.as_slice() {
            [one] => format!("1 instant ({})", when(one)),
            [first, .., last] => format!(
                "{} instants ({} to {})",
                instants.len(),
                when(first),
                when(last)
            ),
            [] => "no instants".into(),
        };
        println!(
            "exported {span} of {} x {} cells from level {} to {}",
            report.size.0,
            report.size.1,
            report.level,
            report.path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let cache = if args.no_cache {
        None
    } else {
        cache::open_or_warn()
    };
    let sink = BarSink::new("export");
    let result = export_with(store, &request, &args.output, cache.as_ref(), &sink, cancel);
    sink.finish();
    let (report, cache_warning) = result?;
    if let Some(w) = cache_warning {
        eprintln!("warning: {w}");
    }
    if !report.has_data {
        eprintln!("warning: the exported extent holds no data");
    }
    let how = match (report.from_cache, report.between) {
        (true, _) => " (from the cache)".to_string(),
        (false, Some(b)) => {
            let w = (b.instant - b.below) as f64 / (b.above - b.below) as f64;
            format!(
                " ({:.0} % of {} blended with {:.0} % of {})",
                (1.0 - w) * 100.0,
                crate::engine::grid::time::format_instant(b.below),
                w * 100.0,
                crate::engine::grid::time::format_instant(b.above)
            )
        }
        (false, None) => String::new(),
    };
    println!(
        "exported {} x {} cells from level {} to {}{how}",
        report.size.0,
        report.size.1,
        report.level,
        report.path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Where the map of a period comes from.
enum PeriodMap {
    /// The store's maps of this time level, at the period's start.
    Stored(TimeLevel, i64),
    /// Computed into a store in memory, whose one instant is the period's
    /// start.
    Computed(Box<Store>, i64),
}

/// The map of the period of `period` that `time` (an instant, or a period
/// such as 2024-05) names: stored, or computed from the finest stored maps
/// that tile it (else its instants), which is said on stderr.
///
/// # Errors
/// A time that is not one, a period that holds no instant, or a read that
/// fails.
fn period_map(store: &Store, period: Period, time: &str) -> anyhow::Result<PeriodMap> {
    if store.structure().time.is_none() {
        bail!(
            "--period: {} has no time axis, so no periods",
            store.location()
        );
    }
    let at = crate::engine::grid::time::parse_period_time(time).map_err(anyhow::Error::msg)?;
    let start = period.start(at);
    let end = period.next(start).saturating_sub(1);
    let label = period.label(start);
    if store.instants_between(start, end).is_empty() {
        let near: Vec<String> = store
            .instants_between(i64::MIN, i64::MAX)
            .into_iter()
            .map(|(_, i)| period.start(i))
            .filter(|s| (s - start).abs() <= 3 * (period.next(start) - start))
            .map(|s| period.label(s))
            .fold(Vec::new(), |mut near, l| {
                if near.last() != Some(&l) {
                    near.push(l);
                }
                near
            });
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(" (near it: {})", near.join(", "))
        };
        bail!(
            "no data in {label}: no instant of {} lies in it{hint}",
            store.location()
        );
    }
    if let Some(level) = TimeLevel::of(period).filter(|l| store.period_maps(*l).is_some()) {
        return Ok(PeriodMap::Stored(level, start));
    }
    let (computed, from) = with_dtype!(store.structure().dtype, T => store.compute_period::<T>(period, start, &crate::engine::NoProgress))?;
    let kept: Vec<&str> = store.time_levels().iter().map(|l| l.name()).collect();
    let kept = if kept.is_empty() {
        "it keeps no period maps".to_string()
    } else {
        format!("it keeps {} maps", kept.join(", "))
    };
    eprintln!("{label}: not stored ({kept}); computed from {from} over the data's extent");
    Ok(PeriodMap::Computed(Box::new(computed), start))
}

fn verify(store: &Store, cancel: &CancelToken) -> anyhow::Result<ExitCode> {
    if crate::foreign::is_foreign(store) {
        anyhow::bail!(
            "{}: a raster gridstore did not write keeps no pyramid to verify (its levels are read from it as they are asked for)",
            store.location()
        );
    }
    let sink = BarSink::new("verify");
    let report = with_dtype!(store.structure().dtype, T => store.verify::<T>(&sink, cancel))?;
    sink.finish();
    if report.moving {
        println!(
            "pending: an interrupted move of the arrays' origins (no aggregate was compared; `gridstore repair` or the next write finishes it)"
        );
    }
    for p in &report.pending {
        println!(
            "pending: an unfinished {:?} write of {} x {} base cells at time index {} (its aggregates were not compared; the next write completes it)",
            p.phase, p.window.cols, p.window.rows, p.t
        );
    }
    let statistics = match report.statistics {
        Statistics::Checked => None,
        Statistics::Unchecked => {
            Some("statistics: not compared (a chunk could not be read, or a write is unfinished)")
        }
        Statistics::NotKept => Some(
            "statistics: not kept for these contents (an older gridstore wrote last); `gridstore repair` rebuilds them",
        ),
    };
    if report.damage.is_empty() {
        println!(
            "ok: {} chunks verified in {}",
            report.chunks,
            store.location()
        );
        statistics.into_iter().for_each(|s| println!("{s}"));
        return Ok(ExitCode::SUCCESS);
    }
    for d in &report.damage {
        println!("damaged {}: {}", d.key, d.reason);
    }
    println!(
        "{} of {} chunks damaged in {}",
        report.damage.len(),
        report.chunks,
        store.location()
    );
    let prefix = crate::engine::persistence::statistics::PREFIX;
    if report.damage.iter().any(|d| !d.key.starts_with(prefix)) {
        println!(
            "to repair: ingest again the sources that cover the damaged chunks (gridstore history lists them), or clear those areas; the pyramid above them follows"
        );
    }
    if report.damage.iter().any(|d| d.key.starts_with(prefix)) {
        println!(
            "to repair the statistics: `gridstore repair --statistics` rebuilds them from the chunks"
        );
    }
    statistics.into_iter().for_each(|s| println!("{s}"));
    Ok(ExitCode::from(1))
}

/// Builds the demo store from the sample rasters and prints its info.
fn demo(path: &Path) -> anyhow::Result<ExitCode> {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/olinda_dem_utm25s.tif");
    if path.exists() {
        let is_store = path.join(".zattrs").exists();
        if !is_store {
            bail!(
                "{} exists and is not a store; choose another --store",
                path.display()
            );
        }
        std::fs::remove_dir_all(path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
    }
    let args = super::args::CreateArgs {
        store: path.into(),
        like: Some(sample.clone()),
        crs: None,
        cell_size: None,
        origin: None,
        dtype: None,
        nodata: None,
        chunk: Some([64, 64]),
        aggregate: None,
        resampling: None,
        codec: None,
        bands: None,
        time: None,
        time_levels: None,
        domain_levels: Some(8),
        backend: crate::storage::Backend::Folder,
        layout: super::args::LayoutArg::Zarr2,
        shard: None,
    };
    let store = create::create(&args)?;
    ingest_files(
        &store,
        &[sample],
        None,
        &IngestOptions::default(),
        &CancelToken::new(),
    )?;
    drop(store);
    info::print_info(&open_store(path, false)?, false)?;
    Ok(ExitCode::SUCCESS)
}

/// `gridstore compact`: reclaim the space of rewritten values, holding the
/// writer lock (opening as the writer first finishes interrupted writes).
fn compact(path: &Path) -> anyhow::Result<ExitCode> {
    let store = open_store(path, true)?;
    let report = store
        .storage()
        .compact()
        .with_context(|| format!("cannot compact {}", path.display()))?;
    let Some(r) = report else {
        match store.storage().backend_name() {
            "hdf5" => println!(
                "{}: an hdf5 store keeps rewritten chunks' space in its file; `gridstore convert {} NEW.h5 --backend hdf5` writes a compact copy",
                path.display(),
                path.display()
            ),
            backend => println!(
                "{}: a {backend} store frees a rewritten chunk's space at once; nothing to compact",
                path.display()
            ),
        }
        return Ok(ExitCode::SUCCESS);
    };
    let human = crate::format::human_bytes;
    println!(
        "compacted {}: {} of {} packs rewritten, {} values moved, {} -> {} on disk ({} reclaimed)",
        path.display(),
        r.packs_rewritten,
        r.packs_before,
        r.values_moved,
        human(r.disk_before),
        human(r.disk_after),
        human(r.disk_before.saturating_sub(r.disk_after))
    );
    Ok(ExitCode::SUCCESS)
}

/// `gridstore repair`: the index (packed), interrupted writes, leftovers.
fn repair(path: &std::path::Path, statistics: bool) -> anyhow::Result<ExitCode> {
    // Nothing is touched in what gridstore did not write (a raster, another
    // tool's Zarr store, any folder): opening it as the writer says why.
    if !crate::foreign::written_by_gridstore(path) {
        open_store(path, true)?;
        anyhow::bail!("{}: not a gridstore store", path.display());
    }
    let mut damaged = Vec::new();
    if crate::storage::backend_of(path) == crate::storage::Backend::Packed {
        let report = crate::storage::packed::repair(path)
            .with_context(|| format!("cannot repair {}", path.display()))?;
        println!(
            "index rebuilt from {} records in {} packs: {} values",
            report.records, report.packs, report.live_keys
        );
        damaged = report.damaged;
    } else {
        let folder = crate::storage::FolderStorage::open(path)
            .with_context(|| format!("cannot repair {}", path.display()))?;
        // The lock first: a running writer's temporary files are not leftovers.
        let lock = crate::storage::Storage::lock_writer(&folder)?;
        let removed = folder.remove_leftovers()?;
        drop(lock);
        println!("removed {removed} leftover temporary files");
    }
    let before = open_store(path, false)?;
    let pending = before.pending_writes()?.len();
    let moving = before.interrupted_move()?;
    drop(before);
    // Opening for writing finishes or rolls back interrupted writes.
    let store = open_store(path, true)?;
    if moving {
        println!("1 interrupted move of the arrays' origins finished or undone");
    }
    println!("{pending} interrupted writes finished or rolled back");
    if statistics || store.level_statistics().ok().flatten().is_none() {
        let chunks = with_dtype!(store.structure().dtype, T => store.rebuild_statistics::<T>())?;
        println!("per-level statistics rebuilt from {chunks} chunks");
    }
    let built = with_dtype!(store.structure().dtype, T => store.build_missing_periods::<T>(&crate::engine::NoProgress))?;
    if built > 0 {
        println!("{built} missing period maps built from their instants");
    }
    drop(store);
    for d in &damaged {
        println!("damaged {d}");
    }
    if damaged.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} damaged stretches skipped; the values in them are gone",
            damaged.len()
        );
        Ok(ExitCode::from(1))
    }
}
