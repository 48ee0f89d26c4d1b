//! End-to-end tests of the `gridstore` command line on real GeoTIFFs, with
//! GDAL's own tools as the oracle for the values.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;
use util::{data, gridstore, ok, read, same, snapshot, tool};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The base-level export of an ingested file equals `gdal_translate` of the
/// same window, bit for bit, for every sample raster.
#[test]
fn base_export_equals_gdal_translate() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "stars_L7_ETMs.tif",
        "stars_olinda_dem_utm25s.tif",
        "terra_meuse.tif",
        "terra_elev.tif",
        "stars_lc.tif",
    ] {
        let store = dir.path().join(format!("{name}.gs"));
        let src = data(name);
        ok(&["create", s(&store), "--like", s(&src), "--chunk", "64x32"]);
        ok(&["ingest", s(&store), s(&src)]);
        // A window inside the raster, not aligned to chunks.
        let g = read(s(&src), None);
        let gt = g.geotransform;
        let (c0, r0, w, h) = (7, 5, g.cols - 20, g.rows - 11);
        let bbox = format!(
            "{},{},{},{}",
            gt[0] + c0 as f64 * gt[1],
            gt[3] + (r0 + h) as f64 * gt[5],
            gt[0] + (c0 + w) as f64 * gt[1],
            gt[3] + r0 as f64 * gt[5]
        );
        let ours = dir.path().join(format!("{name}.ours.tif"));
        let theirs = dir.path().join(format!("{name}.gdal.tif"));
        ok(&["export", s(&store), "-o", s(&ours), "--bbox", &bbox]);
        tool(
            "gdal_translate",
            &[
                "-q",
                "-srcwin",
                &c0.to_string(),
                &r0.to_string(),
                &w.to_string(),
                &h.to_string(),
                s(&src),
                s(&theirs),
            ],
        );
        let (a, b) = (read(s(&ours), None), read(s(&theirs), None));
        assert_eq!(
            (a.cols, a.rows, a.bands.len()),
            (b.cols, b.rows, b.bands.len()),
            "{name}"
        );
        for (i, (x, y)) in a.geotransform.iter().zip(b.geotransform).enumerate() {
            assert!(
                (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                "{name} geotransform[{i}] {x} != {y}"
            );
        }
        for (band_a, band_b) in a.bands.iter().zip(&b.bands) {
            let differ = band_a
                .iter()
                .zip(band_b)
                .filter(|(x, y)| !same(**x, **y))
                .count();
            assert_eq!(
                differ, 0,
                "{name}: {differ} cells differ from gdal_translate"
            );
        }
        // And the whole-data export of a raster without nodata has its exact size.
        if g.nodata.is_none() {
            let all = dir.path().join(format!("{name}.all.tif"));
            ok(&["export", s(&store), "-o", s(&all)]);
            let full = read(s(&all), None);
            assert_eq!(
                (full.cols, full.rows),
                (g.cols, g.rows),
                "{name}: export of all data"
            );
        }
    }
}

/// Level k with mean equals gdaladdo -r average's overview k on a raster
/// whose sides are multiples of 2^k.
#[test]
fn mean_levels_equal_gdaladdo_average() {
    let dir = tempfile::tempdir().unwrap();
    let cropped = dir.path().join("dem96.tif");
    tool(
        "gdal_translate",
        &[
            "-q",
            "-srcwin",
            "0",
            "0",
            "96",
            "96",
            s(&data("stars_olinda_dem_utm25s.tif")),
            s(&cropped),
        ],
    );
    let store = dir.path().join("dem.gs");
    ok(&["create", s(&store), "--like", s(&cropped), "--chunk", "16"]);
    ok(&["ingest", s(&store), s(&cropped)]);
    let ovr = dir.path().join("dem96_ovr.tif");
    std::fs::copy(&cropped, &ovr).unwrap();
    tool(
        "gdaladdo",
        &["-q", "-r", "average", s(&ovr), "2", "4", "8", "16", "32"],
    );
    for k in 1..=5u8 {
        let ours = dir.path().join(format!("l{k}.tif"));
        ok(&[
            "export",
            s(&store),
            "-o",
            s(&ours),
            "--level",
            &k.to_string(),
        ]);
        let a = read(s(&ours), None);
        let b = read(s(&ovr), Some(usize::from(k) - 1));
        assert_eq!((a.cols, a.rows), (b.cols, b.rows), "level {k} size");
        for (x, y) in a.bands[0].iter().zip(&b.bands[0]) {
            assert!(
                (x - y).abs() <= 1e-6 * y.abs().max(1e-6),
                "level {k}: {x} vs gdaladdo {y}"
            );
        }
    }
}

