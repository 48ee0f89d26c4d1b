//! Colour-mapping cells into RGBA images (quicklooks, map tiles).
//!
//! Pure functions over ndarray views; used by PNG export and the explorer.

use crate::engine::persistence::band_info::rgb_bands;
use crate::engine::{BandInfo, Element, Nodata, Palette};
use ndarray::ArrayView3;
use std::borrow::Cow;

/// A colour ramp for single-band data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMap {
    /// Perceptually uniform purple–green–yellow.
    #[default]
    Viridis,
    /// Perceptually uniform black–purple–orange–cream.
    Magma,
    /// Perceptually uniform blue–yellow, for colour-vision deficiency.
    Cividis,
    /// A rainbow with smooth lightness, for fine detail.
    Turbo,
    /// Black to white.
    Greyscale,
    /// Blue lowlands through green and brown to white peaks.
    Terrain,
    /// Diverging red–white–blue, for anomalies around a middle value.
    RdBu,
    /// White to dark blue, for precipitation and other amounts.
    Blues,
}

// Matplotlib's colour maps, sampled at 17 even steps.
const VIRIDIS: [[u8; 3]; 17] = [
    [68, 1, 84],
    [72, 24, 106],
    [71, 45, 123],
    [66, 64, 134],
    [59, 82, 139],
    [51, 99, 141],
    [44, 114, 142],
    [38, 130, 142],
    [33, 145, 140],
    [31, 160, 136],
    [40, 174, 128],
    [63, 188, 115],
    [94, 201, 98],
    [132, 212, 75],
    [173, 220, 48],
    [216, 226, 25],
    [253, 231, 37],
];

const MAGMA: [[u8; 3]; 17] = [
    [0, 0, 4],
    [10, 8, 34],
    [29, 17, 71],
    [54, 16, 107],
    [81, 18, 124],
    [106, 28, 129],
    [131, 38, 129],
    [156, 46, 127],
    [183, 55, 121],
    [208, 65, 111],
    [231, 82, 99],
    [245, 107, 92],
    [252, 137, 97],
    [254, 167, 114],
    [254, 196, 136],
    [253, 226, 163],
    [252, 253, 191],
];

const CIVIDIS: [[u8; 3]; 17] = [
    [0, 34, 78],
    [0, 46, 106],
    [26, 56, 111],
    [50, 67, 109],
    [67, 78, 108],
    [83, 90, 109],
    [97, 101, 111],
    [111, 112, 115],
    [125, 124, 120],
    [140, 136, 120],
    [155, 148, 118],
    [171, 160, 114],
    [188, 174, 108],
    [205, 187, 99],
    [222, 201, 88],
    [240, 216, 70],
    [254, 232, 56],
];

const TURBO: [[u8; 3]; 17] = [
    [48, 18, 59],
    [64, 64, 162],
    [70, 107, 227],
    [66, 148, 255],
    [40, 188, 235],
    [24, 221, 194],
    [50, 242, 152],
    [109, 254, 98],
    [164, 252, 60],
    [205, 236, 52],
    [238, 207, 58],
    [253, 172, 52],
    [251, 126, 33],
    [235, 80, 14],
    [208, 47, 5],
    [169, 22, 1],
    [122, 4, 3],
];

const RDBU: [[u8; 3]; 17] = [
    [103, 0, 31],
    [150, 15, 39],
    [187, 42, 52],
    [210, 88, 73],
    [229, 131, 104],
    [245, 172, 139],
    [251, 206, 183],
    [251, 230, 218],
    [246, 247, 247],
    [222, 235, 242],
    [192, 220, 235],
    [152, 200, 224],
    [104, 171, 208],
    [62, 140, 191],
    [40, 112, 177],
    [21, 80, 141],
    [5, 48, 97],
];

