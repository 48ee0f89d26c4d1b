//! An interpolating provider: the value of a function at a point between
//! the points it was computed at, blended linearly from the two results
//! around it, which come from the function cache (computed and kept on a
//! miss).
//!
//! gridstore uses it for instants between a store's stored instants: an
//! export at 12:30 of a store holding 12:00 and 13:00 is the two rasters
//! blended half and half, nodata wherever either is nodata.

use crate::engine::catalogue::cache::{CacheError, FunctionCache, Provenance};
use crate::engine::{Element, Nodata};
use ndarray::{ArrayD, Zip};
use serde_json::Value as Json;

/// What [`Interpolating::at`] answered with.
#[derive(Debug)]
pub struct Interpolated<T> {
    /// The value.
    pub value: ArrayD<T>,
    /// The samples blended and the weight of the second, when the point
    /// lies between two; `None` when it is a sample.
    pub between: Option<(f64, f64, f64)>,
    /// How many of the samples used came from the cache.
    pub hits: usize,
    /// What went wrong with the cache itself (the value is right either way).
    pub problems: Vec<CacheError>,
}

/// A function of one numeric argument (`axis`), kept in a cache under
/// `function`, answered anywhere between its samples.
#[derive(Debug, Clone)]
pub struct Interpolating<'a> {
    cache: &'a FunctionCache,
    function: String,
    axis: String,
}

/// Why a point cannot be answered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpolateError {
    /// Outside the samples (or no samples at all).
    #[error("{x} lies outside the samples ({range})")]
    Outside {
        /// The point asked for.
        x: f64,
        /// The samples' range, as text.
        range: String,
    },
    /// Two samples' results of different shapes.
    #[error("the results at {a} and {b} differ in shape")]
    Shapes {
        /// One sample.
        a: f64,
        /// The other.
        b: f64,
    },
}

impl<'a> Interpolating<'a> {
    /// `function`'s results in `cache`, interpolated along the argument
    /// named `axis`.
    #[must_use]
    pub fn new(cache: &'a FunctionCache, function: &str, axis: &str) -> Self {
        Self {
            cache,
            function: function.into(),
            axis: axis.into(),
        }
    }

    /// The value at `x` for the other arguments `args` (an object): a
    /// sample's own result when `x` is one of `samples`, else the linear
    /// blend of the results at the samples just below and above, each from
    /// the cache or, on a miss, from `compute` (and then kept). Cells that
    /// are `nodata` (or NaN) in either result are `nodata`.
    ///
    /// Samples are served and kept through `provenance` (see
    /// [`FunctionCache::call_from`]): a kept sample is served only while
    /// what it was computed from holds.
    ///
    /// # Errors
    /// `compute`'s errors, or [`InterpolateError`] (turned into `E`) for a
    /// point outside the samples or results of different shapes.
    pub fn at<T: Element, E: From<InterpolateError>>(
        &self,
        args: &Json,
        samples: &[f64],
        x: f64,
        nodata: Nodata<T>,
        compute: impl Fn(f64) -> Result<ArrayD<T>, E>,
        provenance: &dyn Provenance,
    ) -> Result<Interpolated<T>, E> {
        let (below, above) = bracket(samples, x)?;
        let mut out = Interpolated {
            value: ArrayD::from_elem(ndarray::IxDyn(&[]), nodata.fill()),
            between: None,
            hits: 0,
            problems: Vec::new(),
        };
        let mut sample = |at: f64| -> Result<ArrayD<T>, E> {
            let cached = self.cache.call_from(
                &self.function,
                &self.sample_args(args, at),
                || compute(at),
                provenance,
            )?;
            out.hits += usize::from(cached.hit);
            out.problems.extend(cached.problem);
            Ok(cached.value)
        };
        let first = sample(below)?;
        if above == below {
            out.value = first;
            return Ok(out);
        }
        let second = sample(above)?;
        if first.shape() != second.shape() {
            return Err(InterpolateError::Shapes { a: below, b: above }.into());
        }
        let weight = (x - below) / (above - below);
        out.value = blend(&first, &second, weight, nodata);
        out.between = Some((below, above, weight));
        Ok(out)
    }

    fn sample_args(&self, args: &Json, at: f64) -> Json {
        let mut args = match args {
            Json::Object(map) => map.clone(),
            other => {
                let mut map = serde_json::Map::new();
                map.insert("args".into(), other.clone());
                map
            }
        };
        args.insert(self.axis.clone(), Json::from(at));
        Json::Object(args)
    }
}