/// Recursive 2x2 reference for mode and nearest, as docs/FORMAT.md defines.
fn reference(base: &[f64], cols: usize, rows: usize, nodata: f64, k: u32, mode: bool) -> Vec<f64> {
    let mut level = base.to_vec();
    let (mut c, mut r) = (cols, rows);
    for _ in 0..k {
        let (nc, nr) = (c.div_ceil(2), r.div_ceil(2));
        let mut next = vec![nodata; nc * nr];
        for y in 0..nr {
            for x in 0..nc {
                let mut v = Vec::new();
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let (yy, xx) = (2 * y + dy, 2 * x + dx);
                    let value = if yy < r && xx < c {
                        level[yy * c + xx]
                    } else {
                        nodata
                    };
                    if value != nodata && !value.is_nan() {
                        v.push(value);
                    }
                }
                if v.is_empty() {
                    continue;
                }
                next[y * nc + x] = if mode {
                    // Most frequent; ties to the first in reading order.
                    let mut best = (v[0], 0);
                    for a in &v {
                        let n = v.iter().filter(|b| *b == a).count();
                        if n > best.1 {
                            best = (*a, n);
                        }
                    }
                    best.0
                } else {
                    v[0]
                };
            }
        }
        (level, c, r) = (next, nc, nr);
    }
    level
}

#[test]
fn mode_and_nearest_match_a_brute_force_reference() {
    let dir = tempfile::tempdir().unwrap();
    let src = data("stars_lc.tif");
    let g = read(s(&src), None);
    let bbox = g.bbox();
    for aggregate in ["mode", "nearest"] {
        let store = dir.path().join(format!("{aggregate}.gs"));
        ok(&[
            "create",
            s(&store),
            "--like",
            s(&src),
            "--chunk",
            "8",
            "--aggregate",
            aggregate,
            "--nodata",
            "0",
        ]);
        // Class 0 is the raster's "no class": asked to become nodata.
        ok(&["ingest", s(&store), s(&src), "--allow-nodata-loss"]);
        for k in 1..=3u32 {
            let out = dir.path().join(format!("{aggregate}{k}.tif"));
            ok(&[
                "export",
                s(&store),
                "-o",
                s(&out),
                "--level",
                &k.to_string(),
                "--bbox",
                &bbox,
            ]);
            let a = read(s(&out), None);
            let expected = reference(&g.bands[0], g.cols, g.rows, 0.0, k, aggregate == "mode");
            let (ec, er) = (g.cols.div_ceil(1 << k), g.rows.div_ceil(1 << k));
            assert_eq!((a.cols, a.rows), (ec, er), "{aggregate} level {k}");
            assert_eq!(a.bands[0], expected, "{aggregate} level {k}");
        }
    }
}

/// A source in another CRS is warped by GDAL; the result equals gdalwarp
/// onto the same grid for at least 99.9% of the cells.
#[test]
fn warped_ingest_equals_gdalwarp() {
    let dir = tempfile::tempdir().unwrap();
    let src = data("terra_meuse.tif");
    let store = dir.path().join("wgs.gs");
    // A UTM 31N grid with 50 m cells, anchored on a round coordinate.
    ok(&[
        "create",
        s(&store),
        "--crs",
        "EPSG:32631",
        "--cell-size",
        "50",
        "--origin",
        "680000,5660000",
        "--dtype",
        "i16",
        "--nodata",
        "-32768",
        "--resampling",
        "nearest",
        "--chunk",
        "32",
    ]);
    let out = ok(&["ingest", s(&store), s(&src)]);
    assert!(out.contains("(warped)"), "{out}");
    let ours = dir.path().join("ours.tif");
    ok(&["export", s(&store), "-o", s(&ours)]);
    let a = read(s(&ours), None);
    let b = gdalwarp_onto(
        &a,
        &src,
        "EPSG:32631",
        &dir.path().join("gdalwarp.tif"),
        &["-dstnodata", "-32768"],
    );
    let equal = equal_cells(&a, &b);
    let valid = b.bands[0].iter().filter(|v| **v != -32768.0).count();
    assert!(valid > 1000, "the warp covers data");
    let share = equal as f64 / a.bands[0].len() as f64;
    assert!(
        share >= 0.999,
        "only {:.4}% of cells equal gdalwarp",
        share * 100.0
    );
}

/// `gdalwarp -r near` of `src` onto exactly the grid of `like`.
fn gdalwarp_onto(
    like: &util::Grid,
    src: &Path,
    crs: &str,
    out: &Path,
    extra: &[&str],
) -> util::Grid {
    let gt = like.geotransform;
    let te = [
        gt[0],
        gt[3] + like.rows as f64 * gt[5],
        gt[0] + like.cols as f64 * gt[1],
        gt[3],
    ]
    .map(|v| v.to_string());
    let (cols, rows) = (like.cols.to_string(), like.rows.to_string());
    let mut args = vec![
        "-q", "-t_srs", crs, "-te", &te[0], &te[1], &te[2], &te[3], "-ts", &cols, &rows, "-r",
        "near",
    ];
    args.extend(extra);
    args.extend([s(src), s(out)]);
    tool("gdalwarp", &args);
    read(s(out), None)
}

