//! What each band is (its name, unit and colour interpretation) is kept by
//! the store from the first ingested raster that describes its bands.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn saved(store: &Path) -> Option<serde_json::Value> {
    let bytes = std::fs::read(store.join("bands.json")).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

#[test]
fn the_first_raster_that_describes_its_bands_describes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let vrt = util::described_scene(dir.path());
    let store = dir.path().join("bgr.gs");
    util::ok(&["create", s(&store), "--like", s(&vrt), "--chunk", "64"]);
    util::ok(&["ingest", s(&store), s(&vrt)]);
    let expected = serde_json::json!({
        "gridstore_bands": 1,
        "bands": [
            {"name": "blue", "unit": "DN", "colour": "blue"},
            {"name": "green", "unit": "DN", "colour": "green"},
            {"name": "red", "unit": "DN", "colour": "red"},
        ]
    });
    assert_eq!(saved(&store).unwrap(), expected);

    // The store reads it back, and its composite is red-green-blue = 3-2-1.
    let opened = gridstore::engine::Store::open(gridstore::storage::open(&store).unwrap()).unwrap();
    let info = opened.band_info();
    assert_eq!(info[2].name.as_deref(), Some("red"));
    assert_eq!(
        gridstore::engine::persistence::band_info::rgb_bands(&info),
        Some([2, 1, 0])
    );
    drop(opened);

    // A later raster with other descriptions leaves them as they are.
    let plain = dir.path().join("plain.tif");
    util::tool(
        "gdal_translate",
        &[
            "-q",
            "-b",
            "1",
            "-b",
            "2",
            "-b",
            "3",
            "-colorinterp",
            "red,green,blue",
            s(&util::data("stars_L7_ETMs.tif")),
            s(&plain),
        ],
    );
    util::ok(&["ingest", s(&store), s(&plain)]);
    assert_eq!(saved(&store).unwrap(), expected);
}

#[test]
fn a_raster_that_says_nothing_of_its_bands_writes_no_descriptions() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_L7_ETMs.tif");
    let store = dir.path().join("l7.gs");
    util::ok(&["create", s(&store), "--like", s(&src), "--chunk", "64"]);
    util::ok(&["ingest", s(&store), s(&src)]);
    assert!(saved(&store).is_none(), "grey band 1 and nothing else");
    let opened = gridstore::engine::Store::open(gridstore::storage::open(&store).unwrap()).unwrap();
    assert!(opened.band_info().is_empty());
}

#[test]
fn damaged_descriptions_refuse_the_store_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("terra_elev.tif");
    let store = dir.path().join("elev.gs");
    util::ok(&["create", s(&store), "--like", s(&src)]);
    util::ok(&["ingest", s(&store), s(&src)]);
    // terra_elev.tif's band is described "elevation".
    assert_eq!(
        saved(&store).unwrap()["bands"][0]["name"],
        serde_json::json!("elevation")
    );
    std::fs::write(store.join("bands.json"), b"{\"gridstore_bands\": 7}").unwrap();
    let out = util::gridstore(&["info", s(&store)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bands.json"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
