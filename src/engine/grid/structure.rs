//! The immutable structure of a store: its dimensions, grid, data type,
//! nodata, codec and aggregation.
//!
//! A structure is chosen once, at creation, and saved inside the store. It
//! is validated by [`Structure::validate`] before anything is written, so an
//! opened store can trust it.

use crate::engine::DType;
use crate::engine::grid::period::TimeLevel;
use crate::engine::grid::time::TimeAxis;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Largest number of domain levels: the domain spans `chunk · 2^levels` cells.
pub const MAX_DOMAIN_LEVELS: u8 = 24;

/// The coordinate reference system of a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crs {
    /// The CRS as OGC WKT (WKT2 when GDAL gives it).
    pub wkt: String,
    /// The EPSG code, when the CRS has one.
    pub epsg: Option<u32>,
    /// A human name, e.g. "Amersfoort / RD New".
    #[serde(default)]
    pub name: String,
}

/// How a parent cell is computed from the 2×2 child cells below it.
///
/// docs/FORMAT.md gives the exact definitions, including rounding and
/// partly-nodata blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregator {
    /// Mean of the valid children.
    Mean,
    /// Smallest valid child.
    Min,
    /// Largest valid child.
    Max,
    /// Sum of the valid children (saturating).
    Sum,
    /// Number of valid base cells below (saturating).
    Count,
    /// Most frequent valid child; ties go to the first in reading order.
    Mode,
    /// First valid child in reading order (top-left, top-right, bottom-left, bottom-right).
    Nearest,
}

impl Aggregator {
    /// All aggregators.
    pub const ALL: [Self; 7] = [
        Self::Mean,
        Self::Min,
        Self::Max,
        Self::Sum,
        Self::Count,
        Self::Mode,
        Self::Nearest,
    ];

    /// Lower-case name as used on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Min => "min",
            Self::Max => "max",
            Self::Sum => "sum",
            Self::Count => "count",
            Self::Mode => "mode",
            Self::Nearest => "nearest",
        }
    }

    /// Whether the data is categorical (class codes), so that only
    /// value-preserving resampling may touch it.
    #[must_use]
    pub fn is_categorical(self) -> bool {
        matches!(self, Self::Mode | Self::Nearest)
    }
}

/// How sources are warped onto the store's grid, and the default for reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resampling {
    /// Value of the nearest cell centre.
    Nearest,
    /// Area-weighted mean of the valid cells overlapping the target cell.
    Average,
    /// Bilinear interpolation between the four nearest valid cell centres.
    Bilinear,
}

impl Resampling {
    /// Lower-case name as used on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Nearest => "nearest",
            Self::Average => "average",
            Self::Bilinear => "bilinear",
        }
    }
}

/// The compression of stored chunks. Every codec carries a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "id", rename_all = "lowercase")]
pub enum Codec {
    /// Zstandard with its frame content checksum.
    Zstd {
        /// Compression level (1–22).
        level: i32,
    },
    /// LZ4 (numcodecs framing) over a CRC-32 checksum.
    Lz4,
    /// No compression, CRC-32 checksum only.
    None,
}

impl Default for Codec {
    fn default() -> Self {
        Self::Zstd { level: 3 }
    }
}

macro_rules! impl_named_enum {
    ($t:ty, $what:literal, [$($v:ident),*]) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let all = [$(<$t>::$v),*];
                all.into_iter().find(|v| v.name() == s.to_ascii_lowercase()).ok_or_else(|| {
                    let names: Vec<&str> = all.iter().map(|v| v.name()).collect();
                    format!(concat!("unknown ", $what, " '{}' (expected one of {})"), s, names.join(", "))
                })
            }
        }
    };
}

