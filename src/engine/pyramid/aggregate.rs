//! Pure 2×2 aggregation kernels on ndarray chunks.
//!
//! A parent chunk has the same shape as its children; each child fills one
//! quadrant of it at half resolution. The exact definitions are in
//! docs/FORMAT.md ("Aggregation"); the short version: nodata children are
//! skipped, a parent cell is nodata only when all four children are, and a
//! computed value that would equal the nodata value is moved one step (one
//! integer, or one float ulp) towards the true result.

use crate::engine::{Aggregator, Element, Nodata};
use ndarray::{Array3, ArrayView3, ArrayViewMut3, s};

/// Narrows a computed value, never returning the nodata value.
#[inline]
pub fn computed<T: Element>(value: f64, nodata: Nodata<T>) -> T {
    let t = T::from_f64(value);
    let Some(nodata) = nodata.marker().filter(|n| *n == t) else {
        return t;
    };
    let up = value > nodata.to_f64() || (value == nodata.to_f64() && nodata.step(true) != nodata);
    let stepped = nodata.step(up);
    if stepped == nodata {
        nodata.step(!up)
    } else {
        stepped
    }
}

/// Whether two optional chunks hold the same cells, treating NaN as equal
/// to NaN (a plain `==` never finds a chunk with NaN cells equal).
#[must_use]
pub fn same_chunk<T: Element>(a: Option<&Array3<T>>, b: Option<&Array3<T>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            #[allow(clippy::eq_op)]
            let same = |x: &T, y: &T| x == y || (x != x && y != y);
            a.dim() == b.dim() && a.iter().zip(b.iter()).all(|(x, y)| same(x, y))
        }
        _ => false,
    }
}

/// Computes a parent chunk from its four children (NW, NE, SW, SE), each
/// `None` when absent (all nodata, or in a store without nodata all 0).
/// `child_level` is the level of the children; `count` needs it to tell
/// data from counts. Returns `None` when the parent reads as an absent
/// chunk.
#[must_use]
pub fn parent_chunk<T: Element>(
    children: [Option<&Array3<T>>; 4],
    aggregator: Aggregator,
    nodata: Nodata<T>,
    child_level: u8,
    shape: (usize, usize, usize),
) -> Option<Array3<T>> {
    if children.iter().all(Option::is_none) {
        return None;
    }
    let (bands, rows, cols) = shape;
    let mut parent = Array3::from_elem((bands, rows, cols), nodata.fill());
    // Without nodata an absent child is cells of 0, which are data.
    let zeros = nodata
        .marker()
        .is_none()
        .then(|| Array3::from_elem(shape, nodata.fill()));
    for (quadrant, child) in children.iter().enumerate() {
        let Some(child) = child.or(zeros.as_ref()) else {
            continue;
        };
        let (r0, c0) = ((quadrant / 2) * rows / 2, (quadrant % 2) * cols / 2);
        let target = parent.slice_mut(s![.., r0..r0 + rows / 2, c0..c0 + cols / 2]);
        downsample(child.view(), target, aggregator, nodata, child_level);
    }
    (!crate::engine::grid::dtype::all_nodata(&parent.view(), nodata)).then_some(parent)
}

/// Halves `child` into `target` with `aggregator`.
pub fn downsample<T: Element>(
    child: ArrayView3<'_, T>,
    target: ArrayViewMut3<'_, T>,
    aggregator: Aggregator,
    nodata: Nodata<T>,
    child_level: u8,
) {
    match aggregator {
        Aggregator::Mean => reduce(child, target, nodata, |v| {
            let (sum, n) = fold_valid(v, nodata);
            (n > 0).then(|| defined(sum / f64::from(n), v, nodata))
        }),
        Aggregator::Sum => reduce(child, target, nodata, |v| {
            let (sum, n) = fold_valid(v, nodata);
            (n > 0).then(|| defined(sum, v, nodata))
        }),
        Aggregator::Count if child_level == 0 => reduce(child, target, nodata, |v| {
            let (_, n) = fold_valid(v, nodata);
            (n > 0).then(|| computed(f64::from(n), nodata))
        }),
        Aggregator::Count => reduce(child, target, nodata, |v| {
            let (sum, n) = fold_valid(v, nodata);
            (n > 0).then(|| computed(sum, nodata))
        }),
        Aggregator::Min => reduce(child, target, nodata, |v| {
            v.into_iter()
                .filter(|x| x.is_valid(nodata))
                .reduce(|a, b| if b < a { b } else { a })
        }),
        Aggregator::Max => reduce(child, target, nodata, |v| {
            v.into_iter()
                .filter(|x| x.is_valid(nodata))
                .reduce(|a, b| if b > a { b } else { a })
        }),
        Aggregator::Nearest => reduce(child, target, nodata, |v| {
            v.into_iter().find(|x| x.is_valid(nodata))
        }),
        Aggregator::Mode => reduce(child, target, nodata, |v| mode4(v, nodata)),
    }
}