/// Cells of band 1 equal in both (nodata/NaN equal to itself).
fn equal_cells(a: &util::Grid, b: &util::Grid) -> usize {
    a.bands[0]
        .iter()
        .zip(&b.bands[0])
        .filter(|(x, y)| same(**x, **y))
        .count()
}

/// Every bad input gets a one-line error naming the file, a non-zero exit,
/// and leaves the store byte-for-byte unchanged.
#[test]
fn bad_input_fails_cleanly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("s.gs");
    ok(&[
        "create",
        s(&store),
        "--like",
        s(&data("terra_meuse.tif")),
        "--chunk",
        "32",
        "--domain-levels",
        "4",
    ]);
    ok(&["ingest", s(&store), s(&data("terra_meuse.tif"))]);
    let text = d.join("notes.txt");
    std::fs::write(&text, "not a raster\n").unwrap();
    let plain = d.join("plain.png");
    image::save_buffer(&plain, &[7u8; 64], 8, 8, image::ExtendedColorType::L8).unwrap();
    let truncated = d.join("truncated.tif");
    let bytes = std::fs::read(data("terra_meuse.tif")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let float = d.join("float.tif");
    tool(
        "gdal_translate",
        &[
            "-q",
            "-ot",
            "Float32",
            "-scale",
            "0",
            "1000",
            "0",
            "0.5",
            s(&data("terra_meuse.tif")),
            s(&float),
        ],
    );
    let far = d.join("far.tif");
    tool(
        "gdal_translate",
        &[
            "-q",
            "-a_ullr",
            "0",
            "5000000",
            "3200",
            "4995400",
            s(&data("terra_meuse.tif")),
            s(&far),
        ],
    );
    let before = snapshot(&store);
    let cases: Vec<(Vec<String>, &str, i32)> = vec![
        (
            vec!["ingest".into(), s(&store).into(), s(&text).into()],
            "notes.txt",
            2,
        ),
        (
            vec!["ingest".into(), s(&store).into(), s(&plain).into()],
            "plain.png",
            2,
        ),
        (
            vec!["ingest".into(), s(&store).into(), s(&truncated).into()],
            "truncated.tif: read failed",
            2,
        ),
        (
            vec!["ingest".into(), s(&store).into(), s(&float).into()],
            "float.tif",
            2,
        ),
        (
            vec!["ingest".into(), s(&store).into(), s(&far).into()],
            "far.tif",
            2,
        ),
        (
            vec![
                "export".into(),
                s(&store).into(),
                "-o".into(),
                "/nonexistent/dir/out.tif".into(),
            ],
            "/nonexistent/dir: cannot write (no such folder)",
            2,
        ),
        (
            vec![
                "export".into(),
                s(&store).into(),
                "-o".into(),
                s(&d.join("o.tif")).into(),
                "--bbox".into(),
                "1e9,1e9,1.1e9,1.1e9".into(),
            ],
            "outside the store's domain",
            2,
        ),
        (
            vec![
                "export".into(),
                s(&store).into(),
                "-o".into(),
                s(&d.join("o.tif")).into(),
                "--level".into(),
                "9".into(),
            ],
            "level 9 does not exist",
            2,
        ),
        (
            vec![
                "export".into(),
                s(&store).into(),
                "-o".into(),
                s(&d.join("o.jpg")).into(),
            ],
            "o.jpg",
            2,
        ),
        (
            vec![
                "export".into(),
                s(&store).into(),
                "-o".into(),
                s(&d.join("o.png")).into(),
                "--size".into(),
                "0x10".into(),
            ],
            "must be positive",
            2,
        ),
        (vec!["frobnicate".into()], "frobnicate", 2),
        (
            vec!["info".into(), s(&d.join("missing.gs")).into()],
            "missing.gs",
            2,
        ),
        (vec!["info".into(), s(d).into()], s(d), 2),
    ];
    for (args, names, code) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = gridstore(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            stderr.contains(names),
            "{args:?}: error does not name {names}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        // Usage errors are clap's whole message; runtime errors one line.
        if ["must be positive", "frobnicate"].contains(&names) {
            assert!(
                stderr.contains("Usage:") || stderr.contains("--help"),
                "{args:?}: usage errors show the usage: {stderr}"
            );
        } else {
            assert_eq!(
                stderr.lines().count(),
                1,
                "{args:?}: not a one-line error: {stderr}"
            );
        }
        assert_eq!(snapshot(&store), before, "{args:?} changed the store");
    }
    // float into an integer store works with --cast.
    ok(&["ingest", s(&store), s(&float), "--cast"]);
}

