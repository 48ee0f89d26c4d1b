//! Zarr stores other tools wrote, as foreign stores, read through zarrs
//! (Zarr v2 and v3, any codec zarrs reads, sharding included):
//!
//! - a GeoZarr multiscale group (the zarr-conventions `multiscales`
//!   layout): each level a group holding the variable, its coarser levels
//!   used for the store's coarser levels;
//! - a group holding one variable over `y` and `x` (and optionally a band
//!   axis first) with 1-D `x` and `y` cell-centre coordinates, as xarray and
//!   rioxarray write it, or a path to one variable of such a group;
//! - an array whose attributes carry `spatial:transform`, or GDAL's
//!   `geotransform`.
//!
//! The CRS comes from `proj:code` or `proj:wkt2`, from the CF grid mapping
//! the variable names (`crs_wkt` or `spatial_ref`), or from GDAL's `_CRS`.

use super::{CellReader, Model, Reduce};
use crate::engine::{BandInfo, DType, Extent};
use crate::gdal_io::{srs_from, structure_for};
use serde_json::{Map, Value};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;

/// Whether `path` is a Zarr store, group or array (v2 or v3).
pub(super) fn is_zarr(path: &Path) -> bool {
    path.is_dir()
        && [".zgroup", ".zarray", "zarr.json"]
            .iter()
            .any(|f| path.join(f).is_file())
}

/// Whether `path` is a Zarr store whose root metadata is JSON.
pub(super) fn has_json_root(path: &Path) -> bool {
    [".zgroup", ".zarray", "zarr.json"].iter().any(|f| {
        std::fs::read(path.join(f))
            .is_ok_and(|bytes| serde_json::from_slice::<Value>(&bytes).is_ok())
    })
}

/// One node's metadata, as read from its JSON.
#[derive(Debug, Clone)]
struct Node {
    /// Its path below the store's root ("" for the root).
    at: String,
    /// Whether it is an array.
    array: bool,
    /// An array's shape.
    shape: Vec<u64>,
    /// An array's dimension names.
    dims: Vec<String>,
    /// An array's cell type.
    dtype: Option<DType>,
    /// A Zarr v2 array's `fill_value`, where it is a number (xarray reads it
    /// as the variable's `_FillValue`).
    fill_v2: Option<f64>,
    /// Its attributes.
    attrs: Map<String, Value>,
}

/// Reads the metadata of the node at `at` below `root`.
fn node(root: &Path, at: &str) -> Result<Node, String> {
    let dir = root.join(at);
    let json = |file: &str| -> Result<Option<Value>, String> {
        match std::fs::read(dir.join(file)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: not JSON ({e})", dir.join(file).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", dir.join(file).display())),
        }
    };
    let object = |v: Option<Value>| match v {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let shape = |v: Option<&Value>| -> Vec<u64> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    if let Some(v3) = json("zarr.json")? {
        let array = v3.get("node_type").and_then(Value::as_str) == Some("array");
        return Ok(Node {
            at: at.into(),
            array,
            shape: shape(v3.get("shape")),
            dims: strings(v3.get("dimension_names")),
            dtype: v3
                .get("data_type")
                .and_then(Value::as_str)
                .and_then(dtype_v3),
            fill_v2: None,
            attrs: object(v3.get("attributes").cloned()),
        });
    }
    let attrs = object(json(".zattrs")?);
    if let Some(v2) = json(".zarray")? {
        return Ok(Node {
            at: at.into(),
            array: true,
            shape: shape(v2.get("shape")),
            dims: strings(attrs.get("_ARRAY_DIMENSIONS")),
            dtype: v2.get("dtype").and_then(Value::as_str).and_then(dtype_v2),
            fill_v2: match v2.get("fill_value") {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) if s.eq_ignore_ascii_case("nan") => Some(f64::NAN),
                _ => None,
            },
            attrs,
        });
    }
    if json(".zgroup")?.is_some() {
        return Ok(Node {
            at: at.into(),
            array: false,
            shape: Vec::new(),
            dims: Vec::new(),
            dtype: None,
            fill_v2: None,
            attrs,
        });
    }
    Err(format!("{}: no Zarr metadata there", dir.display()))
}