impl_named_enum!(
    Aggregator,
    "aggregator",
    [Mean, Min, Max, Sum, Count, Mode, Nearest]
);
impl_named_enum!(Resampling, "resampling", [Nearest, Average, Bilinear]);

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zstd { level } => write!(f, "zstd:{level}"),
            Self::Lz4 => f.write_str("lz4"),
            Self::None => f.write_str("none"),
        }
    }
}

impl FromStr for Codec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let (name, level) = lower.split_once(':').unwrap_or((&lower, ""));
        match name {
            "zstd" if level.is_empty() => Ok(Self::default()),
            "zstd" => level
                .parse()
                .ok()
                .filter(|l| (1..=22).contains(l))
                .map(|level| Self::Zstd { level })
                .ok_or_else(|| format!("bad zstd level '{level}' (expected 1 to 22)")),
            "lz4" => Ok(Self::Lz4),
            "none" => Ok(Self::None),
            _ => Err(format!(
                "unknown codec '{s}' (expected zstd, zstd:LEVEL, lz4 or none)"
            )),
        }
    }
}

/// Serde for floats that may be NaN or infinite, written as the strings
/// `"NaN"`, `"Infinity"` and `"-Infinity"` (as Zarr v2 does).
mod float_json {
    use serde::{Deserialize, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_nan() => s.serialize_str("NaN"),
            f64::INFINITY => s.serialize_str("Infinity"),
            f64::NEG_INFINITY => s.serialize_str("-Infinity"),
            v => s.serialize_f64(v),
        }
    }

    /// The same for an optional float, `None` being `null`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        #[allow(clippy::ref_option)]
        pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => super::serialize(v, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
            match Option::<super::Repr>::deserialize(d)? {
                None => Ok(None),
                Some(repr) => super::parse(repr).map(Some),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    fn parse<E: serde::de::Error>(repr: Repr) -> Result<f64, E> {
        match repr {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => Err(E::custom(format!("'{other}' is not a number"))),
            },
        }
    }
}

/// The immutable description of a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Structure {
    /// The coordinate reference system.
    pub crs: Crs,
    /// A point that is a cell corner at every level: `create --origin`, or
    /// the top-left corner of the `--like` raster. It sits at the centre of
    /// the domain.
    pub anchor: [f64; 2],
    /// Base (level 0) cell size, x then y, both positive. North is up.
    pub cell_size: [f64; 2],
    /// Chunk width and height in cells. Both even.
    pub chunk: [u32; 2],
    /// The domain spans `chunk · 2^domain_levels` cells per axis, centred on
    /// the anchor; the pyramid has `domain_levels + 1` levels.
    pub domain_levels: u8,
    /// The cell data type.
    pub dtype: DType,
    /// The nodata value; `None` (JSON `null`, integer stores only) when
    /// every value is data and cells never written read as 0. For floats,
    /// NaN is always nodata as well. JSON has no NaN, so it is written as
    /// the string `"NaN"`.
    #[serde(with = "float_json::option")]
    pub nodata: Option<f64>,
    /// The chunk codec.
    pub codec: Codec,
    /// How the spatial pyramid aggregates.
    pub aggregate: Aggregator,
    /// How sources are warped onto the grid.
    pub resampling: Resampling,
    /// Number of bands, or `None` for a store without a band axis.
    pub bands: Option<u32>,
    /// The time axis, if any.
    pub time: Option<TimeAxis>,
    /// The calendar periods kept as aggregate maps (format version 3;
    /// `create --time-levels`), finest first; empty for none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_levels: Vec<TimeLevel>,
}

/// The most bands a store may have.
pub const MAX_BANDS: usize = 4096;

/// Domain levels used when the CRS has no known area of use.
pub const DEFAULT_DOMAIN_LEVELS: u8 = 12;