/// A flipped byte in a chunk is caught by its checksum: reads fail naming the
/// chunk, and verify exits 1 listing it.
#[test]
fn corrupted_chunk_is_named_and_never_read_as_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("c.gs");
    ok(&[
        "create",
        s(&store),
        "--like",
        s(&data("terra_meuse.tif")),
        "--chunk",
        "32",
    ]);
    ok(&["ingest", s(&store), s(&data("terra_meuse.tif"))]);
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    let chunks: serde_json::Value =
        serde_json::from_str(&ok(&["chunks", s(&store), "--level", "0", "--json"])).unwrap();
    let key = chunks[0]["key"].as_str().unwrap().to_string();
    let path = store.join(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&path, bytes).unwrap();
    let before = snapshot(&store);
    let out = gridstore(&["verify", s(&store)]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&key), "{stdout}");
    assert!(
        stdout.contains("to repair:"),
        "says how to recover: {stdout}"
    );
    // info still summarises the store: from its metadata, without
    // reading chunks.
    let info = ok(&["info", s(&store)]);
    assert!(info.contains("79 x 104 base cells"), "{info}");
    let out = gridstore(&["export", s(&store), "-o", s(&dir.path().join("x.tif"))]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&key), "{err}");
    assert!(
        !err.contains("cannot write"),
        "the store is at fault, not the output: {err}"
    );
    assert_eq!(
        err.matches(&*store.display().to_string()).count(),
        1,
        "the store named once: {err}"
    );
    assert!(!dir.path().join("x.tif").exists(), "no partial output");
    assert_eq!(snapshot(&store), before);
}

/// A second writer is refused at once, naming the holder's process.
#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("l.gs");
    ok(&["create", s(&store), "--like", s(&data("terra_meuse.tif"))]);
    let storage = gridstore::storage::FolderStorage::open(&store).unwrap();
    let _writer = gridstore::engine::Store::open_writer(std::sync::Arc::new(storage)).unwrap();
    let out = gridstore(&["ingest", s(&store), s(&data("terra_meuse.tif"))]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("is locked by process {}", std::process::id())),
        "{stderr}"
    );
    // Readers are not blocked.
    ok(&["info", s(&store)]);
}

/// Clear sets an extent to nodata, drops emptied chunks, and keeps the
/// pyramid consistent; data west and north of the first file ingests too.
#[test]
fn clear_and_growth_keep_the_pyramid_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("g.gs");
    let src = data("stars_olinda_dem_utm25s.tif");
    ok(&["create", s(&store), "--like", s(&src), "--chunk", "16"]);
    ok(&["ingest", s(&store), s(&src)]);
    // The same raster shifted 50 cells west and 30 north.
    let g = read(s(&src), None);
    let gt = g.geotransform;
    let shifted = dir.path().join("shifted.tif");
    let (x0, y0) = (gt[0] - 50.0 * gt[1], gt[3] - 30.0 * gt[5]);
    tool(
        "gdal_translate",
        &[
            "-q",
            "-a_ullr",
            &x0.to_string(),
            &y0.to_string(),
            &(x0 + 111.0 * gt[1]).to_string(),
            &(y0 + 111.0 * gt[5]).to_string(),
            s(&src),
            s(&shifted),
        ],
    );
    ok(&["ingest", s(&store), s(&shifted)]);
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["info", s(&store), "--json"])).unwrap();
    assert_eq!(info["data_size"], serde_json::json!([161, 141]));
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    let bbox = format!(
        "{},{},{},{}",
        gt[0],
        gt[3] + 111.0 * gt[5],
        gt[0] + 111.0 * gt[1],
        gt[3]
    );
    let before: u64 = info["levels"][0]["chunks"].as_u64().unwrap();
    ok(&["clear", s(&store), "--bbox", &bbox]);
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["info", s(&store), "--json"])).unwrap();
    assert!(
        info["levels"][0]["chunks"].as_u64().unwrap() < before,
        "emptied chunks are removed"
    );
    let out = dir.path().join("after.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--bbox",
        &bbox,
        "--allow-empty",
    ]);
    let a = read(s(&out), None);
    assert!(
        a.bands[0].iter().all(|v| v.is_nan()),
        "the cleared extent holds no data"
    );
    // What is left is the L-shaped part of the shifted copy outside the bbox.
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["info", s(&store), "--json"])).unwrap();
    assert_eq!(info["data_size"], serde_json::json!([111, 111]));
}

/// zarr-python opens every level read-only and reads exactly the values
/// gridstore returns; GDAL's Zarr driver reads the base level too.
#[test]
fn zarr_python_and_gdal_read_every_level() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("z.gs");
    let src = data("stars_L7_ETMs.tif");
    ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--chunk",
        "64",
        "--domain-levels",
        "6",
    ]);
    ok(&["ingest", s(&store), s(&src)]);
    let storage = gridstore::storage::FolderStorage::open(&store).unwrap();
    let engine = gridstore::engine::Store::open(std::sync::Arc::new(storage)).unwrap();
    let grid = *engine.grid();
    let script = r#"
