//! Exports at an instant between two stored ones (`export --time T
//! --interpolate`): the extent is read at the stored instants just before
//! and after T, each through the function cache, and blended linearly by
//! the engine's interpolating provider, nodata wherever either is nodata.
//! A sequence of exports between the same two instants (an animation)
//! reads the store twice, then answers from the cache.

use super::{ExportRequest, OutputGrid, Resolution};
use crate::engine::{Aggregator, EngineError, FunctionCache, Interpolating, Raster, Store};
use crate::gdal_io::IoError;
use crate::gdal_io::cell::GdalCell;
use crate::storage::MemoryStorage;
use ndarray::Ix3;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

/// Largest interpolated export, in cells (its two instants are held in
/// memory and kept in the cache).
const MAX_CELLS: usize = 1 << 26;

/// Two stored instants around the one asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Between {
    /// The instant asked for.
    pub instant: i64,
    /// The stored instant just before it.
    pub below: i64,
    /// The stored instant just after it.
    pub above: i64,
}

/// The instants to blend, when `request` asks to interpolate at an instant
/// the store does not hold; `None` when it holds it (or no interpolation
/// was asked for).
///
/// # Errors
/// Interpolation asked for a store without a time axis, of categories (a
/// blend of classes means nothing), or an instant outside the stored ones.
pub fn bracket(store: &Store, request: &ExportRequest) -> Result<Option<Between>, IoError> {
    let location = PathBuf::from(store.location());
    let refuse = |reason: String| IoError::Mismatch {
        path: location.clone(),
        reason,
    };
    if !request.interpolate {
        return Ok(None);
    }
    let Some(instant) = request.instant else {
        return Err(refuse("--interpolate needs --time".into()));
    };
    if store.structure().time.is_none() {
        return Err(refuse(
            "--interpolate needs a store with a time axis".into(),
        ));
    }
    if matches!(
        store.structure().aggregate,
        Aggregator::Mode | Aggregator::Nearest
    ) {
        return Err(refuse(format!(
            "--interpolate blends values, and this store holds categories (aggregated by {})",
            store.structure().aggregate
        )));
    }
    let stored: Vec<i64> = store
        .instants_between(i64::MIN, i64::MAX)
        .into_iter()
        .map(|(_, i)| i)
        .collect();
    if stored.contains(&instant) {
        return Ok(None);
    }
    let below = stored.iter().copied().filter(|i| *i < instant).max();
    let above = stored.iter().copied().filter(|i| *i > instant).min();
    match (below, above) {
        (Some(below), Some(above)) => Ok(Some(Between {
            instant,
            below,
            above,
        })),
        _ => Err(refuse(format!(
            "{} lies outside the stored instants ({})",
            crate::engine::grid::time::format_instant(instant),
            match (stored.first(), stored.last()) {
                (Some(a), Some(b)) => format!(
                    "{} to {}",
                    crate::engine::grid::time::format_instant(*a),
                    crate::engine::grid::time::format_instant(*b)
                ),
                _ => "there are none".into(),
            }
        ))),
    }
}

/// The output grid's cells at `between.instant`, blended from the two
/// stored instants around it, which come from `cache` (or are read and
/// kept there).
///
/// # Errors
/// An output too large to blend in memory, or read failures.
pub fn blend<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    request: &ExportRequest,
    between: Between,
    cache: Option<&FunctionCache>,
) -> Result<Raster<T>, IoError> {
    let location = PathBuf::from(store.location());
    let bands = store.structure().band_count();
    if output
        .cols
        .saturating_mul(output.rows)
        .saturating_mul(bands)
        > MAX_CELLS
    {
        return Err(IoError::Mismatch {
            path: location,
            reason: format!(
                "an interpolated export holds at most {MAX_CELLS} cells; this one has {} x {} x {bands}: choose a smaller extent or coarser cells",
                output.cols, output.rows
            ),
        });
    }
    // Without a persistent cache (or a token for the store's contents),
    // one in memory still lets the provider work.
    let token = store
        .state_token()
        .map_err(|e| IoError::engine(&location, e))?;
    let scratch;
    let (cache, token) = match (cache, token) {
        (Some(cache), Some(token)) => (cache, token),
        _ => {
            scratch = FunctionCache::new(Arc::new(MemoryStorage::new()));
            (&scratch, "unkept".to_string())
        }
    };
    let args = json!({
        "store": token,
        "at": store.place(),
        "gridstore": env!("CARGO_PKG_VERSION"),
        "level": output.level,
        "extent": output.extent,
        "cell": output.cell,
        "size": [output.cols, output.rows],
        "method": output.method,
        "resolution": match request.resolution {
            Resolution::Level(l) => json!({"level": l}),
            Resolution::Cell(c) => json!({"cell": c}),
            Resolution::Size(w, h) => json!({"size": [w, h]}),
        },
    });
    let samples = [between.below as f64, between.above as f64];
    let read = |at: f64| -> Result<ndarray::ArrayD<T>, EngineError> {
        #[allow(clippy::cast_possible_truncation)]
        let t = store.time_index(Some(at as i64), false)?;
        let raster = store.read_extent_at::<T>(
            t,
            output.level,
            &output.extent,
            output.cell,
            output.method,
        )?;
        Ok(raster.data.into_dyn())
    };
    let provider = Interpolating::new(cache, "extent", "instant");
    let blended = provider
        .at(
            &args,
            &samples,
            between.instant as f64,
            store.nodata::<T>(),
            read,
            store,
        )
        .map_err(|e| match e {
            EngineError::Interpolate(e) => IoError::Mismatch {
                path: location.clone(),
                reason: e.to_string(),
            },
            e => IoError::engine(&location, e),
        })?;
    let data = blended
        .value
        .into_dimensionality::<Ix3>()
        .map_err(|e| IoError::Mismatch {
            path: location.clone(),
            reason: format!("blended cells: {e}"),
        })?;
    Ok(Raster {
        data,
        geotransform: output.geotransform(),
        level: output.level,
    })
}
