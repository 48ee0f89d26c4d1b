//! The command line as a new user meets it (issue 9, point 4): clap's whole
//! usage errors, `create --like` with overrides, errors that name things
//! once and plainly, exports that miss the data, PNGs that carry their CRS,
//! a geographic store's domain, and clears in the history.

#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;
use util::{data, gridstore, ok, read, tool};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr_of(args: &[&str]) -> (Option<i32>, String) {
    let out = gridstore(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn info(store: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&["info", s(store), "--json"])).unwrap()
}

#[test]
fn usage_errors_are_claps_whole_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bad.gs");
    let (code, err) = stderr_of(&["create", s(&store), "--crs", "EPSG:4326"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--cell-size") && err.contains("--origin") && err.contains("Usage:"),
        "names what is missing and shows the usage line: {err}"
    );
    let (code, err) = stderr_of(&[
        "create",
        s(&store),
        "--like",
        s(&data("terra_meuse.tif")),
        "--cell-size",
        "0",
    ]);
    assert_eq!(code, Some(2), "no panic on a zero cell size: {err}");
    assert!(
        err.contains("cell sizes must be positive") && err.contains("--help"),
        "{err}"
    );
    let (code, err) = stderr_of(&["ingset", s(&store)]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("ingest") && err.contains("Usage:"),
        "did you mean: {err}"
    );
    assert!(!store.exists(), "nothing was created");
}