import sys, zarr, numpy as np
store, level, r0, c0, rows, cols, out = sys.argv[1:]
z = zarr.open_array(f"{store}/{level}/data", mode="r", zarr_format=2)
a = z[:, int(r0):int(r0)+int(rows), int(c0):int(c0)+int(cols)]
with open(out, "wb") as f:
    f.write(np.ascontiguousarray(a).tobytes())
"#;
    for level in 0..=grid.top_level() {
        let window = engine.data_window::<u8>(0).unwrap().unwrap();
        let f = 1u64 << level;
        let w = gridstore::engine::Window {
            row: window.row / f,
            col: window.col / f,
            rows: (window.row + window.rows).div_ceil(f) - window.row / f,
            cols: (window.col + window.cols).div_ceil(f) - window.col / f,
        };
        let expected = engine.read_window::<u8>(0, level, &w).unwrap();
        let out = dir.path().join(format!("level{level}.bin"));
        // The level's array starts at its footprint's first chunk.
        let array = engine.footprint().array_window(&grid, level);
        let [cw, ch] = grid.chunk_shape();
        let (r0, c0) = (
            w.row - array.row * u64::from(ch),
            w.col - array.col * u64::from(cw),
        );
        let status = std::process::Command::new("python3")
            .args(["-W", "error", "-c", script, s(&store), &level.to_string()])
            .args([r0, c0, w.rows, w.cols].map(|v| v.to_string()))
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success(), "zarr-python failed on level {level}");
        let got = std::fs::read(&out).unwrap();
        assert_eq!(
            got,
            expected.iter().copied().collect::<Vec<u8>>(),
            "level {level} differs in zarr-python"
        );
    }
    // GDAL 3.6's Zarr driver: band 1 (extra dimension index 0) of level 0.
    let window = engine.data_window::<u8>(0).unwrap().unwrap();
    let origin = engine.footprint().array_window(&grid, 0);
    let tif = dir.path().join("gdal_zarr.tif");
    let name = format!("ZARR:\"{}\":/0/data:0", s(&store));
    tool(
        "gdal_translate",
        &[
            "-q",
            "-srcwin",
            &(window.col - origin.col * u64::from(grid.chunk_shape()[0])).to_string(),
            &(window.row - origin.row * u64::from(grid.chunk_shape()[1])).to_string(),
            &window.cols.to_string(),
            &window.rows.to_string(),
            &name,
            s(&tif),
        ],
    );
    let a = read(s(&tif), None);
    let b = read(s(&src), None);
    assert_eq!(
        a.bands[0], b.bands[0],
        "GDAL's Zarr driver reads the source values"
    );
}

/// The demo used by the README's run command works.
#[test]
fn demo_builds_a_store_and_prints_info() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("demo");
    let out = ok(&["demo", "--store", s(&store)]);
    assert!(out.contains("master"), "{out}");
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
}

/// COG overviews are the store's own levels; NetCDF holds the same values as
/// GeoTIFF; PNG is a non-blank quicklook.
#[test]
fn cog_netcdf_and_png_exports() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("e.gs");
    let src = data("stars_L7_ETMs.tif");
    ok(&["create", s(&store), "--like", s(&src), "--chunk", "32"]);
    ok(&["ingest", s(&store), s(&src)]);
    let g = read(s(&src), None);
    let gt = g.geotransform;
    // A 256-cell square so the COG has overviews at 2 and 4.
    let bbox = format!(
        "{},{},{},{}",
        gt[0],
        gt[3] + 256.0 * gt[5],
        gt[0] + 256.0 * gt[1],
        gt[3]
    );
    let cog = dir.path().join("out.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&cog),
        "--format",
        "cog",
        "--bbox",
        &bbox,
        "--resolution",
        &(gt[1] / 4.0).to_string(),
    ]);
    let base = read(s(&cog), None);
    assert_eq!((base.cols, base.rows), (1024, 1024));
    let ds = gdal::Dataset::open(&cog).unwrap();
    let overviews = ds.rasterband(1).unwrap().overview_count().unwrap();
    assert!(overviews >= 2, "{overviews} overviews");
    for k in 1..=2usize {
        // Overview k holds what a direct export at that cell size holds.
        let direct = dir.path().join(format!("direct{k}.tif"));
        let cell = gt[1] / 4.0 * f64::from(1u32 << k);
        ok(&[
            "export",
            s(&store),
            "-o",
            s(&direct),
            "--bbox",
            &bbox,
            "--resolution",
            &cell.to_string(),
        ]);
        let o = read(s(&cog), Some(k - 1));
        let d = read(s(&direct), None);
        assert_eq!((o.cols, o.rows), (d.cols, d.rows), "overview {k} size");
        assert_eq!(o.bands, d.bands, "overview {k} comes from the store");
    }
    let nc = dir.path().join("out.nc");
    let tif = dir.path().join("same.tif");
    ok(&["export", s(&store), "-o", s(&nc), "--bbox", &bbox]);
    ok(&["export", s(&store), "-o", s(&tif), "--bbox", &bbox]);
    // GDAL writes one NetCDF variable per band.
    let (a, b) = (
        read(&format!("NETCDF:\"{}\":Band1", s(&nc)), None),
        read(s(&tif), None),
    );
    let mut a_rows = a.bands[0].clone();
    if a.geotransform[5] > 0.0 {
        // NetCDF may store rows bottom-up.
        a_rows = a.bands[0].chunks(a.cols).rev().flatten().copied().collect();
    }
    assert_eq!(a_rows, b.bands[0]);
    let png = dir.path().join("quick.png");
    ok(&["export", s(&store), "-o", s(&png), "--size", "100x100"]);
    let world = std::fs::read_to_string(png.with_extension("pgw")).unwrap();
    let lines: Vec<f64> = world.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(lines.len(), 6, "{world}");
    assert!(
        (lines[4] - (gt[0] + lines[0] / 2.0)).abs() < 1e-6,
        "world file origin is the first cell's centre"
    );
    let img = image::open(&png).unwrap().to_rgba8();
    assert_eq!(img.dimensions(), (100, 100));
    let distinct: std::collections::BTreeSet<[u8; 4]> = img.pixels().map(|p| p.0).collect();
    assert!(
        distinct.len() > 50,
        "quicklook has {} colours",
        distinct.len()
    );
}

