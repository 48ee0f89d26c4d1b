//! The Zarr v3 metadata of the `zarr3` layout: the same hierarchy, data
//! arrays, coordinates and GeoZarr attributes as `zarr2` (see
//! [`super::zarr`]), written as `zarr.json` documents, with the data
//! arrays' chunks in shards (see [`super::shard`]) and consolidated
//! metadata inline in the root's and each level's `zarr.json`.

use super::layout::Layout;
use super::zarr::{
    ARRAY, LevelView, Objects, Variable, array_attrs, dimensions, fill_value, key_under,
    level_group_attrs, parse_key_under, variables,
};
use crate::engine::grid::Grid;
use crate::engine::{Codec, DType, Structure};
use serde_json::{Map, Value, json};

/// Key of the root group's metadata, whose attributes hold the structure.
pub const ROOT: &str = "zarr.json";

/// The key of the shard at shard index `(row, col)` of `level`'s array:
/// `<level>/data/c/[<t>/][0/]<row>/<col>` (the default chunk key encoding
/// with `/`).
#[must_use]
pub fn shard_key(structure: &Structure, t: u32, level: u8, index: (u64, u64)) -> String {
    key_under(structure, format!("{level}/{ARRAY}/c"), t, index)
}

/// Parses a shard key back into `(t, level, (row, col))`, the shard's
/// indices in its level's array; `None` for other keys.
#[must_use]
pub fn parse_shard_key(structure: &Structure, key: &str) -> Option<(u32, u8, (u64, u64))> {
    parse_key_under(structure, key, &[ARRAY, "c"])
}

/// The Zarr v3 name of a cell type.
fn data_type(dtype: DType) -> &'static str {
    match dtype {
        DType::U8 => "uint8",
        DType::I8 => "int8",
        DType::U16 => "uint16",
        DType::I16 => "int16",
        DType::U32 => "uint32",
        DType::I32 => "int32",
        DType::F32 => "float32",
        DType::F64 => "float64",
    }
}

/// `_FillValue` as xarray reads it from a Zarr v3 array's attributes: an
/// integer, or for floats the base64 of the value as a little-endian f64.
fn xarray_fill_value(dtype: DType, nodata: f64) -> Value {
    if !dtype.is_float() {
        return fill_value(dtype, nodata);
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = nodata.to_le_bytes();
    let mut text = String::with_capacity(12);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                text.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    Value::String(text)
}

/// The `bytes` codec: little-endian, for cells wider than a byte.
fn bytes_codec(dtype: DType) -> Value {
    if dtype.size() > 1 {
        json!({ "name": "bytes", "configuration": { "endian": "little" } })
    } else {
        json!({ "name": "bytes" })
    }
}

/// The inner chunks' codecs: the store's codec, then `crc32c`.
fn inner_codecs(structure: &Structure) -> Value {
    let mut codecs = vec![bytes_codec(structure.dtype)];
    if let Codec::Zstd { level } = structure.codec {
        codecs
            .push(json!({ "name": "zstd", "configuration": { "level": level, "checksum": true } }));
    }
    codecs.push(json!({ "name": "crc32c" }));
    Value::Array(codecs)
}

/// `zarr.json` of one level's data array: shards of
/// `layout.shard_side(level)` chunks per side.
#[must_use]
pub fn data_array(
    structure: &Structure,
    grid: &Grid,
    view: &LevelView<'_>,
    layout: Layout,
) -> Value {
    let (rows, cols) = view.cells(structure);
    let [cw, ch] = structure.chunk;
    let side = u64::from(layout.shard_side(view.level));
    let mut shape = Vec::new();
    let mut inner = Vec::new();
    if structure.time.is_some() {
        shape.push(view.instants.len() as u64);
        inner.push(1);
    }
    if let Some(b) = structure.bands {
        shape.push(u64::from(b));
        inner.push(u64::from(b));
    }
    shape.extend([rows, cols]);
    let mut outer = inner.clone();
    inner.extend([u64::from(ch), u64::from(cw)]);
    outer.extend([u64::from(ch) * side, u64::from(cw) * side]);
    let mut attributes = match array_attrs(structure, grid, view) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    attributes.remove("_ARRAY_DIMENSIONS");
    // Without nodata no value is missing: Zarr v3 needs a fill value, but
    // only `_FillValue` makes xarray mask one.
    if let Some(nodata) = structure.nodata {
        attributes.insert(
            "_FillValue".into(),
            xarray_fill_value(structure.dtype, nodata),
        );
    }
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": data_type(structure.dtype),
        "chunk_grid": { "name": "regular", "configuration": { "chunk_shape": outer } },
        "chunk_key_encoding": { "name": "default", "configuration": { "separator": "/" } },
        "fill_value": fill_value(structure.dtype, structure.nodata.unwrap_or(0.0)),
        "codecs": [{
            "name": "sharding_indexed",
            "configuration": {
                "chunk_shape": inner,
                "codecs": inner_codecs(structure),
                "index_codecs": [
                    { "name": "bytes", "configuration": { "endian": "little" } },
                    { "name": "crc32c" },
                ],
                "index_location": "end",
            },
        }],
        "attributes": attributes,
        "dimension_names": dimensions(structure),
    })
}

