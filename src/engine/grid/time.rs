//! The optional time axis and UTC instants.
//!
//! Instants are whole seconds since 1970-01-01T00:00:00Z. A regular axis maps
//! an instant to index `(t - origin) / step`; an irregular (non-equidistant)
//! axis numbers its instants in the order they were first written, and the
//! store keeps the list (see docs/FORMAT.md).

use serde::{Deserialize, Serialize};

/// The time axis of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TimeAxis {
    /// Equidistant: index `i` is instant `origin + i · step`.
    Regular {
        /// The instant of index 0, in seconds since the epoch.
        origin: i64,
        /// Seconds between indices, positive.
        step: i64,
    },
    /// Non-equidistant: irregular instants, indexed in order of arrival.
    Irregular,
}

/// Why a time, step or time axis is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Text that is not an instant.
    #[error("'{0}' is not a time (expected YYYY-MM-DD[THH:MM[:SS]][Z] or epoch seconds)")]
    NotAnInstant(String),
    /// Text that is not a time step.
    #[error("'{0}' is not a time step")]
    NotAStep(String),
    /// Text that is not a period.
    #[error("'{0}' is not a period (expected day, week, month, year, or a length such as 6h)")]
    NotAPeriod(String),
    /// A step in a unit that is not known.
    #[error("'{text}': unknown unit '{unit}' (use s, m, h, d or w)")]
    UnknownUnit {
        /// The step as given.
        text: String,
        /// Its unit.
        unit: String,
    },
    /// A step beyond the range of seconds kept.
    #[error("'{0}' is too long a time step")]
    StepTooLong(String),
    /// A regular axis whose step is not positive.
    #[error("step must be positive")]
    StepNotPositive,
    /// Text that is not a time axis.
    #[error("'{0}': expected 'irregular' or 'regular:ORIGIN:STEP'")]
    NotAnAxis(String),
    /// An instant that is not on a regular axis.
    #[error("{instant} is not on the time axis (origin {origin}, step {step} s)")]
    OffTheAxis {
        /// The instant.
        instant: String,
        /// The axis' origin.
        origin: String,
        /// Its step in seconds.
        step: i64,
    },
    /// An instant whose index would not fit.
    #[error("instant too far from the time origin")]
    TooFar,
}

impl TimeAxis {
    /// Checks the axis parameters.
    ///
    /// # Errors
    /// [`TimeError::StepNotPositive`].
    pub fn validate(&self) -> Result<(), TimeError> {
        match self {
            Self::Regular { step, .. } if *step <= 0 => Err(TimeError::StepNotPositive),
            _ => Ok(()),
        }
    }

