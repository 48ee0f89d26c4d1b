//! Stores written by earlier gridstore versions keep opening, verifying and
//! exporting the same values. `tests/data/format-v1.gs` was written by the
//! gridstore of format version 1 before the write protocol moved into the
//! engine (commit e7369d2): `create --like terra_elev.tif --chunk 16`, an
//! ingest of terra_elev.tif and a note.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;
use util::{data, ok, read, same};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of a kept store (tests never write into tests/data).
fn copy_of(name: &str, dir: &Path) -> std::path::PathBuf {
    let to = dir.join(name);
    let status = std::process::Command::new("cp")
        .args(["-a", s(&data(name)), s(&to)])
        .status()
        .unwrap();
    assert!(status.success());
    to
}

#[test]
fn a_format_1_store_opens_verifies_and_exports_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = copy_of("format-v1.gs", dir.path());
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["info", s(&store), "--json"])).unwrap();
    assert_eq!(info["format_version"], 1);
    // As the writing version reported it.
    assert_eq!(info["data_size"], serde_json::json!([93, 88]));
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    let history = ok(&["history", s(&store)]);
    assert!(history.contains("terra_elev.tif") && history.contains("written by gridstore"));
    // The base level over the source's extent equals the source, cell for
    // cell.
    let source = read(s(&data("terra_elev.tif")), None);
    let gt = source.geotransform;
    let bounds = source.bbox();
    let out = dir.path().join("base.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--bbox",
        &bounds,
        "--no-cache",
    ]);
    let ours = read(s(&out), None);
    assert_eq!((ours.cols, ours.rows), (source.cols, source.rows));
    assert!(
        ours.bands[0]
            .iter()
            .zip(&source.bands[0])
            .all(|(a, b)| same(*a, *b) || (source.nodata == Some(*b) && a.is_nan())),
        "the values are the source's"
    );
    // And today's code writes into it: a clear, then verify.
    let bbox = format!(
        "{},{},{},{}",
        gt[0],
        gt[3] + 10.0 * gt[5],
        gt[0] + 10.0 * gt[1],
        gt[3]
    );
    ok(&["clear", s(&store), "--bbox", &bbox]);
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
}

/// `convert` upgrades a format-1 store to the current format: the same
/// values, arrays sized to the data, coordinates that xarray reads, and the
/// history and contents token carried over.
#[test]
fn convert_upgrades_a_format_1_store() {
    let dir = tempfile::tempdir().unwrap();
    let old = copy_of("format-v1.gs", dir.path());
    let new = dir.path().join("upgraded.gs");
    ok(&["convert", s(&old), s(&new)]);
    let info: serde_json::Value = serde_json::from_str(&ok(&["info", s(&new), "--json"])).unwrap();
    assert_eq!(info["format_version"], 4);
    assert_eq!(info["data_size"], serde_json::json!([93, 88]));
    assert!(ok(&["verify", s(&new)]).starts_with("ok:"));
    assert!(ok(&["history", s(&new)]).contains("terra_elev.tif"));
    let export = |store: &Path, name: &str| {
        let out = dir.path().join(name);
        ok(&[
            "export",
            s(store),
            "-o",
            s(&out),
            "--level",
            "1",
            "--no-cache",
        ]);
        read(s(&out), None)
    };
    let (a, b) = (export(&old, "old.tif"), export(&new, "new.tif"));
    assert_eq!(a.geotransform, b.geotransform);
    assert!(
        a.bands[0]
            .iter()
            .zip(&b.bands[0])
            .all(|(x, y)| same(*x, *y))
    );
    // The level arrays span the data, not the domain.
    let zarray: serde_json::Value =
        serde_json::from_slice(&std::fs::read(new.join("0/data/.zarray")).unwrap()).unwrap();
    let shape: Vec<u64> = serde_json::from_value(zarray["shape"].clone()).unwrap();
    assert!(shape[0] >= 88 && shape[0] < 88 + 2 * 16, "{shape:?}");
    assert!(shape[1] >= 93 && shape[1] < 93 + 2 * 16, "{shape:?}");
    let xarray = "import sys, xarray as xr\nds = xr.open_zarr(sys.argv[1], group='0')\nprint(ds.data.rio.crs if hasattr(ds.data, 'rio') else '', float(ds.x[1] - ds.x[0]))";
    let out = std::process::Command::new("python3")
        .args(["-c", &format!("import rioxarray\n{xarray}"), s(&new)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (crs, step) = text.trim_end().split_once(' ').unwrap();
    assert_eq!(crs, "EPSG:4326", "rioxarray reads the CRS");
    // Level 0's cells are half as wide as level 1's.
    let step: f64 = step.parse().unwrap();
    assert!(
        (step - b.geotransform[1] / 2.0).abs() < 1e-12,
        "{text} {:?}",
        b.geotransform
    );
}

/// `tests/data/format-v2.gs` was written by the gridstore of format
/// version 2 (commit d8b67ee): `create --like terra_elev.tif --chunk 16
/// --time regular:2024-05-01:1h --layout zarr3`, then terra_elev.tif
/// ingested at 00:00 and 02:00. Today's gridstore reads and writes it as
/// version 2, and `convert --time-levels` upgrades it to the current
/// version with period maps built from its instants.
#[test]
fn a_format_2_store_opens_and_converts_with_time_levels() {
    let dir = tempfile::tempdir().unwrap();
    let store = copy_of("format-v2.gs", dir.path());
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["info", s(&store), "--json"])).unwrap();
    assert_eq!(info["format_version"], 2);
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    let source = read(s(&data("terra_elev.tif")), None);
    let bounds = source.bbox();
    let export = |store: &Path, name: &str, time: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            "export",
            s(store),
            "-o",
            s(&out),
            "--bbox",
            &bounds,
            "--no-cache",
        ];
        args.extend_from_slice(time);
        ok(&args);
        read(s(&out), None)
    };
    let is_source = |raster: &util::Grid| {
        raster.bands[0]
            .iter()
            .zip(&source.bands[0])
            .all(|(a, b)| same(*a, *b) || (source.nodata == Some(*b) && a.is_nan()))
    };
    assert!(is_source(&export(
        &store,
        "t2.tif",
        &["--time", "2024-05-01T02:00"]
    )));
    // Written today, it stays version 2.
    ok(&[
        "ingest",
        s(&store),
        s(&data("terra_elev.tif")),
        "--time",
        "2024-05-01T03:00",
    ]);
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["info", s(&store), "--json"])).unwrap();
    assert_eq!(info["format_version"], 2);
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    // It keeps no period maps: a day is computed from its instants, and
    // said so; converted with day and month levels it keeps them.
    let out = dir.path().join("computed.tif");
    let run = util::gridstore(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--time",
        "2024-05-01",
        "--period",
        "day",
        "--bbox",
        &bounds,
    ]);
    assert!(run.status.success());
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains("2024-05-01: not stored (it keeps no period maps); computed from 4 instants"),
        "{said}"
    );
    // Three equal maps (the axis's fourth, 01:00, holds nothing): their mean.
    assert!(is_source(&read(s(&out), None)));
    let new = dir.path().join("v4.gs");
    ok(&["convert", s(&store), s(&new), "--time-levels", "month,day"]);
    let info: serde_json::Value = serde_json::from_str(&ok(&["info", s(&new), "--json"])).unwrap();
    assert_eq!(info["format_version"], 4);
    assert_eq!(
        info["structure"]["time_levels"],
        serde_json::json!(["day", "month"])
    );
    assert!(ok(&["verify", s(&new)]).starts_with("ok:"));
    // The mean of three equal maps is the map.
    let day = export(
        &new,
        "day.tif",
        &["--time", "2024-05-01", "--period", "day"],
    );
    assert!(is_source(&day));
    assert!(is_source(&export(
        &new,
        "month.tif",
        &["--time", "2024-05", "--period", "month"]
    )));
    assert!(is_source(&export(
        &new,
        "t3.tif",
        &["--time", "2024-05-01T03:00"]
    )));
}