/// The samples at or just below and at or just above `x`.
fn bracket(samples: &[f64], x: f64) -> Result<(f64, f64), InterpolateError> {
    let below = samples.iter().copied().filter(|s| *s <= x).reduce(f64::max);
    let above = samples.iter().copied().filter(|s| *s >= x).reduce(f64::min);
    match (below, above) {
        (Some(b), Some(a)) => Ok((b, a)),
        _ => {
            let lo = samples.iter().copied().reduce(f64::min);
            let hi = samples.iter().copied().reduce(f64::max);
            Err(InterpolateError::Outside {
                x,
                range: match (lo, hi) {
                    (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
                    _ => "there are none".into(),
                },
            })
        }
    }
}

/// `(1 − w)·a + w·b`, nodata where either is.
fn blend<T: Element>(a: &ArrayD<T>, b: &ArrayD<T>, weight: f64, nodata: Nodata<T>) -> ArrayD<T> {
    let missing = |v: T| !v.is_valid(nodata);
    let mut out = a.clone();
    Zip::from(&mut out).and(b).for_each(|o, &vb| {
        let va = *o;
        *o = if missing(va) || missing(vb) {
            nodata.fill()
        } else {
            T::from_f64(va.to_f64() * (1.0 - weight) + vb.to_f64() * weight)
        };
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::catalogue::cache::Unconditional;
    use crate::storage::MemoryStorage;
    use ndarray::IxDyn;
    use serde_json::json;
    use std::cell::Cell;
    use std::sync::Arc;

    #[derive(Debug, PartialEq)]
    enum Fail {
        Interp(InterpolateError),
    }
    impl From<InterpolateError> for Fail {
        fn from(e: InterpolateError) -> Self {
            Self::Interp(e)
        }
    }

    #[test]
    fn between_samples_the_neighbours_are_blended_from_the_cache() {
        let cache = FunctionCache::new(Arc::new(MemoryStorage::new()));
        let provider = Interpolating::new(&cache, "field", "t");
        let computed = Cell::new(0);
        // f(t) = t at every cell but one, which is nodata at t = 20.
        let compute = |t: f64| -> Result<ArrayD<i16>, Fail> {
            computed.set(computed.get() + 1);
            let mut a = ArrayD::from_elem(IxDyn(&[2, 2]), t as i16);
            if t == 20.0 {
                a[[1, 1]] = -1;
            }
            Ok(a)
        };
        let samples = [10.0, 20.0, 40.0];
        let args = json!({"store": "s"});
        let v = provider
            .at(
                &args,
                &samples,
                25.0,
                Nodata::value(-1i16),
                compute,
                &Unconditional,
            )
            .unwrap();
        assert_eq!(v.between, Some((20.0, 40.0, 0.25)));
        assert_eq!(v.value[[0, 0]], 25);
        assert_eq!(v.value[[1, 1]], -1, "nodata in either stays nodata");
        assert_eq!((v.hits, computed.get()), (0, 2));
        // Another point between the same samples: answered from the cache.
        let v = provider
            .at(
                &args,
                &samples,
                35.0,
                Nodata::value(-1i16),
                compute,
                &Unconditional,
            )
            .unwrap();
        assert_eq!(v.value[[0, 0]], 35);
        assert_eq!((v.hits, computed.get()), (2, 2));
        // At a sample, its own value; outside, an error.
        let v = provider
            .at(
                &args,
                &samples,
                10.0,
                Nodata::value(-1i16),
                compute,
                &Unconditional,
            )
            .unwrap();
        assert_eq!((v.value[[1, 1]], v.between), (10, None));
        let err = provider
            .at(
                &args,
                &samples,
                41.0,
                Nodata::value(-1i16),
                compute,
                &Unconditional,
            )
            .unwrap_err();
        assert!(matches!(
            err,
            Fail::Interp(InterpolateError::Outside { .. })
        ));
    }

    #[test]
    fn float_nan_counts_as_nodata() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0f32, f32::NAN]).unwrap();
        let b = ArrayD::from_shape_vec(IxDyn(&[2]), vec![3.0f32, 5.0]).unwrap();
        let out = blend(&a, &b, 0.5, Nodata::value(f32::NAN));
        assert_eq!(out[[0]], 2.0);
        assert!(out[[1]].is_nan());
    }
}
