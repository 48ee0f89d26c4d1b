//! The Zarr v2 metadata that makes a store folder readable by zarr-python,
//! xarray and GDAL. docs/FORMAT.md is the specification; this module writes
//! it.

use crate::engine::grid::{Grid, Window};
use crate::engine::{Codec, DType, Structure};
use serde_json::{Value, json};

/// The on-disk format version this build writes.
pub const FORMAT_VERSION: u32 = 4;

/// The oldest format version this build still reads and writes (in its
/// own layout; `gridstore convert` upgrades it).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// Key of the root attributes, which hold the structure.
pub const ROOT_ATTRS: &str = ".zattrs";

/// Key of the consolidated metadata, at the root and in each level group.
pub const CONSOLIDATED: &str = ".zmetadata";

/// Name of the array inside each level group.
pub const ARRAY: &str = "data";

/// Name of the CF grid-mapping variable in each level group.
pub const GRID_MAPPING: &str = "spatial_ref";

/// The key prefix of level `level`'s array, e.g. `3/data`.
#[must_use]
pub fn level_prefix(level: u8) -> String {
    format!("{level}/{ARRAY}")
}

/// The key of the chunk at array index `(row, col)` of `level`:
/// `<level>/data/[<t>/][0/]<row>/<col>`.
#[must_use]
pub fn chunk_key(structure: &Structure, t: u32, level: u8, index: (u64, u64)) -> String {
    key_under(structure, level_prefix(level), t, index)
}

/// Parses a chunk key back into `(t, level, (row, col))`, the indices in
/// the level's array; `None` for other keys.
#[must_use]
pub fn parse_chunk_key(structure: &Structure, key: &str) -> Option<(u32, u8, (u64, u64))> {
    parse_key_under(structure, key, &[ARRAY])
}

/// The key below `array` (a key prefix) of the chunk, or shard, at index
/// `(row, col)` of time index `t`: the time index and the band chunk
/// (always 0) come first, for the axes the store has.
pub(crate) fn key_under(
    structure: &Structure,
    mut array: String,
    t: u32,
    (row, col): (u64, u64),
) -> String {
    if structure.time.is_some() {
        array.push_str(&format!("/{t}"));
    }
    if structure.bands.is_some() {
        array.push_str("/0");
    }
    array.push_str(&format!("/{row}/{col}"));
    array
}

/// Parses a key of [`key_under`] whose prefix is the level and then the
/// segments `below_level`, into `(t, level, (row, col))`; `None` for other
/// keys.
pub(crate) fn parse_key_under(
    structure: &Structure,
    key: &str,
    below_level: &[&str],
) -> Option<(u32, u8, (u64, u64))> {
    let mut parts = key.split('/');
    let level: u8 = parts.next()?.parse().ok()?;
    for segment in below_level {
        if parts.next()? != *segment {
            return None;
        }
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
    if structure.bands.is_some() && rest[n - 3] != "0" {
        return None;
    }
    Some((
        t,
        level,
        (rest[n - 2].parse().ok()?, rest[n - 1].parse().ok()?),
    ))
}

/// JSON for a Zarr v2 fill value.
pub(crate) fn fill_value(dtype: DType, nodata: f64) -> Value {
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

/// What the metadata of one level describes.
#[derive(Debug, Clone, Copy)]
pub struct LevelView<'a> {
    /// The level.
    pub level: u8,
    /// The chunks its array spans (chunk units, domain indices).
    pub chunks: Window,
    /// The instant of each time index (empty without a time axis).
    pub instants: &'a [i64],
    /// The format version written: 1 keeps version 1's metadata exactly.
    pub version: u32,
}

impl LevelView<'_> {
    /// The array's cells (rows, columns).
    pub(crate) fn cells(&self, structure: &Structure) -> (u64, u64) {
        let [cw, ch] = structure.chunk;
        (
            self.chunks.rows * u64::from(ch),
            self.chunks.cols * u64::from(cw),
        )
    }

    /// The GDAL geotransform of the array's first cell.
    #[must_use]
    pub fn geotransform(&self, structure: &Structure, grid: &Grid) -> [f64; 6] {
        let [cw, ch] = structure.chunk;
        let first = (
            self.chunks.row * u64::from(ch),
            self.chunks.col * u64::from(cw),
        );
        grid.geotransform(self.level, first)
    }
}

