//! Cell data types and the [`Element`] trait that lets the engine be generic
//! over them.
//!
//! Every kernel in the engine is written once, generic over `T: Element`; the
//! runtime [`DType`] of a store picks the instantiation with [`with_dtype!`].

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The data type of the cells of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 16-bit integer.
    U16,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 32-bit integer.
    I32,
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
}

impl DType {
    /// All data types, in order of width.
    pub const ALL: [Self; 8] = [
        Self::U8,
        Self::I8,
        Self::U16,
        Self::I16,
        Self::U32,
        Self::I32,
        Self::F32,
        Self::F64,
    ];

    /// Bytes per cell.
    #[must_use]
    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// Whether this is a floating-point type.
    #[must_use]
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64)
    }

    /// The lowest and highest value this type holds.
    #[must_use]
    pub fn range(self) -> (f64, f64) {
        match self {
            Self::U8 => (0.0, f64::from(u8::MAX)),
            Self::I8 => (f64::from(i8::MIN), f64::from(i8::MAX)),
            Self::U16 => (0.0, f64::from(u16::MAX)),
            Self::I16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
            Self::U32 => (0.0, f64::from(u32::MAX)),
            Self::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
            Self::F32 => (f64::from(f32::MIN), f64::from(f32::MAX)),
            Self::F64 => (f64::MIN, f64::MAX),
        }
    }

    /// Whether `value` is exactly representable in this type.
    #[must_use]
    pub fn holds(self, value: f64) -> bool {
        if value.is_nan() {
            return self.is_float();
        }
        let (lo, hi) = self.range();
        if self.is_float() {
            return value.is_infinite() || (value >= lo && value <= hi);
        }
        value.fract() == 0.0 && value >= lo && value <= hi
    }

    /// The Zarr v2 `dtype` string (always little-endian).
    #[must_use]
    pub fn zarr_name(self) -> &'static str {
        match self {
            Self::U8 => "|u1",
            Self::I8 => "|i1",
            Self::U16 => "<u2",
            Self::I16 => "<i2",
            Self::U32 => "<u4",
            Self::I32 => "<i4",
            Self::F32 => "<f4",
            Self::F64 => "<f8",
        }
    }

    /// The lower-case name used on the command line and in `structure.json`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::I8 => "i8",
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
            Self::F32 => "f32",
            Self::F64 => "f64",
        }
    }

    /// The nodata value used when none is given: NaN for floats, the lowest
    /// value for signed and the highest for unsigned integers.
    #[must_use]
    pub fn default_nodata(self) -> f64 {
        match self {
            Self::F32 | Self::F64 => f64::NAN,
            Self::I8 | Self::I16 | Self::I32 => self.range().0,
            Self::U8 | Self::U16 | Self::U32 => self.range().1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!(
                    "unknown data type '{s}' (expected one of u8, i8, u16, i16, u32, i32, f32, f64)"
                )
            })
    }
}

/// A cell value type the engine computes with.
///
/// Values cross into `f64` for aggregation arithmetic; every supported type
/// converts to `f64` exactly.
pub trait Element:
    bytemuck::Pod + Send + Sync + PartialEq + PartialOrd + Default + fmt::Debug + 'static
{
    /// The runtime tag of this type.
    const DTYPE: DType;

    /// Widens to `f64` (exact for every supported type).
    fn to_f64(self) -> f64;

    /// Narrows from `f64`, rounding half away from zero for integers and
    /// saturating at the type's range. NaN becomes 0 for integers.
    fn from_f64(value: f64) -> Self;

    /// Reads one little-endian value.
    fn read_le(bytes: &[u8]) -> Self;

    /// Appends the little-endian bytes of this value.
    fn write_le(self, out: &mut Vec<u8>);

    /// The next representable value above (`up`) or below this one,
    /// saturating at the type's range.
    #[must_use]
    fn step(self, up: bool) -> Self;

    /// Whether this is a data value: neither `nodata`'s value nor NaN.
    #[inline]
    fn is_valid(self, nodata: Nodata<Self>) -> bool {
        // `v == v` is false only for NaN.
        #[allow(clippy::eq_op)]
        let not_nan = self == self;
        not_nan && !(nodata.marks && self == nodata.fill)
    }
}

/// What marks a cell as holding no data in a store, and what cells never
/// written read as: the nodata value, or, in a store without nodata (where
/// every value is data), 0. NaN is never data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nodata<T> {
    fill: T,
    marks: bool,
}

impl<T: Element> Nodata<T> {
    /// The nodata of a store's structure: its value, or none.
    #[must_use]
    pub fn of(nodata: Option<f64>) -> Self {
        match nodata {
            Some(v) => Self {
                fill: T::from_f64(v),
                marks: true,
            },
            None => Self {
                fill: T::default(),
                marks: false,
            },
        }
    }

    /// A nodata value.
    #[must_use]
    pub fn value(value: T) -> Self {
        Self {
            fill: value,
            marks: true,
        }
    }

    /// What cells never written read as.
    #[must_use]
    pub fn fill(self) -> T {
        self.fill
    }

    /// The value that marks nodata, if there is one.
    #[must_use]
    pub fn marker(self) -> Option<T> {
        self.marks.then_some(self.fill)
    }
}

