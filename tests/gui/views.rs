//! Scripted views under Xvfb (`gui --bands --colormap --stretch
//! --screenshot`), each checked against colours worked out from the data.

use super::{s, screenshot, util};
use std::collections::HashSet;

/// The map's pixels that show data: right of the side panel and the
/// ticks on the map's left edge, below the ticks on its top edge, above
/// the scale bar and legend, and not the map's dark background.
fn data_pixels(image: &image::RgbaImage) -> Vec<[u8; 3]> {
    let (w, h) = image.dimensions();
    (60..h - 130)
        .flat_map(|y| (540..w - 20).map(move |x| (x, y)))
        .map(|(x, y)| {
            let p = image.get_pixel(x, y).0;
            [p[0], p[1], p[2]]
        })
        .filter(|p| *p != [24, 24, 24])
        .collect()
}

/// Each cell's values of `bands` (1-based), read with GDAL.
fn cell_colours(raster: &std::path::Path, bands: [usize; 3]) -> HashSet<[u8; 3]> {
    let ds = gdal::Dataset::open(raster).unwrap();
    let planes = bands.map(|b| {
        let band = ds.rasterband(b).unwrap();
        band.read_band_as::<u8>().unwrap().into_shape_and_vec().1
    });
    (0..planes[0].len())
        .map(|i| [planes[0][i], planes[1][i], planes[2][i]])
        .collect()
}

/// `--bands 3,2,1` with a stretch of 0–255 draws each cell in exactly the
/// colour of its bands 3, 2 and 1: nearly every pixel of the map is such a
/// triple, and far fewer are triples in the default order (1, 2, 3).
#[test]
fn a_3_2_1_composite_shows_bands_3_2_1_as_red_green_blue() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_L7_ETMs.tif");
    let store = dir.path().join("l7.gs");
    util::ok(&["create", s(&store), "--like", s(&src)]);
    util::ok(&["ingest", s(&store), s(&src)]);
    let pixels = data_pixels(&screenshot(
        dir.path(),
        &store,
        &["--bands", "3,2,1", "--stretch", "0,255"],
    ));
    assert!(pixels.len() > 100_000, "{} map pixels", pixels.len());
    let share = |colours: &HashSet<[u8; 3]>| {
        pixels.iter().filter(|p| colours.contains(*p)).count() as f64 / pixels.len() as f64
    };
    let as_321 = share(&cell_colours(&src, [3, 2, 1]));
    let as_123 = share(&cell_colours(&src, [1, 2, 3]));
    assert!(
        as_321 > 0.99,
        "{as_321} of the pixels are band 3-2-1 triples"
    );
    assert!(
        as_123 < 0.5,
        "{as_123} of the pixels are band 1-2-3 triples"
    );
}

/// A COG gridstore did not write opens read-only: its 3-2-1 composite is
/// drawn from its own cells (each pixel a triple of its bands 3, 2 and 1),
/// the window says "read-only", and the file is byte-identical afterwards.
#[test]
fn a_foreign_cog_shows_read_only_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_L7_ETMs.tif");
    let cog = dir.path().join("l7_cog.tif");
    util::tool("gdal_translate", &["-q", "-of", "COG", s(&src), s(&cog)]);
    let before = std::fs::read(&cog).unwrap();
    let shots = dir.path().join("shots");
    std::fs::create_dir(&shots).unwrap();
    let image = screenshot(&shots, &cog, &["--bands", "3,2,1", "--stretch", "0,255"]);
    let pixels = data_pixels(&image);
    assert!(pixels.len() > 100_000, "{} map pixels", pixels.len());
    let triples = cell_colours(&src, [3, 2, 1]);
    let share = pixels.iter().filter(|p| triples.contains(*p)).count() as f64 / pixels.len() as f64;
    assert!(share > 0.99, "{share} of the pixels are band 3-2-1 triples");
    // The "read-only" label, in its amber, beside the path at the top of
    // the side panel.
    let amber = (40..140)
        .flat_map(|y| (0..400).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = image.get_pixel(x, y).0;
            p[0] > 200 && (150..230).contains(&p[1]) && p[2] < 120
        })
        .count();
    assert!(amber > 20, "{amber} amber pixels: no read-only label");
    assert_eq!(std::fs::read(&cog).unwrap(), before, "the COG is unchanged");
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside.len(), 2, "nothing written beside it: {beside:?}");
}

