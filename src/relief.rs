//! Shaded relief: the hillshade of elevation cells, as `gdaldem hillshade`
//! computes it (Horn's gradient, the sun at an azimuth and altitude, a
//! z-factor), with distances on the ground in metres for geographic CRSs.
//!
//! Pure functions over ndarray views; the explorer shades each tile on the
//! rayon pool from its cells plus a one-cell margin read from the
//! neighbouring chunks, so that tiles meet without seams.

use ndarray::{Array2, ArrayView2};

/// Where the light comes from, and how much relief is exaggerated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sun {
    /// Compass direction of the sun, degrees clockwise from north.
    pub azimuth: f64,
    /// Height of the sun above the horizon, degrees.
    pub altitude: f64,
    /// Vertical exaggeration (elevation units per ground metre).
    pub z_factor: f64,
}

impl Default for Sun {
    /// `gdaldem`'s defaults: from the north-west, 45° up, no exaggeration.
    fn default() -> Self {
        Self {
            azimuth: 315.0,
            altitude: 45.0,
            z_factor: 1.0,
        }
    }
}

/// One row's cell size on the ground, in metres: east–west and
/// north–south.
pub type RowSpacing = (f64, f64);

/// The ground spacing of each of `rows` rows of cells `cell` wide and high,
/// the first row's centre at `top` (the CRS's y): the cell size times
/// `metres` per unit for a projected CRS, or for a geographic one (`None`)
/// the length of the cell's degrees at its row's latitude on WGS 84.
#[must_use]
pub fn row_spacing(rows: usize, top: f64, cell: [f64; 2], metres: Option<f64>) -> Vec<RowSpacing> {
    (0..rows)
        .map(|r| match metres {
            Some(m) => (cell[0] * m, cell[1] * m),
            None => {
                #[allow(clippy::cast_precision_loss)]
                let latitude = (top - r as f64 * cell[1]).clamp(-89.9, 89.9);
                (
                    cell[0] * metres_per_degree_of_longitude(latitude),
                    cell[1] * metres_per_degree_of_latitude(latitude),
                )
            }
        })
        .collect()
}

/// The WGS 84 ellipsoid: semi-major axis (m) and first eccentricity squared.
const WGS84_A: f64 = 6_378_137.0;
const WGS84_E2: f64 = 0.006_694_379_990_14;

/// Metres per degree of longitude along the parallel at `latitude`
/// (degrees), on the WGS 84 ellipsoid.
#[must_use]
pub fn metres_per_degree_of_longitude(latitude: f64) -> f64 {
    let phi = latitude.to_radians();
    std::f64::consts::PI / 180.0 * WGS84_A * phi.cos() / (1.0 - WGS84_E2 * phi.sin().powi(2)).sqrt()
}

/// Metres per degree of latitude at `latitude` (degrees), on WGS 84 (the
/// meridian's radius of curvature).
#[must_use]
pub fn metres_per_degree_of_latitude(latitude: f64) -> f64 {
    let phi = latitude.to_radians();
    std::f64::consts::PI / 180.0 * WGS84_A * (1.0 - WGS84_E2)
        / (1.0 - WGS84_E2 * phi.sin().powi(2)).powf(1.5)
}