/// `tests/data/format-v3.gs` was written by the gridstore of format
/// version 3 (commit e4c71bd): `create --like terra_elev.tif --chunk 32
/// --time irregular --time-levels day,month --layout zarr3` (a mean
/// store), then terra_elev.tif ingested at 2024-05-01T00:00 and
/// 2024-05-02T00:00 and the same doubled (gdal_translate -scale 0 1000 0
/// 2000) at 2024-05-01T06:00. Version 3 keeps no sums behind its mean
/// maps: today's gridstore reads it, writes it as version 3 (each period
/// folded from its instants), and `convert` upgrades it to version 4,
/// whose mean maps step through their sums.
#[test]
fn a_format_3_store_opens_writes_and_converts() {
    let dir = tempfile::tempdir().unwrap();
    let store = copy_of("format-v3.gs", dir.path());
    let version = |store: &Path| {
        let info: serde_json::Value =
            serde_json::from_str(&ok(&["info", s(store), "--json"])).unwrap();
        info["format_version"].clone()
    };
    assert_eq!(version(&store), 3);
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    let elev = data("terra_elev.tif");
    let source = read(s(&elev), None);
    let bounds = source.bbox();
    let export = |store: &Path, name: &str, time: &str, period: &str| {
        let out = dir.path().join(name);
        ok(&[
            "export",
            s(store),
            "-o",
            s(&out),
            "--bbox",
            &bounds,
            "--no-cache",
            "--time",
            time,
            "--period",
            period,
        ]);
        read(s(&out), None)
    };
    // What version 3 wrote: the day of an elevation and its double is
    // 1.5 times the elevation (rounded to the i16 cells); the month of
    // three maps, 4/3 of it.
    let nodata = source.nodata;
    let is = |raster: &util::Grid, factor: f64| {
        raster.bands[0]
            .iter()
            .zip(&source.bands[0])
            .all(|(got, v)| {
                if nodata == Some(*v) {
                    nodata == Some(*got)
                } else {
                    (got - factor * v).abs() <= 0.5 + 1e-9
                }
            })
    };
    assert!(is(&export(&store, "d1.tif", "2024-05-01", "day"), 1.5));
    assert!(is(&export(&store, "m.tif", "2024-05", "month"), 4.0 / 3.0));
    // Written today, it stays version 3: its month is folded again.
    ok(&["ingest", s(&store), s(&elev), "--time", "2024-05-03T00:00"]);
    assert_eq!(version(&store), 3);
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    assert!(!store.join("periods/day-sums").exists());
    assert!(is(&export(&store, "m2.tif", "2024-05", "month"), 5.0 / 4.0));
    // Converted, it keeps its periods' sums; a later instant steps them.
    let new = dir.path().join("v4.gs");
    ok(&["convert", s(&store), s(&new)]);
    assert_eq!(version(&new), 4);
    assert!(new.join("periods/month-sums/zarr.json").exists());
    ok(&["ingest", s(&new), s(&elev), "--time", "2024-05-04T00:00"]);
    assert!(ok(&["verify", s(&new)]).starts_with("ok:"));
    assert!(is(&export(&new, "m3.tif", "2024-05", "month"), 6.0 / 5.0));
    assert!(is(&export(&new, "d4.tif", "2024-05-04", "day"), 1.0));
}