/// `.zarray` of one level's data array.
#[must_use]
pub fn zarray(structure: &Structure, view: &LevelView<'_>) -> Value {
    let (rows, cols) = view.cells(structure);
    let [cw, ch] = structure.chunk;
    let mut shape = Vec::new();
    let mut chunks = Vec::new();
    if structure.time.is_some() {
        shape.push(view.instants.len() as u64);
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
        // Without nodata no value is missing: null keeps xarray from
        // masking the zeros (Zarr readers fill absent chunks with 0).
        "fill_value": structure.nodata.map_or(Value::Null, |n| fill_value(structure.dtype, n)),
        "order": "C",
        "dimension_separator": "/",
    })
}

/// The dimension names of the data array, outermost first.
pub(crate) fn dimensions(structure: &Structure) -> Vec<&'static str> {
    let mut dims = Vec::new();
    if structure.time.is_some() {
        dims.push("time");
    }
    if structure.bands.is_some() {
        dims.push("band");
    }
    dims.extend(["y", "x"]);
    dims
}

/// `.zattrs` of one level's data array: xarray dimension names, GDAL's
/// `_CRS`, the geotransform, and from version 2 the CF grid mapping.
#[must_use]
pub fn array_attrs(structure: &Structure, grid: &Grid, view: &LevelView<'_>) -> Value {
    let mut attrs = json!({
        "_ARRAY_DIMENSIONS": dimensions(structure),
        "_CRS": { "wkt": structure.crs.wkt },
        "geotransform": view.geotransform(structure, grid),
        "gridstore_level": view.level,
        "nodata": structure.nodata.map_or(Value::Null, |n| fill_value(structure.dtype, n)),
    });
    if view.version >= 2 {
        attrs["grid_mapping"] = json!(GRID_MAPPING);
        attrs["coordinates"] = json!(GRID_MAPPING);
    }
    attrs
}

