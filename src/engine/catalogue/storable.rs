//! The storage protocol: a value that can be kept is an array
//! plus a JSON document of everything else, and comes back from the two.
//!
//! Numbers, n-dimensional arrays and byte strings implement it here; other
//! types (an export's files, a rendered quicklook) implement it where they
//! are defined, so the function cache keeps any of them.

use crate::engine::Array;
use crate::engine::{DType, Element};
use ndarray::{ArrayD, IxDyn};
use serde_json::Value as Json;

/// A value that turns into an [`Array`] plus JSON and back.
///
/// ```
/// use gridstore::engine::Storable;
/// use ndarray::{ArrayD, IxDyn};
///
/// let grid = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
/// let (array, extra) = grid.to_stored();
/// assert_eq!(ArrayD::<f32>::from_stored(array, extra).unwrap(), grid);
/// ```
pub trait Storable: Sized {
    /// The value as an array and a JSON document of the rest.
    fn to_stored(&self) -> (Array, Json);

    /// The value back from what [`Storable::to_stored`] gave.
    ///
    /// # Errors
    /// [`NotStored`], when the array or the document is not one of this
    /// type's.
    fn from_stored(array: Array, extra: Json) -> Result<Self, NotStored>;
}

/// Why an array and document are not a value of the type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotStored(pub String);

impl From<&str> for NotStored {
    fn from(reason: &str) -> Self {
        Self(reason.to_string())
    }
}

impl From<String> for NotStored {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

impl Storable for f64 {
    fn to_stored(&self) -> (Array, Json) {
        (
            Array::new(&ArrayD::from_elem(IxDyn(&[]), *self)),
            Json::Null,
        )
    }

    fn from_stored(array: Array, _extra: Json) -> Result<Self, NotStored> {
        array
            .to_nd::<f64>()
            .filter(|a| a.ndim() == 0)
            .and_then(|a| a.first().copied())
            .ok_or_else(|| format!("not a number: {} {:?}", array.dtype(), array.shape()).into())
    }
}

impl<T: Element> Storable for ArrayD<T> {
    fn to_stored(&self) -> (Array, Json) {
        (Array::new(self), Json::Null)
    }

    fn from_stored(array: Array, _extra: Json) -> Result<Self, NotStored> {
        array.to_nd::<T>().ok_or_else(|| {
            format!(
                "holds {} {:?}, not {}",
                array.dtype(),
                array.shape(),
                T::DTYPE
            )
            .into()
        })
    }
}

impl Storable for Vec<u8> {
    fn to_stored(&self) -> (Array, Json) {
        let array = Array::from_le_bytes(DType::U8, vec![self.len()], self.clone());
        // A byte string is always a valid u8 array of its own length.
        (
            array.unwrap_or_else(|_| Array::new(&ArrayD::<u8>::zeros(IxDyn(&[0])))),
            Json::Null,
        )
    }

    fn from_stored(array: Array, _extra: Json) -> Result<Self, NotStored> {
        if array.dtype() != DType::U8 || array.shape().len() != 1 {
            return Err(format!("not bytes: {} {:?}", array.dtype(), array.shape()).into());
        }
        Ok(array.le_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn values_come_back_as_they_went(
            x in any::<f64>().prop_filter("NaN is not equal to itself", |x| !x.is_nan()),
            cells in proptest::collection::vec(any::<i16>(), 0..64),
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let (a, e) = x.to_stored();
            prop_assert_eq!(f64::from_stored(a, e).unwrap(), x);
            let n = cells.len();
            let grid = ArrayD::from_shape_vec(IxDyn(&[n]), cells).unwrap();
            let (a, e) = grid.to_stored();
            prop_assert_eq!(ArrayD::<i16>::from_stored(a, e).unwrap(), grid);
            let (a, e) = bytes.to_stored();
            prop_assert_eq!(Vec::<u8>::from_stored(a, e).unwrap(), bytes);
        }
    }

    #[test]
    fn a_value_of_another_type_is_refused() {
        let (a, e) = ArrayD::from_elem(IxDyn(&[3]), 1.5f32).to_stored();
        assert!(ArrayD::<u8>::from_stored(a.clone(), e.clone()).is_err());
        assert!(f64::from_stored(a.clone(), e.clone()).is_err());
        assert!(Vec::<u8>::from_stored(a, e).is_err());
    }
}
