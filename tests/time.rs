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

/// An empty store like `src` (16² chunks) with an irregular time axis,
/// aggregating with `aggregate`.
fn create_over_time(store: &Path, src: &Path, aggregate: &str) {
    util::ok(&[
        "create",
        s(store),
        "--like",
        s(src),
        "--chunk",
        "16",
        "--time",
        "irregular",
        "--aggregate",
        aggregate,
    ]);
}

/// The Meuse elevation at three irregular instants, the middle one
/// inverted, so that the instants' cells differ.
fn meuse_over_time(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("t.gs");
    let src = util::data("terra_elev.tif");
    let other = util::inverted("terra_elev.tif", dir);
    create_over_time(&store, &src, "mean");
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
    // Reprojected, it keeps its time dimension.
    let warped = dir.path().join("warped.nc");
    util::ok(&[
        "export",
        s(&store),
        "-o",
        s(&warped),
        "--time-range",
        "2024-03-01/2024-04-01",
        "--crs",
        "EPSG:3857",
    ]);
    let printed = util::python(
        "import sys, xarray as xr, numpy as np\n\
         ds = xr.open_dataset(sys.argv[1], engine='h5netcdf')\n\
         print(' '.join(np.datetime_as_string(ds.time.values, unit='s')))\n",
        &[s(&warped)],
    );
    assert_eq!(
        String::from_utf8(printed).unwrap(),
        "2024-03-01T00:00:00 2024-03-01T06:00:00 2024-04-01T00:00:00\n"
    );
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
    // Each instant fits in memory, not the three together.
    let err = fails(&[
        "export",
        s(&store),
        "-o",
        s(&dir.path().join("r.nc")),
        "--time-range",
        "2024-03-01/2024-04-01",
        "--resolution",
        "0.0000337",
    ]);
    assert!(
        err.contains("r.nc: 3 instants of 22997 x 21761 cells are 1501313151 cells, more than"),
        "{err}"
    );
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
    let err = fails(&["series", s(&plain), "--at", "6.1,49.8"]);
    assert!(err.contains("the store has no time axis"), "{err}");
    let err = fails(&[
        "series",
        s(&store),
        "--at",
        "6.1,49.8",
        "--time-range",
        "2023-01-01/2023-02-01",
    ]);
    assert!(
        err.contains("no stored instants from 2023-01-01T00:00:00Z to 2023-02-01T00:00:00Z: the store holds 3"),
        "{err}"
    );
    let err = fails(&["series", s(&store), "--at", "6.1,49.8", "--band", "2"]);
    assert!(err.contains("no band 2 (the store has 1)"), "{err}");
    let err = fails(&[
        "series",
        s(&store),
        "--at",
        "6.1,49.8",
        "--period",
        "fortnight",
    ]);
    assert!(err.contains("'fortnight' is not a period"), "{err}");
}