/// The UDUNITS name of a projected CRS's linear unit: the last unit its
/// WKT names (WKT1's `UNIT`, WKT2's `LENGTHUNIT`), `m` for metres and
/// when the WKT names none.
fn linear_unit(wkt: &str) -> String {
    let name = wkt
        .rsplit("UNIT[\"")
        .next()
        .filter(|_| wkt.contains("UNIT[\""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("metre");
    match name.to_ascii_lowercase().as_str() {
        "metre" | "meter" | "m" => "m".into(),
        "foot" | "ft" | "international foot" => "ft".into(),
        "us survey foot" | "foot_us" => "US_survey_foot".into(),
        _ => name.to_string(),
    }
}

/// A one-chunk, uncompressed 1-D (or, with no `len`, 0-D) array.
fn plain_array(dtype: &str, len: Option<usize>) -> Value {
    let (shape, chunks) = match len {
        Some(n) => (json!([n]), json!([n.max(1)])),
        None => (json!([]), json!([])),
    };
    json!({
        "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": dtype,
        "compressor": null, "filters": null, "fill_value": null, "order": "C",
    })
}

fn f64_bytes(values: impl Iterator<Item = f64>) -> Vec<u8> {
    values.flat_map(f64::to_le_bytes).collect()
}

/// A coordinate (`x`, `y`, `band`, `time`) or the grid mapping
/// (`spatial_ref`) of a level group: a small uncompressed array in one
/// chunk, the same in both layouts but for how its metadata is written.
#[derive(Debug, Clone)]
pub(crate) struct Variable {
    /// Its name in the level group.
    pub name: &'static str,
    /// `true`: f64 cells; `false`: i64.
    pub float: bool,
    /// Its cells, little-endian.
    pub values: Vec<u8>,
    /// Its length; `None` for a 0-D array.
    pub len: Option<usize>,
    /// Its attributes (the dimension names apart).
    pub attrs: serde_json::Map<String, Value>,
}

impl Variable {
    /// Its dimension names: its own name, or none for a 0-D array.
    pub fn dimensions(&self) -> Vec<&'static str> {
        if self.len.is_some() {
            vec![self.name]
        } else {
            Vec::new()
        }
    }
}

fn attrs_of(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// The coordinates and grid mapping of one level (version 2 on).
pub(crate) fn variables(structure: &Structure, grid: &Grid, view: &LevelView<'_>) -> Vec<Variable> {
    let gt = view.geotransform(structure, grid);
    let (rows, cols) = view.cells(structure);
    let wkt = &structure.crs.wkt;
    let geographic = ["GEOGCS[", "GEOGCRS[", "GEODCRS["]
        .iter()
        .any(|k| wkt.starts_with(k));
    let (x_name, y_name, unit) = if geographic {
        (
            "longitude",
            "latitude",
            ["degrees_east".to_string(), "degrees_north".to_string()],
        )
    } else {
        let unit = linear_unit(wkt);
        (
            "projection_x_coordinate",
            "projection_y_coordinate",
            [unit.clone(), unit],
        )
    };
    // Cell centres along each axis: x from the first column, y from the
    // first row.
    let axes = [
        ("x", cols, gt[0], gt[1], x_name, &unit[0], "X"),
        ("y", rows, gt[3], gt[5], y_name, &unit[1], "Y"),
    ];
    let mut variables: Vec<Variable> = axes
        .into_iter()
        .map(|(name, n, first, step, standard_name, units, axis)| {
            #[allow(clippy::cast_precision_loss)]
            let centres = (0..n).map(|i| first + (i as f64 + 0.5) * step);
            Variable {
                name,
                float: true,
                values: f64_bytes(centres),
                len: Some(n as usize),
                attrs: attrs_of(
                    json!({ "standard_name": standard_name, "units": units, "axis": axis }),
                ),
            }
        })
        .collect();
    if let Some(bands) = structure.bands {
        variables.push(Variable {
            name: "band",
            float: false,
            values: (1..=bands)
                .flat_map(|b| i64::from(b).to_le_bytes())
                .collect(),
            len: Some(bands as usize),
            attrs: attrs_of(json!({ "long_name": "band number" })),
        });
    }
    if structure.time.is_some() {
        variables.push(Variable {
            name: "time",
            float: false,
            values: view.instants.iter().flat_map(|t| t.to_le_bytes()).collect(),
            len: Some(view.instants.len()),
            attrs: attrs_of(json!({
                "standard_name": "time", "axis": "T",
                "units": "seconds since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian",
            })),
        });
    }
    let transform = gt.iter().map(f64::to_string).collect::<Vec<_>>().join(" ");
    variables.push(Variable {
        name: GRID_MAPPING,
        float: false,
        values: 0i64.to_le_bytes().to_vec(),
        len: None,
        attrs: attrs_of(json!({
            "crs_wkt": structure.crs.wkt,
            "spatial_ref": structure.crs.wkt,
            "GeoTransform": transform,
            "long_name": structure.crs.name,
        })),
    });
    variables
}

/// Objects to write, as `(key, bytes)`; `None` bytes: the object must not
/// exist.
pub type Objects = Vec<(String, Option<Vec<u8>>)>;

/// Every metadata and coordinate object of one level's group, as
/// `(key, bytes)`: the group, the data array's `.zarray` and `.zattrs`,
/// and from version 2 the `x`, `y`, `band` and `time` coordinates and the
/// `spatial_ref` grid mapping. `None` bytes: the object must not exist (the
/// chunk of a coordinate of length 0).
#[must_use]
pub fn level_objects(structure: &Structure, grid: &Grid, view: &LevelView<'_>) -> Objects {
    let level = view.level;
    let doc = |v: &Value| Some(serde_json::to_vec_pretty(v).unwrap_or_default());
    let prefix = level_prefix(level);
    let mut objects = vec![
        (
            format!("{level}/.zgroup"),
            doc(&json!({ "zarr_format": 2 })),
        ),
        (format!("{prefix}/.zarray"), doc(&zarray(structure, view))),
        (
            format!("{prefix}/.zattrs"),
            doc(&array_attrs(structure, grid, view)),
        ),
    ];
    if view.version < 2 {
        return objects;
    }
    objects.push((
        format!("{level}/.zattrs"),
        doc(&level_group_attrs(structure, grid, view)),
    ));
    for variable in variables(structure, grid, view) {
        let name = variable.name;
        let dtype = if variable.float { "<f8" } else { "<i8" };
        let mut attrs = variable.attrs.clone();
        attrs.insert("_ARRAY_DIMENSIONS".into(), json!(variable.dimensions()));
        objects.push((
            format!("{level}/{name}/.zarray"),
            doc(&plain_array(dtype, variable.len)),
        ));
        objects.push((
            format!("{level}/{name}/.zattrs"),
            doc(&Value::Object(attrs)),
        ));
        let empty = variable.len == Some(0);
        objects.push((
            format!("{level}/{name}/0"),
            (!empty).then_some(variable.values),
        ));
    }
    objects
}

/// The consolidated metadata (`.zmetadata`) of the JSON objects `objects`
/// (keys relative to where it is written), so that a reader opens the
/// hierarchy in one read.
#[must_use]
pub fn consolidated<'a>(objects: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let metadata: serde_json::Map<String, Value> = objects
        .filter(|(key, _)| {
            let name = key.rsplit('/').next().unwrap_or(key);
            matches!(name, ".zgroup" | ".zattrs" | ".zarray")
        })
        .filter_map(|(key, bytes)| Some((key.to_string(), serde_json::from_slice(bytes).ok()?)))
        .collect();
    serde_json::to_vec_pretty(&json!({ "zarr_consolidated_format": 1, "metadata": metadata }))
        .unwrap_or_default()
}

/// The GeoZarr conventions a version-2 group follows, as its
/// `zarr_conventions` attribute lists them: `multiscales` (root only),
/// `proj:` and `spatial:`.
fn conventions(root: bool) -> Value {
    let convention = |uuid: &str, name: &str, repository: &str, description: &str| {
        json!({
            "uuid": uuid,
            "name": name,
            "schema_url": format!("https://raw.githubusercontent.com/{repository}/refs/tags/v1/schema.json"),
            "spec_url": format!("https://github.com/{repository}/blob/v1/README.md"),
            "description": description,
        })
    };
    let mut list = Vec::new();
    if root {
        list.push(convention(
            "d35379db-88df-4056-af3a-620245f8e347",
            "multiscales",
            "zarr-conventions/multiscales",
            "Multiscale layout of zarr datasets",
        ));
    }
    list.push(convention(
        "f17cb550-5864-4468-aeb7-f3180cfb622f",
        "proj:",
        "zarr-experimental/geo-proj",
        "Coordinate reference system information for geospatial data",
    ));
    list.push(convention(
        "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4",
        "spatial:",
        "zarr-conventions/spatial",
        "Spatial coordinate information",
    ));
    Value::Array(list)
}

/// The `proj:` attributes of the store's CRS: its EPSG code and, when the
/// WKT is WKT2, the WKT.
fn proj(structure: &Structure) -> serde_json::Map<String, Value> {
    let mut attrs = serde_json::Map::new();
    if let Some(code) = structure.crs.epsg {
        attrs.insert("proj:code".into(), json!(format!("EPSG:{code}")));
    }
    let wkt2 = [
        "PROJCRS[",
        "GEOGCRS[",
        "GEODCRS[",
        "BOUNDCRS[",
        "COMPOUNDCRS[",
        "ENGCRS[",
    ];
    if wkt2.iter().any(|k| structure.crs.wkt.starts_with(k)) {
        attrs.insert("proj:wkt2".into(), json!(structure.crs.wkt));
    }
    attrs
}

/// The affine transform (a, b, c, d, e, f: x = a·col + b·row + c) of a
/// GDAL geotransform.
fn affine(gt: [f64; 6]) -> Value {
    json!([gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]])
}

