//! Colour-mapping cells into RGBA images (quicklooks, map tiles).
//!
//! Pure functions over ndarray views; used by PNG export and the explorer.

use crate::engine::{Element, Nodata, Palette};
use ndarray::ArrayView3;

/// A colour ramp for single-band data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMap {
    /// Perceptually uniform purple–green–yellow.
    #[default]
    Viridis,
    /// Blue lowlands through green and brown to white peaks.
    Terrain,
    /// Black to white.
    Greyscale,
}

const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

const TERRAIN: [[u8; 3]; 6] = [
    [51, 51, 153],
    [0, 153, 255],
    [0, 204, 102],
    [255, 255, 153],
    [128, 92, 84],
    [255, 255, 255],
];

impl ColorMap {
    /// The colour of `f` in `[0, 1]`.
    #[must_use]
    pub fn color(self, f: f64) -> [u8; 3] {
        let f = if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) };
        let ramp: &[[u8; 3]] = match self {
            Self::Viridis => &VIRIDIS,
            Self::Terrain => &TERRAIN,
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Self::Greyscale => return [(f * 255.0).round() as u8; 3],
        };
        let pos = f * (ramp.len() - 1) as f64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let i = (pos.floor() as usize).min(ramp.len() - 2);
        let w = pos - i as f64;
        let mut out = [0u8; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let a = f64::from(ramp[i][k]);
            let b = f64::from(ramp[i + 1][k]);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            {
                *o = (a + (b - a) * w).round() as u8;
            }
        }
        out
    }
}

/// The value range mapped onto the colour ramp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stretch {
    /// Value at the bottom of the ramp.
    pub min: f64,
    /// Value at the top of the ramp.
    pub max: f64,
}

impl Stretch {
    /// The `lo`–`hi` percentile range (0–100) of the valid cells of one band;
    /// `None` when the band has no data.
    #[must_use]
    pub fn percentiles<T: Element>(
        data: &ArrayView3<'_, T>,
        band: usize,
        nodata: Nodata<T>,
        lo: f64,
        hi: f64,
    ) -> Option<Self> {
        let mut values: Vec<f64> = data
            .index_axis(ndarray::Axis(0), band)
            .iter()
            .filter(|v| v.is_valid(nodata))
            .map(|v| v.to_f64())
            .collect();
        values.sort_by(f64::total_cmp);
        Self::from_sorted(&values, lo, hi)
    }

    /// The `lo`–`hi` percentile range (0–100) of sorted values; `None` when
    /// there are none.
    #[must_use]
    pub fn from_sorted(values: &[f64], lo: f64, hi: f64) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let at = |p: f64| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = ((p.clamp(0.0, 100.0) / 100.0) * (values.len() - 1) as f64).round() as usize;
            values[i.min(values.len() - 1)]
        };
        Some(Self {
            min: at(lo),
            max: at(hi),
        })
    }
}

/// The colour of a class value without an entry in the colour table.
pub const UNLISTED_CLASS: [u8; 4] = [128, 128, 128, 255];

/// The quicklook rendering of cells (PNG exports, store quicklooks): the
/// colour table when there is one, else viridis for one band or an RGB
/// composite of bands 1–3, stretched from the 2nd to the 98th percentile.
#[must_use]
pub fn quicklook_rgba<T: Element>(
    data: &ArrayView3<'_, T>,
    nodata: Nodata<T>,
    palette: Option<&Palette>,
) -> Vec<u8> {
    let used = if data.dim().0 >= 3 { 3 } else { 1 };
    let stretches: Vec<Stretch> = (0..used)
        .map(|b| {
            Stretch::percentiles(data, b, nodata, 2.0, 98.0)
                .unwrap_or(Stretch { min: 0.0, max: 1.0 })
        })
        .collect();
    to_rgba(data, nodata, ColorMap::Viridis, &stretches, palette)
}