/// The value GDAL reads at a point of a raster.
fn gdal_value(raster: &Path, (x, y): (f64, f64)) -> f64 {
    let out = std::process::Command::new("gdallocationinfo")
        .args([
            "-valonly",
            "-geoloc",
            s(raster),
            &x.to_string(),
            &y.to_string(),
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `series --period` against pandas: the instants' values at a point (as
/// GDAL reads them from the sources) resampled by day and by 12 h with the
/// store's aggregator, `sum(min_count=1)` for sums; an instant cleared is
/// left out, and a day whose instants are all cleared is nodata.
#[test]
fn a_series_per_period_equals_pandas_resample_of_the_instants() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("terra_elev.tif");
    let other = util::inverted("terra_elev.tif", dir.path());
    // Inside a cell, away from its edges (where rounding picks either side).
    let point = (6.104, 49.796);
    let (a, b) = (gdal_value(&src, point), gdal_value(&other, point));
    assert_ne!(a, b);
    // Every 6 hours over three days, the sources alternating in a pattern
    // that differs between days.
    let steps: Vec<(String, &Path, f64)> = (0..12)
        .map(|k| {
            let time = format!("2024-05-{:02}T{:02}:00", 1 + k / 4, (k % 4) * 6);
            if k % 3 == 0 {
                (time, other.as_path(), b)
            } else {
                (time, src.as_path(), a)
            }
        })
        .collect();
    for aggregate in ["sum", "mean", "min", "max"] {
        let store = dir.path().join(format!("{aggregate}.gs"));
        create_over_time(&store, &src, aggregate);
        for (time, file, _) in &steps {
            util::ok(&["ingest", s(&store), s(file), "--time", time]);
        }
        // One instant of day 2 cleared, and all of day 3.
        let bbox = util::read(s(&src), None).bbox();
        let cleared = [
            "2024-05-02T06:00",
            "2024-05-03T00:00",
            "2024-05-03T06:00",
            "2024-05-03T12:00",
            "2024-05-03T18:00",
        ];
        for time in cleared {
            util::ok(&["clear", s(&store), "--bbox", &bbox, "--time", time]);
        }
        let at = format!("{},{}", point.0, point.1);
        for period in ["day", "12h"] {
            let csv = util::ok(&[
                "series",
                s(&store),
                "--at",
                &at,
                "--period",
                period,
                "--csv",
            ]);
            let ours: Vec<(String, String)> = csv
                .lines()
                .skip(1)
                .map(|l| {
                    let f: Vec<&str> = l.split(',').collect();
                    (f[1].to_string(), f[2].to_string())
                })
                .collect();
            let times: Vec<&str> = steps.iter().map(|(t, _, _)| t.as_str()).collect();
            let values: Vec<String> = steps
                .iter()
                .map(|(t, _, v)| {
                    if cleared.contains(&t.as_str()) {
                        "nan".to_string()
                    } else {
                        v.to_string()
                    }
                })
                .collect();
            let printed = util::python(
                "import sys, pandas as pd, numpy as np\n\
                 times, values, how, rule = sys.argv[1].split(','), [float(v) for v in sys.argv[2].split(',')], sys.argv[3], sys.argv[4]\n\
                 series = pd.Series(values, index=pd.to_datetime(times))\n\
                 r = series.resample(rule)\n\
                 out = r.sum(min_count=1) if how == 'sum' else getattr(r, how)()\n\
                 for t, v in out.items():\n\
                 \x20   print(t.strftime('%Y-%m-%dT%H:%M:%SZ') + ',' + ('' if np.isnan(v) else repr(float(v))))\n",
                &[
                    &times.join(","),
                    &values.join(","),
                    aggregate,
                    if period == "day" { "1D" } else { "12h" },
                ],
            );
            let oracle: Vec<(String, String)> = String::from_utf8(printed)
                .unwrap()
                .lines()
                .map(|l| {
                    let (t, v) = l.split_once(',').unwrap();
                    (t.to_string(), v.to_string())
                })
                .collect();
            assert_eq!(oracle.len(), ours.len(), "{aggregate} {period}: {csv}");
            for ((t_ours, v_ours), (t_oracle, v_oracle)) in ours.iter().zip(&oracle) {
                assert_eq!(t_ours, t_oracle, "{aggregate} {period}");
                match (v_ours.parse::<f64>(), v_oracle.parse::<f64>()) {
                    (Ok(x), Ok(y)) => assert!(
                        (x - y).abs() <= 1e-5 * y.abs().max(1.0),
                        "{aggregate} {period} {t_ours}: {x} vs pandas {y}"
                    ),
                    _ => assert_eq!(v_ours, v_oracle, "{aggregate} {period} {t_ours}: nodata"),
                }
            }
        }
    }
}

/// `ingest --time-from-name`: each file's instant from its name, in one
/// process; a name that does not fit, or two files of one instant, stop it
/// before anything is written.
#[test]
fn each_file_takes_its_instant_from_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("terra_elev.tif");
    let store = dir.path().join("n.gs");
    create_over_time(&store, &src, "mean");
    let files: Vec<std::path::PathBuf> = ["2024050100", "2024050106", "2024050212"]
        .iter()
        .map(|t| {
            let file = dir.path().join(format!("rain_{t}.tif"));
            std::fs::copy(&src, &file).unwrap();
            file
        })
        .collect();
    let pattern = "rain_%Y%m%d%H.tif";
    // A file whose name does not fit: nothing is ingested.
    let stray = dir.path().join("rain_latest.tif");
    std::fs::copy(&src, &stray).unwrap();
    let mut args = vec!["ingest", s(&store)];
    args.extend(files.iter().map(|f| s(f)));
    args.extend([s(&stray), "--time-from-name", pattern]);
    let err = fails(&args);
    assert!(
        err.contains("rain_latest.tif: its name does not match 'rain_%Y%m%d%H.tif'"),
        "{err}"
    );
    let at = "6.104,49.796";
    let err = fails(&["series", s(&store), "--at", at]);
    assert!(err.contains("the store holds no instants yet"), "{err}");
    // Two files of one instant: nothing is ingested either.
    let twin = dir.path().join("sub");
    std::fs::create_dir(&twin).unwrap();
    let twin = twin.join("rain_2024050100.tif");
    std::fs::copy(&src, &twin).unwrap();
    let err = fails(&[
        "ingest",
        s(&store),
        s(&files[0]),
        s(&twin),
        "--time-from-name",
        pattern,
    ]);
    assert!(err.contains("both hold 2024-05-01T00:00:00Z"), "{err}");
    // All three, each at its own instant.
    let mut args = vec!["ingest", s(&store)];
    args.extend(files.iter().map(|f| s(f)));
    args.extend(["--time-from-name", pattern]);
    util::ok(&args);
    let csv = util::ok(&["series", s(&store), "--at", at, "--csv"]);
    let instants: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(
        instants,
        [
            "2024-05-01T00:00:00Z",
            "2024-05-01T06:00:00Z",
            "2024-05-02T12:00:00Z"
        ]
    );
    let value = gdal_value(&src, (6.104, 49.796));
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.split(',').nth(2) == Some(&value.to_string())),
        "{csv}"
    );
}

