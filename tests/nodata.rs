//! No valid source value turns into nodata unless the user asks (issue 9,
//! point 3): `create --like` picks a nodata value the raster does not hold,
//! and an ingest whose cells would collide with the store's nodata fails
//! and changes nothing, unless `--allow-nodata-loss` is given.

#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;
use util::{data, gridstore, ok, read, snapshot};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn info(store: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&["info", s(store), "--json"])).unwrap()
}

/// How many cells of every band hold `value`.
fn count(grid: &util::Grid, value: f64) -> usize {
    grid.bands
        .iter()
        .map(|b| b.iter().filter(|v| **v == value).count())
        .sum()
}

#[test]
fn create_like_picks_a_nodata_value_the_raster_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("l7.gs");
    // A copy: nothing may be written beside the user's file.
    let src = dir.path().join("stars_L7_ETMs.tif");
    std::fs::copy(data("stars_L7_ETMs.tif"), &src).unwrap();
    let source = read(s(&src), None);
    assert_eq!(source.nodata, None, "the fixture declares no nodata");
    assert_eq!(count(&source, 255.0), 61, "the fixture saturates 61 cells");
    let out = gridstore(&["create", s(&store), "--like", s(&src)]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nodata:") && stderr.contains("255 occurs in the data"),
        "the choice is explained: {stderr}"
    );
    let beside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("stars_L7_ETMs"))
        .collect();
    assert_eq!(
        beside,
        ["stars_L7_ETMs.tif"],
        "no .aux.xml beside the source"
    );
    let structure = &info(&store)["structure"];
    assert_eq!(structure["dtype"], "u8");
    let nodata = structure["nodata"].as_f64().unwrap();
    assert_eq!(count(&source, nodata), 0, "{nodata} occurs in no band");

    // The ingest loses nothing: every saturated cell is still 255.
    let out = gridstore(&["ingest", s(&store), s(&src)]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("read as nodata"),
        "no cell is lost"
    );
    let exported = dir.path().join("all.tif");
    ok(&["export", s(&store), "-o", s(&exported)]);
    let back = read(s(&exported), None);
    assert_eq!(back.bands, source.bands, "every value comes back");
}

#[test]
fn a_raster_that_holds_every_value_gets_the_next_wider_type() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("every-byte.tif");
    {
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let mut ds = driver
            .create_with_band_type::<u8, _>(&src, 16, 16, 1)
            .unwrap();
        ds.set_geo_transform(&[500_000.0, 10.0, 0.0, 6_000_000.0, 0.0, -10.0])
            .unwrap();
        ds.set_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(32631).unwrap())
            .unwrap();
        let values: Vec<u8> = (0..=255).collect();
        ds.rasterband(1)
            .unwrap()
            .write(
                (0, 0),
                (16, 16),
                &mut gdal::raster::Buffer::new((16, 16), values),
            )
            .unwrap();
    }
    let store = dir.path().join("wide.gs");
    let out = gridstore(&["create", s(&store), "--like", s(&src)]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("every u8 value occurs") && stderr.contains("u16"),
        "{stderr}"
    );
    let structure = &info(&store)["structure"];
    assert_eq!(structure["dtype"], "u16");
    assert_eq!(structure["nodata"], 65535.0);
    ok(&["ingest", s(&store), s(&src)]);
    let exported = dir.path().join("back.tif");
    ok(&["export", s(&store), "-o", s(&exported)]);
    let back = read(s(&exported), None);
    let expected: Vec<f64> = (0..=255).map(f64::from).collect();
    assert_eq!(back.bands[0], expected, "all 256 values are data");
}

#[test]
fn an_ingest_that_would_lose_cells_fails_and_changes_nothing_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("n.gs");
    let src = data("stars_L7_ETMs.tif");
    ok(&["create", s(&store), "--like", s(&src), "--nodata", "255"]);
    let before = snapshot(&store);
    let out = gridstore(&["ingest", s(&store), s(&src)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("stars_L7_ETMs.tif")
            && stderr.contains("61 data cells hold 255")
            && stderr.contains("--allow-nodata-loss"),
        "names the file, the count and the value: {stderr}"
    );
    let after = snapshot(&store);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "no file added or removed"
    );
    for (path, bytes) in &before {
        let key = path.strip_prefix(&store).unwrap().to_str().unwrap();
        assert_eq!(
            util::comparable(key, bytes.clone()),
            util::comparable(key, after[path].clone()),
            "{key} unchanged"
        );
    }
    assert!(ok(&["history", s(&store)]).contains("no ingests recorded"));

    let out = gridstore(&["ingest", s(&store), s(&src), "--allow-nodata-loss"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("61 data cells hold the store's nodata value (255)"),
        "the allowed loss is still reported"
    );
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
}

/// A warped ingest counts source cells holding the store's nodata value as
/// a direct one does (the warp marks coverage in an alpha band, not with
/// that value), and refuses to lose them.
#[test]
fn a_warped_ingest_refuses_to_lose_cells_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lc.gs");
    let src = data("stars_lc.tif");
    // Other cells than the raster's: the ingest warps.
    ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--cell-size",
        "2000",
        "--nodata",
        "0",
        "--aggregate",
        "mode",
    ]);
    let out = gridstore(&["ingest", s(&store), s(&src)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("data cells hold 0") && stderr.contains("--allow-nodata-loss"),
        "{stderr}"
    );
    let out = ok(&["ingest", s(&store), s(&src), "--allow-nodata-loss"]);
    assert!(out.contains("(warped)"), "{out}");
}