fn dtype_v3(name: &str) -> Option<DType> {
    Some(match name {
        "uint8" => DType::U8,
        "int8" => DType::I8,
        "uint16" => DType::U16,
        "int16" => DType::I16,
        "uint32" => DType::U32,
        "int32" => DType::I32,
        "float32" => DType::F32,
        "float64" => DType::F64,
        _ => return None,
    })
}

fn dtype_v2(name: &str) -> Option<DType> {
    // "<f4", "|u1": byte order, then kind and size.
    let kind = name.trim_start_matches(['<', '>', '|', '=']);
    dtype_v3(match kind {
        "u1" => "uint8",
        "i1" => "int8",
        "u2" => "uint16",
        "i2" => "int16",
        "u4" => "uint32",
        "i4" => "int32",
        "f4" => "float32",
        "f8" => "float64",
        _ => return None,
    })
}

/// The children of the group at `at` (sub-folders with Zarr metadata).
fn children(root: &Path, at: &str) -> Vec<Node> {
    let Ok(entries) = std::fs::read_dir(root.join(at)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| node(root, &join(at, &name)).ok())
        .collect()
}

/// The folder of the node at `at` below `root`, for messages.
fn place_of(root: &Path, at: &str) -> PathBuf {
    if at.is_empty() {
        root.to_path_buf()
    } else {
        root.join(at)
    }
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.into()
    } else {
        format!("{at}/{name}")
    }
}

fn parent(at: &str) -> &str {
    at.rsplit_once('/').map_or("", |(p, _)| p)
}

/// Whether a dimension name is a map axis.
fn is_y(dim: &str) -> bool {
    matches!(dim, "y" | "lat" | "latitude" | "northing" | "rlat")
}

fn is_x(dim: &str) -> bool {
    matches!(dim, "x" | "lon" | "longitude" | "easting" | "rlon")
}

/// Whether an array is a map variable: 2-D over (y, x), or 3-D with a band
/// axis first.
fn is_variable(n: &Node) -> bool {
    let d = &n.dims;
    n.array
        && (n.shape.len() == 2 || n.shape.len() == 3)
        && d.len() == n.shape.len()
        && is_y(&d[d.len() - 2])
        && is_x(&d[d.len() - 1])
}

/// The variable the node at `at` shows: itself, or a group's only one.
fn variable(root: &Path, at: &str) -> Result<Node, String> {
    let mut here = node(root, at)?;
    if here.array {
        // Without dimension names, a 2-D array is (y, x) and a 3-D one
        // (band, y, x).
        if here.dims.len() != here.shape.len() {
            here.dims = match here.shape.len() {
                2 => vec!["y".into(), "x".into()],
                3 => vec!["band".into(), "y".into(), "x".into()],
                n => {
                    return Err(format!(
                        "{}: an array of {n} dimensions; gridstore shows arrays over y and x (with bands first)",
                        place_of(root, at).display()
                    ));
                }
            };
        }
        if !is_variable(&here) {
            return Err(format!(
                "{}: its dimensions ({}) are not y and x (with bands first)",
                place_of(root, at).display(),
                here.dims.join(", ")
            ));
        }
        return Ok(here);
    }
    let found: Vec<Node> = children(root, at).into_iter().filter(is_variable).collect();
    let place = place_of(root, at);
    match &found[..] {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "{}: a Zarr group with no variable over y and x",
            place.display()
        )),
        many => {
            let names: Vec<&str> = many
                .iter()
                .map(|n| n.at.rsplit('/').next().unwrap_or(&n.at))
                .collect();
            Err(format!(
                "{}: holds {} variables ({}); open one, as {}",
                place.display(),
                many.len(),
                names.join(", "),
                place.join(names[0]).display()
            ))
        }
    }
}

/// Where a level's cells lie: the west edge, the outer edge of row 0 (its
/// north edge, or its south edge when rows run south to north), and the
/// cell size.
#[derive(Debug, Clone, Copy)]
struct Placement {
    left: f64,
    first_row_edge: f64,
    cell: [f64; 2],
    south_up: bool,
}