/// Writes 6-hourly rain maps from 2024-01-30 to 2024-02-04 (30 × 40 cells,
/// a fifth of them NaN; crossing a month) with xarray and rioxarray, one
/// GeoTIFF per instant named `rain_%Y%m%d%H.tif`, and the same data as a CF
/// NetCDF (`rain.nc`). With `fix`, also `fix.tif`: the instant
/// 2024-01-31T06:00 with every value doubled (the same cells NaN).
const RAIN: &str = "import sys, numpy as np, pandas as pd, xarray as xr, rioxarray\n\
out = sys.argv[1]\n\
rng = np.random.default_rng(7)\n\
times = pd.date_range('2024-01-30T00:00', periods=24, freq='6h')\n\
ny, nx = 30, 40\n\
data = rng.gamma(0.5, 2.0, size=(len(times), ny, nx)).astype('float32')\n\
data[rng.random(data.shape) < 0.2] = np.nan\n\
x = 10.0 + 0.01 * (np.arange(nx) + 0.5)\n\
y = 50.0 - 0.01 * (np.arange(ny) + 0.5)\n\
da = xr.DataArray(data, dims=('time', 'y', 'x'), coords={'time': times, 'y': y, 'x': x}, name='rain')\n\
da = da.rio.write_crs('EPSG:4326').rio.write_nodata(np.nan)\n\
for k, t in enumerate(times):\n\
\x20   da.isel(time=k).rio.to_raster(f'{out}/rain_{t:%Y%m%d%H}.tif')\n\
da.to_netcdf(f'{out}/rain.nc', engine='h5netcdf')\n\
(da.sel(time='2024-01-31T06:00') * 2).rio.to_raster(f'{out}/fix.tif')\n";

/// Compares exported period maps with xarray's resample of `rain.nc`
/// (after doubling 2024-01-31T06:00 when `fixed`), cell for cell, within
/// 1e-5 relative: at level 0, and at level 1 as the spatial aggregate
/// (2 × 2 cells) of the level-0 period maps. Arguments: the folder, the
/// aggregate, whether fixed, then (period, start, level, file) quadruples.
const RESAMPLE_ORACLE: &str = "import sys, numpy as np, xarray as xr, rioxarray\n\
out, how, fixed = sys.argv[1], sys.argv[2], sys.argv[3] == '1'\n\
da = xr.open_dataset(f'{out}/rain.nc', engine='h5netcdf').rain\n\
if fixed:\n\
\x20   da.loc[dict(time='2024-01-31T06:00')] = da.sel(time='2024-01-31T06:00') * 2\n\
freq = {'day': dict(time='1D'), 'month': dict(time='MS'), 'week': dict(time='7D', origin='2024-01-29'), '12h': dict(time='12h')}\n\
def agg(r):\n\
\x20   return {'sum': lambda: r.sum(min_count=1), 'mean': lambda: r.mean(), 'max': lambda: r.max(), 'min': lambda: r.min()}[how]()\n\
def space(m):\n\
\x20   c = m.coarsen(x=2, y=2, boundary='pad')\n\
\x20   return {'sum': lambda: c.sum().where(c.count() > 0), 'mean': lambda: c.mean(), 'max': lambda: c.max(), 'min': lambda: c.min()}[how]()\n\
args = sys.argv[4:]\n\
checked = 0\n\
for k in range(0, len(args), 4):\n\
\x20   period, start, level, path = args[k:k + 4]\n\
\x20   want = agg(da.resample(**freq[period])).sel(time=start)\n\
\x20   if level == '1':\n\
\x20       want = space(want)\n\
\x20   got = rioxarray.open_rasterio(path, masked=True).isel(band=0).values\n\
\x20   want = want.values\n\
\x20   assert got.shape == want.shape, (path, got.shape, want.shape)\n\
\x20   assert (np.isnan(got) == np.isnan(want)).all(), (path, 'nodata differs', int((np.isnan(got) != np.isnan(want)).sum()))\n\
\x20   ok = np.isnan(want) | (np.abs(got - want) <= 1e-5 * np.maximum(np.abs(want), 1e-3))\n\
\x20   assert ok.all(), (path, float(np.nanmax(np.abs(got - want))))\n\
\x20   checked += int((~np.isnan(want)).sum())\n\
print(checked)\n";

