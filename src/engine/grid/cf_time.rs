//! CF time coordinates: the units (`hours since 2024-01-30 00:00:00`) and
//! calendar of a netCDF time dimension, turned into instants (whole seconds
//! UTC, rounded to the nearest second). Pure math, no I/O.

use super::time::days_from_civil;

/// Parsed CF time units: the reference instant and the seconds of a unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CfUnits {
    /// The reference instant, seconds since 1970-01-01T00:00:00Z.
    pub origin: i64,
    /// Seconds in one unit (0.001 for milliseconds, 3600 for hours).
    pub unit: f64,
}

impl CfUnits {
    /// Parses `UNIT since DATE[ TIME][ ZONE]` as CF (and UDUNITS) write it:
    /// `days since 1970-01-01`, `hours since 2024-01-30 00:00:00`,
    /// `seconds since 1970-01-01T00:00:00Z`, `minutes since 2000-1-1 0:0:0 +1:00`.
    ///
    /// # Errors
    /// A message saying what is wrong: an unknown or calendar-dependent
    /// unit (months, years), or a reference that is not a date.
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_ascii_lowercase();
        let (unit, reference) = lower
            .split_once(" since ")
            .ok_or_else(|| format!("'{text}' is not CF time units (expected UNIT since DATE)"))?;
        let unit = match unit.trim() {
            "seconds" | "second" | "secs" | "sec" | "s" => 1.0,
            "milliseconds" | "millisecond" | "msecs" | "msec" | "ms" => 0.001,
            "microseconds" | "microsecond" | "us" => 1e-6,
            "minutes" | "minute" | "mins" | "min" => 60.0,
            "hours" | "hour" | "hrs" | "hr" | "h" => 3600.0,
            "days" | "day" | "d" => 86_400.0,
            "weeks" | "week" => 604_800.0,
            "months" | "month" | "years" | "year" => {
                return Err(format!(
                    "'{text}': {unit} have no fixed length (CF advises against them); gridstore does not guess one"
                ));
            }
            other => return Err(format!("'{text}': unknown time unit '{other}'")),
        };
        let origin = parse_reference(reference.trim())
            .ok_or_else(|| format!("'{text}': '{}' is not a reference date", reference.trim()))?;
        Ok(Self { origin, unit })
    }

    /// The instant of coordinate `value`, to the nearest second; `None`
    /// for a value that is not finite or lies beyond the range of seconds.
    #[must_use]
    pub fn instant(&self, value: f64) -> Option<i64> {
        let offset = (value * self.unit).round();
        // i64 spans ±9.2e18 s; beyond ±1e17 s (3 billion years) nothing
        // is a date.
        if !offset.is_finite() || offset.abs() > 1e17 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        self.origin.checked_add(offset as i64)
    }
}

/// Checks a CF calendar attribute: gridstore keeps instants on the
/// proleptic Gregorian calendar, which `standard`, `gregorian` and
/// `proleptic_gregorian` (and no attribute) name for dates after 1582.
///
/// # Errors
/// A message naming a calendar whose days are not those (`noleap`,
/// `360_day`, `julian`, …) or an unknown one.
pub fn check_calendar(calendar: Option<&str>) -> Result<(), String> {
    let Some(calendar) = calendar else {
        return Ok(());
    };
    match calendar.trim().to_ascii_lowercase().as_str() {
        "" | "standard" | "gregorian" | "proleptic_gregorian" => Ok(()),
        known @ ("noleap" | "365_day" | "all_leap" | "366_day" | "360_day" | "julian") => {
            Err(format!(
                "calendar '{known}' has other days than the Gregorian calendar gridstore keeps instants in; convert the time coordinate first (for example with xarray's convert_calendar)"
            ))
        }
        other => Err(format!("unknown calendar '{other}'")),
    }
}

/// The first day of the Gregorian calendar, 1582-10-15, in seconds since
/// the epoch: before it, CF's `standard` (`gregorian`) calendar counts
/// Julian dates.
fn gregorian_start() -> i64 {
    days_from_civil(1582, 10, 15) * 86_400
}

/// Checks that a `standard` (or `gregorian`, or unnamed) calendar's
/// reference date and instants lie where it is the Gregorian calendar
/// gridstore keeps instants in.
///
/// # Errors
/// A message naming the first date before 1582-10-15, where that calendar
/// is the Julian one.
pub fn check_gregorian(
    calendar: Option<&str>,
    units: &CfUnits,
    instants: &[i64],
) -> Result<(), String> {
    let named = calendar.map(|c| c.trim().to_ascii_lowercase());
    if named.as_deref() == Some("proleptic_gregorian") {
        return Ok(());
    }
    let start = gregorian_start();
    let before = std::iter::once(units.origin)
        .chain(instants.iter().copied())
        .find(|i| *i < start);
    match before {
        None => Ok(()),
        Some(date) => Err(format!(
            "{} lies before 1582-10-15, where calendar '{}' counts Julian dates, and gridstore keeps Gregorian instants; give the time coordinate calendar 'proleptic_gregorian' if that is what its dates are, or a reference date after 1582",
            super::time::format_instant(date),
            named.as_deref().unwrap_or("standard")
        )),
    }
}