impl Placement {
    /// The north edge of `rows` rows.
    #[allow(clippy::cast_precision_loss)]
    fn top(&self, rows: u64) -> f64 {
        if self.south_up {
            self.first_row_edge + rows as f64 * self.cell[1]
        } else {
            self.first_row_edge
        }
    }
}

/// An affine transform `[a, b, c, d, e, f]` (x = a·col + b·row + c, y =
/// d·col + e·row + f), north-up.
fn from_transform(t: &[f64]) -> Option<Placement> {
    let [a, b, c, d, e, f] = <[f64; 6]>::try_from(t).ok()?;
    (b == 0.0 && d == 0.0 && a > 0.0 && e != 0.0).then_some(Placement {
        left: c,
        first_row_edge: f,
        cell: [a, e.abs()],
        south_up: e > 0.0,
    })
}

fn numbers(v: Option<&Value>) -> Option<Vec<f64>> {
    Some(v?.as_array()?.iter().filter_map(Value::as_f64).collect())
}

/// Where the variable's cells lie, from its attributes (or its group's),
/// or from its 1-D coordinate arrays.
fn placement(
    store: &Arc<FilesystemStore>,
    root: &Path,
    var: &Node,
    group: &Node,
    hint: Option<&Value>,
) -> Result<Placement, String> {
    for attrs in [&var.attrs, &group.attrs] {
        if let Some(p) = numbers(attrs.get("spatial:transform")).and_then(|t| from_transform(&t)) {
            return Ok(p);
        }
    }
    if let Some(p) = hint
        .and_then(|h| numbers(h.get("spatial:transform")))
        .and_then(|t| from_transform(&t))
    {
        return Ok(p);
    }
    // GDAL's geotransform: [c, a, b, f, d, e].
    if let Some(g) = numbers(var.attrs.get("geotransform"))
        && let [c, a, b, f, d, e] = g[..]
        && let Some(p) = from_transform(&[a, b, c, d, e, f])
    {
        return Ok(p);
    }
    let d = &var.dims;
    let (ydim, xdim) = (&d[d.len() - 2], &d[d.len() - 1]);
    let coordinate = |name: &str| -> Result<Vec<f64>, String> {
        let at = join(&group.at, name);
        let array = Array::open(store.clone(), &format!("/{at}"))
            .map_err(|e| format!("{}: {e}", root.join(&at).display()))?;
        let all = array.subset_all();
        let values = match node(root, &at)?.dtype {
            Some(DType::F32) => retrieve::<f32>(&array, &all),
            _ => retrieve::<f64>(&array, &all),
        };
        values.map_err(|e| format!("{}: {e}", root.join(&at).display()))
    };
    let none = |_| {
        format!(
            "{}: no georeference (no spatial:transform or geotransform attribute, and no {xdim} and {ydim} coordinate arrays)",
            place_of(root, &var.at).display()
        )
    };
    let xs = coordinate(xdim).map_err(none)?;
    let ys = coordinate(ydim).map_err(none)?;
    let regular = |v: &[f64]| -> Option<f64> {
        let step = v.get(1)? - v.first()?;
        let tolerance = step.abs() * 1e-6;
        (step != 0.0
            && v.windows(2)
                .all(|w| ((w[1] - w[0]) - step).abs() <= tolerance))
        .then_some(step)
    };
    let place = place_of(root, &var.at);
    let dx = regular(&xs).ok_or_else(|| {
        format!(
            "{}: its {xdim} coordinates are not evenly spaced",
            place.display()
        )
    })?;
    let dy = regular(&ys).ok_or_else(|| {
        format!(
            "{}: its {ydim} coordinates are not evenly spaced",
            place.display()
        )
    })?;
    if dx < 0.0 {
        return Err(format!(
            "{}: its {xdim} coordinates run west",
            place.display()
        ));
    }
    Ok(Placement {
        left: xs[0] - dx / 2.0,
        first_row_edge: ys[0] - dy / 2.0,
        cell: [dx, dy.abs()],
        south_up: dy > 0.0,
    })
}

