//! Map furniture drawn over the tiles: coordinate ticks on the map's top
//! and left edges, a scale bar, and a colour bar (or the legend of the
//! classes in view, or the channels of an RGB composite).

use super::map::MapView;
use crate::engine::persistence::band_info::{self, BandInfo};
use crate::relief::metres_per_degree_of_longitude;
use crate::render::{Bands, ColorMap, Stretch};
use egui::{Align2, Color32, FontId, Painter, Pos2, Rect, Stroke, Vec2};

/// What the CRS's coordinates measure, read with the store when it opens.
#[derive(Debug, Clone, PartialEq)]
pub enum MapUnits {
    /// Longitude and latitude in degrees (a geographic CRS).
    Degrees,
    /// A projected CRS's linear unit.
    Linear {
        /// Its name ("metre", "US survey foot" …).
        name: String,
        /// Metres per unit.
        metres: f64,
    },
    /// Not known (no CRS, or one GDAL could not read).
    Unknown,
}

impl MapUnits {
    /// Metres per unit, `None` for degrees; unknown units count as metres.
    #[must_use]
    pub fn metres(&self) -> Option<f64> {
        match self {
            Self::Degrees => None,
            Self::Linear { metres, .. } => Some(*metres),
            Self::Unknown => Some(1.0),
        }
    }

    /// The units of a CRS given as WKT, read with GDAL (off the UI thread:
    /// it may open the PROJ database).
    #[must_use]
    pub fn of_wkt(wkt: &str) -> Self {
        let Ok(srs) = crate::gdal_io::srs_from(wkt) else {
            return Self::Unknown;
        };
        if srs.is_geographic() {
            return Self::Degrees;
        }
        let metres = srs.linear_units();
        match srs.linear_units_name() {
            Some(name) if metres.is_finite() && metres > 0.0 => Self::Linear { name, metres },
            _ => Self::Unknown,
        }
    }
}

/// The largest 1, 2 or 5 × 10ⁿ not above `most`.
#[must_use]
pub fn nice_step(most: f64) -> f64 {
    if !(most.is_finite() && most > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(most.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s <= most)
        .unwrap_or(magnitude)
}

/// A distance in metres for people: "250 m", "2 km", "1.5 km".
#[must_use]
pub fn distance_text(metres: f64) -> String {
    if metres >= 1000.0 {
        format!("{} km", crate::format::short_number(metres / 1000.0))
    } else if metres >= 1.0 {
        format!("{} m", crate::format::short_number(metres))
    } else {
        format!("{} cm", crate::format::short_number(metres * 100.0))
    }
}

/// The scale bar's length in map units and its label, for a bar of at
/// most `most_points` on a map showing `units_per_point` at latitude
/// `latitude` (used for degrees only).
#[must_use]
pub fn scale_bar(
    units: &MapUnits,
    units_per_point: f64,
    latitude: f64,
    most_points: f64,
) -> (f64, String) {
    match units {
        MapUnits::Linear { metres, .. } => {
            let length = nice_step(most_points * units_per_point * metres);
            (length / metres, distance_text(length))
        }
        MapUnits::Degrees => {
            let per_degree = metres_per_degree_of_longitude(latitude.clamp(-89.0, 89.0));
            let length = nice_step(most_points * units_per_point * per_degree);
            (length / per_degree, distance_text(length))
        }
        MapUnits::Unknown => {
            let length = nice_step(most_points * units_per_point);
            (
                length,
                format!("{} units", crate::format::short_number(length)),
            )
        }
    }
}

/// A coordinate on a tick: degrees with their hemisphere, or the CRS's
/// units, with as many decimals as the step needs.
#[must_use]
pub fn tick_text(value: f64, step: f64, units: &MapUnits, easting: bool) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        {
            (-step.log10()).ceil() as usize
        }
    };
    match units {
        MapUnits::Degrees => {
            let hemisphere = match (easting, value < 0.0) {
                (true, false) => "E",
                (true, true) => "W",
                (false, false) => "N",
                (false, true) => "S",
            };
            let value = value.abs();
            format!("{value:.decimals$}°{hemisphere}")
        }
        _ => format!("{value:.decimals$}"),
    }
}

const TEXT: Color32 = Color32::from_gray(235);
const SHADE: Color32 = Color32::from_black_alpha(170);

fn font() -> FontId {
    FontId::proportional(12.0)
}