/// `Y-M-D[( |T)H:M[:S[.f]]][ ][ZONE]` with ZONE `Z`, `UTC`, `GMT` or a
/// signed (or UDUNITS' unsigned) `H[:MM]` / `HHMM` offset.
fn parse_reference(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once(['T', 't', ' ']).unwrap_or((text, ""));
    // A leading sign belongs to a negative year, as in "-4713-01-01".
    let (sign, date) = match date.strip_prefix('-') {
        Some(date) => (-1, date),
        None => (1, date),
    };
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (ymd.next()?, ymd.next()?, ymd.next()?);
    let y: i64 = sign * y.parse::<i64>().ok()?;
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || d == 0 || d > super::time::days_in_month(y, m) {
        return None;
    }
    let mut seconds = days_from_civil(y, m, d).checked_mul(86_400)?;
    let rest = rest.trim().trim_end_matches(['Z', 'z']).trim();
    let (clock, zone) = match rest.find([' ', '+', '-']) {
        Some(i) => (rest[..i].trim(), rest[i..].trim()),
        None => (rest, ""),
    };
    let (clock, zone) = if zone.is_empty() && clock.eq_ignore_ascii_case("utc") {
        ("", "")
    } else {
        (clock, zone)
    };
    if !clock.is_empty() {
        let fields: Vec<&str> = clock.split(':').collect();
        if fields.is_empty() || fields.len() > 3 {
            return None;
        }
        let h: i64 = fields[0].parse().ok()?;
        let min: i64 = fields.get(1).map_or(Some(0), |f| f.parse().ok())?;
        let s: f64 = fields.get(2).map_or(Some(0.0), |f| f.parse().ok())?;
        if !(0..24).contains(&h) || !(0..60).contains(&min) || !(0.0..61.0).contains(&s) {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        let s = s.round() as i64;
        seconds = seconds.checked_add(h * 3600 + min * 60 + s)?;
    }
    seconds.checked_sub(zone_offset(zone)?)
}

/// The seconds east of UTC a zone names; `None` for what is not a zone.
fn zone_offset(zone: &str) -> Option<i64> {
    let zone = zone.trim();
    if zone.is_empty() || ["utc", "gmt", "z"].contains(&zone.to_ascii_lowercase().as_str()) {
        return Some(0);
    }
    let (sign, body) = match zone.as_bytes()[0] {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => (1, zone),
    };
    let (h, m): (i64, i64) = match body.split_once(':') {
        Some((h, m)) => (h.parse().ok()?, m.parse().ok()?),
        None if body.len() == 4 => (body.get(..2)?.parse().ok()?, body.get(2..)?.parse().ok()?),
        None => (body.parse().ok()?, 0),
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::time::{format_instant, parse_instant};

    fn at(text: &str) -> i64 {
        parse_instant(text).unwrap()
    }

    #[test]
    fn cf_units_name_a_reference_and_a_length() {
        let u = CfUnits::parse("hours since 2024-01-30 00:00:00").unwrap();
        assert_eq!(u.origin, at("2024-01-30"));
        assert_eq!(u.instant(6.0), Some(at("2024-01-30T06:00")));
        let u = CfUnits::parse("days since 1970-01-01").unwrap();
        assert_eq!(u.instant(19_000.5), Some(at("2022-01-08T12:00")));
        let u = CfUnits::parse("seconds since 1970-01-01T00:00:00Z").unwrap();
        assert_eq!(u.instant(1.4), Some(1), "to the nearest second");
        let u = CfUnits::parse("minutes since 2000-1-1 0:0:0 +1:00").unwrap();
        assert_eq!(format_instant(u.origin), "1999-12-31T23:00:00Z");
        let u = CfUnits::parse("Hours Since 1900-01-01 00:00:0.0").unwrap();
        assert_eq!(format_instant(u.origin), "1900-01-01T00:00:00Z");
        let u = CfUnits::parse("days since 2000-01-01 00:00:00 UTC").unwrap();
        assert_eq!(u.origin, at("2000-01-01"));
        let u = CfUnits::parse("hours since 2000-01-01T06:00:00-0300").unwrap();
        assert_eq!(u.origin, at("2000-01-01T09:00"));
        assert_eq!(u.instant(f64::NAN), None);
        assert_eq!(u.instant(1e300), None);
    }

    #[test]
    fn bad_units_and_calendars_are_named() {
        for bad in [
            "hours",
            "fortnights since 2000-01-01",
            "hours since yesterday",
            "hours since 2000-13-01",
            "hours since 2000-01-01 25:00",
        ] {
            let e = CfUnits::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        // Negative years, and zones that are no zone.
        let u = CfUnits::parse("days since -4713-01-01").unwrap();
        assert!(u.origin < 0);
        assert!(CfUnits::parse("hours since 2000-01-01 00:00 +a\u{20ac}").is_err());
        // Julian dates under the standard calendar are refused.
        let u = CfUnits::parse("hours since 1-1-1 00:00:0.0").unwrap();
        let e = check_gregorian(Some("standard"), &u, &[]).unwrap_err();
        assert!(e.contains("0001-01-01") && e.contains("Julian"), "{e}");
        assert!(check_gregorian(Some("proleptic_gregorian"), &u, &[]).is_ok());
        let u = CfUnits::parse("days since 1970-01-01").unwrap();
        assert!(check_gregorian(None, &u, &[0, 86_400]).is_ok());
        assert!(check_gregorian(None, &u, &[gregorian_start() - 1]).is_err());
        let e = CfUnits::parse("months since 2000-01-01").unwrap_err();
        assert!(e.contains("no fixed length"), "{e}");
        assert!(check_calendar(None).is_ok());
        assert!(check_calendar(Some("proleptic_gregorian")).is_ok());
        assert!(check_calendar(Some("Standard")).is_ok());
        assert!(
            check_calendar(Some("noleap"))
                .unwrap_err()
                .contains("'noleap'")
        );
        assert!(
            check_calendar(Some("martian"))
                .unwrap_err()
                .contains("unknown calendar 'martian'")
        );
    }
}