/// An export on a level's chunk grid copies the stored chunks as its tiles
/// (no recompression) and still reads back as the source's values.
#[test]
fn chunk_aligned_export_copies_chunks_as_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("a.gs");
    let src = data("terra_meuse.tif");
    ok(&["create", s(&store), "--like", s(&src), "--chunk", "32"]);
    ok(&["ingest", s(&store), s(&src)]);
    let g = read(s(&src), None);
    let gt = g.geotransform;
    // 96 x 128 cells from the raster's corner (a chunk corner): 3 x 4 chunks, some empty.
    let bbox = format!(
        "{},{},{},{}",
        gt[0],
        gt[3] + 128.0 * gt[5],
        gt[0] + 96.0 * gt[1],
        gt[3]
    );
    let out = dir.path().join("aligned.tif");
    ok(&["export", s(&store), "-o", s(&out), "--bbox", &bbox]);
    let a = read(s(&out), None);
    assert_eq!((a.cols, a.rows), (96, 128));
    for r in 0..128 {
        for c in 0..96 {
            let v = a.bands[0][r * 96 + c];
            let expected = if r < g.rows && c < g.cols {
                g.bands[0][r * g.cols + c]
            } else {
                -32768.0
            };
            assert!(same(v, expected), "cell {r},{c}: {v} vs {expected}");
        }
    }
    // The first chunk's stored bytes are in the file verbatim.
    let chunks: serde_json::Value =
        serde_json::from_str(&ok(&["chunks", s(&store), "--level", "0", "--json"])).unwrap();
    let first = chunks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bytes"].as_u64().unwrap() > 100)
        .unwrap();
    let bytes = std::fs::read(store.join(first["key"].as_str().unwrap())).unwrap();
    let file = std::fs::read(&out).unwrap();
    assert!(
        file.windows(bytes.len()).any(|w| w == bytes.as_slice()),
        "chunk copied as a tile"
    );
    // gdal_translate -srcwin of the overlapping part agrees bit for bit.
    let theirs = dir.path().join("gdal.tif");
    tool(
        "gdal_translate",
        &["-q", "-srcwin", "0", "0", "80", "115", s(&out), s(&theirs)],
    );
    assert_eq!(read(s(&theirs), None).bands[0], g.bands[0]);
}