/// `zarr.json` of a coordinate or the grid mapping: one uncompressed chunk.
fn variable_array(variable: &Variable) -> Value {
    let shape: Vec<usize> = variable.len.into_iter().collect();
    let chunk: Vec<usize> = variable.len.map(|n| n.max(1)).into_iter().collect();
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": if variable.float { "float64" } else { "int64" },
        "chunk_grid": { "name": "regular", "configuration": { "chunk_shape": chunk } },
        "chunk_key_encoding": { "name": "default", "configuration": { "separator": "/" } },
        "fill_value": if variable.float { json!("NaN") } else { json!(0) },
        "codecs": [{ "name": "bytes", "configuration": { "endian": "little" } }],
        "attributes": variable.attrs,
        "dimension_names": variable.dimensions(),
    })
}

/// A group's `zarr.json` with `attributes` and, when given, the
/// consolidated metadata of the nodes below it (keys relative to it).
#[must_use]
pub fn group(attributes: Value, consolidated: Option<Map<String, Value>>) -> Value {
    let mut group = json!({ "zarr_format": 3, "node_type": "group", "attributes": attributes });
    if let Some(metadata) = consolidated {
        group["consolidated_metadata"] =
            json!({ "kind": "inline", "must_understand": false, "metadata": metadata });
    }
    group
}

/// Every object of one level: the data array's and the coordinates'
/// `zarr.json` and the coordinates' chunks, as `(key, bytes)` (`None`: must
/// not exist, the chunk of a coordinate of length 0), and the level group's
/// `zarr.json` with its consolidated metadata, as a document (the root's
/// consolidated metadata takes it too).
#[must_use]
pub fn level_objects(
    structure: &Structure,
    grid: &Grid,
    view: &LevelView<'_>,
    layout: Layout,
) -> (Objects, Value) {
    let level = view.level;
    let doc = |v: &Value| Some(serde_json::to_vec_pretty(v).unwrap_or_default());
    let mut nodes = Map::new();
    let data = data_array(structure, grid, view, layout);
    let mut objects = vec![(format!("{level}/{ARRAY}/{ROOT}"), doc(&data))];
    nodes.insert(ARRAY.into(), data);
    for variable in variables(structure, grid, view) {
        let name = variable.name;
        let meta = variable_array(&variable);
        objects.push((format!("{level}/{name}/{ROOT}"), doc(&meta)));
        let chunk = if variable.len.is_some() {
            format!("{level}/{name}/c/0")
        } else {
            format!("{level}/{name}/c")
        };
        let empty = variable.len == Some(0);
        objects.push((chunk, (!empty).then_some(variable.values)));
        nodes.insert(name.into(), meta);
    }
    let group = group(level_group_attrs(structure, grid, view), Some(nodes));
    (objects, group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::Window;
    use crate::engine::grid::structure::tests::sample;

    #[test]
    fn shard_keys_round_trip() {
        let mut s = sample();
        assert_eq!(shard_key(&s, 0, 2, (3, 1)), "2/data/c/3/1");
        assert_eq!(parse_shard_key(&s, "2/data/c/3/1"), Some((0, 2, (3, 1))));
        assert_eq!(parse_shard_key(&s, "2/data/3/1"), None);
        s.bands = Some(3);
        s.time = Some(crate::engine::TimeAxis::Irregular);
        assert_eq!(shard_key(&s, 5, 2, (3, 1)), "2/data/c/5/0/3/1");
        assert_eq!(
            parse_shard_key(&s, "2/data/c/5/0/3/1"),
            Some((5, 2, (3, 1)))
        );
        assert_eq!(parse_shard_key(&s, "2/data/zarr.json"), None);
    }

    #[test]
    fn the_data_array_is_sharded_with_checksums() {
        let s = sample();
        let g = Grid::new(&s);
        let view = LevelView {
            level: 1,
            chunks: Window {
                row: 0,
                col: 4,
                rows: 4,
                cols: 8,
            },
            instants: &[],
            version: 2,
        };
        let a = data_array(&s, &g, &view, Layout::Zarr3 { shard: 8 });
        assert_eq!(a["shape"], json!([16, 32]));
        assert_eq!(
            a["chunk_grid"]["configuration"]["chunk_shape"],
            json!([16, 16])
        );
        let sharding = &a["codecs"][0]["configuration"];
        assert_eq!(sharding["chunk_shape"], json!([4, 4]));
        assert_eq!(sharding["codecs"][2]["name"], json!("crc32c"));
        assert_eq!(sharding["index_codecs"][1]["name"], json!("crc32c"));
        assert_eq!(a["dimension_names"], json!(["y", "x"]));
        // -9999.0 as xarray encodes a float fill value: base64 of the f64.
        assert_eq!(a["attributes"]["_FillValue"], json!("AAAAAICHw8A="));
        assert_eq!(
            xarray_fill_value(DType::F64, f64::NAN),
            json!("AAAAAAAA+H8=")
        );
        assert_eq!(xarray_fill_value(DType::I16, -32768.0), json!(-32768));
        assert_eq!(a["attributes"]["grid_mapping"], json!("spatial_ref"));
    }
}