/// The fewest domain levels (at least 4, at most [`MAX_DOMAIN_LEVELS`])
/// whose domain, centred on `anchor`, covers `area` (min x, min y, max x,
/// max y); [`DEFAULT_DOMAIN_LEVELS`] when there is no area.
#[must_use]
pub fn domain_levels_covering(
    area: Option<[f64; 4]>,
    anchor: [f64; 2],
    cell: [f64; 2],
    chunk: [u32; 2],
) -> u8 {
    let Some(b) = area else {
        return DEFAULT_DOMAIN_LEVELS;
    };
    // The farthest edge of the area, in chunks, from the anchor.
    let reach_x =
        (anchor[0] - b[0]).abs().max((b[2] - anchor[0]).abs()) / (cell[0] * f64::from(chunk[0]));
    let reach_y =
        (anchor[1] - b[1]).abs().max((b[3] - anchor[1]).abs()) / (cell[1] * f64::from(chunk[1]));
    let reach = reach_x.max(reach_y).max(1.0);
    if !reach.is_finite() {
        return MAX_DOMAIN_LEVELS;
    }
    // The domain reaches chunk * 2^(D-1) cells from the anchor.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let levels = (reach.log2().ceil() as u8).saturating_add(1);
    levels.clamp(4, MAX_DOMAIN_LEVELS)
}

