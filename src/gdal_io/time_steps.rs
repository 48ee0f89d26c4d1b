//! A raster's time dimension: the instant of each band of a netCDF whose
//! variable has a CF time dimension, as GDAL's netCDF driver describes it
//! (`NETCDF_DIM_EXTRA={time}`, each band's `NETCDF_DIM_time`, and the
//! dimension's `units` and `calendar`), or of each message of a GRIB file
//! (`GRIB_VALID_TIME`, seconds since 1970 UTC), whose messages of one
//! valid time are that instant's bands (one per element and level).

use super::IoError;
use crate::engine::BandInfo;
use crate::engine::TimeAxis;
use crate::engine::grid::cf_time::{CfUnits, check_calendar};
use crate::engine::grid::time::format_instant;
use gdal::{Dataset, Metadata as _};
use std::path::Path;

/// The time steps of a raster: each one's instant and the raster's bands
/// that hold it, in time order as the file has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSteps {
    /// Where the times come from, for messages: "its time dimension
    /// 'time'", "the valid times of its GRIB messages".
    pub source: String,
    /// Each step's instant.
    pub instants: Vec<i64>,
    /// Each step's bands of the raster (from 1), one per band of the store.
    pub bands: Vec<Vec<usize>>,
    /// What each band of a step is, when the file says (a GRIB message's
    /// field and unit); empty otherwise.
    pub fields: Vec<BandInfo>,
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
        match Self::of_netcdf(dataset, path)? {
            Some(steps) => Ok(Some(steps)),
            None => Self::of_grib(dataset, path),
        }
    }

    /// How many bands each step has.
    #[must_use]
    pub fn bands_per_step(&self) -> usize {
        self.bands.first().map_or(1, Vec::len)
    }

    /// A netCDF variable's CF time dimension.
    fn of_netcdf(dataset: &Dataset, path: &Path) -> Result<Option<Self>, IoError> {
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
            source: format!("its time dimension '{dimension}'"),
            fields: Vec::new(),
            bands: (1..=instants.len()).map(|b| vec![b]).collect(),
            instants,
        }))
    }

    /// A GRIB file's messages, by valid time. Each valid time must hold
    /// the same elements (at the same levels), in the same order: they are
    /// its bands.
    fn of_grib(dataset: &Dataset, path: &Path) -> Result<Option<Self>, IoError> {
        let refuse = |reason: String| IoError::Mismatch {
            path: path.into(),
            reason,
        };
        if dataset.raster_count() == 0 {
            return Ok(None);
        }
        let mut steps: Vec<(i64, Vec<(String, usize)>)> = Vec::new();
        let mut fields: Vec<BandInfo> = Vec::new();
        for b in 1..=dataset.raster_count() {
            let band = dataset.rasterband(b).map_err(|e| IoError::Read {
                path: path.into(),
                reason: super::gdal_reason(&e),
            })?;
            let Some(valid) = band.metadata_item("GRIB_VALID_TIME", "") else {
                if b == 1 {
                    return Ok(None);
                }
                return Err(refuse(format!("GRIB message {b} has no valid time")));
            };
            let instant = grib_seconds(&valid).ok_or_else(|| {
                refuse(format!(
                    "GRIB message {b}: its valid time '{}' is not seconds since 1970",
                    valid.trim()
                ))
            })?;
            let element = grib_element(&band);
            if steps.first().is_none_or(|(first, _)| *first == instant) {
                fields.push(grib_field(&band));
            }
            match steps.iter_mut().find(|(i, _)| *i == instant) {
                Some((_, messages)) => {
                    if let Some((_, other)) = messages.iter().find(|(e, _)| *e == element) {
                        return Err(refuse(format!(
                            "GRIB messages {other} and {b} are both {element} at {} (two maps of one instant)",
                            format_instant(instant)
                        )));
                    }
                    messages.push((element, b));
                }
                None => steps.push((instant, vec![(element, b)])),
            }
        }
        let elements = |messages: &[(String, usize)]| -> Vec<String> {
            messages.iter().map(|(e, _)| e.clone()).collect()
        };
        if let Some((first, messages)) = steps.first() {
            let want = elements(messages);
            if let Some((other, theirs)) = steps.iter().find(|(_, m)| elements(m) != want) {
                return Err(refuse(format!(
                    "its GRIB messages at {} hold {} but those at {} hold {}; every valid time must hold the same fields, in the same order",
                    format_instant(*first),
                    want.join(", "),
                    format_instant(*other),
                    elements(theirs).join(", ")
                )));
            }
        }
        Ok(Some(Self {
            source: "the valid times of its GRIB messages".to_string(),
            fields,
            instants: steps.iter().map(|(i, _)| *i).collect(),
            bands: steps
                .into_iter()
                .map(|(_, m)| m.into_iter().map(|(_, b)| b).collect())
                .collect(),
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

/// A GRIB time as GDAL writes it: seconds since 1970 UTC, bare (GDAL 3.6)
/// or padded and followed by " sec UTC" (older GDAL).
fn grib_seconds(text: &str) -> Option<i64> {
    text.split_whitespace().next()?.parse().ok()
}

/// What a GRIB message holds: its element and level (`TMP 2-HTGL`), as
/// GDAL names them.
fn grib_element(band: &gdal::raster::RasterBand<'_>) -> String {
    let item = |key: &str| band.metadata_item(key, "").unwrap_or_default();
    let (element, level) = (item("GRIB_ELEMENT"), item("GRIB_SHORT_NAME"));
    format!("{} {}", element.trim(), level.trim())
        .trim()
        .to_string()
}

/// A GRIB message's field as a band's description: what it is and where
/// ("Relative humidity, 2-HTGL"), and its unit ("%").
fn grib_field(band: &gdal::raster::RasterBand<'_>) -> BandInfo {
    let item = |key: &str| {
        band.metadata_item(key, "")
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    // GDAL's comment ends in the unit, which the unit says.
    let comment = item("GRIB_COMMENT").map(|c| match c.rsplit_once(" [") {
        Some((what, _)) if c.ends_with(']') => what.to_string(),
        _ => c,
    });
    let what = comment.or_else(|| item("GRIB_ELEMENT"));
    let name = match (what, item("GRIB_SHORT_NAME")) {
        (Some(what), Some(level)) => Some(format!("{what}, {level}")),
        (what, level) => what.or(level),
    };
    let unit = item("GRIB_UNIT").map(|u| u.trim_matches(['[', ']']).to_string());
    BandInfo {
        name,
        unit,
        colour: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grib_times_read_in_both_of_gdals_forms() {
        assert_eq!(grib_seconds("1704088800"), Some(1_704_088_800));
        assert_eq!(grib_seconds("  1512648000 sec UTC"), Some(1_512_648_000));
        assert_eq!(grib_seconds(""), None);
        assert_eq!(grib_seconds("soon"), None);
    }
}