/// The WKT, PROJ or authority code of the variable's CRS.
fn crs_text(root: &Path, var: &Node, group: &Node, top: &Node) -> Option<String> {
    for attrs in [&var.attrs, &group.attrs, &top.attrs] {
        for key in ["proj:wkt2", "proj:code"] {
            if let Some(text) = attrs.get(key).and_then(Value::as_str) {
                return Some(text.into());
            }
        }
        if let Some(wkt) = attrs
            .get("_CRS")
            .and_then(|c| c.get("wkt"))
            .and_then(Value::as_str)
        {
            return Some(wkt.into());
        }
    }
    // The grid mapping the variable names, else the one rioxarray and
    // CF writers name by default.
    let named = var.attrs.get("grid_mapping").and_then(Value::as_str);
    named
        .into_iter()
        .chain(["spatial_ref", "crs"])
        .filter_map(|name| node(root, &join(&group.at, name)).ok())
        .find_map(|mapping| {
            ["crs_wkt", "spatial_ref"]
                .iter()
                .find_map(|k| mapping.attrs.get(*k).and_then(Value::as_str))
                .map(str::to_string)
        })
}

/// A level to read from: its variable and where its cells lie relative to
/// level 0's.
struct Level {
    array: Array<FilesystemStore>,
    /// Level-0 cells per cell of this level, a side.
    factor: u64,
    /// Its first cell's place in its own cells: (row, column) of level 0's
    /// first cell.
    offset: (i64, i64),
    rows: u64,
    cols: u64,
    south_up: bool,
    dtype: DType,
    /// The 3-D variable's band axis, if it has one.
    banded: bool,
}

