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

/// Zarr stores rioxarray writes (v2 with blosc, v3 with zstd) open
/// read-only: the export is the raster they were written from, cell for
/// cell, and not a byte of them changes.
#[test]
fn zarr_stores_rioxarray_writes_export_the_raster_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("stars_L7_ETMs.tif");
    let source = util::read(s(&src), None);
    for format in [2, 3] {
        let zarr = dir.path().join(format!("l7_v{format}.zarr"));
        util::rioxarray_zarr(&src, &zarr, format, "reflectance");
        let before = util::snapshot(&zarr);
        let info = util::ok(&["info", s(&zarr)]);
        assert!(info.contains(&format!("Zarr v{format}")), "{info}");
        assert!(info.contains("read-only"), "{info}");
        assert!(info.contains("bands       6"), "{info}");
        let out = dir.path().join(format!("v{format}.tif"));
        util::ok(&["export", s(&zarr), "-o", s(&out)]);
        let exported = util::read(s(&out), None);
        assert_eq!((exported.cols, exported.rows), (source.cols, source.rows));
        for (a, b) in exported.geotransform.iter().zip(source.geotransform) {
            assert!((a - b).abs() < 1e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
        assert_eq!(
            exported.bands, source.bands,
            "v{format}: the raster's cells"
        );
        // One variable of the group, named by its path, opens too.
        let one = zarr.join("reflectance");
        assert!(util::ok(&["info", s(&one)]).contains("bands       6"));
        assert_eq!(util::snapshot(&zarr), before, "v{format} is unchanged");
    }
}

/// A GeoZarr multiscale group (zarr-conventions `multiscales` layout, each
/// level a group with its own `spatial:transform`): level 1 of the store is
/// the group's own level "1", not an average gridstore makes.
#[test]
fn a_geozarr_multiscale_groups_coarser_level_serves_level_1() {
    let dir = tempfile::tempdir().unwrap();
    let zarr = dir.path().join("pyramid.zarr");
    let script = r#"
import sys, json, numpy as np, zarr
dst = sys.argv[1]
rng = np.random.default_rng(7)
fine = rng.uniform(0, 100, (64, 96)).astype("float32")
# The coarser level is deliberately not the block mean: each cell is the
# block's maximum, so a reader that averages level 0 itself is caught.
coarse = fine.reshape(32, 2, 48, 2).max(axis=(1, 3))
root = zarr.open_group(dst, mode="w", zarr_format=3)
layout = []
for name, data, cell in [("0", fine, 10.0), ("1", coarse, 20.0)]:
    g = root.create_group(name)
    t = [cell, 0.0, 500000.0, 0.0, -cell, 4000000.0]
    g.attrs.update({"spatial:transform": t, "spatial:dimensions": ["y", "x"]})
    a = g.create_array("elevation", shape=data.shape, chunks=(16, 32), dtype="float32",
                       dimension_names=["y", "x"], fill_value=float("nan"))
    a[:] = data
    layout.append({"asset": name, "spatial:transform": t, "spatial:shape": list(data.shape)})
root.attrs.update({"multiscales": {"layout": layout, "resampling_method": "max"},
                   "proj:code": "EPSG:32631"})
np.save(dst + ".fine.npy", fine)
np.save(dst + ".coarse.npy", coarse)
"#;
    util::python(script, &[s(&zarr)]);
    let before = util::snapshot(&zarr);
    let info = util::ok(&["info", s(&zarr)]);
    assert!(info.contains("multiscale group of 2 levels"), "{info}");
    assert!(info.contains("96 x 64 base cells"), "{info}");
    let read_npy = |p: &Path| -> Vec<f64> {
        let bytes = util::python(
            "import sys, numpy as np; sys.stdout.write(' '.join(map(str, np.load(sys.argv[1]).ravel().tolist())))",
            &[s(p)],
        );
        String::from_utf8(bytes)
            .unwrap()
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let fine = read_npy(&dir.path().join("pyramid.zarr.fine.npy"));
    let coarse = read_npy(&dir.path().join("pyramid.zarr.coarse.npy"));
    for (level, expected, size) in [("0", &fine, (96, 64)), ("1", &coarse, (48, 32))] {
        let out = dir.path().join(format!("l{level}.tif"));
        util::ok(&["export", s(&zarr), "-o", s(&out), "--level", level]);
        let got = util::read(s(&out), None);
        assert_eq!((got.cols, got.rows), size, "level {level}");
        for (i, (a, b)) in got.bands[0].iter().zip(expected.iter()).enumerate() {
            assert!((a - b).abs() < 1e-4, "level {level} cell {i}: {a} vs {b}");
        }
    }
    assert_eq!(util::snapshot(&zarr), before, "the group is unchanged");
}

/// A group of several variables names them and how to open one; a group
/// without georeference says so; each in one line.
#[test]
fn zarr_groups_that_cannot_be_shown_say_why_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let two = dir.path().join("two.zarr");
    let bare = dir.path().join("bare.zarr");
    let script = r#"
import sys, numpy as np, xarray as xr
two, bare = sys.argv[1], sys.argv[2]
x = np.arange(8) * 10.0 + 5.0
y = 100.0 - np.arange(6) * 10.0 - 5.0
ds = xr.Dataset({"a": (("y", "x"), np.ones((6, 8), "float32")),
                 "b": (("y", "x"), np.zeros((6, 8), "float32"))},
                coords={"x": x, "y": y})
ds.to_zarr(two, zarr_format=3, consolidated=False)
xr.Dataset({"a": (("y", "x"), np.ones((6, 8), "float32"))}, coords={"x": x, "y": y}).to_zarr(
    bare, zarr_format=2, consolidated=False)
"#;
    util::python(script, &[s(&two), s(&bare)]);
    for (zarr, words) in [
        (&two, "holds 2 variables (a, b); open one"),
        (&bare, "no CRS"),
    ] {
        let out = util::gridstore(&["info", s(zarr)]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(words) && err.contains(s(zarr)), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// `repair` on what gridstore did not write (another tool's Zarr store, a
/// plain folder) refuses before touching anything: no leftover removed,
/// no lock file made.
#[test]
fn repair_touches_nothing_gridstore_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let zarr = dir.path().join("l7.zarr");
    util::rioxarray_zarr(&util::data("stars_L7_ETMs.tif"), &zarr, 2, "reflectance");
    std::fs::write(zarr.join(".notes.tmp"), "the user's").unwrap();
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join(".draft.tmp"), "the user's").unwrap();
    let before = util::snapshot(dir.path());
    for (target, words) in [(&zarr, "read-only"), (&plain, "not a gridstore store")] {
        let out = util::gridstore(&["repair", s(target)]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(words), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(
        util::snapshot(dir.path()),
        before,
        "nothing removed or added"
    );
    assert!(!plain.join("writer").exists() && !zarr.join("writer").exists());
}

/// A VRT without nodata is read, not rewritten: GDAL writes what it
/// computes (histograms) back into a VRT, so nothing is computed over it.
#[test]
fn a_vrt_is_left_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let vrt = dir.path().join("l7.vrt");
    util::tool(
        "gdalbuildvrt",
        &["-q", s(&vrt), s(&util::data("stars_L7_ETMs.tif"))],
    );
    let before = std::fs::read(&vrt).unwrap();
    util::ok(&["info", s(&vrt)]);
    let out = dir.path().join("l7.tif");
    util::ok(&["export", s(&vrt), "-o", s(&out)]);
    assert_eq!(std::fs::read(&vrt).unwrap(), before, "the VRT is unchanged");
    let source = util::read(s(&util::data("stars_L7_ETMs.tif")), None);
    assert_eq!(util::read(s(&out), None).bands, source.bands);
}

/// Nodata as xarray decodes it: a Zarr v2 array's `fill_value` when the
/// variable has no `_FillValue` attribute (what rioxarray's
/// `write_nodata(…, encoded=True)` leaves), so coarser levels never average
/// it in.
#[test]
fn a_zarr_v2_fill_value_is_nodata_as_xarray_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let zarr = dir.path().join("elev.zarr");
    let script = r#"
import sys, numpy as np, rioxarray, xarray as xr
src, dst = sys.argv[1], sys.argv[2]
da = rioxarray.open_rasterio(src).squeeze("band", drop=True)
da = da.astype("int16").rio.write_nodata(-32768, encoded=True)
da.to_dataset(name="elevation").to_zarr(dst, zarr_format=2, consolidated=True)
back = xr.open_zarr(dst)["elevation"]
print(int(back.isnull().sum()))
"#;
    let masked: usize = String::from_utf8(util::python(
        script,
        &[s(&util::data("terra_elev.tif")), s(&zarr)],
    ))
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    assert!(masked > 0, "xarray masks the fill value");
    let info = util::ok(&["info", s(&zarr)]);
    assert!(info.contains("nodata -32768"), "{info}");
    let out = dir.path().join("l1.tif");
    util::ok(&["export", s(&zarr), "-o", s(&out), "--level", "1"]);
    let coarse = util::read(s(&out), None);
    let nodata = coarse.nodata.unwrap();
    assert!(
        coarse.bands[0].iter().all(|v| *v == nodata || *v > -1000.0),
        "no cell averages the fill value in"
    );
}

/// A netCDF of several variables names them and how to open one, and
/// GDAL's `NETCDF:"file":variable` opens one.
#[test]
fn a_netcdf_of_several_variables_opens_one_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let nc = dir.path().join("two.nc");
    let script = r#"
import sys, numpy as np, xarray as xr
x = np.arange(8) * 10.0 + 500005.0
y = 4000095.0 - np.arange(6) * 10.0
ds = xr.Dataset({"elev": (("y", "x"), np.arange(48, dtype="float32").reshape(6, 8)),
                 "slope": (("y", "x"), np.ones((6, 8), "float32"))},
                coords={"x": x, "y": y})
ds.x.attrs.update(standard_name="projection_x_coordinate", units="m", axis="X")
ds.y.attrs.update(standard_name="projection_y_coordinate", units="m", axis="Y")
ds = ds.rio.write_crs("EPSG:32631")
ds.to_netcdf(sys.argv[1], engine="scipy")
"#;
    util::python(&format!("import rioxarray\n{script}"), &[s(&nc)]);
    let out = util::gridstore(&["info", s(&nc)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("elev, slope") && err.contains("NETCDF:"),
        "{err}"
    );
    let one = format!("NETCDF:\"{}\":elev", nc.display());
    let info = util::ok(&["info", &one]);
    assert!(info.contains("8 x 6 base cells"), "{info}");
    let tif = dir.path().join("elev.tif");
    util::ok(&["export", &one, "-o", s(&tif)]);
    let got = util::read(s(&tif), None);
    let expected: Vec<f64> = (0..48).map(f64::from).collect();
    assert_eq!(got.bands[0], expected);
}
