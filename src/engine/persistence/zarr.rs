//! The Zarr v2 metadata that makes a store folder readable by zarr-python,
//! xarray and GDAL. docs/FORMAT.md is the specification; this module writes
//! it.

use crate::engine::grid::{ChunkLoc, Grid};
use crate::engine::{Codec, DType, Structure};
use serde_json::{Value, json};

/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Key of the root attributes, which hold the structure.
pub const ROOT_ATTRS: &str = ".zattrs";

/// Name of the array inside each level group.
pub const ARRAY: &str = "data";

/// The key prefix of level `level`'s array, e.g. `3/data`.
#[must_use]
pub fn level_prefix(level: u8) -> String {
    format!("{level}/{ARRAY}")
}

/// The key of a chunk: `<level>/data/[<t>/][0/]<row>/<col>`.
#[must_use]
pub fn chunk_key(structure: &Structure, t: u32, loc: ChunkLoc) -> String {
    let mut key = level_prefix(loc.level);
    if structure.time.is_some() {
        key.push_str(&format!("/{t}"));
    }
    if structure.bands.is_some() {
        key.push_str("/0");
    }
    key.push_str(&format!("/{}/{}", loc.row, loc.col));
    key
}

/// Parses a chunk key back into `(t, loc)`; `None` for other keys.
#[must_use]
pub fn parse_chunk_key(structure: &Structure, key: &str) -> Option<(u32, ChunkLoc)> {
    let mut parts = key.split('/');
    let level: u8 = parts.next()?.parse().ok()?;
    if parts.next()? != ARRAY {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    let want = 2 + usize::from(structure.time.is_some()) + usize::from(structure.bands.is_some());
    if rest.len() != want || rest.iter().any(|p| p.starts_with('.')) {
        return None;
    }
    let n = rest.len();
    let t = if structure.time.is_some() {
        rest[0].parse().ok()?
    } else {
        0
    };
    Some((
        t,
        ChunkLoc::new(level, rest[n - 2].parse().ok()?, rest[n - 1].parse().ok()?),
    ))
}

/// JSON for a Zarr v2 fill value.
fn fill_value(dtype: DType, nodata: f64) -> Value {
    if nodata.is_nan() {
        json!("NaN")
    } else if nodata.is_infinite() {
        json!(if nodata > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        })
    } else if dtype.is_float() {
        json!(nodata)
    } else {
        // Integral by validation; print without a fraction.
        #[allow(clippy::cast_possible_truncation)]
        let v = nodata as i64;
        json!(v)
    }
}

fn compressor_and_filters(codec: Codec) -> (Value, Value) {
    let crc = json!([{ "id": "crc32" }]);
    match codec {
        Codec::Zstd { level } => (json!({ "id": "zstd", "level": level }), Value::Null),
        Codec::Lz4 => (json!({ "id": "lz4", "acceleration": 1 }), crc),
        Codec::None => (Value::Null, crc),
    }
}

/// `.zarray` of one level, for a time axis of `time_len` instants.
#[must_use]
pub fn zarray(structure: &Structure, grid: &Grid, level: u8, time_len: u32) -> Value {
    let [cols, rows] = grid.cells(level);
    let [cw, ch] = structure.chunk;
    let mut shape = Vec::new();
    let mut chunks = Vec::new();
    if structure.time.is_some() {
        shape.push(u64::from(time_len));
        chunks.push(1);
    }
    if let Some(b) = structure.bands {
        shape.push(u64::from(b));
        chunks.push(u64::from(b));
    }
    shape.extend([rows, cols]);
    chunks.extend([u64::from(ch), u64::from(cw)]);
    let (compressor, filters) = compressor_and_filters(structure.codec);
    json!({
        "zarr_format": 2,
        "shape": shape,
        "chunks": chunks,
        "dtype": structure.dtype.zarr_name(),
        "compressor": compressor,
        "filters": filters,
        "fill_value": fill_value(structure.dtype, structure.nodata),
        "order": "C",
        "dimension_separator": "/",
    })
}

/// `.zattrs` of one level's array: xarray dimension names, GDAL's `_CRS`,
/// and the geotransform.
#[must_use]
pub fn array_attrs(structure: &Structure, grid: &Grid, level: u8) -> Value {
    let mut dims = Vec::new();
    if structure.time.is_some() {
        dims.push("time");
    }
    if structure.bands.is_some() {
        dims.push("band");
    }
    dims.extend(["y", "x"]);
    json!({
        "_ARRAY_DIMENSIONS": dims,
        "_CRS": { "wkt": structure.crs.wkt },
        "geotransform": grid.geotransform(level),
        "gridstore_level": level,
        "nodata": fill_value(structure.dtype, structure.nodata),
    })
}

/// The `multiscales` attribute of the root group.
#[must_use]
pub fn multiscales(structure: &Structure, grid: &Grid) -> Value {
    let datasets: Vec<Value> = (0..=grid.top_level())
        .map(|level| {
            json!({
                "path": level_prefix(level),
                "level": level,
                "cell_size": grid.cell_size(level),
                "geotransform": grid.geotransform(level),
                "matrix_size": [grid.chunks_per_side(level), grid.chunks_per_side(level)],
                "tile_size": structure.chunk,
            })
        })
        .collect();
    json!([{ "version": "0.4", "name": ARRAY, "type": structure.aggregate.name(), "datasets": datasets }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::structure::tests::sample;

    #[test]
    fn chunk_keys_round_trip() {
        let mut s = sample();
        let loc = ChunkLoc::new(2, 3, 1);
        assert_eq!(chunk_key(&s, 0, loc), "2/data/3/1");
        assert_eq!(parse_chunk_key(&s, "2/data/3/1"), Some((0, loc)));
        s.bands = Some(3);
        s.time = Some(crate::engine::TimeAxis::Irregular);
        assert_eq!(chunk_key(&s, 5, loc), "2/data/5/0/3/1");
        assert_eq!(parse_chunk_key(&s, "2/data/5/0/3/1"), Some((5, loc)));
        assert_eq!(parse_chunk_key(&s, "2/data/.zarray"), None);
    }

    #[test]
    fn zarray_describes_the_level() {
        let s = sample();
        let g = Grid::new(&s);
        let z = zarray(&s, &g, 1, 0);
        assert_eq!(z["shape"], json!([32, 32]));
        assert_eq!(z["chunks"], json!([4, 4]));
        assert_eq!(z["fill_value"], json!(-9999.0));
        assert_eq!(z["dtype"], json!("<f4"));
    }
}
