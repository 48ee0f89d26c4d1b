//! Choosing a nodata value for a store modelled on a raster that declares
//! none.
//!
//! A raster without a nodata value may use every value of its type: a u8
//! Landsat band holds 255 where it saturates. Taking the type's usual
//! nodata (255) would turn those cells into holes. So the raster's bands
//! are counted exactly (GDAL histograms over every cell), and the store
//! gets a value that no band holds, trying the two ends of the type's range
//! first (the usual end first), then inward. When a band holds every value
//! of the type, the store takes the next wider type, where the usual nodata
//! cannot occur in the source. Floats need none of this: NaN is no value.

use crate::engine::DType;
use gdal::Dataset;
use std::path::Path;

/// The values counted at each end of a 32-bit range (the whole range of
/// an 8- or 16-bit type is counted).
const END_CANDIDATES: usize = 256;

/// What [`choose_nodata`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct NodataChoice {
    /// The store's cell type: the source's, or the next wider one.
    pub dtype: DType,
    /// The store's nodata value.
    pub nodata: f64,
    /// Why, in words, for the user.
    pub note: String,
}

/// Chooses the nodata value of a store of `dtype` cells for the raster at
/// `path`, which declares none: a value no band holds.
///
/// The raster is opened apart, without GDAL's auxiliary files: a histogram
/// would otherwise be written beside the user's file (`.aux.xml`), and one
/// left there from an older file of the same name would be trusted.
///
/// # Errors
/// GDAL fails to read the raster.
pub fn choose_nodata(path: &Path, dtype: DType) -> gdal::errors::Result<NodataChoice> {
    if dtype.is_float() {
        return Ok(NodataChoice {
            dtype,
            nodata: f64::NAN,
            note: "no nodata value declared; NaN (never a value) marks empty cells".into(),
        });
    }
    gdal::config::set_thread_local_config_option("GDAL_PAM_ENABLED", "NO")?;
    let counted = Dataset::open(path).and_then(|dataset| used_candidates(&dataset, dtype));
    gdal::config::clear_thread_local_config_option("GDAL_PAM_ENABLED")?;
    let (candidates, used) = counted?;
    let by_value = |v: f64| candidates.binary_search_by(|c| c.total_cmp(&v)).ok();
    let unused = preference(dtype)
        .into_iter()
        .find(|v| by_value(*v).is_some_and(|i| !used[i]));
    Ok(match unused {
        Some(nodata) if nodata == dtype.default_nodata() => NodataChoice {
            dtype,
            nodata,
            note: format!(
                "no nodata value declared; {nodata} occurs in no band and marks empty cells"
            ),
        },
        Some(nodata) => NodataChoice {
            dtype,
            nodata,
            note: format!(
                "no nodata value declared and {} occurs in the data; {nodata}, which occurs in no band, marks empty cells",
                dtype.default_nodata()
            ),
        },
        None => {
            let wider = wider(dtype);
            let nodata = wider.default_nodata();
            NodataChoice {
                dtype: wider,
                nodata,
                note: format!(
                    "no nodata value declared and every {dtype} value occurs in the data; \
                     the store holds {wider} cells, with {nodata} marking empty cells"
                ),
            }
        }
    })
}

/// The candidate values of `dtype`, ascending, and whether any band of
/// `dataset` holds each: exact GDAL histograms, one bucket per value.
fn used_candidates(dataset: &Dataset, dtype: DType) -> gdal::errors::Result<(Vec<f64>, Vec<bool>)> {
    let candidates = candidates(dtype);
    let mut used = vec![false; candidates.len()];
    for (lo, hi, offset) in ranges(&candidates) {
        for b in 1..=dataset.raster_count() {
            let band = dataset.rasterband(b)?;
            // Buckets one value wide, centred on the values; exact, not sampled.
            let histogram =
                band.histogram(lo - 0.5, hi + 0.5, (hi - lo) as usize + 1, false, false)?;
            for (i, count) in histogram.counts().iter().enumerate() {
                used[offset + i] |= *count > 0;
            }
        }
    }
    Ok((candidates, used))
}

/// The values counted, ascending.
fn candidates(dtype: DType) -> Vec<f64> {
    let (min, max) = dtype.range();
    if max - min < 65_536.0 {
        return (0..=(max - min) as u64).map(|i| min + i as f64).collect();
    }
    let low = (0..END_CANDIDATES).map(|i| min + i as f64);
    let high = (0..END_CANDIDATES).rev().map(|i| max - i as f64);
    low.chain(high).collect()
}

/// The runs of consecutive candidates, as (first, last, index of first).
fn ranges(candidates: &[f64]) -> Vec<(f64, f64, usize)> {
    let mut out: Vec<(f64, f64, usize)> = Vec::new();
    for (i, v) in candidates.iter().enumerate() {
        match out.last_mut() {
            Some(run) if run.1 + 1.0 == *v => run.1 = *v,
            _ => out.push((*v, *v, i)),
        }
    }
    out
}

/// Candidates in the order they are preferred: the usual end of the range
/// first, then the other, alternating inward.
fn preference(dtype: DType) -> Vec<f64> {
    let (min, max) = dtype.range();
    let usual_high = dtype.default_nodata() == max;
    let span = if max - min < 65_536.0 {
        ((max - min) as usize).div_ceil(2) + 1
    } else {
        END_CANDIDATES
    };
    (0..span)
        .flat_map(|i| {
            let (hi, lo) = (max - i as f64, min + i as f64);
            if usual_high { [hi, lo] } else { [lo, hi] }
        })
        .filter(|v| *v >= min && *v <= max)
        .collect()
}

/// The next wider type, whose usual nodata value no `dtype` value equals.
fn wider(dtype: DType) -> DType {
    match dtype {
        DType::U8 => DType::U16,
        DType::I8 => DType::I16,
        DType::U16 => DType::U32,
        DType::I16 => DType::I32,
        DType::U32 | DType::I32 | DType::F32 | DType::F64 => DType::F64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_starts_at_the_usual_end_and_alternates_inward() {
        assert_eq!(&preference(DType::U8)[..4], &[255.0, 0.0, 254.0, 1.0]);
        assert_eq!(
            &preference(DType::I16)[..4],
            &[-32768.0, 32767.0, -32767.0, 32766.0]
        );
        assert_eq!(
            preference(DType::U8).len(),
            256 + 2,
            "the middle pair repeats once"
        );
        let p = preference(DType::U32);
        assert_eq!(&p[..2], &[f64::from(u32::MAX), 0.0]);
        assert!(p.iter().all(|v| candidates(DType::U32).contains(v)));
    }

    #[test]
    fn candidate_runs_are_contiguous() {
        assert_eq!(ranges(&candidates(DType::U8)), vec![(0.0, 255.0, 0)]);
        let r = ranges(&candidates(DType::I32));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, f64::from(i32::MIN));
        assert_eq!(r[1].1, f64::from(i32::MAX));
        assert_eq!(r[1].2, END_CANDIDATES);
    }

    #[test]
    fn wider_types_hold_every_narrower_value_and_their_nodata_is_new() {
        for d in [
            DType::U8,
            DType::I8,
            DType::U16,
            DType::I16,
            DType::U32,
            DType::I32,
        ] {
            let w = wider(d);
            let (min, max) = d.range();
            assert!(w.holds(min) && w.holds(max), "{w} holds every {d}");
            let n = w.default_nodata();
            assert!(
                n.is_nan() || n < min || n > max,
                "{w}'s nodata is no {d} value"
            );
        }
    }
}
