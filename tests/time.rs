//! Time in exports: every stored instant of a range as one NetCDF with a CF
//! time coordinate, checked against xarray, and the one-line refusals.

#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs gridstore, asserts it fails with exit code 2, returns stderr.
fn fails(args: &[&str]) -> String {
    let out = util::gridstore(args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// The Meuse elevation at three irregular instants, the middle one
/// inverted, so that the instants' cells differ.
fn meuse_over_time(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("t.gs");
    let src = util::data("terra_elev.tif");
    let other = util::inverted("terra_elev.tif", dir);
    util::ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--chunk",
        "16",
        "--time",
        "irregular",
    ]);
    for (file, time) in [
        (&src, "2024-03-01T00:00"),
        (&other, "2024-03-01T06:00"),
        (&src, "2024-04-01T00:00"),
    ] {
        util::ok(&["ingest", s(&store), s(file), "--time", time]);
    }
    store
}

#[test]
fn a_time_range_exports_its_instants_as_one_netcdf_that_xarray_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = meuse_over_time(dir.path());
    let out = dir.path().join("range.nc");
    let said = util::ok(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--time-range",
        "2024-03-01/2024-03-02",
    ]);
    assert!(
        said.contains("exported 2 instants (2024-03-01T00:00:00Z to 2024-03-01T06:00:00Z)"),
        "{said}"
    );
    // Each instant alone, through the GeoTIFF export, is the reference.
    let single = |time: &str, name: &str| {
        let path = dir.path().join(name);
        util::ok(&["export", s(&store), "-o", s(&path), "--time", time]);
        util::read(s(&path), None)
    };
    let first = single("2024-03-01T00:00", "a.tif");
    let second = single("2024-03-01T06:00", "b.tif");
    let nodata = first.nodata.unwrap();
    // xarray decodes the CF time and the fill value on its own; rows north
    // first, as the GeoTIFF's (GDAL writes NetCDF rows south first).
    let printed = util::python(
        "import sys, xarray as xr, numpy as np\n\
         ds = xr.open_dataset(sys.argv[1], engine='h5netcdf')\n\
         v = ds[[n for n in ds.data_vars if ds[n].dims[:1] == ('time',) and ds[n].ndim == 3][0]]\n\
         v = v.sortby(v.dims[1], ascending=False)\n\
         print(' '.join(np.datetime_as_string(ds.time.values, unit='s')))\n\
         for k in range(v.shape[0]):\n\
         \x20   print(' '.join('nan' if np.isnan(x) else repr(float(x)) for x in v.isel(time=k).values.ravel()))\n",
        &[s(&out)],
    );
    let text = String::from_utf8(printed).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("2024-03-01T00:00:00 2024-03-01T06:00:00")
    );
    for (k, reference) in [&first, &second].into_iter().enumerate() {
        let cells: Vec<f64> = lines
            .next()
            .unwrap()
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(cells.len(), reference.bands[0].len(), "instant {k}");
        let mut data = 0;
        for (got, want) in cells.iter().zip(&reference.bands[0]) {
            if *want == nodata {
                assert!(got.is_nan(), "instant {k}: nodata read as {got}");
            } else {
                assert_eq!(got, want, "instant {k}");
                data += 1;
            }
        }
        assert!(data > 1000, "instant {k}: {data} cells of data");
    }
    assert_ne!(first.bands[0], second.bands[0], "the instants differ");
}

/// One instant exported to NetCDF, blended or stored, carries its time as
/// a coordinate of one step.
#[test]
fn a_netcdf_of_one_instant_has_its_time_as_a_coordinate() {
    let dir = tempfile::tempdir().unwrap();
    let store = meuse_over_time(dir.path());
    for (time, interpolate) in [("2024-04-01T00:00", false), ("2024-03-01T03:00", true)] {
        let out = dir.path().join("one.nc");
        let mut args = vec!["export", s(&store), "-o", s(&out), "--time", time];
        if interpolate {
            args.push("--interpolate");
        }
        util::ok(&args);
        let printed = util::python(
            "import sys, xarray as xr, numpy as np\n\
             ds = xr.open_dataset(sys.argv[1], engine='h5netcdf')\n\
             print(' '.join(np.datetime_as_string(ds.time.values, unit='s')))\n",
            &[s(&out)],
        );
        let want = format!("{time}:00\n");
        assert_eq!(String::from_utf8(printed).unwrap(), want);
        std::fs::remove_file(&out).unwrap();
    }
}

#[test]
fn a_time_range_is_refused_in_one_line_when_it_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = meuse_over_time(dir.path());
    let export = |out: &str, range: &str| {
        fails(&[
            "export",
            s(&store),
            "-o",
            s(&dir.path().join(out)),
            "--time-range",
            range,
        ])
    };
    let err = export("r.tif", "2024-03-01/2024-04-01");
    assert!(
        err.contains("r.tif: --time-range writes one NetCDF with a time dimension"),
        "{err}"
    );
    let err = export("r.nc", "2023-01-01/2023-12-31");
    assert!(
        err.contains(
            "no stored instants from 2023-01-01T00:00:00Z to 2023-12-31T00:00:00Z: the store holds 3 from 2024-03-01T00:00:00Z to 2024-04-01T00:00:00Z"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = export("r.nc", "2024-04-01/2024-03-01");
    assert!(err.contains("the range ends before it starts"), "{err}");
    assert!(!dir.path().join("r.nc").exists());
    assert!(!dir.path().join("r.tif").exists());

    let plain = dir.path().join("plain.gs");
    let src = util::data("terra_elev.tif");
    util::ok(&["create", s(&plain), "--like", s(&src), "--chunk", "16"]);
    util::ok(&["ingest", s(&plain), s(&src)]);
    let err = fails(&[
        "export",
        s(&plain),
        "-o",
        s(&dir.path().join("p.nc")),
        "--time-range",
        "2024-03-01/2024-04-01",
    ]);
    assert!(err.contains("the store has no time axis"), "{err}");
}