#[test]
fn create_like_takes_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let src = data("stars_olinda_dem_utm25s.tif");
    let store = dir.path().join("o.gs");
    ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--dtype",
        "f64",
        "--chunk",
        "64",
        "--nodata",
        "-1",
    ]);
    let structure = &info(&store)["structure"];
    assert_eq!(structure["dtype"], "f64");
    assert_eq!(structure["chunk"], serde_json::json!([64, 64]));
    assert_eq!(structure["nodata"], -1.0);
    let g = read(s(&src), None);
    assert_eq!(
        structure["anchor"],
        serde_json::json!([g.geotransform[0], g.geotransform[3]]),
        "the rest still comes from the raster"
    );

    // A raster without a CRS: --crs gives it one, and its ingest assumes it.
    let grid = dir.path().join("nocrs.asc");
    tool(
        "gdal_translate",
        &["-q", "-of", "AAIGrid", s(&src), s(&grid)],
    );
    for sidecar in ["nocrs.prj", "nocrs.asc.aux.xml"] {
        std::fs::remove_file(dir.path().join(sidecar)).ok();
    }
    let bare = dir.path().join("bare.gs");
    let (code, err) = stderr_of(&["create", s(&bare), "--like", s(&grid)]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no coordinate reference system"), "{err}");
    ok(&[
        "create",
        s(&bare),
        "--like",
        s(&grid),
        "--crs",
        "EPSG:32725",
    ]);
    assert_eq!(info(&bare)["structure"]["crs"]["epsg"], 32725);
    let out = gridstore(&["ingest", s(&bare), s(&grid)]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no CRS; taken to be the store's"),
        "the assumption is said"
    );
    // A store like a raster holds its bands.
    let (code, err) = stderr_of(&[
        "create",
        s(&dir.path().join("bands.gs")),
        "--like",
        s(&data("stars_L7_ETMs.tif")),
        "--bands",
        "3",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("has 6 bands"), "{err}");
    // --crs is for rasters without one, not a way to relabel one.
    let (code, err) = stderr_of(&[
        "create",
        s(&dir.path().join("relabel.gs")),
        "--like",
        s(&src),
        "--crs",
        "EPSG:4326",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("has its own CRS"), "{err}");
}

#[test]
fn errors_name_things_once_and_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("x.gs");
    let (code, err) = stderr_of(&[
        "create",
        s(&store),
        "--crs",
        "EPSG:999999",
        "--cell-size",
        "10",
        "--origin",
        "0,0",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown CRS 'EPSG:999999'"), "{err}");
    assert!(!err.contains("OGR"), "no GDAL internals: {err}");

    let src = data("terra_meuse.tif");
    ok(&["create", s(&store), "--like", s(&src)]);
    ok(&["ingest", s(&store), s(&src)]);
    let missing = dir.path().join("no-such-folder");
    let out = missing.join("out.tif");
    let (code, err) = stderr_of(&["export", s(&store), "-o", s(&out)]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.matches("no-such-folder").count(),
        1,
        "the missing folder is named once: {err}"
    );
    let (code, err) = stderr_of(&[
        "export",
        s(&store),
        "-o",
        s(&dir.path().join("w.tif")),
        "--crs",
        "EPSG:999999",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown CRS 'EPSG:999999'"), "{err}");
    // A file named for one format does not hold another.
    let (code, err) = stderr_of(&[
        "export",
        s(&store),
        "-o",
        s(&dir.path().join("x.tif")),
        "--format",
        "png",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("its extension says GTiff"), "{err}");
    // Errors of a store's own request name the store.
    let (code, err) = stderr_of(&["chunks", s(&store), "--level", "40"]);
    assert_eq!(code, Some(2));
    assert!(err.contains(s(&store)) && err.contains("level 40"), "{err}");
    // A folder is not an output file.
    let (code, err) = stderr_of(&["export", s(&store), "-o", s(dir.path())]);
    assert_eq!(code, Some(2));
    assert!(err.contains("a folder; give the name of the file"), "{err}");
    // Degrees asked for as metres: said plainly, not GDAL's 0 x 0.
    let (code, err) = stderr_of(&[
        "export",
        s(&store),
        "-o",
        s(&dir.path().join("deg.tif")),
        "--crs",
        "EPSG:4326",
        "--resolution",
        "30",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("coarser than the extent"), "{err}");
    // A box in the output's CRS, given without --bbox-crs.
    let (code, err) = stderr_of(&[
        "export",
        s(&store),
        "-o",
        s(&dir.path().join("box.tif")),
        "--crs",
        "EPSG:4326",
        "--bbox",
        "5.7,50.9,5.8,51.0",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("add --bbox-crs"), "{err}");
    // No display: the explorer says so in one line.
    let out = util::command()
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .arg(s(&store))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no display") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn an_export_that_misses_the_data_fails_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("m.gs");
    let src = data("terra_meuse.tif");
    ok(&["create", s(&store), "--like", s(&src)]);
    ok(&["ingest", s(&store), s(&src)]);
    let out = dir.path().join("e.tif");
    // Inside the domain, far from the data.
    let bbox = "100000,300000,101000,301000";
    let (code, err) = stderr_of(&["export", s(&store), "-o", s(&out), "--bbox", bbox]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("holds no data")
            && err.contains("the data covers")
            && err.contains("--allow-empty"),
        "{err}"
    );
    assert!(!out.exists(), "nothing was written");
    // What a killed export left (a process long gone) goes with the next.
    let leftover = dir.path().join(".e.tif.4194303.partial.tif");
    std::fs::write(&leftover, b"partial").unwrap();
    let done = gridstore(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--bbox",
        bbox,
        "--allow-empty",
    ]);
    assert!(done.status.success());
    assert!(String::from_utf8_lossy(&done.stderr).contains("holds no data"));
    assert!(out.exists());
    assert!(
        !leftover.exists(),
        "a dead export's partial file is removed"
    );
}

#[test]
fn png_exports_carry_their_crs_and_one_side_keeps_cells_square() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("p.gs");
    let src = data("stars_olinda_dem_utm25s.tif");
    ok(&["create", s(&store), "--like", s(&src)]);
    ok(&["ingest", s(&store), s(&src)]);

    let png = dir.path().join("native.png");
    ok(&["export", s(&store), "-o", s(&png), "--size", "64"]);
    let ds = gdal::Dataset::open(&png).unwrap();
    let srs = ds.spatial_ref().expect("the PNG carries a CRS");
    let own = gdal::Dataset::open(&src).unwrap().spatial_ref().unwrap();
    assert!(srs == own, "the store's CRS: {:?}", srs.name());
    let gt = ds.geo_transform().unwrap();
    assert_eq!(ds.raster_size().0, 64);
    assert!((gt[1] + gt[5]).abs() < 1e-9 * gt[1], "square cells: {gt:?}");
    drop(ds);

    let wgs = dir.path().join("wgs.png");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&wgs),
        "--crs",
        "EPSG:4326",
        "--size",
        "x50",
    ]);
    let ds = gdal::Dataset::open(&wgs).unwrap();
    let srs = ds.spatial_ref().expect("the PNG carries its CRS");
    assert!(
        srs.is_geographic(),
        "the PNG is in EPSG:4326, not the store's CRS"
    );
    assert_eq!(ds.raster_size().1, 50);
    let gt = ds.geo_transform().unwrap();
    assert!(
        gt[0] > -36.0 && gt[0] < -34.0,
        "longitudes near Olinda: {gt:?}"
    );
    assert!((gt[1] + gt[5]).abs() < 1e-6 * gt[1], "square cells: {gt:?}");
    // A warped output is bounded by what it asks for in its own CRS.
    let (code, err) = stderr_of(&[
        "export",
        s(&store),
        "-o",
        s(&dir.path().join("huge.png")),
        "--crs",
        "EPSG:3857",
        "--resolution",
        "0.001",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("too large"), "{err}");
    // The picture holds the data, not an empty frame.
    let rgba = image::open(&wgs).unwrap().to_rgba8();
    let opaque = rgba.pixels().filter(|p| p.0[3] > 0).count();
    assert!(opaque > rgba.pixels().count() / 2, "{opaque} opaque pixels");
}

#[test]
fn a_geographic_stores_domain_is_its_valid_area() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("g.gs");
    ok(&[
        "create",
        s(&store),
        "--crs",
        "EPSG:4326",
        "--cell-size",
        "0.01",
        "--origin",
        "5,52",
    ]);
    let text = ok(&["info", s(&store)]);
    assert!(text.contains("the CRS's valid area"), "{text}");
    let domain = &info(&store)["domain"];
    for (edge, limit) in [
        ("min_x", -180.0),
        ("max_x", 180.0),
        ("min_y", -90.0),
        ("max_y", 90.0),
    ] {
        let v = domain[edge].as_f64().unwrap();
        assert!(
            v.abs() <= f64::abs(limit),
            "{edge} {v} within ±{}",
            limit.abs()
        );
    }
}

#[test]
fn clears_are_recorded_and_an_empty_clear_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("c.gs");
    let src = data("terra_meuse.tif");
    ok(&["create", s(&store), "--like", s(&src), "--chunk", "32"]);
    ok(&["ingest", s(&store), s(&src)]);
    let out = ok(&["clear", s(&store), "--bbox", "100000,300000,101000,301000"]);
    assert!(out.contains(": 0 base chunks, 0 aggregates"), "{out}");
    let g = read(s(&src), None);
    let gt = g.geotransform;
    // The middle of the raster, where it holds data: 10 x 10 cells, the
    // box reaching a fifth of a cell into the next column (whose centres
    // it misses: that column keeps its values).
    let (c0, r0) = ((g.cols / 2) as f64, (g.rows / 2) as f64);
    let bbox = format!(
        "{},{},{},{}",
        gt[0] + c0 * gt[1],
        gt[3] + (r0 + 10.0) * gt[5],
        gt[0] + (c0 + 10.2) * gt[1],
        gt[3] + r0 * gt[5]
    );
    let out = ok(&["clear", s(&store), "--bbox", &bbox]);
    assert!(!out.contains(": 0 base chunks"), "{out}");
    let cleared = format!(
        "cleared {},{},{},{} ",
        gt[0] + c0 * gt[1],
        gt[3] + (r0 + 10.0) * gt[5],
        gt[0] + (c0 + 10.0) * gt[1],
        gt[3] + r0 * gt[5]
    );
    assert!(out.starts_with(&cleared), "{out} (expected {cleared})");
    let history: serde_json::Value =
        serde_json::from_str(&ok(&["history", s(&store), "--json"])).unwrap();
    let kinds: Vec<&str> = history["ingests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or("ingest"))
        .collect();
    assert_eq!(kinds, ["ingest", "clear", "clear"]);
    let text = ok(&["history", s(&store)]);
    assert_eq!(text.matches("cleared").count(), 2, "{text}");
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
}

/// An ingest says what the user may not have meant: class data into a
/// store that averages, and a source the warp puts far outside the area
/// where the store's CRS is used.
#[test]
fn an_ingest_notices_classes_averaged_and_sources_far_away() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("utm25s.gs");
    ok(&[
        "create",
        s(&store),
        "--crs",
        "EPSG:32725",
        "--cell-size",
        "500",
        "--origin",
        "290000,9115000",
    ]);
    let out = gridstore(&["ingest", s(&store), s(&data("terra_elev.tif"))]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lands outside the area where the store's CRS"),
        "{err}"
    );
    let out = gridstore(&["ingest", s(&store), s(&data("stars_lc.tif"))]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has a colour table (classes)"), "{err}");
}
