//! `gridstore info` and `gridstore chunks`: what a store holds.

use crate::engine::grid::time::format_instant;
use crate::engine::persistence::layout::Layout;
use crate::engine::persistence::zarr::FORMAT_VERSION;
use crate::engine::{ChunkLoc, EngineError, Extent, Store, Summary, TimeAxis};
use crate::format::short_number;
use crate::with_dtype;
use serde::Serialize;
use serde_json::json;

/// What one level holds.
#[derive(Debug, Serialize)]
pub struct LevelInfo {
    /// The level.
    pub level: u8,
    /// Cell size (x, y).
    pub cell_size: [f64; 2],
    /// Chunks, bytes, valid cells, minimum and maximum.
    #[serde(flatten)]
    pub summary: Summary,
}

/// Each level's statistics, and whether they are the kept ones (see
/// [`Store::level_summaries`]).
///
/// # Errors
/// I/O.
pub fn levels(store: &Store) -> Result<(Vec<LevelInfo>, bool), EngineError> {
    let (summaries, kept) = store.level_summaries()?;
    let levels = (0..)
        .zip(summaries)
        .map(|(level, summary)| LevelInfo {
            level,
            cell_size: store.grid().cell_size(level),
            summary,
        })
        .collect();
    Ok((levels, kept))
}