/// Every day and month map equals xarray's `resample` of the instants at
/// level 0 (sum with min_count=1, and mean), and the spatial aggregate of
/// that at level 1, and so do a week and 12 h, which are computed (not
/// stored); after a corrected instant is ingested, the day and month
/// holding it equal the oracle on the corrected data.
#[test]
fn period_maps_equal_xarray_resample_and_follow_a_correction() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    util::python(RAIN, &[s(d)]);
    let files: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("rain_")
        })
        .map(|p| s(&p).to_string())
        .collect();
    assert_eq!(files.len(), 24);
    let bbox = "10.0,49.7,10.4,50.0";
    for how in ["sum", "mean"] {
        let store = d.join(format!("{how}.gs"));
        util::ok(&[
            "create",
            s(&store),
            "--like",
            &files[0],
            "--chunk",
            "16",
            "--time",
            "regular:2024-01-01:6h",
            "--aggregate",
            how,
            "--time-levels",
            "day,month",
        ]);
        let mut ingest = vec!["ingest", s(&store)];
        ingest.extend(files.iter().map(String::as_str));
        ingest.extend(["--time-from-name", "rain_%Y%m%d%H.tif"]);
        util::ok(&ingest);
        assert!(util::ok(&["verify", s(&store)]).starts_with("ok:"));
        let export = |name: &str, period: &str, time: &str, level: &str| {
            let path = d.join(format!("{how}-{name}.tif"));
            util::ok(&[
                "export",
                s(&store),
                "-o",
                s(&path),
                "--time",
                time,
                "--period",
                period,
                "--level",
                level,
                "--bbox",
                bbox,
                "--no-cache",
            ]);
            s(&path).to_string()
        };
        let mut args: Vec<String> = Vec::new();
        let mut wanted = |fixed: bool| {
            let tag = if fixed { "fixed" } else { "first" };
            args = vec![s(d).to_string(), how.to_string(), (fixed as u8).to_string()];
            for (period, time, start) in [
                ("day", "2024-01-30", "2024-01-30"),
                ("day", "2024-01-31", "2024-01-31"),
                ("day", "2024-02-03", "2024-02-03"),
                ("month", "2024-01", "2024-01-01"),
                ("month", "2024-02", "2024-02-01"),
                // Not stored: computed (a week from the day maps, or the
                // instants for a mean; 12 h from the instants).
                ("week", "2024-01-30", "2024-01-29"),
                ("12h", "2024-01-31T12:00", "2024-01-31T12:00"),
            ] {
                for level in ["0", "1"] {
                    let file = export(
                        &format!("{tag}-{period}-{time}-{level}"),
                        period,
                        time,
                        level,
                    );
                    args.extend([period.into(), start.into(), level.into(), file]);
                }
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let checked = String::from_utf8(util::python(RESAMPLE_ORACLE, &refs)).unwrap();
            let checked: usize = checked.trim().parse().unwrap();
            assert!(checked > 5000, "{how}: {checked} cells compared");
        };
        wanted(false);
        // An area's series per day: the store's aggregate over the area of
        // each stored day map, against xarray's.
        let said = util::ok(&[
            "series",
            s(&store),
            "--bbox",
            bbox,
            "--period",
            "day",
            "--json",
        ]);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&said).unwrap();
        let ours: Vec<f64> = rows.iter().filter_map(|r| r["value"].as_f64()).collect();
        let theirs = util::python(
            &format!(
                "import sys, xarray as xr\n\
                 da = xr.open_dataset(sys.argv[1] + '/rain.nc', engine='h5netcdf').rain\n\
                 r = da.resample(time='1D')\n\
                 days = r.sum(min_count=1).sum(('x', 'y')) if '{how}' == 'sum' else r.mean().mean(('x', 'y'))\n\
                 print(' '.join(repr(float(v)) for v in days.values))\n"
            ),
            &[s(d)],
        );
        let theirs: Vec<f64> = String::from_utf8(theirs)
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(ours.len(), 6, "{said}");
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() <= 1e-5 * b.abs(), "{how}: {a} vs {b}");
        }
        // A corrected instant: the day and month holding it follow.
        util::ok(&[
            "ingest",
            s(&store),
            s(&d.join("fix.tif")),
            "--time",
            "2024-01-31T06:00",
        ]);
        assert!(util::ok(&["verify", s(&store)]).starts_with("ok:"));
        wanted(true);
    }
}