/// Text on a dark box, so that it reads over any colours.
fn label(painter: &Painter, at: Pos2, align: Align2, text: String) -> Rect {
    let galley = painter.layout_no_wrap(text, font(), TEXT);
    let rect = align.anchor_size(at, galley.size()).expand(2.0);
    painter.rect_filled(rect, 2.0, SHADE);
    painter.galley(rect.min + Vec2::splat(2.0), galley, TEXT);
    rect
}

/// Ticks with coordinates along the map's top (x) and left (y) edges,
/// about every 120 points.
pub fn ticks(painter: &Painter, rect: Rect, view: &MapView, units: &MapUnits) {
    let step = nice_step(120.0 * view.units_per_point);
    let stroke = Stroke::new(1.0, TEXT);
    let (x0, y1) = view.to_world(rect, rect.left_top());
    let (x1, y0) = view.to_world(rect, rect.right_bottom());
    let first = |lo: f64| (lo / step).ceil() * step;
    let mut x = first(x0);
    while x <= x1 {
        let p = view.to_screen(rect, x, y1);
        if p.x > rect.left() + 60.0 {
            painter.line_segment(
                [Pos2::new(p.x, rect.top()), Pos2::new(p.x, rect.top() + 6.0)],
                stroke,
            );
            label(
                painter,
                Pos2::new(p.x, rect.top() + 8.0),
                Align2::CENTER_TOP,
                tick_text(x, step, units, true),
            );
        }
        x += step;
    }
    let mut y = first(y0);
    while y <= y1 {
        let p = view.to_screen(rect, x0, y);
        if p.y > rect.top() + 30.0 && p.y < rect.bottom() - 40.0 {
            painter.line_segment(
                [
                    Pos2::new(rect.left(), p.y),
                    Pos2::new(rect.left() + 6.0, p.y),
                ],
                stroke,
            );
            label(
                painter,
                Pos2::new(rect.left() + 8.0, p.y),
                Align2::LEFT_CENTER,
                tick_text(y, step, units, false),
            );
        }
        y += step;
    }
}

/// The scale bar in the map's bottom-left corner.
pub fn scale(painter: &Painter, rect: Rect, view: &MapView, units: &MapUnits) {
    let (length, text) = scale_bar(units, view.units_per_point, view.center[1], 150.0);
    #[allow(clippy::cast_possible_truncation)]
    let points = (length / view.units_per_point) as f32;
    if !(points.is_finite() && points > 1.0) {
        return;
    }
    let left = Pos2::new(rect.left() + 16.0, rect.bottom() - 16.0);
    let bar = Rect::from_min_size(left - Vec2::new(4.0, 24.0), Vec2::new(points + 8.0, 30.0));
    painter.rect_filled(bar, 2.0, SHADE);
    let stroke = Stroke::new(2.0, TEXT);
    let right = left + Vec2::new(points, 0.0);
    painter.line_segment([left, right], stroke);
    painter.line_segment([left, left - Vec2::new(0.0, 6.0)], stroke);
    painter.line_segment([right, right - Vec2::new(0.0, 6.0)], stroke);
    painter.text(
        left + Vec2::new(points / 2.0, -8.0),
        Align2::CENTER_BOTTOM,
        text,
        font(),
        TEXT,
    );
}

/// How the map is coloured, for its legend.
pub enum Legend<'a> {
    /// One band through a colour map.
    Ramp {
        /// The band's label and unit ("band 1 · elevation (m)").
        title: String,
        /// The colour map.
        map: ColorMap,
        /// Its value range.
        stretch: Stretch,
    },
    /// One band through the colour table: the classes in view, most
    /// common first, with their colours.
    Classes(&'a [(f64, [u8; 4])]),
    /// Shaded relief alone, lit by this sun.
    Shade(crate::relief::Sun),
    /// An RGB composite.
    Rgb {
        /// The labels of the bands of red, green and blue.
        names: [String; 3],
        /// Their value ranges.
        stretch: [Stretch; 3],
    },
}

impl Legend<'_> {
    /// The legend of a rendering of bands that `info` describes.
    #[must_use]
    pub fn of<'a>(
        bands: Bands,
        info: &[BandInfo],
        map: ColorMap,
        stretch: [Stretch; 3],
        classes: Option<&'a [(f64, [u8; 4])]>,
    ) -> Legend<'a> {
        match (bands, classes) {
            (Bands::Rgb(bands), _) => Legend::Rgb {
                names: bands.map(|b| band_info::label(info, b)),
                stretch,
            },
            (Bands::Single(_), Some(classes)) => Legend::Classes(classes),
            (Bands::Single(band), None) => Legend::Ramp {
                title: match band_info::unit(info, band) {
                    Some(unit) => format!("{} ({unit})", band_info::label(info, band)),
                    None => band_info::label(info, band),
                },
                map,
                stretch: stretch[0],
            },
        }
    }
}

