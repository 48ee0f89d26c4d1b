//! A typed n-dimensional array as bytes: the one form in which the tree,
//! the function cache and what they keep (exports, reads, quicklooks) hold
//! arrays, whatever their element type.

use crate::engine::{DType, Element};
use ndarray::{ArrayD, IxDyn};

/// An n-dimensional array of one element type.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    dtype: DType,
    shape: Vec<usize>,
    /// Little-endian cells, row-major.
    bytes: Vec<u8>,
}

impl Array {
    /// The array of `data`.
    #[must_use]
    pub fn new<T: Element>(data: &ArrayD<T>) -> Self {
        let mut bytes = Vec::with_capacity(data.len() * T::DTYPE.size());
        for v in data {
            v.write_le(&mut bytes);
        }
        Self {
            dtype: T::DTYPE,
            shape: data.shape().to_vec(),
            bytes,
        }
    }

    /// An array of `dtype` and `shape` over little-endian, row-major
    /// `bytes`.
    ///
    /// # Errors
    /// When `bytes` does not hold exactly `shape`'s cells.
    pub fn from_le_bytes(dtype: DType, shape: Vec<usize>, bytes: Vec<u8>) -> Result<Self, String> {
        let cells = shape
            .iter()
            .try_fold(1usize, |n, d| n.checked_mul(*d))
            .ok_or("the shape overflows")?;
        if cells.checked_mul(dtype.size()) != Some(bytes.len()) {
            return Err(format!(
                "{} bytes do not hold {cells} cells of {dtype}",
                bytes.len()
            ));
        }
        Ok(Self {
            dtype,
            shape,
            bytes,
        })
    }

    /// The cells' little-endian bytes, row-major.
    #[must_use]
    pub fn le_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The element type.
    #[must_use]
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape.
    #[must_use]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The cells as `T`; `None` when the array holds another type.
    #[must_use]
    pub fn to_nd<T: Element>(&self) -> Option<ArrayD<T>> {
        if self.dtype != T::DTYPE {
            return None;
        }
        let cells = self
            .bytes
            .chunks_exact(T::DTYPE.size())
            .map(T::read_le)
            .collect();
        ArrayD::from_shape_vec(IxDyn(&self.shape), cells).ok()
    }
}