/// The `.zattrs` of a version-2 level group: the GeoZarr `proj:` and
/// `spatial:` attributes of its array.
pub(crate) fn level_group_attrs(structure: &Structure, grid: &Grid, view: &LevelView<'_>) -> Value {
    let gt = view.geotransform(structure, grid);
    let (rows, cols) = view.cells(structure);
    #[allow(clippy::cast_precision_loss)]
    let (w, h) = (cols as f64 * gt[1], rows as f64 * gt[5]);
    let mut attrs = proj(structure);
    attrs.insert("zarr_conventions".into(), conventions(false));
    attrs.insert("spatial:dimensions".into(), json!(["y", "x"]));
    attrs.insert("spatial:transform".into(), affine(gt));
    attrs.insert("spatial:shape".into(), json!([rows, cols]));
    attrs.insert(
        "spatial:bbox".into(),
        json!([gt[0], gt[3] + h, gt[0] + w, gt[3]]),
    );
    attrs.insert("spatial:registration".into(), json!("pixel"));
    Value::Object(attrs)
}

/// The root group's GeoZarr attributes (version 2): the conventions, the
/// `multiscales` layout (each level derived from the one below by the
/// store's aggregator, its cells twice as large, translated by where the
/// level below's first cell lies in this level's cells, rows then
/// columns), and `proj:`.
#[must_use]
pub fn geozarr_root(
    structure: &Structure,
    grid: &Grid,
    views: &[LevelView<'_>],
) -> serde_json::Map<String, Value> {
    let [cw, ch] = structure.chunk;
    #[allow(clippy::cast_precision_loss)]
    let origin = |view: &LevelView<'_>| {
        (
            (view.chunks.row * u64::from(ch)) as f64,
            (view.chunks.col * u64::from(cw)) as f64,
        )
    };
    let layout: Vec<Value> = views
        .iter()
        .map(|view| {
            let (rows, cols) = view.cells(structure);
            let mut entry = json!({
                "asset": view.level.to_string(),
                "spatial:transform": affine(view.geotransform(structure, grid)),
                "spatial:shape": [rows, cols],
            });
            let below = view
                .level
                .checked_sub(1)
                .and_then(|b| views.get(usize::from(b)));
            match below {
                None => {
                    entry["transform"] = json!({ "scale": [1.0, 1.0], "translation": [0.0, 0.0] });
                }
                Some(below) => {
                    let ((r, c), (r0, c0)) = (origin(below), origin(view));
                    entry["derived_from"] = json!(below.level.to_string());
                    entry["transform"] = json!({
                        "scale": [2.0, 2.0],
                        "translation": [r / 2.0 - r0, c / 2.0 - c0],
                    });
                    entry["resampling_method"] = json!(structure.aggregate.name());
                }
            }
            entry
        })
        .collect();
    let mut attrs = proj(structure);
    attrs.insert("zarr_conventions".into(), conventions(true));
    attrs.insert(
        "multiscales".into(),
        json!({ "layout": layout, "resampling_method": structure.aggregate.name() }),
    );
    attrs.insert("spatial:dimensions".into(), json!(["y", "x"]));
    attrs
}