/// `--nodata none`: every value is data. The Landsat scene's 255s and 0s
/// all come back, the export declares no nodata, and cells never written
/// read as 0.
#[test]
fn with_nodata_none_every_value_is_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("none.gs");
    let src = data("stars_L7_ETMs.tif");
    ok(&["create", s(&store), "--like", s(&src), "--nodata", "none"]);
    let structure = &info(&store)["structure"];
    assert_eq!(structure["nodata"], serde_json::Value::Null);
    assert!(ok(&["info", s(&store)]).contains("nodata none"));
    ok(&["ingest", s(&store), s(&src)]);
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    let source = read(s(&src), None);
    let out = dir.path().join("back.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--bbox",
        &source.bbox(),
        "--no-cache",
    ]);
    let back = read(s(&out), None);
    assert_eq!(back.nodata, None, "the export declares no nodata");
    assert_eq!(
        back.bands, source.bands,
        "every value, the 61 saturated 255s among them"
    );
    assert_eq!(count(&back, 255.0), 61);
    // A box reaching west of the data: the cells never written read as 0.
    let [minx, miny, maxx, maxy] = source.bounds();
    let cell = source.geotransform[1];
    let wider = format!("{},{miny},{maxx},{maxy}", minx - 10.0 * cell);
    let out = dir.path().join("wider.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--bbox",
        &wider,
        "--no-cache",
    ]);
    let wide = read(s(&out), None);
    assert_eq!(wide.cols, source.cols + 10);
    assert!(wide.bands[0][..10].iter().all(|v| *v == 0.0));
    assert_eq!(wide.bands[0][10], source.bands[0][0]);
    // The pyramid takes every value in: level 1's first cell is the mean
    // of the four base cells, whatever they are.
    let out = dir.path().join("level1.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--level",
        "1",
        "--no-cache",
    ]);
    assert!(read(s(&out), None).bands[0].iter().all(|v| !v.is_nan()));
}

/// A store without nodata cannot mark cells that hold no data: an ingest
/// that has some (here a warp's edges) fails, naming the file and the
/// count, and changes nothing, unless the loss is allowed; count needs
/// nodata, and a float store keeps NaN.
#[test]
fn nodata_none_refuses_what_it_cannot_keep() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lc.gs");
    let src = data("stars_lc.tif");
    // Another CRS: the warped raster leaves the corners of its box empty.
    ok(&[
        "create",
        s(&store),
        "--crs",
        "EPSG:4326",
        "--cell-size",
        "0.02",
        "--origin",
        "-67,19",
        "--dtype",
        "u8",
        "--nodata",
        "none",
        "--aggregate",
        "mode",
    ]);
    let before = snapshot(&store);
    let out = gridstore(&["ingest", s(&store), s(&src)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("stars_lc.tif")
            && stderr.contains("cells hold no data")
            && stderr.contains("would read as 0")
            && stderr.contains("--allow-nodata-loss"),
        "{stderr}"
    );
    let after = snapshot(&store);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    // Allowed, the cells without data leave what the store holds alone: a
    // field of 7s under the whole raster keeps its 7s in the warp's
    // empty corners.
    let sevens = dir.path().join("sevens.tif");
    util::tool(
        "gdal_create",
        &[
            "-q",
            "-of",
            "GTiff",
            "-outsize",
            "135",
            "105",
            "-bands",
            "1",
            "-ot",
            "Byte",
            "-burn",
            "7",
            "-a_srs",
            "EPSG:4326",
            "-a_ullr",
            "-67.6",
            "19.2",
            "-64.9",
            "17.1",
            s(&sevens),
        ],
    );
    ok(&["ingest", s(&store), s(&sevens)]);
    let out = gridstore(&["ingest", s(&store), s(&src), "--allow-nodata-loss"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cells hold no data"));
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    let back = dir.path().join("back.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&back),
        "--bbox",
        "-67.6,17.1,-64.9,19.2",
        "--no-cache",
    ]);
    let back = read(s(&back), None);
    assert_eq!((back.cols, back.rows), (135, 105));
    // The north-west and south-east corners lie outside the warped raster.
    assert_eq!(back.bands[0][0], 7.0, "a hole kept the stored 7");
    assert_eq!(
        back.bands[0][135 * 105 - 1],
        7.0,
        "a hole kept the stored 7"
    );
    assert!(back.bands[0].iter().any(|v| *v != 7.0), "the raster landed");

    let count = gridstore(&[
        "create",
        s(&dir.path().join("c.gs")),
        "--like",
        s(&src),
        "--nodata",
        "none",
        "--aggregate",
        "count",
    ]);
    assert_eq!(count.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&count.stderr).contains("count counts the cells that hold data")
    );

    let float = dir.path().join("f.gs");
    let out = gridstore(&[
        "create",
        s(&float),
        "--crs",
        "EPSG:32631",
        "--cell-size",
        "10",
        "--origin",
        "500000,5000000",
        "--dtype",
        "f32",
        "--nodata",
        "none",
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keeps NaN"));
    assert_eq!(info(&float)["structure"]["nodata"], "NaN");
}