/// Most classes the legend lists.
pub const LEGEND_CLASSES: usize = 12;

/// The legend in the map's bottom-right corner.
pub fn legend(painter: &Painter, rect: Rect, legend: &Legend<'_>) {
    let width = 180.0;
    let number = |v: f64| significant(v, 4);
    match legend {
        Legend::Ramp {
            title,
            map,
            stretch,
        } => {
            let area = Rect::from_min_size(
                Pos2::new(rect.right() - width - 16.0, rect.bottom() - 62.0),
                Vec2::new(width + 8.0, 52.0),
            );
            painter.rect_filled(area, 2.0, SHADE);
            painter.text(
                area.min + Vec2::new(4.0, 3.0),
                Align2::LEFT_TOP,
                title,
                font(),
                TEXT,
            );
            let bar = Rect::from_min_size(area.min + Vec2::new(4.0, 20.0), Vec2::new(width, 12.0));
            ramp(painter, bar, |f| {
                let [r, g, b] = map.color(f);
                Color32::from_rgb(r, g, b)
            });
            painter.text(
                bar.left_bottom() + Vec2::new(0.0, 2.0),
                Align2::LEFT_TOP,
                number(stretch.min),
                font(),
                TEXT,
            );
            painter.text(
                bar.right_bottom() + Vec2::new(0.0, 2.0),
                Align2::RIGHT_TOP,
                number(stretch.max),
                font(),
                TEXT,
            );
        }
        Legend::Shade(sun) => {
            let text = format!(
                "hillshade: sun at {}°, {}° up, z × {}",
                number(sun.azimuth),
                number(sun.altitude),
                number(sun.z_factor)
            );
            label(
                painter,
                rect.right_bottom() - Vec2::new(16.0, 16.0),
                Align2::RIGHT_BOTTOM,
                text,
            );
        }
        Legend::Rgb { names, stretch } => {
            let area = Rect::from_min_size(
                Pos2::new(rect.right() - width - 16.0, rect.bottom() - 76.0),
                Vec2::new(width + 8.0, 66.0),
            );
            painter.rect_filled(area, 2.0, SHADE);
            for (k, name) in ["R", "G", "B"].into_iter().enumerate() {
                #[allow(clippy::cast_precision_loss)]
                let top = area.top() + 4.0 + k as f32 * 20.0;
                let s = stretch[k];
                painter.text(
                    Pos2::new(area.left() + 4.0, top),
                    Align2::LEFT_TOP,
                    format!(
                        "{name} {}  {}–{}",
                        names[k].replacen("band ", "b", 1),
                        number(s.min),
                        number(s.max)
                    ),
                    font(),
                    TEXT,
                );
                let bar = Rect::from_min_size(
                    Pos2::new(area.left() + 4.0, top + 14.0),
                    Vec2::new(width, 3.0),
                );
                ramp(painter, bar, |f| {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let v = (f * 255.0).round() as u8;
                    let mut c = [0, 0, 0];
                    c[k] = v;
                    Color32::from_rgb(c[0], c[1], c[2])
                });
            }
        }
        Legend::Classes(classes) => {
            let shown = classes.len().min(LEGEND_CLASSES);
            #[allow(clippy::cast_precision_loss)]
            let height = 8.0 + 16.0 * shown as f32 + if classes.len() > shown { 16.0 } else { 0.0 };
            let area = Rect::from_min_size(
                Pos2::new(rect.right() - 120.0 - 16.0, rect.bottom() - height - 10.0),
                Vec2::new(128.0, height),
            );
            painter.rect_filled(area, 2.0, SHADE);
            for (i, (value, [r, g, b, a])) in classes.iter().take(shown).enumerate() {
                #[allow(clippy::cast_precision_loss)]
                let top = area.top() + 4.0 + 16.0 * i as f32;
                let swatch =
                    Rect::from_min_size(Pos2::new(area.left() + 4.0, top + 1.0), Vec2::splat(12.0));
                painter.rect_filled(swatch, 1.0, Color32::from_rgba_unmultiplied(*r, *g, *b, *a));
                painter.text(
                    Pos2::new(swatch.right() + 6.0, top),
                    Align2::LEFT_TOP,
                    format!("class {}", number(*value)),
                    font(),
                    TEXT,
                );
            }
            if classes.len() > shown {
                painter.text(
                    Pos2::new(area.left() + 4.0, area.bottom() - 18.0),
                    Align2::LEFT_TOP,
                    format!("+{} more", classes.len() - shown),
                    font(),
                    TEXT,
                );
            }
        }
    }
}