/// An export copied chunk for chunk from a store whose CRS is an EPSG code
/// carries that code (gridstore writes its GeoTIFF keys itself), with the
/// source's georeferencing and values.
#[test]
fn a_copied_export_carries_the_epsg_crs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("e.gs");
    let src = data("terra_elev.tif");
    ok(&["create", s(&store), "--like", s(&src)]);
    ok(&["ingest", s(&store), s(&src)]);
    let g = read(s(&src), None);
    let out = dir.path().join("copied.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--bbox",
        &g.bbox(),
        "--snap",
    ]);
    let epsg = |p: &Path| {
        let out = std::process::Command::new("gdalsrsinfo")
            .args(["-o", "epsg", s(p)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(epsg(&out), "EPSG:4326");
    let a = read(s(&out), None);
    assert_eq!(a.geotransform, g.geotransform);
    assert_eq!(a.nodata, g.nodata);
    // Cells beyond the source's edge (to the chunk's edge) are nodata.
    for r in 0..g.rows {
        for c in 0..g.cols {
            assert!(
                same(a.bands[0][r * a.cols + c], g.bands[0][r * g.cols + c]),
                "cell {r},{c}"
            );
        }
    }
}

/// A store with an irregular time axis keeps one map per instant; export
/// picks the instant, and a missing instant is an error.
#[test]
fn time_axis_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("t.gs");
    let src = data("terra_meuse.tif");
    ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--time",
        "irregular",
    ]);
    let doubled = dir.path().join("doubled.tif");
    tool(
        "gdal_translate",
        &[
            "-q",
            "-scale",
            "0",
            "1000",
            "0",
            "2000",
            s(&src),
            s(&doubled),
        ],
    );
    assert!(
        gridstore(&["ingest", s(&store), s(&src)]).status.code() == Some(2),
        "--time is required"
    );
    ok(&["ingest", s(&store), s(&src), "--time", "2024-03-01"]);
    ok(&[
        "ingest",
        s(&store),
        s(&doubled),
        "--time",
        "2024-01-15T06:00",
    ]);
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["info", s(&store), "--json"])).unwrap();
    assert_eq!(
        info["instants"],
        serde_json::json!(["2024-03-01T00:00:00Z", "2024-01-15T06:00:00Z"])
    );
    for (time, file, stamp) in [
        ("2024-03-01", &src, "2024:03:01 00:00:00"),
        ("2024-01-15T06:00:00Z", &doubled, "2024:01:15 06:00:00"),
    ] {
        let out = dir.path().join("x.tif");
        let g = read(s(file), None);
        let bbox = g.bbox();
        ok(&[
            "export",
            s(&store),
            "-o",
            s(&out),
            "--time",
            time,
            "--bbox",
            &bbox,
        ]);
        assert_eq!(read(s(&out), None).bands[0], g.bands[0], "{time}");
        // The file says when its cells are of, as GDAL reads it.
        let meta = std::process::Command::new("gdalinfo")
            .arg(s(&out))
            .output()
            .unwrap();
        let meta = String::from_utf8_lossy(&meta.stdout);
        assert!(
            meta.contains(&format!("TIFFTAG_DATETIME={stamp}")),
            "{meta}"
        );
        assert!(meta.contains("GRIDSTORE_INSTANT=20"), "{meta}");
    }
    let out = gridstore(&[
        "export",
        s(&store),
        "-o",
        s(&dir.path().join("y.tif")),
        "--time",
        "2030-01-01",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no data at 2030-01-01"), "{err}");
    assert!(err.contains("the last stored instant is"), "{err}");
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
}

/// Export reprojects when asked, and a bbox may be given in another CRS.
#[test]
fn export_in_another_crs_matches_gdalwarp() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("r.gs");
    let src = data("terra_meuse.tif");
    ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--resampling",
        "nearest",
    ]);
    ok(&["ingest", s(&store), s(&src)]);
    let ours = dir.path().join("ours.tif");
    let said = ok(&[
        "export",
        s(&store),
        "-o",
        s(&ours),
        "--crs",
        "EPSG:4326",
        "--resampling",
        "nearest",
    ]);
    let a = read(s(&ours), None);
    assert!(
        a.geotransform[0] > 5.0 && a.geotransform[0] < 6.5,
        "longitude origin {:?}",
        a.geotransform
    );
    assert!(
        said.contains(&format!("exported {} x {} cells", a.cols, a.rows)),
        "{said}"
    );
    let b = gdalwarp_onto(&a, &src, "EPSG:4326", &dir.path().join("theirs.tif"), &[]);
    let equal = equal_cells(&a, &b);
    assert!(
        equal as f64 >= 0.99 * a.bands[0].len() as f64,
        "{equal} of {} equal",
        a.bands[0].len()
    );
    // A bbox in lon/lat selects the same area in the store's CRS.
    let bb = dir.path().join("bb.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&bb),
        "--bbox",
        "5.73,50.96,5.75,50.98",
        "--bbox-crs",
        "EPSG:4326",
    ]);
    let c = read(s(&bb), None);
    assert!(
        c.cols > 20 && c.rows > 40 && c.geotransform[0] > 178_000.0,
        "{:?} {}x{}",
        c.geotransform,
        c.cols,
        c.rows
    );
}