/// Renders cells to RGBA, row-major, 4 bytes per pixel. One band takes its
/// colours from `palette` when given (values without an entry are
/// [`UNLISTED_CLASS`]), else from `map` over the first stretch; three or
/// more bands make an RGB composite of bands 1–3, each with its own
/// stretch. Nodata is transparent.
#[must_use]
pub fn to_rgba<T: Element>(
    data: &ArrayView3<'_, T>,
    nodata: Nodata<T>,
    map: ColorMap,
    stretches: &[Stretch],
    palette: Option<&Palette>,
) -> Vec<u8> {
    let (bands, rows, cols) = data.dim();
    let mut out = vec![0u8; rows * cols * 4];
    if bands >= 3 && stretches.len() >= 3 {
        let channels = [0, 1, 2].map(|b| data.index_axis(ndarray::Axis(0), b));
        let scales = [0, 1, 2].map(|k| Scale::new(stretches[k], 255.0));
        for (((px, r), g), b) in out
            .chunks_exact_mut(4)
            .zip(channels[0].iter())
            .zip(channels[1].iter())
            .zip(channels[2].iter())
        {
            let vs = [*r, *g, *b];
            if vs.iter().all(|v| !v.is_valid(nodata)) {
                continue;
            }
            for k in 0..3 {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                {
                    px[k] = scales[k].index(vs[k].to_f64()).round() as u8;
                }
            }
            px[3] = 255;
        }
        return out;
    }
    if bands == 0 {
        return out;
    }
    let band = data.index_axis(ndarray::Axis(0), 0);
    if let Some(palette) = palette {
        for (px, v) in out.chunks_exact_mut(4).zip(band.iter()) {
            if v.is_valid(nodata) {
                px.copy_from_slice(&palette.color(v.to_f64()).unwrap_or(UNLISTED_CLASS));
            }
        }
        return out;
    }
    // The ramp in RAMP_STEPS colours: one multiply and a lookup per cell.
    let lut: Vec<[u8; 4]> = (0..RAMP_STEPS)
        .map(|i| {
            let [r, g, b] = map.color(i as f64 / (RAMP_STEPS - 1) as f64);
            [r, g, b, 255]
        })
        .collect();
    let stretch = stretches
        .first()
        .copied()
        .unwrap_or(Stretch { min: 0.0, max: 1.0 });
    let scale = Scale::new(stretch, (RAMP_STEPS - 1) as f64);
    for (px, v) in out.chunks_exact_mut(4).zip(band.iter()) {
        if v.is_valid(nodata) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            px.copy_from_slice(&lut[scale.index(v.to_f64()).round() as usize]);
        }
    }
    out
}

/// Colours of a ramp as rendered: finer than the eye tells apart.
const RAMP_STEPS: usize = 1024;

/// A stretch mapped onto `0..=top`, clamped.
#[derive(Clone, Copy)]
struct Scale {
    min: f64,
    factor: f64,
    top: f64,
}

impl Scale {
    fn new(stretch: Stretch, top: f64) -> Self {
        let span = stretch.max - stretch.min;
        Self {
            min: stretch.min,
            // A flat stretch maps everything to the middle.
            factor: if span > 0.0 { top / span } else { 0.0 },
            top,
        }
    }

    /// `0..=top`, or the middle for a flat stretch.
    fn index(self, v: f64) -> f64 {
        if self.factor == 0.0 {
            return self.top / 2.0;
        }
        let i = (v - self.min) * self.factor;
        if i.is_nan() {
            0.0
        } else {
            i.clamp(0.0, self.top)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn nodata_is_transparent_and_ramp_ends_match() {
        let data = Array3::from_shape_vec((1, 1, 3), vec![0.0f32, -1.0, 10.0]).unwrap();
        let s = Stretch::percentiles(&data.view(), 0, Nodata::value(-1.0), 0.0, 100.0).unwrap();
        assert_eq!(
            s,
            Stretch {
                min: 0.0,
                max: 10.0
            }
        );
        let px = to_rgba(
            &data.view(),
            Nodata::value(-1.0),
            ColorMap::Viridis,
            &[s],
            None,
        );
        assert_eq!(&px[0..4], &[68, 1, 84, 255]);
        assert_eq!(px[7], 0);
        assert_eq!(&px[8..12], &[253, 231, 37, 255]);
    }

    #[test]
    fn a_colour_table_colours_classes() {
        let data = Array3::from_shape_vec((1, 1, 4), vec![0u8, 1, 255, 7]).unwrap();
        let palette = Palette::new(vec![[1, 2, 3, 255], [4, 5, 6, 128]]).unwrap();
        let px = to_rgba(
            &data.view(),
            Nodata::value(255),
            ColorMap::Viridis,
            &[],
            Some(&palette),
        );
        assert_eq!(&px[0..4], &[1, 2, 3, 255]);
        assert_eq!(&px[4..8], &[4, 5, 6, 128]);
        assert_eq!(px[11], 0, "nodata stays transparent");
        assert_eq!(&px[12..16], &UNLISTED_CLASS);
    }
}