/// A Zarr store rioxarray wrote (v3, a band axis first) opens read-only:
/// its 3-2-1 composite is drawn from its own cells, nothing shows beyond
/// the raster though it has no nodata, and not a byte of it changes.
#[test]
fn a_zarr_written_by_rioxarray_shows_its_cells_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_L7_ETMs.tif");
    let zarr = dir.path().join("l7.zarr");
    util::rioxarray_zarr(&src, &zarr, 3, "reflectance");
    let before = util::snapshot(&zarr);
    let shots = dir.path().join("shots");
    std::fs::create_dir(&shots).unwrap();
    let image = screenshot(&shots, &zarr, &["--bands", "3,2,1", "--stretch", "0,255"]);
    let pixels = data_pixels(&image);
    assert!(pixels.len() > 100_000, "{} map pixels", pixels.len());
    let triples = cell_colours(&src, [3, 2, 1]);
    let share = pixels.iter().filter(|p| triples.contains(*p)).count() as f64 / pixels.len() as f64;
    assert!(share > 0.99, "{share} of the pixels are band 3-2-1 triples");
    assert_eq!(util::snapshot(&zarr), before, "the Zarr store is unchanged");
}

/// Data straddling the store's origin has a one-chunk master at the top of
/// the pyramid; the stretch comes from the data in view all the same, so
/// the map is not drawn in the ramp's two end colours.
#[test]
fn data_straddling_the_origin_is_not_saturated() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_olinda_dem_utm25s.tif");
    let store = dir.path().join("straddling.gs");
    // The origin at a cell corner near the middle of the DEM.
    let origin = "293725.9215,9115811.0785";
    util::ok(&["create", s(&store), "--like", s(&src), "--origin", origin]);
    util::ok(&["ingest", s(&store), s(&src)]);
    let info = util::ok(&["info", s(&store)]);
    assert!(info.contains("master      level 12"), "{info}");
    let pixels = data_pixels(&screenshot(dir.path(), &store, &[]));
    // The DEM's cells, read with GDAL: the sea is flat at its minimum, so
    // the bottom colour covers the cells at or below the 2nd percentile.
    let ds = gdal::Dataset::open(&src).unwrap();
    let mut cells = ds
        .rasterband(1)
        .unwrap()
        .read_band_as::<f32>()
        .unwrap()
        .into_shape_and_vec()
        .1;
    cells.retain(|v| !v.is_nan());
    cells.sort_by(f32::total_cmp);
    let p2 = cells[(cells.len() - 1) * 2 / 100];
    let expected_bottom = cells.iter().filter(|v| **v <= p2).count() as f64 / cells.len() as f64;
    let share = |colour: [u8; 3]| {
        pixels.iter().filter(|p| **p == colour).count() as f64 / pixels.len() as f64
    };
    let (bottom, top) = (share([68, 1, 84]), share([253, 231, 37]));
    assert!(top < 0.05, "{top} of the pixels in the ramp's top colour");
    assert!(
        (bottom - expected_bottom).abs() < 0.03,
        "{bottom} of the pixels in the bottom colour, {expected_bottom} of the cells"
    );
    // Whole metres from 0 to 70 in view: one colour each.
    let colours: HashSet<&[u8; 3]> = pixels.iter().collect();
    assert!(colours.len() > 60, "{} colours", colours.len());
}

/// The map carries a colour bar of the colour map chosen (bottom right), a
/// scale bar (bottom left) and coordinate ticks (top edge).
#[test]
fn the_map_has_a_colour_bar_a_scale_bar_and_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::store_with_data(dir.path());
    let image = screenshot(dir.path(), &store, &["--colormap", "magma"]);
    let (w, h) = image.dimensions();
    let near = |p: [u8; 4], c: [u8; 3]| (0..3).all(|k| p[k].abs_diff(c[k]) <= 12);
    let any_in = |xs: std::ops::Range<u32>, ys: std::ops::Range<u32>, c: [u8; 3]| {
        ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
            .any(|(x, y)| near(image.get_pixel(x, y).0, c))
    };
    // The bar spans magma from its first colour to its last.
    let legend = (w - 200..w - 10, h - 110..h - 30);
    assert!(any_in(legend.0.clone(), legend.1.clone(), [0, 0, 4]));
    assert!(any_in(legend.0.clone(), legend.1.clone(), [252, 253, 191]));
    assert!(!any_in(legend.0, legend.1, [253, 231, 37]), "no viridis");
    // The scale bar: a light horizontal line at least 40 points long.
    let longest = (h - 80..h - 20)
        .map(|y| {
            let mut run = 0;
            let mut best = 0;
            for x in 400..700 {
                run = if near(image.get_pixel(x, y).0, [235, 235, 235]) {
                    run + 1
                } else {
                    0
                };
                best = best.max(run);
            }
            best
        })
        .max()
        .unwrap();
    assert!(longest >= 40, "scale bar {longest} pixels long");
    // Tick labels: light text on dark boxes along the top edge.
    let text = (400..w)
        .filter(|&x| (0..40).any(|y| near(image.get_pixel(x, y).0, [235, 235, 235])))
        .count();
    assert!(text > 100, "{text} columns of tick labels");
}