/// The hillshade of the inner cells of `dem`, which carries a one-cell
/// margin on every side (NaN where there is no data): `gdaldem
/// hillshade`'s byte value, 1 (full shadow) to 255 (full light), or 0 where
/// the cell has no data. A neighbour without data counts as the cell
/// itself, so that data edges are shaded too. `spacing` gives each inner
/// row's ground spacing.
///
/// # Panics
/// When `spacing` has fewer entries than `dem` has inner rows.
#[must_use]
pub fn hillshade(dem: &ArrayView2<'_, f32>, spacing: &[RowSpacing], sun: Sun) -> Array2<u8> {
    let (rows, cols) = dem.dim();
    let (rows, cols) = (rows.saturating_sub(2), cols.saturating_sub(2));
    let az = sun.azimuth.to_radians();
    let alt = sun.altitude.to_radians();
    let z = sun.z_factor / 8.0;
    // In f32, branch-free and with each row's reciprocal spacings, so that
    // the inner loop vectorises: within one grey level of the f64 formula.
    #[allow(clippy::cast_possible_truncation)]
    let (light, cos_az, sin_az, zz) = (
        (254.0 * alt.sin()) as f32,
        (254.0 * az.cos() * alt.cos() * z) as f32,
        (254.0 * az.sin() * alt.cos() * z) as f32,
        (z * z) as f32,
    );
    let mut out = Array2::zeros((rows, cols));
    // Row slices of a contiguous copy: the inner loop indexes three rows
    // without per-cell bounds checks on two dimensions.
    let dem = dem.as_standard_layout();
    let Some(cells) = dem.as_slice() else {
        return out;
    };
    let width = cols + 2;
    for (r, mut shaded) in out.rows_mut().into_iter().enumerate() {
        let Some(shaded) = shaded.as_slice_mut() else {
            continue;
        };
        let north = &cells[r * width..(r + 1) * width];
        let middle = &cells[(r + 1) * width..(r + 2) * width];
        let south = &cells[(r + 2) * width..(r + 3) * width];
        let (ew, ns) = spacing[r];
        #[allow(clippy::cast_possible_truncation)]
        let (per_ew, per_ns) = ((1.0 / ew) as f32, (-1.0 / ns) as f32);
        for (c, px) in shaded.iter_mut().enumerate() {
            let centre = middle[c + 1];
            // A neighbour without data counts as level with the centre.
            let at = |v: f32| if v.is_nan() { centre } else { v };
            let (nw, n, ne) = (at(north[c]), at(north[c + 1]), at(north[c + 2]));
            let (w, e) = (at(middle[c]), at(middle[c + 2]));
            let (sw, s, se) = (at(south[c]), at(south[c + 1]), at(south[c + 2]));
            // Horn's gradient, as gdaldem: x west minus east, y south minus
            // north over the (negative) north–south step.
            let x = ((nw + 2.0 * w + sw) - (ne + 2.0 * e + se)) * per_ew;
            let y = ((sw + 2.0 * s + se) - (nw + 2.0 * n + ne)) * per_ns;
            let lit = (light - (y * cos_az - x * sin_az)) / (1.0 + zz * (x * x + y * y)).sqrt();
            // Full shadow is 1 (also where the gradient overflows to NaN);
            // a cell without data 0.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let v = if lit.is_nan() {
                1
            } else {
                (1.0 + lit).clamp(1.0, 255.0) as u8
            };
            *px = if centre.is_nan() { 0 } else { v };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// The formula cell by cell in f64, as first written: the oracle of
    /// the row-slice loop in f32.
    fn reference(dem: &ArrayView2<'_, f32>, spacing: &[RowSpacing], sun: Sun) -> Array2<u8> {
        let (rows, cols) = dem.dim();
        let (rows, cols) = (rows.saturating_sub(2), cols.saturating_sub(2));
        let az = sun.azimuth.to_radians();
        let alt = sun.altitude.to_radians();
        let z = sun.z_factor / 8.0;
        let light = 254.0 * alt.sin();
        let cos_az = 254.0 * az.cos() * alt.cos() * z;
        let sin_az = 254.0 * az.sin() * alt.cos() * z;
        Array2::from_shape_fn((rows, cols), |(r, c)| {
            let centre = dem[(r + 1, c + 1)];
            if centre.is_nan() {
                return 0;
            }
            let at = |dr: usize, dc: usize| {
                let v = dem[(r + dr, c + dc)];
                f64::from(if v.is_nan() { centre } else { v })
            };
            let (ew, ns) = spacing[r];
            // Horn's gradient, as gdaldem: x west minus east, y south minus
            // north over the (negative) north–south step.
            let x = ((at(0, 0) + 2.0 * at(1, 0) + at(2, 0))
                - (at(0, 2) + 2.0 * at(1, 2) + at(2, 2)))
                / ew;
            let y = ((at(2, 0) + 2.0 * at(2, 1) + at(2, 2))
                - (at(0, 0) + 2.0 * at(0, 1) + at(0, 2)))
                / -ns;
            let lit = (light - (y * cos_az - x * sin_az)) / (1.0 + z * z * (x * x + y * y)).sqrt();
            if lit <= 0.0 {
                1
            } else {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                {
                    (1.0 + lit).min(255.0) as u8
                }
            }
        })
    }

    proptest::proptest! {
        #[test]
        fn the_row_loop_shades_as_the_formula(
            cells in proptest::collection::vec(proptest::option::weighted(0.9, -50.0f32..3000.0), 7 * 9),
            azimuth in 0.0f64..360.0, altitude in 1.0f64..89.0, ew in 1.0f64..100.0,
        ) {
            let dem = Array2::from_shape_vec((7, 9), cells.into_iter().map(|v| v.unwrap_or(f32::NAN)).collect()).unwrap();
            let spacing = vec![(ew, ew * 1.5); 5];
            let sun = Sun { azimuth, altitude, z_factor: 2.0 };
            let (fast, formula) = (hillshade(&dem.view(), &spacing, sun), reference(&dem.view(), &spacing, sun));
            for (a, b) in fast.iter().zip(formula.iter()) {
                // No data stays none; a shade within one grey level.
                proptest::prop_assert_eq!(*a == 0, *b == 0);
                proptest::prop_assert!(a.abs_diff(*b) <= 1, "{a} {b}");
            }
        }
    }

    #[test]
    fn flat_ground_is_lit_by_the_suns_height_alone() {
        let dem = Array2::from_elem((5, 5), 100.0f32);
        let shade = hillshade(&dem.view(), &[(30.0, 30.0); 3], Sun::default());
        // 1 + 254 · sin 45° = 180.6
        assert!(shade.iter().all(|v| *v == 180), "{shade:?}");
    }

    #[test]
    fn a_slope_facing_the_sun_is_brighter_than_one_facing_away() {
        // Rising to the east: faces west; the sun at 270° lights it.
        let dem = Array2::from_shape_fn((3, 3), |(_, c)| c as f32 * 30.0);
        let spacing = [(30.0, 30.0)];
        let west = Sun {
            azimuth: 270.0,
            ..Sun::default()
        };
        let east = Sun {
            azimuth: 90.0,
            ..Sun::default()
        };
        let lit = hillshade(&dem.view(), &spacing, west)[(0, 0)];
        let dark = hillshade(&dem.view(), &spacing, east)[(0, 0)];
        assert!(lit > 200 && dark < 100, "{lit} {dark}");
    }

    #[test]
    fn no_data_stays_none_and_its_neighbours_are_still_shaded() {
        let mut dem = Array2::from_elem((4, 4), 10.0f32);
        dem[(1, 1)] = f32::NAN;
        let shade = hillshade(&dem.view(), &[(1.0, 1.0); 2], Sun::default());
        assert_eq!(shade[(0, 0)], 0);
        assert_eq!(shade[(1, 1)], 180);
    }

    #[test]
    fn a_degree_is_shorter_east_west_away_from_the_equator() {
        // 111.32 km at the equator, 55.80 km at 60°.
        assert!((metres_per_degree_of_longitude(0.0) - 111_319.49).abs() < 0.1);
        assert!((metres_per_degree_of_longitude(60.0) - 55_799.98).abs() < 1.0);
        assert!((metres_per_degree_of_latitude(0.0) - 110_574.3).abs() < 1.0);
        assert!((metres_per_degree_of_latitude(90.0 - 1e-9) - 111_694.0).abs() < 1.0);
        let rows = row_spacing(2, 60.0, [0.01, 0.01], None);
        assert!((rows[0].0 - 558.0).abs() < 1.0, "{rows:?}");
        assert_eq!(row_spacing(1, 0.0, [30.0, 30.0], Some(1.0)), [(30.0, 30.0)]);
    }
}