/// Writes CF netCDFs with xarray into the folder `argv[1]`: `cf.nc`, 24
/// six-hourly rain maps over (time, lat, lon); `gaps.nc`, 3 maps at
/// irregular times; and bad ones, each with one flaw: `units.nc` (time in
/// fortnights), `calendar.nc` (a 360-day calendar), `martian.nc` (an unknown
/// calendar) and `twice.nc` (two maps of one instant).
const CF_FILES: &str = "import sys, numpy as np, pandas as pd, xarray as xr\n\
out = sys.argv[1]\n\
rng = np.random.default_rng(11)\n\
ny, nx = 30, 40\n\
lat = xr.DataArray(50.0 - 0.01 * (np.arange(ny) + 0.5), dims='lat', attrs={'standard_name': 'latitude', 'units': 'degrees_north', 'axis': 'Y'})\n\
lon = xr.DataArray(10.0 + 0.01 * (np.arange(nx) + 0.5), dims='lon', attrs={'standard_name': 'longitude', 'units': 'degrees_east', 'axis': 'X'})\n\
def maps(n):\n\
\x20   data = rng.gamma(0.5, 2.0, size=(n, ny, nx)).astype('float32')\n\
\x20   data[rng.random(data.shape) < 0.2] = np.nan\n\
\x20   return data\n\
def write(name, time, attrs=None):\n\
\x20   da = xr.DataArray(maps(len(time)), dims=('time', 'lat', 'lon'), coords={'time': time, 'lat': lat, 'lon': lon}, name='rain')\n\
\x20   if attrs is not None:\n\
\x20       da['time'].attrs.update(attrs)\n\
\x20   da.to_netcdf(f'{out}/{name}', engine='h5netcdf')\n\
write('cf.nc', pd.date_range('2024-01-30T00:00', periods=24, freq='6h'))\n\
write('gaps.nc', pd.to_datetime(['2024-03-01T00:00', '2024-03-01T01:00', '2024-03-03T12:30']))\n\
write('units.nc', np.array([0.0, 1.0]), {'units': 'fortnights since 2024-01-01'})\n\
write('calendar.nc', np.array([0.0, 1.0]), {'units': 'days since 2024-01-01', 'calendar': '360_day'})\n\
write('martian.nc', np.array([0.0, 1.0]), {'units': 'days since 2024-01-01', 'calendar': 'martian'})\n\
write('twice.nc', np.array([0.0, 6.0, 6.0]), {'units': 'hours since 2024-01-01'})\n";