/// `v` with at most `digits` significant digits, without trailing zeros.
#[must_use]
pub fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    #[allow(clippy::cast_possible_truncation)]
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = usize::try_from(digits - 1 - magnitude).unwrap_or(0);
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Fills `bar` left to right with `colour(f)`, `f` in `[0, 1]`.
fn ramp(painter: &Painter, bar: Rect, colour: impl Fn(f64) -> Color32) {
    let steps = 64;
    #[allow(clippy::cast_precision_loss)]
    let w = bar.width() / steps as f32;
    for i in 0..steps {
        #[allow(clippy::cast_precision_loss)]
        let left = bar.left() + i as f32 * w;
        let r = Rect::from_min_max(
            Pos2::new(left, bar.top()),
            Pos2::new(left + w + 0.5, bar.bottom()),
        );
        painter.rect_filled(r, 0.0, colour(f64::from(i) / f64::from(steps - 1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(730.0), 500.0);
        assert_eq!(nice_step(199.0), 100.0);
        assert!((nice_step(0.031) - 0.02).abs() < 1e-12);
        assert_eq!(nice_step(2.5), 2.0);
    }

    #[test]
    fn legends_name_the_bands_and_their_unit() {
        let info = [
            BandInfo {
                name: Some("elevation".into()),
                unit: Some("m".into()),
                colour: None,
            },
            BandInfo::default(),
            BandInfo {
                name: Some("NIR".into()),
                ..BandInfo::default()
            },
        ];
        let stretch = [Stretch { min: 0.0, max: 1.0 }; 3];
        match Legend::of(Bands::Single(0), &info, ColorMap::Viridis, stretch, None) {
            Legend::Ramp { title, .. } => assert_eq!(title, "band 1 · elevation (m)"),
            _ => panic!("a single band has a colour bar"),
        }
        match Legend::of(
            Bands::Rgb([2, 1, 0]),
            &info,
            ColorMap::Viridis,
            stretch,
            None,
        ) {
            Legend::Rgb { names, .. } => {
                assert_eq!(names, ["band 3 · NIR", "band 2", "band 1 · elevation"]);
            }
            _ => panic!("a composite has channel ranges"),
        }
    }

    #[test]
    fn legend_values_keep_four_significant_digits() {
        assert_eq!(significant(87.999_733, 4), "88");
        assert_eq!(significant(0.012_346, 4), "0.01235");
        assert_eq!(significant(123_456.0, 4), "123456");
        assert_eq!(significant(-1.5, 4), "-1.5");
    }

    #[test]
    fn the_scale_bar_is_a_round_distance() {
        let metres = MapUnits::Linear {
            name: "metre".into(),
            metres: 1.0,
        };
        // 30 m per point: at most 150 points is 4.5 km, so 2 km (66.7 points).
        let (length, text) = scale_bar(&metres, 30.0, 0.0, 150.0);
        assert_eq!((length, text.as_str()), (2000.0, "2 km"));
        // A foot is 0.3048 m: 1000 ft per point, 150 points ≈ 45.7 km → 20 km.
        let feet = MapUnits::Linear {
            name: "foot".into(),
            metres: 0.3048,
        };
        let (length, text) = scale_bar(&feet, 1000.0, 0.0, 150.0);
        assert_eq!(text, "20 km");
        assert!((length * 0.3048 - 20_000.0).abs() < 1e-6);
        // Degrees: 150 points of 0.001° span 16.7 km at the equator (a
        // 10 km bar) and 8.4 km at 60° (a 5 km bar).
        let (at_equator, text) = scale_bar(&MapUnits::Degrees, 0.001, 0.0, 150.0);
        assert_eq!(text, "10 km");
        assert!((at_equator - 10_000.0 / 111_319.49).abs() < 1e-6);
        let (_, text) = scale_bar(&MapUnits::Degrees, 0.001, 60.0, 150.0);
        assert_eq!(text, "5 km");
    }

    #[test]
    fn ticks_name_hemispheres_and_keep_the_steps_decimals() {
        assert_eq!(tick_text(-34.5, 0.5, &MapUnits::Degrees, true), "34.5°W");
        assert_eq!(tick_text(-8.0, 0.02, &MapUnits::Degrees, false), "8.00°S");
        assert_eq!(
            tick_text(290_000.0, 1000.0, &MapUnits::Unknown, true),
            "290000"
        );
    }
}