/// The lz4 and uncompressed codecs (both CRC-32 checked) are read by
/// zarr-python as the same values gridstore returns.
#[test]
fn zarr_python_reads_every_codec() {
    let dir = tempfile::tempdir().unwrap();
    let src = data("terra_meuse.tif");
    let g = read(s(&src), None);
    for codec in ["lz4", "none", "zstd:1"] {
        let store = dir.path().join(format!("{codec}.gs"));
        ok(&[
            "create",
            s(&store),
            "--like",
            s(&src),
            "--codec",
            codec,
            "--chunk",
            "32",
            "--domain-levels",
            "4",
        ]);
        ok(&["ingest", s(&store), s(&src)]);
        // The raster's corner is the anchor, a chunk corner: the array
        // starts there.
        let script = "import sys, zarr\nz = zarr.open_array(sys.argv[1] + '/0/data', mode='r', zarr_format=2)\n\
                      a = z[0:115, 0:80]\nprint(','.join(str(int(v)) for v in a.ravel()))";
        let out = std::process::Command::new("python3")
            .args(["-W", "error", "-c", script, s(&store)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{codec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let values: Vec<f64> = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(values, g.bands[0], "{codec}");
    }
}

/// With --crs, --resolution is in the output CRS's units; --snap keeps a
/// sub-extent on the store's cells so they are copied, not resampled.
#[test]
fn resolution_follows_the_output_crs_and_snap_copies_cells() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.gs");
    let src = data("terra_meuse.tif");
    ok(&["create", s(&store), "--like", s(&src)]);
    ok(&["ingest", s(&store), s(&src)]);
    let deg = dir.path().join("deg.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&deg),
        "--crs",
        "EPSG:4326",
        "--resolution",
        "0.001",
    ]);
    let a = read(s(&deg), None);
    assert!(
        (a.geotransform[1] - 0.001).abs() < 1e-12 && (a.geotransform[5] + 0.001).abs() < 1e-12,
        "{:?}",
        a.geotransform
    );
    assert!(a.cols > 10 && a.cols < 100, "{} columns", a.cols);
    let g = read(s(&src), None);
    let gt = g.geotransform;
    // A bbox 10.25 cells in from the corner: snapped, it starts on cell 10.
    let bbox = format!(
        "{},{},{},{}",
        gt[0] + 10.25 * gt[1],
        gt[3] + 60.5 * gt[5],
        gt[0] + 40.5 * gt[1],
        gt[3] + 20.25 * gt[5]
    );
    let snapped = dir.path().join("snapped.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&snapped),
        "--bbox",
        &bbox,
        "--snap",
    ]);
    let b = read(s(&snapped), None);
    assert_eq!(
        (b.geotransform[0], b.geotransform[3]),
        (gt[0] + 10.0 * gt[1], gt[3] + 20.0 * gt[5])
    );
    assert_eq!((b.cols, b.rows), (31, 41));
    for r in 0..b.rows {
        for c in 0..b.cols {
            assert!(
                same(
                    b.bands[0][r * b.cols + c],
                    g.bands[0][(r + 20) * g.cols + c + 10]
                ),
                "cell {r},{c}"
            );
        }
    }
}

/// A corrupt chunk does not block later writes: re-ingesting replaces it.
/// Stray files with out-of-range chunk indices are not chunks. Infinite
/// nodata is written the Zarr way.
#[test]
fn corruption_and_stray_files_do_not_wedge_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("w.gs");
    let src = data("terra_meuse.tif");
    ok(&["create", s(&store), "--like", s(&src), "--chunk", "32"]);
    ok(&["ingest", s(&store), s(&src)]);
    let chunks: serde_json::Value =
        serde_json::from_str(&ok(&["chunks", s(&store), "--level", "0", "--json"])).unwrap();
    let key = chunks[0]["key"].as_str().unwrap().to_string();
    let mut bytes = std::fs::read(store.join(&key)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(store.join(&key), bytes).unwrap();
    assert_eq!(gridstore(&["verify", s(&store)]).status.code(), Some(1));
    ok(&["ingest", s(&store), s(&src)]);
    assert!(
        ok(&["verify", s(&store)]).starts_with("ok:"),
        "re-ingesting replaced the corrupt chunk"
    );
    // A stray file named like a chunk far outside the grid: verify names
    // it (nothing reads it), and the store keeps working.
    std::fs::create_dir_all(store.join("1/data/3000000000")).unwrap();
    std::fs::write(store.join("1/data/3000000000/0"), b"junk").unwrap();
    let out = gridstore(&["verify", s(&store)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1/data/3000000000/0") && text.contains("outside its level's array"),
        "{text}"
    );
    ok(&["info", s(&store)]);
    ok(&["ingest", s(&store), s(&src)]);
    let inf = dir.path().join("inf.gs");
    ok(&[
        "create",
        s(&inf),
        "--like",
        s(&src),
        "--dtype",
        "f32",
        "--nodata=-inf",
    ]);
    let zarray: serde_json::Value =
        serde_json::from_slice(&std::fs::read(inf.join("0/data/.zarray")).unwrap()).unwrap();
    assert_eq!(zarray["fill_value"], serde_json::json!("-Infinity"));
}