/// The `multiscales` attribute of a version-1 root group: one dataset per
/// level with its array's geotransform and size in chunks.
#[must_use]
pub fn multiscales(structure: &Structure, grid: &Grid, views: &[LevelView<'_>]) -> Value {
    let datasets: Vec<Value> = views
        .iter()
        .map(|view| {
            json!({
                "path": level_prefix(view.level),
                "level": view.level,
                "cell_size": grid.cell_size(view.level),
                "geotransform": view.geotransform(structure, grid),
                "matrix_size": [view.chunks.cols, view.chunks.rows],
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
        assert_eq!(chunk_key(&s, 0, 2, (3, 1)), "2/data/3/1");
        assert_eq!(parse_chunk_key(&s, "2/data/3/1"), Some((0, 2, (3, 1))));
        s.bands = Some(3);
        s.time = Some(crate::engine::TimeAxis::Irregular);
        assert_eq!(chunk_key(&s, 5, 2, (3, 1)), "2/data/5/0/3/1");
        assert_eq!(parse_chunk_key(&s, "2/data/5/0/3/1"), Some((5, 2, (3, 1))));
        assert_eq!(parse_chunk_key(&s, "2/data/5/1/3/1"), None);
        assert_eq!(parse_chunk_key(&s, "2/data/.zarray"), None);
    }

    fn view(version: u32) -> LevelView<'static> {
        LevelView {
            level: 1,
            chunks: Window {
                row: 2,
                col: 3,
                rows: 2,
                cols: 1,
            },
            instants: &[],
            version,
        }
    }

    #[test]
    fn zarray_describes_the_array_not_the_domain() {
        let s = sample();
        let z = zarray(&s, &view(2));
        assert_eq!(z["shape"], json!([8, 4]));
        assert_eq!(z["chunks"], json!([4, 4]));
        assert_eq!(z["fill_value"], json!(-9999.0));
        assert_eq!(z["dtype"], json!("<f4"));
    }

    #[test]
    fn coordinates_are_cell_centres_of_the_array() {
        let s = sample();
        let g = Grid::new(&s);
        assert_eq!(
            linear_unit(
                "PROJCS[\"x\",GEOGCS[\"y\",UNIT[\"degree\",0.01]],UNIT[\"US survey foot\",0.3048]]"
            ),
            "US_survey_foot"
        );
        assert_eq!(linear_unit("LOCAL_CS[\"test\"]"), "m");
        let objects = level_objects(&s, &g, &view(2));
        let find = |k: &str| {
            objects
                .iter()
                .find(|(key, _)| key == k)
                .unwrap()
                .1
                .as_ref()
                .unwrap()
        };
        let x: Vec<f64> = find("1/x/0")
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let gt = view(2).geotransform(&s, &g);
        assert_eq!(x.len(), 4);
        assert_eq!(x[0], gt[0] + 10.0, "level 1 cells are 20 wide");
        assert_eq!(gt[0], g.x_of(1, 12));
        let attrs: Value = serde_json::from_slice(find("1/data/.zattrs")).unwrap();
        assert_eq!(attrs["grid_mapping"], json!("spatial_ref"));
        // Version 1 metadata stays as it was: no coordinates.
        assert_eq!(level_objects(&s, &g, &view(1)).len(), 3);
    }
}