/// The Zarr store, group or array at `path`, modelled as a store.
///
/// # Errors
/// What cannot be read or modelled, in one line naming the place.
pub(super) fn model(path: &Path) -> Result<Model, String> {
    let place = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    // A path to a variable inside a store: its store is the first folder
    // above without Zarr metadata's parent.
    let (root, at) = store_root(path);
    let store = Arc::new(FilesystemStore::new(&root).map_err(|e| place(&e))?);
    let top = node(&root, &at)?;
    // The levels: a multiscale group's layout, else the one variable.
    let layout: Vec<(String, Option<Value>)> = top
        .attrs
        .get("multiscales")
        .and_then(|m| m.get("layout"))
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    let asset = e.get("asset").and_then(Value::as_str)?;
                    Some((join(&at, asset), Some(e.clone())))
                })
                .collect()
        })
        .unwrap_or_default();
    let layout = if layout.is_empty() {
        vec![(at.clone(), None)]
    } else {
        layout
    };
    let mut found = Vec::new();
    for (asset, hint) in &layout {
        let var = variable(&root, asset)?;
        let group = node(&root, parent(&var.at)).unwrap_or_else(|_| top.clone());
        let placed = placement(&store, &root, &var, &group, hint.as_ref())?;
        found.push((var, group, placed));
    }
    let (var0, group0, p0) = found[0].clone();
    let rows_of = |n: &Node| n.shape[n.shape.len() - 2];
    let top0 = p0.top(rows_of(&var0));
    let dtype = var0.dtype.ok_or_else(|| {
        format!(
            "{}: a cell type no store holds (u8 to f64 only)",
            place_of(&root, &var0.at).display()
        )
    })?;
    let crs = crs_text(&root, &var0, &group0, &top).ok_or_else(|| {
        format!(
            "{}: no CRS (no proj:code, proj:wkt2, grid mapping or _CRS)",
            place_of(&root, &var0.at).display()
        )
    })?;
    let srs = srs_from(&crs).map_err(|e| {
        format!(
            "{}: its CRS is unknown to GDAL ({})",
            place_of(&root, &var0.at).display(),
            crate::gdal_io::gdal_reason(&e)
        )
    })?;
    let mut levels = Vec::new();
    for (var, _, p) in &found {
        let ratio = p.cell[0] / p0.cell[0];
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let factor = ratio.round().max(1.0) as u64;
        // Only levels whose cells are whole powers of two of level 0's.
        if !factor.is_power_of_two() || (ratio - factor as f64).abs() > 1e-6 * ratio {
            continue;
        }
        let array = Array::open(store.clone(), &format!("/{}", var.at))
            .map_err(|e| format!("{}: {e}", root.join(&var.at).display()))?;
        let cell = p.cell[0];
        #[allow(clippy::cast_possible_truncation)]
        let offset = (
            ((p.top(rows_of(var)) - top0) / cell).round() as i64,
            ((p0.left - p.left) / cell).round() as i64,
        );
        let d = var.shape.len();
        levels.push(Level {
            array,
            factor,
            offset,
            rows: var.shape[d - 2],
            cols: var.shape[d - 1],
            south_up: p.south_up,
            dtype: var.dtype.unwrap_or(dtype),
            banded: d == 3,
        });
    }
    levels.sort_by_key(|l| l.factor);
    let levels_found = levels.len();
    let d = var0.shape.len();
    let (rows, cols) = (var0.shape[d - 2], var0.shape[d - 1]);
    let bands = if d == 3 { var0.shape[0] } else { 1 };
    #[allow(clippy::cast_precision_loss)]
    let extent = Extent::new(
        p0.left,
        top0 - rows as f64 * p0.cell[1],
        p0.left + cols as f64 * p0.cell[0],
        top0,
    )
    .map_err(|e| place(&e))?;
    let nodata = fill_value(&var0, dtype);
    let categorical = var0.attrs.contains_key("flag_values");
    let structure = structure_for(
        &srs,
        ([p0.left, top0], p0.cell),
        (dtype, nodata),
        categorical,
        usize::try_from(bands).unwrap_or(usize::MAX),
    );
    let text = |k: &str| {
        var0.attrs
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let band_info = (0..bands)
        .map(|_| BandInfo {
            name: if bands == 1 {
                text("long_name").or_else(|| text("standard_name"))
            } else {
                None
            },
            unit: text("units"),
            colour: None,
        })
        .collect();
    Ok(Model {
        structure,
        extent,
        band_info,
        palette: None,
        version: version_of(&root),
        description: format!(
            "Zarr v{}{}, read through zarrs",
            if root.join("zarr.json").is_file() {
                3
            } else {
                2
            },
            match levels_found {
                0 | 1 => String::new(),
                n => format!(", a GeoZarr multiscale group of {n} levels"),
            }
        ),
        reader: Box::new(ZarrReader {
            place: root.join(&var0.at),
            levels,
            nodata,
        }),
    })
}

/// The store's root folder and the path below it of `path`: the highest
/// folder above (or at) `path` that still has Zarr metadata.
fn store_root(path: &Path) -> (PathBuf, String) {
    let mut root = path.to_path_buf();
    while let Some(up) = root.parent() {
        if up.as_os_str().is_empty() || !is_zarr(up) {
            break;
        }
        root = up.to_path_buf();
    }
    let at = path
        .strip_prefix(&root)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default();
    (root, at)
}

/// The variable's nodata, as xarray decodes it: its CF `_FillValue` where
/// it is a number, else a Zarr v2 array's numeric `fill_value`; NaN for
/// floats without either; else none.
fn fill_value(var: &Node, dtype: DType) -> Option<f64> {
    let holds = |v: f64| v.is_nan() || dtype.holds(v);
    match var.attrs.get("_FillValue") {
        Some(Value::Number(n)) => n.as_f64().filter(|v| holds(*v)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("nan") => Some(f64::NAN),
        _ => var
            .fill_v2
            .filter(|v| (dtype.is_float() || !v.is_nan()) && holds(*v)),
    }
    .or_else(|| dtype.is_float().then_some(f64::NAN))
}

/// A version of a Zarr store's contents: the metadata files' versions and
/// the newest change below it (a chunk rewritten in place changes it).
fn version_of(root: &Path) -> String {
    let mut newest = 0i128;
    let mut stack = vec![root.to_path_buf()];
    let mut files = 0u64;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                use std::os::unix::fs::MetadataExt as _;
                files += 1;
                newest = newest
                    .max(i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()));
            }
        }
    }
    format!("zarr:{files}:{newest}")
}