/// The real explorer under Xvfb on a desktop with no portal, no session bus
/// and no zenity or kdialog: clicking "Open store…" opens the file browser
/// inside the window (a dialog-coloured window over the side panel, which
/// was not there before the click).
#[test]
fn without_a_portal_open_store_shows_the_in_window_browser() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::store_with_data(dir.path());
    let empty = dir.path().join("no-programs");
    std::fs::create_dir(&empty).unwrap();
    let (before, after) = (dir.path().join("before.xwd"), dir.path().join("after.xwd"));
    // The explorer runs with no dialog program on its PATH and no bus;
    // xdotool clicks the button and xwd grabs the screen.
    let script = format!(
        "env -u DBUS_SESSION_BUS_ADDRESS PATH={empty} XDG_RUNTIME_DIR={empty} \
         XDG_CONFIG_HOME={config} {bin} gui {store} & pid=$!; \
         xdotool search --sync --name gridstore >/dev/null; sleep 4; \
         xwd -root -silent > {before}; \
         xdotool mousemove 55 36 click 1; sleep 2; \
         xwd -root -silent > {after}; kill $pid",
        empty = s(&empty),
        config = s(dir.path()),
        bin = env!("CARGO_BIN_EXE_gridstore"),
        store = s(&store),
        before = s(&before),
        after = s(&after),
    );
    let out = std::process::Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24", "sh", "-c", &script])
        .output()
        .expect("xvfb-run, xdotool and xwd (installed by .ci/deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (before, after) = (xwd(&before), xwd(&after));
    // Where the browser opens: over the top of the side panel.
    let area: Vec<(u32, u32)> = (80..440)
        .flat_map(|y| (30..500).map(move |x| (x, y)))
        .collect();
    let changed = area
        .iter()
        .filter(|(x, y)| before.get_pixel(*x, *y) != after.get_pixel(*x, *y))
        .count();
    assert!(
        changed * 4 > area.len(),
        "{changed} of {} pixels changed: no browser",
        area.len()
    );
}

/// An XWD screen dump (ZPixmap, 32 bits per pixel, as Xvfb's 24-bit
/// screen gives) as an image.
fn xwd(path: &std::path::Path) -> image::RgbImage {
    let d = std::fs::read(path).unwrap();
    let field = |i: usize| u32::from_be_bytes(d[i * 4..i * 4 + 4].try_into().unwrap());
    let (header, w, h, bytes_per_line, colours) =
        (field(0), field(4), field(5), field(12), field(19));
    assert_eq!(field(11), 32, "bits per pixel");
    let start = (header + colours * 12) as usize;
    image::RgbImage::from_fn(w, h, |x, y| {
        let at = start + (y * bytes_per_line + x * 4) as usize;
        // Little-endian BGRX.
        image::Rgb([d[at + 2], d[at + 1], d[at]])
    })
}

/// `--hillshade alone` draws gdaldem's hillshade in greys: the map's
/// shades have the distribution of `gdaldem hillshade -compute_edges` on
/// the same DEM. Chunks of 16 cells (a seam every 16 cells) draw the same
/// pixels as one chunk holding the whole DEM: tiles meet without seams.
#[test]
fn the_hillshade_is_gdaldems_and_has_no_seams() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_olinda_dem_utm25s.tif");
    let shade = |chunk: &str| {
        let store = dir.path().join(format!("dem{chunk}.gs"));
        util::ok(&["create", s(&store), "--like", s(&src), "--chunk", chunk]);
        util::ok(&["ingest", s(&store), s(&src)]);
        data_pixels(&screenshot(dir.path(), &store, &["--hillshade", "alone"]))
    };
    let (small, whole) = (shade("16"), shade("128"));
    assert_eq!(small.len(), whole.len());
    let same = small.iter().zip(&whole).filter(|(a, b)| a == b).count();
    assert!(
        same * 1000 >= small.len() * 999,
        "{} of {} pixels differ between chunkings",
        small.len() - same,
        small.len()
    );
    assert!(whole.iter().all(|p| p[0] == p[1] && p[1] == p[2]), "greys");
    let gdal_shade = dir.path().join("shade.tif");
    util::tool(
        "gdaldem",
        &["hillshade", "-q", "-compute_edges", s(&src), s(&gdal_shade)],
    );
    let mut expected: Vec<f64> = util::read(s(&gdal_shade), None).bands[0]
        .iter()
        .copied()
        .filter(|v| *v > 0.0)
        .collect();
    let mut shown: Vec<f64> = whole.iter().map(|p| f64::from(p[0])).collect();
    let quantile = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q) as usize]
    };
    for q in [0.1, 0.5, 0.9] {
        let (a, b) = (quantile(&mut shown, q), quantile(&mut expected, q));
        assert!((a - b).abs() <= 3.0, "quantile {q}: shown {a}, gdaldem {b}");
    }
}