const BLUES: [[u8; 3]; 17] = [
    [247, 251, 255],
    [234, 243, 251],
    [222, 235, 247],
    [210, 227, 243],
    [198, 219, 239],
    [178, 210, 232],
    [157, 202, 225],
    [132, 188, 219],
    [106, 174, 214],
    [86, 160, 206],
    [65, 145, 198],
    [49, 129, 189],
    [32, 112, 180],
    [20, 96, 168],
    [8, 80, 155],
    [8, 64, 130],
    [8, 48, 107],
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
    /// Every colour map, in the order menus list them.
    pub const ALL: [Self; 8] = [
        Self::Viridis,
        Self::Magma,
        Self::Cividis,
        Self::Turbo,
        Self::Greyscale,
        Self::Terrain,
        Self::RdBu,
        Self::Blues,
    ];

    /// The name menus and the command line use.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Viridis => "viridis",
            Self::Magma => "magma",
            Self::Cividis => "cividis",
            Self::Turbo => "turbo",
            Self::Greyscale => "greyscale",
            Self::Terrain => "terrain",
            Self::RdBu => "RdBu",
            Self::Blues => "blues",
        }
    }

    /// The ramp in [`RAMP_STEPS`] opaque colours, bottom first.
    #[must_use]
    pub fn lut(self) -> Vec<[u8; 4]> {
        (0..RAMP_STEPS)
            .map(|i| {
                let [r, g, b] = self.color(i as f64 / (RAMP_STEPS - 1) as f64);
                [r, g, b, 255]
            })
            .collect()
    }

    /// The colour of `f` in `[0, 1]`.
    #[must_use]
    pub fn color(self, f: f64) -> [u8; 3] {
        let f = if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) };
        let ramp: &[[u8; 3]] = match self {
            Self::Viridis => &VIRIDIS,
            Self::Magma => &MAGMA,
            Self::Cividis => &CIVIDIS,
            Self::Turbo => &TURBO,
            Self::Terrain => &TERRAIN,
            Self::RdBu => &RDBU,
            Self::Blues => &BLUES,
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
/// composite (of the bands `info` gives red, green and blue, else of bands
/// 1–3), stretched from the 2nd to the 98th percentile.
#[must_use]
pub fn quicklook_rgba<T: Element>(
    data: &ArrayView3<'_, T>,
    nodata: Nodata<T>,
    palette: Option<&Palette>,
    info: &[BandInfo],
) -> Vec<u8> {
    let bands = Bands::default_for(data.dim().0, info);
    let stretches: Vec<Stretch> = bands
        .indices()
        .iter()
        .map(|&b| {
            Stretch::percentiles(data, b, nodata, 2.0, 98.0)
                .unwrap_or(Stretch { min: 0.0, max: 1.0 })
        })
        .collect();
    to_rgba(data, nodata, ColorMap::Viridis, bands, &stretches, palette)
}

/// Which bands a rendering shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bands {
    /// One band (0-based), through a colour map or the colour table.
    Single(usize),
    /// Red, green and blue from these bands (0-based), each with its own
    /// stretch.
    Rgb([usize; 3]),
}

impl Bands {
    /// For `count` bands described by `info`: an RGB composite of the
    /// bands that stand for red, green and blue, else of bands 1–3 when
    /// there are three or more, else band 1.
    #[must_use]
    pub fn default_for(count: usize, info: &[BandInfo]) -> Self {
        match rgb_bands(info) {
            Some(rgb) if rgb.iter().all(|&b| b < count) => Self::Rgb(rgb),
            _ if count >= 3 => Self::Rgb([0, 1, 2]),
            _ => Self::Single(0),
        }
    }

    /// The bands shown, in channel order (0-based).
    #[must_use]
    pub fn indices(&self) -> &[usize] {
        match self {
            Self::Single(b) => std::slice::from_ref(b),
            Self::Rgb(bands) => bands,
        }
    }
}

/// Renders cells to RGBA, row-major, 4 bytes per pixel. A single band takes
/// its colours from `palette` when given (values without an entry are
/// [`UNLISTED_CLASS`]), else from `map` over the first stretch; an RGB
/// composite stretches each of its bands with its own stretch. Nodata is
/// transparent; bands beyond the data's are nodata.
#[must_use]
pub fn to_rgba<T: Element>(
    data: &ArrayView3<'_, T>,
    nodata: Nodata<T>,
    map: ColorMap,
    bands: Bands,
    stretches: &[Stretch],
    palette: Option<&Palette>,
) -> Vec<u8> {
    let (count, rows, cols) = data.dim();
    let mut out = vec![0u8; rows * cols * 4];
    if bands.indices().iter().any(|&b| b >= count) {
        return out;
    }
    let stretch = |k: usize| {
        stretches
            .get(k)
            .copied()
            .unwrap_or(Stretch { min: 0.0, max: 1.0 })
    };
    if let Bands::Rgb(rgb) = bands {
        let channels = rgb.map(|b| plane(data, b));
        let scales = [0, 1, 2].map(|k| Scale::new(stretch(k), 255.0));
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
                #[allow(clippy::cast_possible_truncation)]
                {
                    px[k] = scales[k].step(vs[k].to_f64()) as u8;
                }
            }
            px[3] = 255;
        }
        return out;
    }
    let band = plane(data, bands.indices()[0]);
    if let Some(palette) = palette {
        for (px, v) in out.chunks_exact_mut(4).zip(band.iter()) {
            if v.is_valid(nodata) {
                px.copy_from_slice(&palette.color(v.to_f64()).unwrap_or(UNLISTED_CLASS));
            }
        }
        return out;
    }
    // The ramp in RAMP_STEPS colours: one multiply and a lookup per cell.
    let lut = map.lut();
    let scale = Scale::new(stretch(0), (RAMP_STEPS - 1) as f64);
    for (px, v) in out.chunks_exact_mut(4).zip(band.iter()) {
        if v.is_valid(nodata) {
            px.copy_from_slice(&lut[scale.step(v.to_f64())]);
        }
    }
    out
}