/// Prints `info`.
///
/// # Errors
/// I/O or corrupt chunks.
pub fn print_info(store: &Store, as_json: bool) -> anyhow::Result<()> {
    let s = store.structure();
    let grid = store.grid();
    let (levels, kept) = levels(store)?;
    let t0 = store.time_indices().first().copied().unwrap_or(0);
    let master = store.master_chunk(t0)?;
    // A damaged chunk on the data's edge hides the exact extent; the rest
    // of the summary still helps (verify lists the damage).
    let (data, damage) = match with_dtype!(s.dtype, T => store.data_window::<T>(t0)) {
        Ok(data) => (data, None),
        Err(e @ EngineError::Corrupt { .. }) => (None, Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let data_extent = data.map(|w| grid.window_extent(0, &w));
    let instants: Vec<String> = store
        .time_indices()
        .iter()
        .filter_map(|t| store.instant_of(*t))
        .map(format_instant)
        .collect();
    let valid_area = geographic_valid_area(store);
    if as_json {
        let value = json!({
            "store": store.location(),
            "backend": store.storage().backend_name(),
            "format_version": store.format_version(),
            "layout": store.layout().name(),
            "shard": store.layout().sharded().then(|| store.layout().shard()),
            "structure": s,
            "domain": valid_area.unwrap_or_else(|| grid.domain()),
            "grid_extent": grid.domain(),
            "data_extent": data_extent,
            "data_size": data.map(|w| [w.cols, w.rows]),
            "damage": damage,
            "master_chunk": master.map(|m| json!({ "level": m.level, "row": m.row, "col": m.col, "extent": grid.chunk_extent(m) })),
            "instants": instants,
            "statistics_kept": kept,
            "levels": levels,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let crs = match s.crs.epsg {
        Some(code) => format!("EPSG:{code} ({})", s.crs.name),
        None => s.crs.name.clone(),
    };
    println!("store       {}", store.location());
    let version = store.format_version();
    let upgrade = if version < FORMAT_VERSION {
        format!("; `gridstore convert` upgrades it to version {FORMAT_VERSION}")
    } else {
        String::new()
    };
    let layout = match store.layout() {
        Layout::Zarr2 => "Zarr v2, one object per chunk".to_string(),
        Layout::Zarr3 { shard } => {
            format!("Zarr v3, shards of {shard} x {shard} chunks at level 0, CRC-32C checked")
        }
    };
    let backend = match store.storage().backend_name() {
        "packed" => ", packed backend (pack files + redb index)",
        "hdf5" => ", hdf5 backend (one HDF5 file: record log + index)",
        _ => "",
    };
    if let Some(what) = crate::foreign::description(store) {
        println!("format      {what}; read-only: gridstore did not write it");
    } else {
        println!(
            "format      gridstore {version}: {layout}, one array per level{backend}{upgrade}"
        );
    }
    println!("crs         {crs}");
    println!(
        "cell size   {} x {}",
        short_number(s.cell_size[0]),
        short_number(s.cell_size[1])
    );
    println!("anchor      {}, {}", s.anchor[0], s.anchor[1]);
    match valid_area {
        Some(area) => {
            println!("domain      {area}, the CRS's valid area");
            println!(
                "grid        {} (levels 0..{}): 2^{} chunks a side, centred on the anchor, reaching past the valid area",
                grid.domain(),
                grid.top_level(),
                grid.top_level()
            );
        }
        None => println!(
            "domain      {} (levels 0..{})",
            grid.domain(),
            grid.top_level()
        ),
    }
    println!("chunk       {} x {}", s.chunk[0], s.chunk[1]);
    println!("dtype       {}  nodata {}", s.dtype, s.nodata_text());
    if crate::foreign::is_foreign(store) {
        println!("codec       the raster's own");
    } else {
        println!("codec       {}", s.codec);
    }
    println!("aggregate   {}  resampling {}", s.aggregate, s.resampling);
    if let Some(b) = s.bands {
        println!("bands       {b}");
    }
    match &s.time {
        None => {}
        Some(TimeAxis::Regular { origin, step }) => {
            println!(
                "time        regular from {} every {step} s, {} instants",
                format_instant(*origin),
                instants.len()
            );
        }
        Some(TimeAxis::Irregular) => println!("time        irregular, {} instants", instants.len()),
    }
    if let (Some(first), Some(last)) = (instants.first(), instants.last()) {
        println!("time range  {first} .. {last}");
    }
    if !store.time_levels().is_empty() {
        let kept: Vec<String> = store
            .time_levels()
            .iter()
            .filter_map(|&level| {
                let maps = store.period_maps(level)?;
                Some(match maps.time_state().length {
                    1 => format!("{level} (1 map)"),
                    n => format!("{level} ({n} maps)"),
                })
            })
            .collect();
        println!("time levels {}", kept.join(", "));
    }
    match (data_extent, data, &damage) {
        (Some(e), Some(w), _) => println!("data        {e} ({} x {} base cells)", w.cols, w.rows),
        (_, _, Some(damage)) => {
            println!("data        extent unknown: {damage} (gridstore verify lists the damage)");
        }
        _ => println!("data        none"),
    }
    match master {
        Some(m) => println!(
            "master      {} covering {}",
            loc_name(m),
            grid.chunk_extent(m)
        ),
        None => println!("master      none (empty store)"),
    }
    println!();
    println!(
        "{:>5}  {:>14}  {:>8}  {:>12}  {:>14}  {:>10}  {:>10}",
        "level", "cell size", "chunks", "bytes", "valid cells", "min", "max"
    );
    let range = |s: &Summary, pick: fn((f64, f64)) -> f64| {
        s.range()
            .map_or_else(|| "-".to_string(), |r| short_number(pick(r)))
    };
    let mut all = Summary::EMPTY;
    for l in &levels {
        let s = &l.summary;
        all = all.plus(*s);
        let valid = if kept {
            s.valid.to_string()
        } else {
            "?".to_string()
        };
        println!(
            "{:>5}  {:>14}  {:>8}  {:>12}  {valid:>14}  {:>10}  {:>10}",
            l.level,
            short_number(l.cell_size[0]),
            s.chunks,
            s.bytes,
            range(s, |r| r.0),
            range(s, |r| r.1)
        );
    }
    println!(
        "{:>5}  {:>14}  {:>8}  {:>12}",
        "all", "", all.chunks, all.bytes
    );
    if !kept && crate::foreign::is_foreign(store) {
        println!(
            "statistics: none kept for a raster gridstore did not write; chunks counted from its extent"
        );
    } else if !kept {
        println!(
            "statistics: not available (not kept for these contents, a write under way, or damaged: `gridstore verify` says which); chunks counted from a listing; `gridstore repair` rebuilds them"
        );
    }
    Ok(())
}

fn loc_name(loc: ChunkLoc) -> String {
    format!("level {} row {} col {}", loc.level, loc.row, loc.col)
}

/// Prints `chunks`.
///
/// # Errors
/// I/O.
pub fn print_chunks(store: &Store, level: Option<u8>, as_json: bool) -> anyhow::Result<()> {
    let grid = store.grid();
    let levels: Vec<u8> = match level {
        Some(l) => {
            grid.check_level(l)?;
            vec![l]
        }
        None => (0..=grid.top_level()).collect(),
    };
    let mut rows = Vec::new();
    for l in levels {
        for (t, loc, bytes) in store.list_chunks(l)? {
            rows.push((t, loc, bytes));
        }
    }
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(|(t, loc, bytes)| {
                json!({ "t": t, "level": loc.level, "row": loc.row, "col": loc.col, "bytes": bytes,
                        "key": store.chunk_name(*t, *loc), "extent": grid.chunk_extent(*loc) })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!(
        "{:>5} {:>5} {:>7} {:>7} {:>10}  extent",
        "t", "level", "row", "col", "bytes"
    );
    for (t, loc, bytes) in rows {
        println!(
            "{t:>5} {:>5} {:>7} {:>7} {bytes:>10}  {}",
            loc.level,
            loc.row,
            loc.col,
            grid.chunk_extent(loc)
        );
    }
    Ok(())
}

/// For a geographic CRS, the part of the grid's domain inside the CRS's
/// valid area (the grid itself is a power-of-two number of chunks wide,
/// centred on the anchor, so it reaches past ±180° and ±90°).
fn geographic_valid_area(store: &Store) -> Option<Extent> {
    // Only a geographic (or geodetic) CRS's WKT starts so: the others
    // never open the PROJ database (milliseconds of an `info` that
    // otherwise reads a few files).
    let wkt = &store.structure().crs.wkt;
    let keyword = crate::gdal_io::wkt_keyword(wkt);
    let geodetic = [
        "GEOGCS",
        "GEOGCRS",
        "GEODCRS",
        "GEOGRAPHICCRS",
        "GEODETICCRS",
    ];
    if !geodetic.contains(&keyword.as_str()) {
        return None;
    }
    let srs = crate::gdal_io::srs_from(wkt).ok()?;
    if !srs.is_geographic() {
        return None;
    }
    let [x0, y0, x1, y1] =
        crate::gdal_io::area_of_use(&srs).unwrap_or([-180.0, -90.0, 180.0, 90.0]);
    let d = store.grid().domain();
    Extent::new(
        d.min_x.max(x0),
        d.min_y.max(y0),
        d.max_x.min(x1),
        d.max_y.min(y1),
    )
    .ok()
}
