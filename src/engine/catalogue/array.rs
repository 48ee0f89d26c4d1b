//! A typed n-dimensional array as bytes: the one form in which the tree,
//! the function cache and what they keep (exports, reads, quicklooks) hold
//! arrays, whatever their element type.

use crate::engine::{DType, Element};
use ndarray::{ArrayD, IxDyn};

/// Why bytes are not an array of a type and shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArrayError {
    /// A shape with more cells than memory can count.
    #[error("the shape overflows")]
    Overflow,
    /// Bytes that are not the shape's cells.
    #[error("{bytes} bytes do not hold {cells} cells of {dtype}")]
    Size {
        /// The bytes given.
        bytes: usize,
        /// The cells of the shape.
        cells: usize,
        /// The element type.
        dtype: DType,
    },
}

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
    /// [`ArrayError`] when `bytes` does not hold exactly `shape`'s cells.
    pub fn from_le_bytes(
        dtype: DType,
        shape: Vec<usize>,
        bytes: Vec<u8>,
    ) -> Result<Self, ArrayError> {
        let cells = shape
            .iter()
            .try_fold(1usize, |n, d| n.checked_mul(*d))
            .ok_or(ArrayError::Overflow)?;
        if cells.checked_mul(dtype.size()) != Some(bytes.len()) {
            return Err(ArrayError::Size {
                bytes: bytes.len(),
                cells,
                dtype,
            });
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