    /// The index of `instant` on a regular axis.
    ///
    /// # Errors
    /// When the instant is before the origin, between steps, or too far.
    pub fn regular_index(origin: i64, step: i64, instant: i64) -> Result<u32, TimeError> {
        let offset = instant.checked_sub(origin).unwrap_or(-1);
        if offset < 0 || offset % step != 0 {
            return Err(TimeError::OffTheAxis {
                instant: format_instant(instant),
                origin: format_instant(origin),
                step,
            });
        }
        u32::try_from(offset / step).map_err(|_| TimeError::TooFar)
    }
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`, `YYYY-MM-DDTHH:MM:SS` (optional
/// trailing `Z`) as UTC, or a plain integer of seconds since the epoch.
///
/// # Errors
/// [`TimeError::NotAnInstant`] naming the text.
pub fn parse_instant(text: &str) -> Result<i64, TimeError> {
    let bad = || TimeError::NotAnInstant(text.to_string());
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    let body = text.strip_suffix('Z').unwrap_or(text);
    let (date, clock) = body.split_once(['T', ' ']).unwrap_or((body, ""));
    let mut parts = date.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(bad());
    }
    let mut hms = [0i64; 3];
    if !clock.is_empty() {
        let fields: Vec<&str> = clock.split(':').collect();
        if !(2..=3).contains(&fields.len()) {
            return Err(bad());
        }
        for (slot, field) in hms.iter_mut().zip(&fields) {
            *slot = field.parse().map_err(|_| bad())?;
        }
        if hms[0] > 23 || hms[1] > 59 || hms[2] > 60 || hms.iter().any(|v| *v < 0) {
            return Err(bad());
        }
    }
    Ok(days_from_civil(y, m, d) * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

/// Parses a time that may name a period: `YYYY` (its first instant),
/// `YYYY-MM`, or anything [`parse_instant`] reads.
///
/// # Errors
/// [`TimeError::NotAnInstant`] naming the text.
pub fn parse_period_time(text: &str) -> Result<i64, TimeError> {
    let bad = || TimeError::NotAnInstant(text.to_string());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match text.split('-').collect::<Vec<_>>().as_slice() {
        [y] if y.len() == 4 && digits(y) => parse_instant(&format!("{y}-01-01")),
        [y, m] if y.len() == 4 && digits(y) && m.len() == 2 && digits(m) => {
            parse_instant(&format!("{y}-{m}-01")).map_err(|_| bad())
        }
        _ => parse_instant(text),
    }
}

/// Parses a duration like `3600`, `90s`, `15m`, `6h`, `1d`, `1w` into seconds.
///
/// # Errors
/// A [`TimeError`] naming the text.
pub fn parse_step(s: &str) -> Result<i64, TimeError> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: i64 = num
        .parse()
        .map_err(|_| TimeError::NotAStep(s.to_string()))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(TimeError::UnknownUnit {
                text: s.to_string(),
                unit: unit.to_string(),
            });
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| TimeError::StepTooLong(s.to_string()))
}

/// Parses a time axis: `irregular`, or `regular:ORIGIN:STEP` with an
/// instant as [`parse_instant`] reads it and a step as [`parse_step`] does.
///
/// # Errors
/// A [`TimeError`] naming the text.
pub fn parse_time_axis(text: &str) -> Result<TimeAxis, TimeError> {
    if text.eq_ignore_ascii_case("irregular") {
        return Ok(TimeAxis::Irregular);
    }
    let expected = || TimeError::NotAnAxis(text.to_string());
    let rest = text.strip_prefix("regular:").ok_or_else(expected)?;
    let (origin, step) = rest.rsplit_once(':').ok_or_else(expected)?;
    let axis = TimeAxis::Regular {
        origin: parse_instant(origin)?,
        step: parse_step(step)?,
    };
    axis.validate()?;
    Ok(axis)
}

/// Formats an instant as `YYYY-MM-DDTHH:MM:SSZ`.
#[must_use]
pub fn format_instant(seconds: i64) -> String {
    format_utc(seconds)
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
#[must_use]
pub fn now_utc() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    format_instant(seconds)
}

fn format_utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub(super) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(super) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_axes_parse() {
        assert_eq!(parse_step("1d").unwrap(), 86_400);
        assert_eq!(parse_step(" 15m ").unwrap(), 900);
        assert!(parse_step("1y").is_err());
        assert!(parse_step("99999999999999999w").is_err());
        assert_eq!(
            parse_time_axis("regular:2020-01-01:1h").unwrap(),
            TimeAxis::Regular {
                origin: 1_577_836_800,
                step: 3600
            }
        );
        assert_eq!(parse_time_axis("IRREGULAR").unwrap(), TimeAxis::Irregular);
        assert!(parse_time_axis("regular:2020-01-01:0").is_err());
        assert!(parse_time_axis("daily").is_err());
    }
    use proptest::prelude::*;

    #[test]
    fn parses_known_instants() {
        assert_eq!(parse_instant("1970-01-01").unwrap(), 0);
        assert_eq!(parse_instant("2000-03-01T12:30Z").unwrap(), 951_913_800);
        assert_eq!(format_instant(951_913_800), "2000-03-01T12:30:00Z");
        assert!(parse_instant("2023-02-29").is_err());
        assert!(parse_instant("yesterday").is_err());
    }

    #[test]
    fn regular_index_requires_steps() {
        assert_eq!(TimeAxis::regular_index(0, 3600, 7200).unwrap(), 2);
        assert!(TimeAxis::regular_index(0, 3600, 7201).is_err());
        assert!(TimeAxis::regular_index(100, 1, 0).is_err());
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(seconds in -10_000_000_000i64..10_000_000_000) {
            prop_assert_eq!(parse_instant(&format_instant(seconds)).unwrap(), seconds);
        }
    }
}