/// Reads a Zarr variable's cells through zarrs, from the coarsest level
/// that still has a cell per output cell.
struct ZarrReader {
    place: PathBuf,
    /// Finest first.
    levels: Vec<Level>,
    nodata: Option<f64>,
}

impl CellReader for ZarrReader {
    fn read(
        &self,
        band: usize,
        rows: Range<u64>,
        cols: Range<u64>,
        out: (usize, usize),
        reduce: Reduce,
    ) -> Result<Vec<f64>, String> {
        let (out_cols, out_rows) = out;
        let kr = (rows.end - rows.start).div_ceil(out_rows as u64);
        let kc = (cols.end - cols.start).div_ceil(out_cols as u64);
        // The coarsest level whose cells divide the output's evenly.
        let level = self
            .levels
            .iter()
            .rev()
            .find(|l| {
                let f = l.factor;
                kr.is_multiple_of(f)
                    && kc.is_multiple_of(f)
                    && rows.start.is_multiple_of(f)
                    && cols.start.is_multiple_of(f)
                    && (rows.end.is_multiple_of(f) || rows.end - rows.start <= kr)
                    && (cols.end.is_multiple_of(f) || cols.end - cols.start <= kc)
            })
            .or_else(|| self.levels.first())
            .ok_or_else(|| format!("{}: no level to read", self.place.display()))?;
        let f = level.factor;
        // The level's cells under the window (clipped to the array).
        #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
        let clip = |v: u64, offset: i64, n: u64| (v as i64 + offset).clamp(0, n as i64) as u64;
        let (r0, r1) = (
            clip(rows.start / f, level.offset.0, level.rows),
            clip(rows.end.div_ceil(f), level.offset.0, level.rows),
        );
        let (c0, c1) = (
            clip(cols.start / f, level.offset.1, level.cols),
            clip(cols.end.div_ceil(f), level.offset.1, level.cols),
        );
        let (nr, nc) = ((r1 - r0) as usize, (c1 - c0) as usize);
        let mut cells = vec![f64::NAN; nr * nc];
        if nr > 0 && nc > 0 {
            let (ar0, ar1) = if level.south_up {
                (level.rows - r1, level.rows - r0)
            } else {
                (r0, r1)
            };
            let mut ranges = vec![ar0..ar1, c0..c1];
            if level.banded {
                ranges.insert(0, band as u64..band as u64 + 1);
            }
            let subset = ArraySubset::new_with_ranges(&ranges);
            let fail = |e: zarrs::array::ArrayError| format!("{}: {e}", self.place.display());
            let array = &level.array;
            let values = match level.dtype {
                DType::U8 => retrieve::<u8>(array, &subset),
                DType::I8 => retrieve::<i8>(array, &subset),
                DType::U16 => retrieve::<u16>(array, &subset),
                DType::I16 => retrieve::<i16>(array, &subset),
                DType::U32 => retrieve::<u32>(array, &subset),
                DType::I32 => retrieve::<i32>(array, &subset),
                DType::F32 => retrieve::<f32>(array, &subset),
                DType::F64 => retrieve::<f64>(array, &subset),
            }
            .map_err(fail)?;
            for (i, row) in values.chunks_exact(nc).enumerate() {
                let at = if level.south_up { nr - 1 - i } else { i };
                for (cell, v) in cells[at * nc..(at + 1) * nc].iter_mut().zip(row) {
                    let nodata = self.nodata.is_some_and(|n| n == *v);
                    *cell = if nodata { f64::NAN } else { *v };
                }
            }
        }
        // The level's cells each output cell covers, reduced.
        #[allow(clippy::cast_possible_wrap)]
        let first = (rows.start / f, cols.start / f);
        let (br, bc) = (kr / f.min(kr).max(1), kc / f.min(kc).max(1));
        let mut result = vec![f64::NAN; out_rows * out_cols];
        for (i, slot) in result.iter_mut().enumerate() {
            let (orow, ocol) = ((i / out_cols) as u64, (i % out_cols) as u64);
            let mut block = Vec::with_capacity((br * bc) as usize);
            for dr in 0..br.max(1) {
                for dc in 0..bc.max(1) {
                    let (lr, lc) = (first.0 + orow * br + dr, first.1 + ocol * bc + dc);
                    #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
                    let (ar, ac) = (lr as i64 + level.offset.0, lc as i64 + level.offset.1);
                    #[allow(clippy::cast_sign_loss, clippy::cast_possible_wrap)]
                    if ar < r0 as i64 || ar >= r1 as i64 || ac < c0 as i64 || ac >= c1 as i64 {
                        continue;
                    }
                    #[allow(clippy::cast_sign_loss)]
                    let v = cells[(ar as u64 - r0) as usize * nc + (ac as u64 - c0) as usize];
                    if !v.is_nan() {
                        block.push(v);
                    }
                }
            }
            *slot = reduce_block(&block, reduce);
        }
        Ok(result)
    }
}

