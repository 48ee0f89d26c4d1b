//! Rasters gridstore did not write open read-only as stores: `info` and
//! `export` read them (a COG's coarser levels from its overviews), writes
//! are refused in one line, and nothing is ever written into them.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A COG of the Landsat scene's 6 bands cut to 348 x 352 cells, so that its
/// first overview has exactly half as many cells a side.
fn l7_cog(dir: &Path) -> PathBuf {
    let cog = dir.join("l7_cog.tif");
    util::tool(
        "gdal_translate",
        &[
            "-q",
            "-srcwin",
            "0",
            "0",
            "348",
            "352",
            "-of",
            "COG",
            "-co",
            "OVERVIEW_RESAMPLING=AVERAGE",
            "-co",
            "BLOCKSIZE=128",
            s(&util::data("stars_L7_ETMs.tif")),
            s(&cog),
        ],
    );
    cog
}

#[test]
fn a_cog_exports_cell_for_cell_and_its_overview_serves_level_1() {
    let dir = tempfile::tempdir().unwrap();
    let cog = l7_cog(dir.path());
    let before = util::snapshot(dir.path());

    let info = util::ok(&["info", s(&cog)]);
    assert!(info.contains("read-only"), "{info}");
    assert!(info.contains("348 x 352 base cells"), "{info}");

    let level0 = dir.path().join("out").join("l0.tif");
    std::fs::create_dir(level0.parent().unwrap()).unwrap();
    util::ok(&["export", s(&cog), "-o", s(&level0)]);
    let source = util::read(s(&cog), None);
    let exported = util::read(s(&level0), None);
    assert_eq!((exported.cols, exported.rows), (348, 352));
    assert_eq!(exported.geotransform, source.geotransform);
    assert_eq!(exported.bands, source.bands, "level 0 is the raster");

    // Level 1 is GDAL's first overview of the COG (2 x 2 means).
    let level1 = dir.path().join("out").join("l1.tif");
    util::ok(&["export", s(&cog), "-o", s(&level1), "--level", "1"]);
    let overview = util::read(s(&cog), Some(0));
    let coarse = util::read(s(&level1), None);
    assert_eq!((coarse.cols, coarse.rows), (174, 176));
    for b in 0..6 {
        let differ = (coarse.bands[b].iter().zip(&overview.bands[b]))
            .filter(|(a, o)| a != o)
            .count();
        assert_eq!(differ, 0, "band {b}: cells unlike the overview's");
    }
    // Nothing was written beside the raster or into it.
    let mut after = util::snapshot(dir.path());
    after.retain(|p, _| !p.starts_with(dir.path().join("out")));
    assert_eq!(after, before);
}

#[test]
fn writes_into_a_raster_are_refused_and_leave_it_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let cog = l7_cog(dir.path());
    let before = util::snapshot(dir.path());
    let out = util::gridstore(&["ingest", s(&cog), s(&util::data("terra_elev.tif"))]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("l7_cog.tif is read-only"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(util::snapshot(dir.path()), before);
}

#[test]
fn a_netcdf_opens_read_only_and_stays_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let nc = dir.path().join("dem.nc");
    util::tool(
        "gdal_translate",
        &[
            "-q",
            "-of",
            "netCDF",
            s(&util::data("stars_olinda_dem_utm25s.tif")),
            s(&nc),
        ],
    );
    let before = util::snapshot(dir.path());
    let info = util::ok(&["info", s(&nc)]);
    assert!(info.contains("read-only"), "{info}");
    let png = dir.path().join("out.png");
    util::ok(&["export", s(&nc), "-o", s(&png)]);
    let mut after = util::snapshot(dir.path());
    after.retain(|p, _| p.file_name().is_some_and(|n| n == "dem.nc"));
    assert_eq!(after, before);
}

#[test]
fn a_file_that_is_neither_store_nor_raster_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a raster\n").unwrap();
    let out = util::gridstore(&["info", s(&text)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
