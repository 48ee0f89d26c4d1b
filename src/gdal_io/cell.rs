//! Moving cells between GDAL buffers and the engine's element types.

use crate::engine::Element;
use gdal::raster::{GdalType, RasterBand};

/// An engine element that GDAL can read and write, possibly through a wider
/// type (GDAL 3.6 has no signed 8-bit type, so `i8` travels as `i16`).
pub trait GdalCell: Element {
    /// The type GDAL reads and writes.
    type Io: GdalType + Copy;

    /// Converts from the GDAL type, saturating.
    fn from_io(v: Self::Io) -> Self;

    /// Converts to the GDAL type.
    fn to_io(self) -> Self::Io;
}

macro_rules! same {
    ($($t:ty),*) => {$(
        impl GdalCell for $t {
            type Io = $t;
            fn from_io(v: $t) -> Self { v }
            fn to_io(self) -> $t { self }
        }
    )*};
}

same!(u8, u16, i16, u32, i32, f32, f64);

impl GdalCell for i8 {
    type Io = i16;
    fn from_io(v: i16) -> Self {
        i8::from_f64(f64::from(v))
    }
    fn to_io(self) -> i16 {
        i16::from(self)
    }
}

/// Reads a window of a band as `T` (GDAL converts, rounding and clamping).
///
/// # Errors
/// GDAL's read error.
pub fn read_window<T: GdalCell>(
    band: &RasterBand<'_>,
    (col, row): (usize, usize),
    (cols, rows): (usize, usize),
) -> gdal::errors::Result<Vec<T>> {
    #[allow(clippy::cast_possible_wrap)]
    let buffer = band.read_as::<T::Io>(
        (col as isize, row as isize),
        (cols, rows),
        (cols, rows),
        None,
    )?;
    let (_, data) = buffer.into_shape_and_vec();
    Ok(data.into_iter().map(T::from_io).collect())
}