/// Cells of `subset` of an array of `T`, as f64.
fn retrieve<T: zarrs::array::ElementOwned + Into<f64>>(
    array: &Array<FilesystemStore>,
    subset: &ArraySubset,
) -> Result<Vec<f64>, zarrs::array::ArrayError> {
    let cells: Vec<T> = array.retrieve_array_subset(subset)?;
    Ok(cells.into_iter().map(Into::into).collect())
}

/// One output cell from the valid cells under it (NaN when none is).
fn reduce_block(valid: &[f64], reduce: Reduce) -> f64 {
    match (valid, reduce) {
        ([], _) => f64::NAN,
        ([first, ..], Reduce::Exact | Reduce::Nearest) => *first,
        (all, Reduce::Mean) => {
            #[allow(clippy::cast_precision_loss)]
            let n = all.len() as f64;
            all.iter().sum::<f64>() / n
        }
        (all, Reduce::Mode) => {
            let mut sorted = all.to_vec();
            sorted.sort_by(f64::total_cmp);
            let mut best = (sorted[0], 0usize);
            let mut run = (sorted[0], 0usize);
            for v in sorted {
                run = if v == run.0 { (v, run.1 + 1) } else { (v, 1) };
                if run.1 > best.1 {
                    best = run;
                }
            }
            best.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_reduce_over_their_valid_cells() {
        assert!(reduce_block(&[], Reduce::Mean).is_nan());
        assert_eq!(reduce_block(&[1.0, 2.0, 6.0], Reduce::Mean), 3.0);
        assert_eq!(reduce_block(&[4.0, 2.0, 4.0, 1.0], Reduce::Mode), 4.0);
        assert_eq!(reduce_block(&[5.0], Reduce::Exact), 5.0);
    }

    #[test]
    fn numpy_and_v3_type_names_are_read() {
        assert_eq!(dtype_v2("<f4"), Some(DType::F32));
        assert_eq!(dtype_v2("|u1"), Some(DType::U8));
        assert_eq!(dtype_v2("<i8"), None, "no 64-bit integer stores");
        assert_eq!(dtype_v3("int16"), Some(DType::I16));
    }

    #[test]
    fn transforms_place_north_up_and_south_up_grids() {
        let p = from_transform(&[10.0, 0.0, 100.0, 0.0, -10.0, 500.0]).unwrap();
        assert_eq!(
            (p.left, p.top(7), p.cell, p.south_up),
            (100.0, 500.0, [10.0, 10.0], false)
        );
        let up = from_transform(&[10.0, 0.0, 100.0, 0.0, 10.0, 430.0]).unwrap();
        assert!(up.south_up);
        assert_eq!(up.top(7), 500.0);
        assert!(
            from_transform(&[10.0, 1.0, 0.0, 0.0, -10.0, 0.0]).is_none(),
            "rotated"
        );
    }
}