/// Band `b` of a chunk's cells as one slice: borrowed when the chunk is in
/// standard layout (as read), so the colouring loops run over plain memory.
fn plane<'a, T: Element>(data: &'a ArrayView3<'_, T>, b: usize) -> Cow<'a, [T]> {
    let band = data.index_axis_move(ndarray::Axis(0), b);
    match band.to_slice() {
        Some(cells) => Cow::Borrowed(cells),
        None => Cow::Owned(band.iter().copied().collect()),
    }
}

/// Colours of a ramp as rendered: finer than the eye tells apart.
pub const RAMP_STEPS: usize = 1024;

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

    /// The nearest step of `0..=top` (halves up), or the middle for a flat
    /// stretch. The position is never negative, so adding a half and
    /// truncating rounds it, without the library call `f64::round` makes on
    /// baseline x86-64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn step(self, v: f64) -> usize {
        let i = if self.factor == 0.0 {
            self.top / 2.0
        } else {
            let i = (v - self.min) * self.factor;
            if i.is_nan() {
                0.0
            } else {
                i.clamp(0.0, self.top)
            }
        };
        (i + 0.5) as usize
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
            Bands::Single(0),
            &[s],
            None,
        );
        assert_eq!(&px[0..4], &[68, 1, 84, 255]);
        assert_eq!(px[7], 0);
        assert_eq!(&px[8..12], &[253, 231, 37, 255]);
    }

    #[test]
    fn a_composite_takes_its_channels_from_the_bands_chosen() {
        // Three bands of one cell: 10, 20, 30; shown as 3, 2, 1.
        let data = Array3::from_shape_vec((3, 1, 1), vec![10u8, 20, 30]).unwrap();
        let full = [Stretch {
            min: 0.0,
            max: 255.0,
        }; 3];
        let px = to_rgba(
            &data.view(),
            Nodata::value(0),
            ColorMap::Viridis,
            Bands::Rgb([2, 1, 0]),
            &full,
            None,
        );
        assert_eq!(px, [30, 20, 10, 255]);
        // One band through a ramp; a band the data lacks draws nothing.
        let grey = to_rgba(
            &data.view(),
            Nodata::value(0),
            ColorMap::Greyscale,
            Bands::Single(1),
            &full,
            None,
        );
        assert_eq!(grey, [20, 20, 20, 255]);
        let missing = Bands::Single(3);
        let none = to_rgba(
            &data.view(),
            Nodata::value(0),
            ColorMap::Greyscale,
            missing,
            &full,
            None,
        );
        assert_eq!(none, [0, 0, 0, 0]);
    }

    #[test]
    fn every_colour_map_runs_from_its_first_to_its_last_colour() {
        for map in ColorMap::ALL {
            let lut = map.lut();
            assert_eq!(lut.len(), RAMP_STEPS);
            let [r, g, b] = map.color(0.0);
            assert_eq!(lut[0], [r, g, b, 255], "{}", map.name());
            assert_ne!(map.color(0.0), map.color(1.0), "{}", map.name());
        }
        assert_eq!(ColorMap::Magma.color(0.0), [0, 0, 4]);
        assert_eq!(ColorMap::RdBu.color(0.5), [246, 247, 247]);
        assert_eq!(ColorMap::Blues.color(1.0), [8, 48, 107]);
    }

    #[test]
    fn a_colour_table_colours_classes() {
        let data = Array3::from_shape_vec((1, 1, 4), vec![0u8, 1, 255, 7]).unwrap();
        let palette = Palette::new(vec![[1, 2, 3, 255], [4, 5, 6, 128]]).unwrap();
        let px = to_rgba(
            &data.view(),
            Nodata::value(255),
            ColorMap::Viridis,
            Bands::Single(0),
            &[],
            Some(&palette),
        );
        assert_eq!(&px[0..4], &[1, 2, 3, 255]);
        assert_eq!(&px[4..8], &[4, 5, 6, 128]);
        assert_eq!(px[11], 0, "nodata stays transparent");
        assert_eq!(&px[12..16], &UNLISTED_CLASS);
    }
}
