//! Shaded relief against `gdaldem hillshade`, the independent oracle: the
//! same cells give the same shade, in a projected CRS and (with gdaldem's
//! scale set to the local length of a degree) in a geographic one.
#![allow(clippy::unwrap_used)]

mod util;

use gridstore::relief::{Sun, hillshade, metres_per_degree_of_latitude, row_spacing};
use ndarray::Array2;

/// `raster`'s band 1 with a margin of one NaN cell on every side.
fn with_margin(raster: &util::Grid) -> Array2<f32> {
    Array2::from_shape_fn((raster.rows + 2, raster.cols + 2), |(r, c)| {
        if r == 0 || c == 0 || r > raster.rows || c > raster.cols {
            return f32::NAN;
        }
        let v = raster.bands[0][(r - 1) * raster.cols + (c - 1)];
        if raster.nodata == Some(v) || v.is_nan() {
            f32::NAN
        } else {
            v as f32
        }
    })
}

/// Cells where ours and gdaldem's differ by more than one (of those where
/// gdaldem has a value), and how many were compared.
fn compare(ours: &Array2<u8>, gdal: &util::Grid) -> (usize, usize) {
    let mut compared = 0;
    let mut differ = 0;
    for r in 1..gdal.rows - 1 {
        for c in 1..gdal.cols - 1 {
            let theirs = gdal.bands[0][r * gdal.cols + c];
            if theirs == 0.0 || ours[(r, c)] == 0 {
                continue;
            }
            compared += 1;
            if (f64::from(ours[(r, c)]) - theirs).abs() > 1.0 {
                differ += 1;
            }
        }
    }
    (differ, compared)
}

#[test]
fn the_hillshade_of_a_projected_dem_is_gdaldems() {
    let dir = tempfile::tempdir().unwrap();
    let dem = util::data("stars_olinda_dem_utm25s.tif");
    let shaded = dir.path().join("shade.tif");
    for (azimuth, altitude, z) in [(315.0, 45.0, 1.0), (120.0, 20.0, 3.0)] {
        util::tool(
            "gdaldem",
            &[
                "hillshade",
                "-q",
                "-az",
                &azimuth.to_string(),
                "-alt",
                &altitude.to_string(),
                "-z",
                &z.to_string(),
                dem.to_str().unwrap(),
                shaded.to_str().unwrap(),
            ],
        );
        let source = util::read(dem.to_str().unwrap(), None);
        let gdal = util::read(shaded.to_str().unwrap(), None);
        let cell = [source.geotransform[1], -source.geotransform[5]];
        let spacing = row_spacing(source.rows, 0.0, cell, Some(1.0));
        let sun = Sun {
            azimuth,
            altitude,
            z_factor: z,
        };
        let ours = hillshade(&with_margin(&source).view(), &spacing, sun);
        let (differ, compared) = compare(&ours, &gdal);
        assert!(compared > 10_000, "{compared} cells compared");
        assert_eq!(
            differ, 0,
            "{differ} of {compared} cells differ by more than 1"
        );
    }
}

#[test]
fn the_hillshade_of_a_geographic_dem_measures_the_ground_in_metres() {
    let dir = tempfile::tempdir().unwrap();
    let dem = util::data("stars_olinda_dem_utm25s.tif");
    let geographic = dir.path().join("wgs84.tif");
    util::tool(
        "gdalwarp",
        &[
            "-q",
            "-t_srs",
            "EPSG:4326",
            "-r",
            "bilinear",
            dem.to_str().unwrap(),
            geographic.to_str().unwrap(),
        ],
    );
    let source = util::read(geographic.to_str().unwrap(), None);
    let cell = [source.geotransform[1], -source.geotransform[5]];
    let top = source.geotransform[3] - cell[1] / 2.0;
    let spacing = row_spacing(source.rows, top, cell, None);
    let ours = hillshade(&with_margin(&source).view(), &spacing, Sun::default());
    // gdaldem with its scale at the DEM's latitude (8° S), where a degree
    // of longitude and of latitude differ by 0.3 %.
    let scale = metres_per_degree_of_latitude(top);
    let shaded = dir.path().join("shade.tif");
    util::tool(
        "gdaldem",
        &[
            "hillshade",
            "-q",
            "-s",
            &scale.to_string(),
            geographic.to_str().unwrap(),
            shaded.to_str().unwrap(),
        ],
    );
    let gdal = util::read(shaded.to_str().unwrap(), None);
    let (differ, compared) = compare(&ours, &gdal);
    assert!(compared > 10_000, "{compared} cells compared");
    assert!(
        differ * 100 <= compared,
        "{differ} of {compared} cells differ by more than 1"
    );
    // Degrees taken as metres would make every slope a cliff: nothing
    // like gdaldem's.
    let as_metres = row_spacing(source.rows, 0.0, cell, Some(1.0));
    let wrong = hillshade(&with_margin(&source).view(), &as_metres, Sun::default());
    let (differ, compared) = compare(&wrong, &gdal);
    assert!(differ * 2 > compared, "{differ} of {compared}");
}