/// A netCDF with a CF time dimension makes a store with a time axis
/// (regular when its steps are equal, else irregular), not one band per
/// step; ingesting it puts each step at its instant, with the values
/// xarray reads there. A bad time dimension is refused in one line naming
/// the file, and the store is left as it was.
#[test]
fn a_netcdf_time_dimension_is_ingested_as_instants() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    util::python(CF_FILES, &[s(d)]);
    let store = d.join("cf.gs");
    let nc = d.join("cf.nc");
    let create = |store: &Path, nc: &Path| {
        util::ok(&[
            "create",
            s(store),
            "--like",
            s(nc),
            "--crs",
            "EPSG:4326",
            "--chunk",
            "16",
            "--aggregate",
            "sum",
            "--time-levels",
            "day",
        ]);
    };
    create(&store, &nc);
    let info: serde_json::Value =
        serde_json::from_str(&util::ok(&["info", s(&store), "--json"])).unwrap();
    let structure = &info["structure"];
    assert_eq!(structure["bands"], serde_json::Value::Null, "{structure}");
    assert_eq!(
        structure["time"],
        serde_json::json!({"kind": "regular", "origin": 1_706_572_800, "step": 21_600})
    );
    let said = util::ok(&["ingest", s(&store), s(&nc)]);
    assert!(said.contains("24 instants of 40 x 30 cells"), "{said}");
    assert!(util::ok(&["verify", s(&store)]).starts_with("ok:"));
    // Two of the instants against xarray's values at them.
    let mut args = vec![s(&nc).to_string()];
    for time in ["2024-01-30T06:00", "2024-02-03T18:00"] {
        let out = d.join(format!("{}.tif", time.replace(':', "")));
        util::ok(&[
            "export",
            s(&store),
            "-o",
            s(&out),
            "--time",
            time,
            "--bbox",
            "10,49.7,10.4,50",
        ]);
        args.extend([time.to_string(), s(&out).to_string()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let checked = util::python(
        "import sys, numpy as np, xarray as xr, rioxarray\n\
         da = xr.open_dataset(sys.argv[1], engine='h5netcdf').rain\n\
         for time, path in zip(sys.argv[2::2], sys.argv[3::2]):\n\
         \x20   want = da.sel(time=time).values\n\
         \x20   got = rioxarray.open_rasterio(path, masked=True).isel(band=0).values\n\
         \x20   assert got.shape == want.shape, (got.shape, want.shape)\n\
         \x20   assert ((got == want) | (np.isnan(got) & np.isnan(want))).all(), time\n\
         print('ok')\n",
        &refs,
    );
    assert_eq!(String::from_utf8(checked).unwrap(), "ok\n");
    // Unequal steps make an irregular axis.
    let gaps = d.join("gaps.gs");
    create(&gaps, &d.join("gaps.nc"));
    util::ok(&["ingest", s(&gaps), s(&d.join("gaps.nc"))]);
    let info: serde_json::Value =
        serde_json::from_str(&util::ok(&["info", s(&gaps), "--json"])).unwrap();
    assert_eq!(info["structure"]["time"]["kind"], "irregular");
    assert_eq!(
        info["instants"],
        serde_json::json!([
            "2024-03-01T00:00:00Z",
            "2024-03-01T01:00:00Z",
            "2024-03-03T12:30:00Z"
        ])
    );
    // Bad time dimensions: one line naming the file, the store unchanged.
    let before = util::snapshot(&gaps);
    for (file, reason) in [
        ("units.nc", "unknown time unit 'fortnights'"),
        ("calendar.nc", "calendar '360_day'"),
        ("martian.nc", "unknown calendar 'martian'"),
        (
            "twice.nc",
            "time steps 2 and 3 are both 2024-01-01T06:00:00Z",
        ),
    ] {
        let path = d.join(file);
        let e = fails(&["ingest", s(&gaps), s(&path)]);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.contains(s(&path)) && e.contains(reason), "{e}");
        let e = fails(&[
            "create",
            s(&d.join("new.gs")),
            "--like",
            s(&path),
            "--crs",
            "EPSG:4326",
        ]);
        assert!(e.contains(reason), "{e}");
        assert!(!d.join("new.gs").exists());
    }
    assert_eq!(util::snapshot(&gaps), before, "the store is as it was");
    // One --time for 24 steps is refused; so are the steps as 24 bands of
    // a store without a time axis.
    let e = fails(&["ingest", s(&gaps), s(&nc), "--time", "2024-01-30"]);
    assert!(
        e.contains("has 24 time steps") && e.contains("drop --time"),
        "{e}"
    );
    let bands = d.join("bands.gs");
    util::ok(&[
        "create",
        s(&bands),
        "--crs",
        "EPSG:4326",
        "--cell-size",
        "0.01",
        "--origin",
        "10,50",
        "--dtype",
        "f32",
        "--bands",
        "24",
    ]);
    let e = fails(&["ingest", s(&bands), s(&nc)]);
    assert!(
        e.contains("24 bands are 24 time steps (its time dimension 'time')"),
        "{e}"
    );
    assert_eq!(util::snapshot(&gaps), before, "the store is as it was");
}

/// Time levels and periods refused in one line: an unknown time level at
/// create (no store made), time levels without a time axis, a period of a
/// store without one, and a period that holds no instant (naming those
/// near it).
#[test]
fn periods_are_refused_in_one_line_when_they_cannot_be() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("terra_elev.tif");
    let new = dir.path().join("new.gs");
    let one_line = |e: &str| assert_eq!(e.lines().count(), 1, "{e}");
    let e = fails(&[
        "create",
        s(&new),
        "--like",
        s(&src),
        "--time",
        "irregular",
        "--time-levels",
        "day,hour",
    ]);
    assert!(
        e.contains("--time-levels: unknown time level 'hour'"),
        "{e}"
    );
    one_line(&e);
    let e = fails(&["create", s(&new), "--like", s(&src), "--time-levels", "day"]);
    assert!(e.contains("periods of time need a time axis"), "{e}");
    assert!(!new.exists(), "no store was made");
    let plain = dir.path().join("plain.gs");
    util::ok(&["create", s(&plain), "--like", s(&src)]);
    util::ok(&["ingest", s(&plain), s(&src)]);
    let out = dir.path().join("o.tif");
    let e = fails(&[
        "export",
        s(&plain),
        "-o",
        s(&out),
        "--time",
        "2024-05",
        "--period",
        "month",
    ]);
    assert!(e.contains("has no time axis, so no periods"), "{e}");
    one_line(&e);
    let store = meuse_over_time(dir.path());
    let e = fails(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--time",
        "2024-02",
        "--period",
        "month",
    ]);
    assert!(
        e.contains("no data in 2024-02: no instant of")
            && e.contains("(near it: 2024-03, 2024-04)"),
        "{e}"
    );
    one_line(&e);
    assert!(!out.exists());
}