/// `computed(value)`, except that an undefined result (+inf and -inf
/// together give NaN) takes the first valid child, so valid children never
/// make a nodata parent.
#[inline]
fn defined<T: Element>(value: f64, children: [T; 4], nodata: Nodata<T>) -> T {
    if value.is_nan() {
        children
            .into_iter()
            .find(|x| x.is_valid(nodata))
            .unwrap_or(nodata.fill())
    } else {
        computed(value, nodata)
    }
}

#[inline]
fn fold_valid<T: Element>(values: [T; 4], nodata: Nodata<T>) -> (f64, u32) {
    let mut sum = 0.0;
    let mut n = 0;
    for v in values {
        if v.is_valid(nodata) {
            sum += v.to_f64();
            n += 1;
        }
    }
    (sum, n)
}

/// Most frequent valid value; ties go to the value seen first in reading
/// order (NW, NE, SW, SE).
#[inline]
fn mode4<T: Element>(values: [T; 4], nodata: Nodata<T>) -> Option<T> {
    let mut best: Option<(T, usize)> = None;
    for (i, v) in values.iter().enumerate() {
        if !v.is_valid(nodata) || values[..i].contains(v) {
            continue;
        }
        let count = values[i..].iter().filter(|x| *x == v).count();
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((*v, count));
        }
    }
    best.map(|(v, _)| v)
}

