//! `gridstore create`.

use super::args::CreateArgs;
use crate::engine::time::parse_time_axis;
use crate::engine::{Aggregator, Codec, Resampling, Store, Structure};
use crate::gdal_io::{crs_of, domain_levels_for, srs_from, structure_like};
use anyhow::{Context as _, bail};

/// Builds the structure from the arguments and creates the store.
///
/// # Errors
/// Bad arguments, an unreadable `--like` raster, or a folder that exists
/// and is not empty.
pub fn create(args: &CreateArgs) -> anyhow::Result<Store> {
    let structure = structure_from(args)?;
    let storage = crate::storage::create(&args.store, args.backend)
        .with_context(|| format!("cannot create store {}", args.store.display()))?;
    Store::create(storage, structure)
        .with_context(|| format!("cannot create store {}", args.store.display()))
}

fn structure_from(args: &CreateArgs) -> anyhow::Result<Structure> {
    let mut s = if let Some(like) = &args.like {
        structure_like(like)?
    } else {
        let (Some(crs), Some(cell), Some(origin)) = (&args.crs, args.cell_size, args.origin) else {
            bail!("give --like FILE, or all of --crs, --cell-size and --origin");
        };
        let srs = srs_from(crs)
            .map_err(|e| anyhow::anyhow!("--crs '{crs}' is not a CRS GDAL knows ({e})"))?;
        let dtype = args.dtype.unwrap_or(crate::engine::DType::F32);
        let chunk = args.chunk.unwrap_or([256, 256]);
        Structure {
            crs: crs_of(&srs),
            anchor: origin,
            cell_size: cell,
            chunk,
            domain_levels: domain_levels_for(&srs, origin, cell, chunk),
            dtype,
            nodata: dtype.default_nodata(),
            codec: Codec::default(),
            aggregate: Aggregator::Mean,
            resampling: Resampling::Average,
            bands: None,
            time: None,
        }
    };
    if let Some(d) = args.dtype {
        if args.like.is_some() && args.nodata.is_none() && !d.holds(s.nodata) {
            s.nodata = d.default_nodata();
        }
        s.dtype = d;
    }
    if let Some(v) = args.nodata {
        s.nodata = v;
    }
    if let Some(c) = args.chunk
        && c != s.chunk
    {
        // The domain is counted in chunks: keep its reach in cells.
        let reach = f64::from(s.chunk[0].max(s.chunk[1])) / f64::from(c[0].max(c[1]));
        #[allow(clippy::cast_possible_truncation)]
        let shift = reach.log2().round() as i32;
        let levels = (i32::from(s.domain_levels) + shift)
            .clamp(4, i32::from(crate::engine::MAX_DOMAIN_LEVELS));
        s.domain_levels = u8::try_from(levels).unwrap_or(s.domain_levels);
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
        s.bands = Some(b);
    }
    if let Some(d) = args.domain_levels {
        s.domain_levels = d;
    }
    if let Some(t) = &args.time {
        s.time = Some(parse_time_axis(t).map_err(|e| anyhow::anyhow!("--time {e}"))?);
    }
    s.validate().context("invalid structure")?;
    Ok(s)
}
