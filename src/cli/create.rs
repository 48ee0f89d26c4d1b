//! `gridstore create`.

use super::args::CreateArgs;
use crate::engine::grid::time::parse_time_axis;
use crate::engine::{Aggregator, Codec, Resampling, Store, Structure};
use crate::gdal_io::{Like, LikeOverrides, crs_of, domain_levels_for, parse_crs, structure_like};
use anyhow::{Context as _, bail};

/// Builds the structure from the arguments and creates the store; with
/// `--like`, says how a nodata value was chosen for a raster without one.
///
/// # Errors
/// Bad arguments, an unreadable `--like` raster, or a folder that exists
/// and is not empty.
pub fn create(args: &CreateArgs) -> anyhow::Result<Store> {
    let structure = structure_from(args)?;
    let layout = args.layout.layout(args.shard).map_err(anyhow::Error::msg)?;
    layout.check(&structure).map_err(anyhow::Error::msg)?;
    let storage = crate::storage::create(&args.store, args.backend)
        .with_context(|| format!("cannot create store {}", args.store.display()))?;
    Store::create_with_layout(storage, structure, layout)
        .with_context(|| format!("cannot create store {}", args.store.display()))
}

fn structure_from(args: &CreateArgs) -> anyhow::Result<Structure> {
    let mut s = if let Some(like) = &args.like {
        let overrides = LikeOverrides {
            crs: args.crs.clone(),
            dtype: args.dtype,
            nodata: args.nodata.map(super::args::NodataArg::value),
        };
        let Like {
            structure,
            nodata_note,
            time_note,
        } = structure_like(like, &overrides)?;
        if let Some(note) = nodata_note {
            eprintln!("nodata: {note}");
        }
        if let Some(note) = time_note.filter(|_| args.time.is_none()) {
            eprintln!("time: {note}");
        }
        if let Some(cell) = args.cell_size {
            structure_with_cell_size(structure, cell)
        } else {
            structure
        }
    } else {
        let (Some(crs), Some(cell), Some(origin)) = (&args.crs, args.cell_size, args.origin) else {
            bail!("give --like FILE, or all of --crs, --cell-size and --origin");
        };
        let srs = parse_crs(crs).map_err(|e| anyhow::anyhow!("--crs: {e}"))?;
        let dtype = args.dtype.unwrap_or(crate::engine::DType::F32);
        let chunk = args.chunk.unwrap_or([256, 256]);
        Structure {
            crs: crs_of(&srs),
            anchor: origin,
            cell_size: cell,
            chunk,
            domain_levels: domain_levels_for(&srs, origin, cell, chunk),
            dtype,
            nodata: args
                .nodata
                .map_or(Some(dtype.default_nodata()), super::args::NodataArg::value),
            codec: Codec::default(),
            aggregate: Aggregator::Mean,
            resampling: Resampling::Average,
            bands: None,
            time: None,
            time_levels: Vec::new(),
        }
    };
    if let Some(origin) = args.origin {
        s.anchor = origin;
    }
    if let Some(c) = args.chunk
        && c != s.chunk
    {
        // The domain is counted in chunks: keep its reach in cells.
        let reach = f64::from(s.chunk[0].max(s.chunk[1])) / f64::from(c[0].max(c[1]));
        s.domain_levels = levels_keeping_reach(s.domain_levels, reach);
        s.chunk = c;
    }
    if let Some(a) = args.aggregate {
        s.aggregate = a;
        if a.is_categorical() && args.resampling.is_none() {
            s.resampling = Resampling::Nearest;
        }
    }
    if let Some(r) = args.resampling {
        s.resampling = r;
    }
    if let Some(c) = args.codec {
        s.codec = c;
    }
    if let Some(b) = args.bands {
        // A store made like a raster holds that raster's bands.
        if let Some(like) = &args.like
            && s.band_count() != b as usize
        {
            bail!(
                "--bands {b}: {} has {} bands, and its ingest would be refused",
                like.display(),
                s.band_count()
            );
        }
        s.bands = Some(b);
    }
    if let Some(d) = args.domain_levels {
        s.domain_levels = d;
    }
    if let Some(t) = &args.time {
        s.time = Some(parse_time_axis(t).map_err(|e| anyhow::anyhow!("--time {e}"))?);
    }
    if let Some(levels) = &args.time_levels {
        s.time_levels = crate::engine::grid::period::TimeLevel::parse_list(levels)
            .map_err(|e| anyhow::anyhow!("--time-levels: {e}"))?;
    }
    if s.nodata.is_none() && s.dtype.is_float() {
        // NaN is never a value: it stays what marks empty cells.
        s.nodata = Some(f64::NAN);
        eprintln!(
            "nodata: a {} store keeps NaN, which is never a value, for empty cells; every other value is data",
            s.dtype
        );
    }
    s.validate().context("invalid structure")?;
    Ok(s)
}

/// `structure` with another base cell size: the domain keeps its reach in
/// CRS units as nearly as whole levels allow.
fn structure_with_cell_size(mut structure: Structure, cell: [f64; 2]) -> Structure {
    let reach = structure.cell_size[0].max(structure.cell_size[1]) / cell[0].max(cell[1]);
    structure.domain_levels = levels_keeping_reach(structure.domain_levels, reach);
    structure.cell_size = cell;
    structure
}

/// The domain levels that keep a domain's reach when each level's cells
/// (or chunks) become `1 / factor` as wide: whole levels, nearest.
fn levels_keeping_reach(levels: u8, factor: f64) -> u8 {
    #[allow(clippy::cast_possible_truncation)]
    let shift = factor.log2().round() as i32;
    let levels = i32::from(levels)
        .saturating_add(shift)
        .clamp(4, i32::from(crate::engine::MAX_DOMAIN_LEVELS));
    u8::try_from(levels).unwrap_or(crate::engine::DEFAULT_DOMAIN_LEVELS)
}