/// Why a structure is not acceptable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StructureError {
    /// A field is outside its allowed range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> StructureError {
    StructureError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Structure {
    /// Checks every field.
    ///
    /// # Errors
    /// [`StructureError::Invalid`] naming the first bad field.
    pub fn validate(&self) -> Result<(), StructureError> {
        if self.crs.wkt.trim().is_empty() {
            return Err(invalid("crs", "is empty"));
        }
        for (i, c) in self.cell_size.iter().enumerate() {
            if !(c.is_finite() && *c > 0.0) {
                return Err(invalid(
                    "cell_size",
                    format!("axis {i} is {c}, must be a positive number"),
                ));
            }
        }
        if !self.anchor.iter().all(|v| v.is_finite()) {
            return Err(invalid("origin", "must be finite"));
        }
        for c in self.chunk {
            if !(2..=8192).contains(&c) || c % 2 != 0 {
                return Err(invalid(
                    "chunk",
                    format!("{c} must be even and between 2 and 8192"),
                ));
            }
        }
        if self.domain_levels == 0 || self.domain_levels > MAX_DOMAIN_LEVELS {
            return Err(invalid(
                "domain_levels",
                format!("must be 1 to {MAX_DOMAIN_LEVELS}"),
            ));
        }
        let side = u64::from(self.chunk[0].max(self.chunk[1])) << self.domain_levels;
        if side > 1 << 40 {
            return Err(invalid(
                "domain_levels",
                "domain larger than 2^40 cells per side",
            ));
        }
        match self.nodata {
            Some(nodata) if !self.dtype.holds(nodata) => {
                return Err(invalid(
                    "nodata",
                    format!("{nodata} does not fit {}", self.dtype),
                ));
            }
            None if self.dtype.is_float() => {
                return Err(invalid(
                    "nodata",
                    "a float store always has nodata: NaN is never a value (give NaN)",
                ));
            }
            None if self.aggregate == Aggregator::Count => {
                return Err(invalid(
                    "nodata",
                    "count counts the cells that hold data; without nodata every cell does",
                ));
            }
            _ => {}
        }
        if let Codec::Zstd { level } = self.codec
            && !(1..=22).contains(&level)
        {
            return Err(invalid("codec", "zstd level must be 1 to 22"));
        }
        if let Some(b) = self.bands
            && !(1..=MAX_BANDS).contains(&usize::try_from(b).unwrap_or(usize::MAX))
        {
            return Err(invalid("bands", "must be 1 to 4096"));
        }
        if let Some(t) = &self.time {
            t.validate().map_err(|e| invalid("time", e.to_string()))?;
        }
        if !self.time_levels.is_empty() && self.time.is_none() {
            return Err(invalid(
                "time_levels",
                "periods of time need a time axis (give --time)",
            ));
        }
        if !self.time_levels.is_sorted_by(|a, b| a < b) {
            return Err(invalid(
                "time_levels",
                "must be listed finest first, each once",
            ));
        }
        Ok(())
    }

    /// Number of bands in a chunk (1 for a store without a band axis).
    #[must_use]
    pub fn band_count(&self) -> usize {
        self.bands.map_or(1, |b| b as usize)
    }

    /// Whether `value` is nodata in this store.
    #[must_use]
    pub fn is_nodata(&self, value: f64) -> bool {
        value.is_nan() || Some(value) == self.nodata
    }

    /// The nodata value as people read it: the number, `NaN`, or `none`.
    #[must_use]
    pub fn nodata_text(&self) -> String {
        match self.nodata {
            Some(v) if v.is_nan() => "NaN".into(),
            Some(v) => v.to_string(),
            None => "none".into(),
        }
    }

    /// The value cells never written read as: the nodata value, or 0 in a
    /// store without nodata.
    #[must_use]
    pub fn fill(&self) -> f64 {
        self.nodata.unwrap_or(0.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small valid structure for tests.
    pub fn sample() -> Structure {
        Structure {
            crs: Crs {
                wkt: "LOCAL_CS[\"test\"]".into(),
                epsg: None,
                name: "test".into(),
            },
            anchor: [1000.0, 2000.0],
            cell_size: [10.0, 10.0],
            chunk: [4, 4],
            domain_levels: 4,
            dtype: DType::F32,
            nodata: Some(-9999.0),
            codec: Codec::default(),
            aggregate: Aggregator::Mean,
            resampling: Resampling::Average,
            bands: None,
            time: None,
            time_levels: Vec::new(),
        }
    }

    #[test]
    fn sample_is_valid_and_round_trips_json() {
        let s = sample();
        s.validate().unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Structure>(&json).unwrap(), s);
    }

    #[test]
    fn nan_nodata_round_trips_json() {
        let mut s = sample();
        s.nodata = Some(f64::NAN);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"nodata\":\"NaN\""));
        assert!(
            serde_json::from_str::<Structure>(&json)
                .unwrap()
                .nodata
                .is_some_and(f64::is_nan)
        );
    }

    /// No nodata is `null`, for integer stores only, and not with `count`.
    #[test]
    fn no_nodata_is_null_and_only_for_integers() {
        let mut s = sample();
        s.dtype = DType::U8;
        s.nodata = None;
        s.validate().unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"nodata\":null"), "{json}");
        assert_eq!(serde_json::from_str::<Structure>(&json).unwrap(), s);
        assert_eq!(s.fill(), 0.0);
        assert!(!s.is_nodata(255.0) && !s.is_nodata(0.0));
        s.aggregate = Aggregator::Count;
        assert!(s.validate().unwrap_err().to_string().starts_with("nodata"));
        s.aggregate = Aggregator::Mean;
        s.dtype = DType::F32;
        assert!(s.validate().unwrap_err().to_string().starts_with("nodata"));
    }

    #[test]
    fn bad_fields_are_named() {
        let mut s = sample();
        s.chunk = [3, 4];
        assert!(s.validate().unwrap_err().to_string().starts_with("chunk"));
        let mut s = sample();
        s.dtype = DType::U8;
        s.nodata = Some(-1.0);
        assert!(s.validate().unwrap_err().to_string().starts_with("nodata"));
        let mut s = sample();
        s.cell_size = [0.0, 1.0];
        assert!(s.validate().is_err());
    }

    #[test]
    fn names_parse() {
        assert_eq!("MODE".parse::<Aggregator>().unwrap(), Aggregator::Mode);
        assert_eq!("zstd:9".parse::<Codec>().unwrap(), Codec::Zstd { level: 9 });
        assert!("zstd:99".parse::<Codec>().is_err());
        assert!(
            "cubic"
                .parse::<Resampling>()
                .unwrap_err()
                .contains("nearest")
        );
    }
}
