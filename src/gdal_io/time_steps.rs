//! A raster's time dimension: the instant of each band of a netCDF whose
//! variable has a CF time dimension, as GDAL's netCDF driver describes it
//! (`NETCDF_DIM_EXTRA={time}`, each band's `NETCDF_DIM_time`, and the
//! dimension's `units` and `calendar`).

use super::IoError;
use crate::engine::TimeAxis;
use crate::engine::grid::cf_time::{CfUnits, check_calendar};
use crate::engine::grid::time::format_instant;
use gdal::{Dataset, Metadata as _};
use std::path::Path;

/// The instants of a raster's bands, band 1 first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSteps {
    /// The time dimension's name in the file.
    pub dimension: String,
    /// Each band's instant.
    pub instants: Vec<i64>,
}

impl TimeSteps {
    /// The time steps of `dataset` (opened from `path`), `None` when it has
    /// no time dimension (its bands are bands).
    ///
    /// # Errors
    /// One line naming the file: a time dimension beside another one, time
    /// units that do not parse, a calendar that is not the Gregorian one,
    /// a band without its time value, or two bands of one instant.
    pub fn of(dataset: &Dataset, path: &Path) -> Result<Option<Self>, IoError> {
        let refuse = |reason: String| IoError::Mismatch {
            path: path.into(),
            reason,
        };
        let Some(extra) = dataset.metadata_item("NETCDF_DIM_EXTRA", "") else {
            return Ok(None);
        };
        let dimensions: Vec<&str> = extra
            .trim_matches(['{', '}'])
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .collect();
        let is_time = |d: &str| {
            let item = |name: &str| dataset.metadata_item(&format!("{d}#{name}"), "");
            ["time", "t"].contains(&d.to_ascii_lowercase().as_str())
                || item("standard_name").is_some_and(|s| s.eq_ignore_ascii_case("time"))
                || item("axis").is_some_and(|a| a.eq_ignore_ascii_case("T"))
        };
        let Some(&dimension) = dimensions.iter().find(|d| is_time(d)) else {
            return Ok(None);
        };
        if dimensions.len() > 1 {
            return Err(refuse(format!(
                "its variable has the dimensions {} beside y and x; gridstore takes a time dimension as instants or other dimensions as bands, not both (select one with gdal_translate or xarray first)",
                dimensions.join(", ")
            )));
        }
        let units = dataset
            .metadata_item(&format!("{dimension}#units"), "")
            .ok_or_else(|| {
                refuse(format!(
                    "its time dimension '{dimension}' has no units (CF: UNIT since DATE)"
                ))
            })?;
        let units = CfUnits::parse(&units)
            .map_err(|e| refuse(format!("its time dimension '{dimension}': {e}")))?;
        let calendar = dataset.metadata_item(&format!("{dimension}#calendar"), "");
        check_calendar(calendar.as_deref())
            .map_err(|e| refuse(format!("its time dimension '{dimension}': {e}")))?;
        let key = format!("NETCDF_DIM_{dimension}");
        let mut instants = Vec::with_capacity(dataset.raster_count());
        for b in 1..=dataset.raster_count() {
            let band = dataset.rasterband(b).map_err(|e| IoError::Read {
                path: path.into(),
                reason: super::gdal_reason(&e),
            })?;
            let value = band
                .metadata_item(&key, "")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .ok_or_else(|| {
                    refuse(format!(
                        "band {b} has no value of the time dimension '{dimension}'"
                    ))
                })?;
            let instant = units.instant(value).ok_or_else(|| {
                refuse(format!(
                    "band {b}: {value} in its time dimension '{dimension}' is not a date"
                ))
            })?;
            if let Some(k) = instants.iter().position(|i| *i == instant) {
                return Err(refuse(format!(
                    "time steps {} and {b} are both {} (two maps of one instant)",
                    k + 1,
                    format_instant(instant)
                )));
            }
            instants.push(instant);
        }
        crate::engine::grid::cf_time::check_gregorian(calendar.as_deref(), &units, &instants)
            .map_err(|e| refuse(format!("its time dimension '{dimension}': {e}")))?;
        Ok(Some(Self {
            dimension: dimension.to_string(),
            instants,
        }))
    }

    /// The time axis for these steps: regular when there are two or more,
    /// in order and equally spaced; irregular otherwise.
    #[must_use]
    pub fn axis(&self) -> TimeAxis {
        let steps: Vec<i64> = self.instants.windows(2).map(|w| w[1] - w[0]).collect();
        match (self.instants.first(), steps.first()) {
            (Some(&origin), Some(&step)) if step > 0 && steps.iter().all(|s| *s == step) => {
                TimeAxis::Regular { origin, step }
            }
            _ => TimeAxis::Irregular,
        }
    }
}