/// Six fields of 20 × 15 cells in EPSG:4326, for GRIB messages.
const GRIB_FIELDS: &str = "import sys, numpy as np, xarray as xr, rioxarray\n\
rng = np.random.default_rng(7)\n\
data = rng.uniform(0, 100, (6, 15, 20)).astype('float32')\n\
da = xr.DataArray(data, dims=('band', 'y', 'x'), coords={\n\
\x20   'band': np.arange(1, 7),\n\
\x20   'y': 50 - 0.025 - 0.05 * np.arange(15),\n\
\x20   'x': 10 + 0.025 + 0.05 * np.arange(20)})\n\
da.rio.write_crs(4326).rio.to_raster(sys.argv[1])\n";

/// Writes the bands `fields` of `src` as GRIB2 messages, each the
/// parameter (category, number) valid at the hour after 2024-01-01.
fn grib(src: &Path, out: &Path, fields: &[(usize, &str, u32)]) {
    let mut args: Vec<String> = ["-q", "-of", "GRIB"].map(String::from).to_vec();
    for (band, _, _) in fields {
        args.extend(["-b".into(), band.to_string()]);
    }
    args.extend([s(src).into(), s(out).into()]);
    args.extend(
        [
            "-co",
            "DATA_ENCODING=IEEE_FLOATING_POINT",
            "-co",
            "IDS=CENTER=7 SUBCENTER=0 MASTER_TABLE=2 SIGNF_REF_TIME=1 REF_TIME=2024-01-01T00:00:00Z PROD_STATUS=0 TYPE=1",
            "-co",
            "PDS_PDTN=0",
        ]
        .map(String::from),
    );
    for (k, (_, parameter, hour)) in fields.iter().enumerate() {
        args.extend([
            "-co".into(),
            format!(
                "BAND_{}_PDS_TEMPLATE_ASSEMBLED_VALUES={parameter} 2 0 96 0 0 1 {hour} 103 0 2 255 0 0",
                k + 1
            ),
        ]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    util::tool("gdal_translate", &refs);
}

/// A GRIB file's messages are instants by their valid time, and the
/// fields of one valid time (here relative humidity and the wind's u)
/// are that instant's bands; ecCodes (through cfgrib) reads the same
/// values at the same times. Messages that do not make whole instants
/// are refused in one line, the store unchanged.
#[test]
fn grib_messages_are_ingested_at_their_valid_times() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("fields.tif");
    util::python(GRIB_FIELDS, &[s(&src)]);
    let (rh, u) = ("1 1", "2 2");
    let file = d.join("forecast.grb2");
    grib(
        &src,
        &file,
        &[
            (1, rh, 0),
            (2, u, 0),
            (3, rh, 6),
            (4, u, 6),
            (5, rh, 12),
            (6, u, 12),
        ],
    );
    let store = d.join("g.gs");
    let out = util::gridstore(&["create", s(&store), "--like", s(&file), "--chunk", "16"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("the valid times of its GRIB messages: 3 instants"),
        "{said}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&util::ok(&["info", s(&store), "--json"])).unwrap();
    assert_eq!(info["structure"]["bands"], 2, "relative humidity and u");
    assert_eq!(
        info["structure"]["time"],
        serde_json::json!({"kind": "regular", "origin": 1_704_067_200, "step": 21_600})
    );
    let said = util::ok(&["ingest", s(&store), s(&file)]);
    assert!(said.contains("3 instants"), "{said}");
    // The bands are named by their fields.
    let bands: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("bands.json")).unwrap()).unwrap();
    assert_eq!(
        bands["bands"],
        serde_json::json!([
            {"name": "Relative humidity, 2-HTGL", "unit": "%"},
            {"name": "u-component of wind, 2-HTGL", "unit": "m/s"}
        ])
    );
    assert!(util::ok(&["verify", s(&store)]).starts_with("ok:"));
    let mut args = vec![s(&file).to_string()];
    for time in ["2024-01-01T00:00", "2024-01-01T06:00", "2024-01-01T12:00"] {
        let out = d.join(format!("{}.tif", time.replace(':', "")));
        util::ok(&["export", s(&store), "-o", s(&out), "--time", time]);
        args.extend([time.to_string(), s(&out).to_string()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let checked = util::python(
        "import sys, numpy as np, xarray as xr, rioxarray\n\
         ds = xr.open_dataset(sys.argv[1], engine='cfgrib', backend_kwargs={'indexpath': ''})\n\
         ds = ds.sortby('latitude', ascending=False)\n\
         times = ds.valid_time.values\n\
         for time, path in zip(sys.argv[2::2], sys.argv[3::2]):\n\
         \x20   k = list(times).index(np.datetime64(time))\n\
         \x20   got = rioxarray.open_rasterio(path).values\n\
         \x20   for band, name in enumerate(['r2', 'u']):\n\
         \x20       want = ds[name].isel(step=k).values.astype('float64')\n\
         \x20       assert got[band].shape == want.shape, (got.shape, want.shape)\n\
         \x20       assert (got[band] == want).all(), (time, name)\n\
         print('ok')\n",
        &refs,
    );
    assert_eq!(String::from_utf8(checked).unwrap(), "ok\n");
    // All of them as one NetCDF: a variable over (time, band, y, x).
    let nc = d.join("forecast.nc");
    util::ok(&[
        "export",
        s(&store),
        "-o",
        s(&nc),
        "--time-range",
        "2024-01-01/2024-01-02",
    ]);
    let checked = util::python(
        "import sys, numpy as np, xarray as xr\n\
         ds = xr.open_dataset(sys.argv[1], engine='cfgrib', backend_kwargs={'indexpath': ''})\n\
         ds = ds.sortby('latitude', ascending=False)\n\
         out = xr.open_dataset(sys.argv[2], engine='h5netcdf')\n\
         (name,) = [v for v in out.data_vars if out[v].ndim == 4]\n\
         got = out[name].sortby('lat', ascending=False)\n\
         assert got.dims == ('time', 'band', 'lat', 'lon'), got.dims\n\
         assert list(got.band.values) == [1, 2], got.band.values\n\
         assert (got.time.values == ds.valid_time.values).all(), got.time.values\n\
         for band, field in enumerate(['r2', 'u']):\n\
         \x20   want = ds[field].values.astype('float64')\n\
         \x20   assert (got.isel(band=band).values == want).all(), field\n\
         print('ok')\n",
        &[s(&file), s(&nc)],
    );
    assert_eq!(String::from_utf8(checked).unwrap(), "ok\n");

    // Messages that do not make whole instants.
    let before = util::snapshot(&store);
    let twice = d.join("twice.grb2");
    grib(&src, &twice, &[(1, rh, 6), (2, rh, 6)]);
    let e = fails(&["ingest", s(&store), s(&twice)]);
    assert!(
        e.contains("twice.grb2") && e.contains("GRIB messages 1 and 2 are both"),
        "{e}"
    );
    let uneven = d.join("uneven.grb2");
    grib(&src, &uneven, &[(1, rh, 0), (2, u, 0), (3, rh, 6)]);
    let e = fails(&["ingest", s(&store), s(&uneven)]);
    assert!(
        e.contains("uneven.grb2") && e.contains("every valid time must hold the same fields"),
        "{e}"
    );
    assert_eq!(util::snapshot(&store), before, "the store is as it was");
}