#[inline]
fn reduce<T: Element>(
    child: ArrayView3<'_, T>,
    mut target: ArrayViewMut3<'_, T>,
    nodata: Nodata<T>,
    f: impl Fn([T; 4]) -> Option<T>,
) {
    let (bands, rows, cols) = target.dim();
    for b in 0..bands {
        for r in 0..rows {
            let top = child.slice(s![b, 2 * r, ..]);
            let bottom = child.slice(s![b, 2 * r + 1, ..]);
            let mut out = target.slice_mut(s![b, r, ..]);
            for c in 0..cols {
                let v = [top[2 * c], top[2 * c + 1], bottom[2 * c], bottom[2 * c + 1]];
                out[c] = f(v).unwrap_or(nodata.fill());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use proptest::prelude::*;

    fn quad(v: [f32; 4]) -> Array3<f32> {
        Array3::from_shape_vec((1, 2, 2), v.to_vec()).unwrap()
    }

    fn agg(v: [f32; 4], a: Aggregator) -> f32 {
        let child = quad(v);
        let mut out = Array3::from_elem((1, 1, 1), -1.0f32);
        downsample(child.view(), out.view_mut(), a, Nodata::value(-1.0), 0);
        out[[0, 0, 0]]
    }

    #[test]
    fn nodata_is_skipped() {
        assert_eq!(agg([1.0, -1.0, 3.0, f32::NAN], Aggregator::Mean), 2.0);
        assert_eq!(agg([-1.0, -1.0, -1.0, -1.0], Aggregator::Mean), -1.0);
        assert_eq!(agg([5.0, -1.0, 3.0, 4.0], Aggregator::Min), 3.0);
        assert_eq!(agg([-1.0, 7.0, 3.0, 4.0], Aggregator::Nearest), 7.0);
        assert_eq!(agg([2.0, -1.0, 3.0, 4.0], Aggregator::Count), 3.0);
        assert_eq!(agg([2.0, -1.0, 3.0, 4.0], Aggregator::Sum), 9.0);
    }

    #[test]
    fn mode_ties_go_to_reading_order() {
        assert_eq!(agg([2.0, 3.0, 3.0, 2.0], Aggregator::Mode), 2.0);
        assert_eq!(agg([-1.0, 3.0, 5.0, 5.0], Aggregator::Mode), 5.0);
        assert_eq!(agg([4.0, 3.0, 5.0, 6.0], Aggregator::Mode), 4.0);
    }

    #[test]
    fn computed_values_never_equal_nodata() {
        // 0.5 rounds to 1 for u8; with nodata 1 it moves towards 0.5, to 0.
        assert_eq!(computed::<u8>(0.5, Nodata::value(1)), 0);
        assert_eq!(computed::<u8>(1.4, Nodata::value(1)), 2);
        assert_eq!(computed::<u8>(255.0, Nodata::value(255)), 254);
        assert_eq!(computed::<i16>(-0.4, Nodata::value(0)), -1);
        // Without nodata every value is a value.
        assert_eq!(computed::<u8>(255.0, Nodata::of(None)), 255);
        let c = computed::<f32>(-1.0, Nodata::value(-1.0));
        assert!(c != -1.0 && (c + 1.0).abs() < 1e-6);
    }

    #[test]
    fn parent_places_children_in_quadrants() {
        let nw = Array3::from_elem((1, 2, 2), 1u8);
        let se = Array3::from_elem((1, 2, 2), 9u8);
        let p = parent_chunk(
            [Some(&nw), None, None, Some(&se)],
            Aggregator::Max,
            Nodata::value(0),
            0,
            (1, 2, 2),
        )
        .unwrap();
        assert_eq!(p.into_raw_vec_and_offset().0, vec![1, 0, 0, 9]);
        assert!(
            parent_chunk::<u8>(
                [None, None, None, None],
                Aggregator::Max,
                Nodata::value(0),
                0,
                (1, 2, 2)
            )
            .is_none()
        );
    }

    /// Without nodata, an absent child is cells of 0, and 0 is data: a
    /// mean takes it in, and a parent of zeros is not stored.
    #[test]
    fn without_nodata_absent_children_are_zeros() {
        let nw = Array3::from_elem((1, 2, 2), 8u8);
        let none = Nodata::of(None);
        let p = parent_chunk(
            [Some(&nw), None, None, None],
            Aggregator::Mean,
            none,
            0,
            (1, 2, 2),
        );
        assert_eq!(p.unwrap().into_raw_vec_and_offset().0, vec![8, 0, 0, 0]);
        let coarser = [Some(&Array3::from_elem((1, 2, 2), 8u8)), None, None, None];
        let p = parent_chunk(coarser, Aggregator::Mean, none, 1, (1, 2, 2)).unwrap();
        // The NW quadrant of 8s, then three quadrants of 0s.
        assert_eq!(p[[0, 0, 0]], 8);
        let zeros = Array3::from_elem((1, 2, 2), 0u8);
        assert!(
            parent_chunk(
                [Some(&zeros), None, None, None],
                Aggregator::Max,
                none,
                0,
                (1, 2, 2)
            )
            .is_none()
        );
    }

    proptest! {
        #[test]
        fn aggregates_stay_within_the_valid_values(v in prop::array::uniform4(prop_oneof![Just(-1.0f32), -100.0f32..100.0])) {
            let valid: Vec<f32> = v.iter().copied().filter(|x| *x != -1.0).collect();
            for a in Aggregator::ALL {
                let out = agg(v, a);
                if valid.is_empty() {
                    prop_assert_eq!(out, -1.0);
                    continue;
                }
                prop_assert!(out != -1.0);
                if matches!(a, Aggregator::Min | Aggregator::Max | Aggregator::Mode | Aggregator::Nearest) {
                    prop_assert!(valid.contains(&out));
                }
                if a == Aggregator::Mean {
                    let lo = valid.iter().copied().fold(f32::INFINITY, f32::min);
                    let hi = valid.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    prop_assert!(out >= lo - 1e-4 && out <= hi + 1e-4);
                }
            }
        }
    }
}
