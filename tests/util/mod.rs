//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod counting;
pub mod utm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A test raster from tests/data.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A copy of test raster `name` in `dir` with its values turned upside
/// down (the lowest becomes the highest): the same grid, other values, so
/// a partial or missing write shows.
pub fn inverted(name: &str, dir: &Path) -> PathBuf {
    let (lo, hi) = match name {
        "terra_elev.tif" => ("141", "547"),
        "terra_meuse.tif" => ("138", "1736"),
        other => panic!("no value range known for {other}"),
    };
    let out = dir.join(format!("inverted-{name}"));
    tool(
        "gdal_translate",
        &[
            "-q",
            "-scale",
            lo,
            hi,
            hi,
            lo,
            data(name).to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    out
}

/// A stored value as two stores with equal contents hold it: the journal's
/// contents token (random per state of a store) is left out.
pub fn comparable(key: &str, bytes: Vec<u8>) -> Vec<u8> {
    // The root metadata names the token in its data window (in
    // consolidated metadata too).
    if [".zattrs", ".zmetadata", "zarr.json"].contains(&key) {
        let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return bytes;
        };
        forget_data_state(&mut doc);
        return serde_json::to_vec(&doc).unwrap();
    }
    if !key.ends_with("journal/.zattrs") {
        return bytes;
    }
    let mut journal: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let record = journal["gridstore_journal"].as_object_mut().unwrap();
    // The statistics' token is compared by whether it names the contents.
    let state = record.remove("state");
    if let Some(statistics) = record.get_mut("statistics") {
        *statistics = serde_json::Value::Bool(Some(&*statistics) == state.as_ref());
    }
    serde_json::to_vec(&journal).unwrap()
}

/// Removes the contents token of every `gridstore.data` window in `doc`.
fn forget_data_state(doc: &mut serde_json::Value) {
    match doc {
        serde_json::Value::Object(map) => {
            if let Some(data) = map
                .get_mut("gridstore")
                .and_then(|g| g.get_mut("data"))
                .and_then(serde_json::Value::as_object_mut)
            {
                data.remove("state");
            }
            map.values_mut().for_each(forget_data_state);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(forget_data_state),
        _ => {}
    }
}

/// The function cache the tests' gridstore runs use (one per test
/// process, never the user's).
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("gridstore-test-cache-{}", std::process::id()))
}

/// The gridstore binary, with the tests' function cache.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gridstore"));
    command.env("GRIDSTORE_CACHE_DIR", cache_dir());
    command
}

/// Runs the gridstore binary.
pub fn gridstore(args: &[&str]) -> Output {
    command().args(args).output().unwrap()
}

/// Runs gridstore and asserts success, returning stdout.
pub fn ok(args: &[&str]) -> String {
    let out = gridstore(args);
    assert!(
        out.status.success(),
        "gridstore {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a GDAL tool and asserts success.
pub fn tool(name: &str, args: &[&str]) {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A raster read through GDAL: values as f64 per band, size, geotransform, nodata.
#[derive(Debug)]
pub struct Grid {
    pub bands: Vec<Vec<f64>>,
    pub cols: usize,
    pub rows: usize,
    pub geotransform: [f64; 6],
    pub nodata: Option<f64>,
}

/// Reads a raster (or one of its overviews) with GDAL.
pub fn read(path: &str, overview: Option<usize>) -> Grid {
    let ds = gdal::Dataset::open(path).unwrap();
    let geotransform = ds.geo_transform().unwrap_or([0.0; 6]);
    let mut bands = Vec::new();
    let mut size = (0, 0);
    let mut nodata = None;
    for b in 1..=ds.raster_count() {
        let band = ds.rasterband(b).unwrap();
        nodata = band.no_data_value();
        let band = match overview {
            Some(i) => band.overview(i).unwrap(),
            None => band,
        };
        size = band.size();
        let buf = band.read_as::<f64>((0, 0), size, size, None).unwrap();
        bands.push(buf.data().to_vec());
    }
    Grid {
        bands,
        cols: size.0,
        rows: size.1,
        geotransform,
        nodata,
    }
}

impl Grid {
    /// The raster's extent: min x, min y, max x, max y (north-up).
    pub fn bounds(&self) -> [f64; 4] {
        let gt = self.geotransform;
        [
            gt[0],
            gt[3] + self.rows as f64 * gt[5],
            gt[0] + self.cols as f64 * gt[1],
            gt[3],
        ]
    }

    /// [`Grid::bounds`] as a `--bbox` argument.
    pub fn bbox(&self) -> String {
        let [x0, y0, x1, y1] = self.bounds();
        format!("{x0},{y0},{x1},{y1}")
    }
}

/// Every file under `dir` with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Equal, or both nodata/NaN.
pub fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Runs a Python script with `args` and returns what it printed; fails the
/// test, with Python's error, when it fails.
pub fn python(script: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A VRT of the Landsat scene's bands 1-3 described as blue, green and red,
/// with a name and a unit on each.
pub fn described_scene(dir: &Path) -> PathBuf {
    let vrt = dir.join("bgr.vrt");
    tool(
        "gdal_translate",
        &[
            "-q",
            "-of",
            "VRT",
            "-b",
            "1",
            "-b",
            "2",
            "-b",
            "3",
            "-colorinterp",
            "blue,green,red",
            path_str(&data("stars_L7_ETMs.tif")),
            path_str(&vrt),
        ],
    );
    let mut xml = std::fs::read_to_string(&vrt).unwrap();
    for (band, name) in [(1, "blue"), (2, "green"), (3, "red")] {
        let open = format!("<VRTRasterBand dataType=\"Byte\" band=\"{band}\"");
        let at = xml.find(&open).unwrap_or_else(|| panic!("{xml}"));
        let end = at + xml[at..].find('>').unwrap() + 1;
        xml.insert_str(
            end,
            &format!("<Description>{name}</Description><UnitType>DN</UnitType>"),
        );
    }
    std::fs::write(&vrt, xml).unwrap();
    vrt
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A Zarr store (`format` 2 or 3) that rioxarray writes from the raster at
/// `src`: one variable `name` over (band, y, x) with x and y cell-centre
/// coordinates and a CF `spatial_ref` grid mapping.
pub fn rioxarray_zarr(src: &Path, dst: &Path, format: u8, name: &str) {
    let script = r#"
import sys, rioxarray
src, dst, fmt, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
da = rioxarray.open_rasterio(src)
da.to_dataset(name=name).to_zarr(dst, zarr_format=fmt, consolidated=(fmt == 2))
"#;
    python(
        script,
        &[path_str(src), path_str(dst), &format.to_string(), name],
    );
}