/// The cells' little-endian bytes, as chunks store them: on a
/// little-endian machine the cells' own memory, not copied.
#[must_use]
pub fn le_bytes<T: Element>(cells: &[T]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(cells))
    } else {
        let mut out = Vec::with_capacity(std::mem::size_of_val(cells));
        for v in cells {
            v.write_le(&mut out);
        }
        std::borrow::Cow::Owned(out)
    }
}

/// Cells from their little-endian bytes (a trailing part of a cell is
/// dropped): one copy on a little-endian machine.
#[must_use]
pub fn from_le_bytes<T: Element>(raw: &[u8]) -> Vec<T> {
    let whole = raw.len() - raw.len() % T::DTYPE.size();
    if cfg!(target_endian = "little") {
        bytemuck::pod_collect_to_vec(&raw[..whole])
    } else {
        raw[..whole]
            .chunks_exact(T::DTYPE.size())
            .map(T::read_le)
            .collect()
    }
}

/// Whether the cells read exactly as an absent chunk does: every one nodata
/// (or NaN), or, in a store without nodata, every one 0. Such a chunk is
/// never stored.
#[must_use]
pub fn all_nodata<T: Element>(cells: &ndarray::ArrayView3<'_, T>, nodata: Nodata<T>) -> bool {
    if nodata.marks {
        cells.iter().all(|v| !v.is_valid(nodata))
    } else {
        cells.iter().all(|v| *v == nodata.fill)
    }
}

macro_rules! int_element {
    ($t:ty, $tag:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$tag;

            fn to_f64(self) -> f64 {
                f64::from(self)
            }

            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            fn from_f64(value: f64) -> Self {
                // `as` saturates and maps NaN to 0.
                value.round() as $t
            }

            fn read_le(bytes: &[u8]) -> Self {
                let mut raw = [0u8; std::mem::size_of::<$t>()];
                raw.copy_from_slice(&bytes[..std::mem::size_of::<$t>()]);
                <$t>::from_le_bytes(raw)
            }

            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            fn step(self, up: bool) -> Self {
                if up {
                    self.saturating_add(1)
                } else {
                    self.saturating_sub(1)
                }
            }
        }
    };
}

int_element!(u8, U8);
int_element!(i8, I8);
int_element!(u16, U16);
int_element!(i16, I16);
int_element!(u32, U32);
int_element!(i32, I32);

impl Element for f32 {
    const DTYPE: DType = DType::F32;

    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    #[allow(clippy::cast_possible_truncation)]
    fn from_f64(value: f64) -> Self {
        value as f32
    }

    fn read_le(bytes: &[u8]) -> Self {
        let mut raw = [0u8; 4];
        raw.copy_from_slice(&bytes[..4]);
        f32::from_le_bytes(raw)
    }

    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }

    fn step(self, up: bool) -> Self {
        if up { self.next_up() } else { self.next_down() }
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;

    fn to_f64(self) -> f64 {
        self
    }

    fn from_f64(value: f64) -> Self {
        value
    }

    fn read_le(bytes: &[u8]) -> Self {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&bytes[..8]);
        f64::from_le_bytes(raw)
    }

    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }

    fn step(self, up: bool) -> Self {
        if up { self.next_up() } else { self.next_down() }
    }
}

/// Runs `$body` with `$t` bound to the Rust type of the runtime `$dtype`.
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::engine::DType::U8 => {
                type $t = u8;
                $body
            }
            $crate::engine::DType::I8 => {
                type $t = i8;
                $body
            }
            $crate::engine::DType::U16 => {
                type $t = u16;
                $body
            }
            $crate::engine::DType::I16 => {
                type $t = i16;
                $body
            }
            $crate::engine::DType::U32 => {
                type $t = u32;
                $body
            }
            $crate::engine::DType::I32 => {
                type $t = i32;
                $body
            }
            $crate::engine::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::engine::DType::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_narrowing_rounds_half_away_and_saturates() {
        assert_eq!(u8::from_f64(2.5), 3);
        assert_eq!(i16::from_f64(-2.5), -3);
        assert_eq!(u8::from_f64(300.0), 255);
        assert_eq!(u8::from_f64(-4.0), 0);
        assert_eq!(i32::from_f64(f64::NAN), 0);
    }

    #[test]
    fn holds_checks_range_and_integrality() {
        assert!(DType::U8.holds(255.0));
        assert!(!DType::U8.holds(256.0));
        assert!(!DType::I16.holds(1.5));
        assert!(DType::F32.holds(f64::NAN));
        assert!(!DType::I32.holds(f64::NAN));
    }

    #[test]
    fn le_round_trip() {
        let mut out = Vec::new();
        (-1234i16).write_le(&mut out);
        assert_eq!(i16::read_le(&out), -1234);
        let cells = [1.5f32, -2.0, f32::NAN];
        let bytes = le_bytes(&cells);
        let mut by_value = Vec::new();
        cells.iter().for_each(|v| v.write_le(&mut by_value));
        assert_eq!(&*bytes, by_value.as_slice());
        let back: Vec<f32> = from_le_bytes(&bytes);
        assert_eq!(back[..2], cells[..2]);
        assert!(back[2].is_nan());
        "f32".parse::<DType>().unwrap();
        assert!("f16".parse::<DType>().is_err());
    }
}
