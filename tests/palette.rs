//! Categorical rasters keep their colour table: saved in the store by the
//! first ingest, written into GeoTIFF and COG exports, used for PNG
//! quicklooks, and shown by the explorer.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Band 1's colour table as RGBA entries, read by GDAL.
fn gdal_colors(path: &Path) -> Option<Vec<[u8; 4]>> {
    let ds = gdal::Dataset::open(path).unwrap();
    let band = ds.rasterband(1).unwrap();
    let table = band.color_table()?;
    Some(
        (0..table.entry_count())
            .map(|i| {
                let e = table.entry_as_rgb(i).unwrap();
                [e.r, e.g, e.b, e.a].map(|c| u8::try_from(c).unwrap())
            })
            .collect(),
    )
}

#[test]
fn a_colour_table_travels_from_ingest_to_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_lc.tif");
    let store = dir.path().join("lc.gs");
    util::ok(&["create", s(&store), "--like", s(&src), "--chunk", "16"]);
    util::ok(&["ingest", s(&store), s(&src)]);
    let expected = gdal_colors(&src).expect("stars_lc.tif has a colour table");

    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("palette.json")).unwrap()).unwrap();
    let saved: Vec<[u8; 4]> = serde_json::from_value(saved["colors"].clone()).unwrap();
    assert_eq!(saved, expected);

    for (name, format) in [("lc.tif", "gtiff"), ("lc_cog.tif", "cog")] {
        let out = dir.path().join(name);
        util::ok(&["export", s(&store), "-o", s(&out), "--format", format]);
        let mut written = gdal_colors(&out).unwrap();
        // TIFF palettes hold no alpha: GDAL reads the nodata entry (255) as
        // transparent, every other as opaque.
        assert_eq!(written[255], [0, 0, 0, 0], "{name}");
        written[255] = expected[255];
        assert_eq!(written, expected, "{name}");
    }
    // The NetCDF export is unaffected (netCDF has no palettes).
    util::ok(&["export", s(&store), "-o", s(&dir.path().join("lc.nc"))]);

    // The PNG quicklook colours each class with its entry.
    let png = dir.path().join("lc.png");
    util::ok(&["export", s(&store), "-o", s(&png)]);
    let tif = util::read(s(&dir.path().join("lc.tif")), None);
    let image = image::open(&png).unwrap().to_rgba8();
    assert_eq!(image.dimensions(), (tif.cols as u32, tif.rows as u32));
    let mut checked = 0;
    for (i, v) in tif.bands[0].iter().enumerate() {
        let px = image
            .get_pixel((i % tif.cols) as u32, (i / tif.cols) as u32)
            .0;
        if Some(*v) == tif.nodata {
            assert_eq!(px[3], 0);
        } else {
            assert_eq!(px, expected[*v as usize], "cell {i} (class {v})");
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn a_later_raster_with_other_colours_warns_and_the_store_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_lc.tif");
    let store = dir.path().join("lc.gs");
    util::ok(&["create", s(&store), "--like", s(&src)]);
    util::ok(&["ingest", s(&store), s(&src)]);
    let before = std::fs::read(store.join("palette.json")).unwrap();
    // The same classes with another colour table.
    let recoloured = dir.path().join("recoloured.tif");
    std::fs::copy(&src, &recoloured).unwrap();
    {
        let ds = gdal::Dataset::open_ex(
            &recoloured,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        let mut table = gdal::raster::ColorTable::default();
        table.set_color_entry(0, &gdal::raster::ColorEntry::rgba(9, 9, 9, 255));
        ds.rasterband(1).unwrap().set_color_table(&table);
    }
    let out = util::gridstore(&["ingest", s(&store), s(&recoloured)]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("recoloured.tif: its colour table differs from the store's"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(store.join("palette.json")).unwrap(), before);
}

#[test]
fn a_damaged_colour_table_is_named_when_opening() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_lc.tif");
    let store = dir.path().join("lc.gs");
    util::ok(&["create", s(&store), "--like", s(&src)]);
    std::fs::write(store.join("palette.json"), b"{\"colors\": 7").unwrap();
    let out = util::gridstore(&["info", s(&store)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("palette.json"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
