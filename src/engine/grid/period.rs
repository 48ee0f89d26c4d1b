//! Calendar periods of time in UTC (a day, a month, a year, an ISO week, or
//! a fixed length such as 6 h), and a value per period aggregated from the
//! instants inside it with a store's aggregator. Pure math, no I/O.

use super::structure::Aggregator;
use super::time::{TimeError, civil_from_days, days_from_civil, parse_step};
use serde::{Deserialize, Serialize};

/// A kind of period. Every instant lies in exactly one period of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A calendar day, from midnight UTC.
    Day,
    /// An ISO week, from Monday midnight UTC.
    Week,
    /// A calendar month.
    Month,
    /// A calendar year.
    Year,
    /// Fixed steps of this many seconds from the epoch (`6h`: 00:00, 06:00,
    /// 12:00 and 18:00 UTC).
    Every(i64),
}

/// The seconds of a day.
const DAY: i64 = 86_400;

impl Period {
    /// Parses `day`, `week`, `month`, `year`, or a length such as `6h` or
    /// `3d` (as a time step is written).
    ///
    /// # Errors
    /// A [`TimeError`] naming the text.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" | "daily" | "1d" => Ok(Self::Day),
            "week" | "weekly" | "1w" => Ok(Self::Week),
            "month" | "monthly" => Ok(Self::Month),
            "year" | "yearly" | "annual" => Ok(Self::Year),
            other => match parse_step(other) {
                Ok(seconds) if seconds > 0 => Ok(Self::Every(seconds)),
                _ => Err(TimeError::NotAPeriod(text.to_string())),
            },
        }
    }

    /// The start of the period holding `instant` (seconds since the epoch).
    #[must_use]
    pub fn start(self, instant: i64) -> i64 {
        // Saturating: an instant within a period of the ends of i64 gets
        // the end, never a panic.
        let day = instant.div_euclid(DAY);
        match self {
            Self::Day => day.saturating_mul(DAY),
            // 1970-01-01 was a Thursday: Mondays are 3 days before the
            // epoch, modulo 7.
            Self::Week => ((day + 3).div_euclid(7) * 7 - 3).saturating_mul(DAY),
            Self::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, month(m), 1).saturating_mul(DAY)
            }
            Self::Year => {
                let (y, _, _) = civil_from_days(day);
                days_from_civil(y, 1, 1).saturating_mul(DAY)
            }
            Self::Every(step) => instant.div_euclid(step).saturating_mul(step),
        }
    }

    /// The start of the period after the one starting at `start`.
    #[must_use]
    pub fn next(self, start: i64) -> i64 {
        let day = start.div_euclid(DAY);
        match self {
            Self::Day => start.saturating_add(DAY),
            Self::Week => start.saturating_add(7 * DAY),
            Self::Month => {
                let (y, m, _) = civil_from_days(day);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, month(m), 1).saturating_mul(DAY)
            }
            Self::Year => {
                let (y, _, _) = civil_from_days(day);
                days_from_civil(y + 1, 1, 1).saturating_mul(DAY)
            }
            Self::Every(step) => start.saturating_add(step),
        }
    }

    /// Whether every period of `self` is a whole number (more than one) of
    /// periods of the time level `finer`: a week or a month of days, a
    /// year of months, fixed lengths of whole days of days.
    #[must_use]
    pub fn tiled_by(self, finer: TimeLevel) -> bool {
        match (TimeLevel::of(self), self) {
            (Some(level), _) => level.tiled_by(finer),
            (None, Self::Every(n)) => finer == TimeLevel::Day && n > DAY && n % DAY == 0,
            (None, _) => false,
        }
    }

    /// The period starting at `start` as people write it: `2024-05-02`,
    /// `2024-W18`, `2024-05`, `2024`, or its first instant for a fixed
    /// length.
    #[must_use]
    pub fn label(self, start: i64) -> String {
        let day = start.div_euclid(DAY);
        let (y, m, d) = civil_from_days(day);
        match self {
            Self::Day => format!("{y:04}-{m:02}-{d:02}"),
            Self::Week => {
                // The ISO year is the year of the week's Thursday.
                let thursday = day + 3;
                let (iso_year, _, _) = civil_from_days(thursday);
                let week = (thursday - days_from_civil(iso_year, 1, 1)) / 7 + 1;
                format!("{iso_year:04}-W{week:02}")
            }
            Self::Month => format!("{y:04}-{m:02}"),
            Self::Year => format!("{y:04}"),
            Self::Every(_) => super::time::format_instant(start),
        }
    }
}

/// A calendar period a store keeps aggregate maps for (its *time levels*,
/// `create --time-levels`): finest first, as [`TimeLevel::ALL`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeLevel {
    /// A calendar day, from midnight UTC.
    Day,
    /// An ISO week, from Monday midnight UTC.
    Week,
    /// A calendar month.
    Month,
    /// A calendar year.
    Year,
}

impl TimeLevel {
    /// Every time level, finest first.
    pub const ALL: [Self; 4] = [Self::Day, Self::Week, Self::Month, Self::Year];

    /// Its name, as the command line and the format write it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    /// The period it keeps.
    #[must_use]
    pub fn period(self) -> Period {
        match self {
            Self::Day => Period::Day,
            Self::Week => Period::Week,
            Self::Month => Period::Month,
            Self::Year => Period::Year,
        }
    }

    /// The stored time level of a period, if it is one.
    #[must_use]
    pub fn of(period: Period) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.period() == period)
    }

    /// Whether every period of `self` is a whole number of periods of
    /// `finer` (a month of days; a week is no whole number of months).
    #[must_use]
    pub fn tiled_by(self, finer: Self) -> bool {
        finer < self && finer != Self::Week
    }

    /// Parses a list such as `day,month,year`, or `none` for none: sorted
    /// finest first, each once.
    ///
    /// # Errors
    /// A message naming an unknown period, or one given twice.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        let mut levels = Vec::new();
        for word in text.split(',').map(str::trim) {
            let level = Self::ALL
                .into_iter()
                .find(|l| l.name().eq_ignore_ascii_case(word))
                .ok_or_else(|| {
                    format!(
                        "unknown time level '{word}' (expected day, week, month, year, or none)"
                    )
                })?;
            if levels.contains(&level) {
                return Err(format!("time level '{word}' is given twice"));
            }
            levels.push(level);
        }
        levels.sort();
        Ok(levels)
    }
}

impl std::fmt::Display for TimeLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A month number (1 to 12) as the calendar functions take it.
fn month(m: i64) -> u32 {
    u32::try_from(m.clamp(1, 12)).unwrap_or(1)
}

/// One period's value: its start, the instants it holds, and the aggregate
/// of their valid values (`None` when none holds data).
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodValue {
    /// The period's first instant.
    pub start: i64,
    /// Instants stored in the period.
    pub instants: usize,
    /// Of those, the ones with data.
    pub valid: usize,
    /// The aggregate of the valid values.
    pub value: Option<f64>,
}

/// Groups `series` (instant, value; in time order) by `period` and
/// aggregates each group's valid values with `aggregate`, as the pyramid
/// does in space: nodata never leaks in, and a period is `None` only when
/// no instant in it holds data. `Count` counts the valid instants; `Mode`
/// and `Nearest` break ties by the earliest instant.
#[must_use]
pub fn by_period(
    series: &[(i64, Option<f64>)],
    period: Period,
    aggregate: Aggregator,
) -> Vec<PeriodValue> {
    let mut out: Vec<PeriodValue> = Vec::new();
    let mut values: Vec<f64> = Vec::new();
    let flush = |out: &mut Vec<PeriodValue>, values: &mut Vec<f64>| {
        if let Some(last) = out.last_mut() {
            last.valid = values.len();
            last.value = aggregate_values(values, aggregate);
        }
        values.clear();
    };
    for &(instant, value) in series {
        let start = period.start(instant);
        if out.last().is_none_or(|p| p.start != start) {
            flush(&mut out, &mut values);
            out.push(PeriodValue {
                start,
                instants: 0,
                valid: 0,
                value: None,
            });
        }
        if let Some(last) = out.last_mut() {
            last.instants += 1;
        }
        values.extend(value);
    }
    flush(&mut out, &mut values);
    out
}

/// The aggregate of valid values in order (of time, or of reading);
/// `None` for none. `Count` counts them; `Mode` and `Nearest` take the
/// first of equals.
#[must_use]
pub fn aggregate_values(values: &[f64], aggregate: Aggregator) -> Option<f64> {
    let first = *values.first()?;
    Some(match aggregate {
        Aggregator::Mean => values.iter().sum::<f64>() / values.len() as f64,
        Aggregator::Sum => values.iter().sum(),
        Aggregator::Min => values.iter().copied().fold(first, f64::min),
        Aggregator::Max => values.iter().copied().fold(first, f64::max),
        Aggregator::Count => values.len() as f64,
        Aggregator::Nearest => first,
        Aggregator::Mode => {
            // Most frequent; the earliest of equally frequent values.
            let mut best = (first, 0usize);
            for (i, v) in values.iter().enumerate() {
                if values[..i].contains(v) {
                    continue;
                }
                let n = values[i..].iter().filter(|w| *w == v).count();
                if n > best.1 {
                    best = (*v, n);
                }
            }
            best.0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::time::{format_instant, parse_instant};

    fn at(text: &str) -> i64 {
        parse_instant(text).unwrap()
    }

    #[test]
    fn periods_start_and_end_on_the_calendar() {
        let t = at("2024-02-29T13:45:10");
        assert_eq!(format_instant(Period::Day.start(t)), "2024-02-29T00:00:00Z");
        assert_eq!(
            format_instant(Period::Month.start(t)),
            "2024-02-01T00:00:00Z"
        );
        assert_eq!(
            format_instant(Period::Month.next(Period::Month.start(t))),
            "2024-03-01T00:00:00Z"
        );
        assert_eq!(
            format_instant(Period::Year.start(t)),
            "2024-01-01T00:00:00Z"
        );
        // 2024-02-29 was a Thursday; its ISO week began on Monday the 26th.
        assert_eq!(
            format_instant(Period::Week.start(t)),
            "2024-02-26T00:00:00Z"
        );
        assert_eq!(Period::Week.label(Period::Week.start(t)), "2024-W09");
        // 2021-01-03 (a Sunday) is in week 53 of 2020.
        let sunday = at("2021-01-03T12:00");
        assert_eq!(Period::Week.label(Period::Week.start(sunday)), "2020-W53");
        let six = Period::parse("6h").unwrap();
        assert_eq!(format_instant(six.start(t)), "2024-02-29T12:00:00Z");
        assert_eq!(Period::Month.label(Period::Month.start(t)), "2024-02");
        // Before the epoch too.
        let old = at("1969-12-31T23:00");
        assert_eq!(
            format_instant(Period::Day.start(old)),
            "1969-12-31T00:00:00Z"
        );
        assert_eq!(
            format_instant(Period::Week.start(old)),
            "1969-12-29T00:00:00Z"
        );
    }

    #[test]
    fn time_levels_parse_finest_first() {
        assert_eq!(
            TimeLevel::parse_list("year, Day,month").unwrap(),
            [TimeLevel::Day, TimeLevel::Month, TimeLevel::Year]
        );
        assert!(TimeLevel::parse_list("none").unwrap().is_empty());
        let e = TimeLevel::parse_list("day,hour").unwrap_err();
        assert!(e.contains("'hour'"), "{e}");
        assert!(
            TimeLevel::parse_list("day,day")
                .unwrap_err()
                .contains("twice")
        );
        assert!(TimeLevel::Month.tiled_by(TimeLevel::Day));
        assert!(TimeLevel::Year.tiled_by(TimeLevel::Month));
        assert!(!TimeLevel::Month.tiled_by(TimeLevel::Week));
        assert!(TimeLevel::Week.tiled_by(TimeLevel::Day));
        assert!(!TimeLevel::Day.tiled_by(TimeLevel::Day));
    }

    #[test]
    fn unknown_periods_are_named() {
        let e = Period::parse("fortnightly").unwrap_err().to_string();
        assert!(e.contains("'fortnightly'"), "{e}");
        assert!(Period::parse("0h").is_err());
        assert_eq!(
            Period::parse("1w").unwrap(),
            Period::Week,
            "weeks start on Mondays"
        );
        // The ends of time: no panic.
        for p in [
            Period::Day,
            Period::Week,
            Period::Month,
            Period::Year,
            Period::Every(7),
        ] {
            let _ = (
                p.start(i64::MIN),
                p.start(i64::MAX),
                p.label(p.start(i64::MIN)),
            );
        }
    }

    #[test]
    fn a_period_is_nodata_only_when_no_instant_in_it_holds_data() {
        let day = |d: u32, h: u32| at(&format!("2024-05-{d:02}T{h:02}:00"));
        let series = [
            (day(1, 0), Some(1.0)),
            (day(1, 6), None),
            (day(1, 12), Some(3.0)),
            (day(2, 0), None),
            (day(3, 0), Some(2.0)),
            (day(3, 1), Some(2.0)),
            (day(3, 2), Some(5.0)),
        ];
        let sums = by_period(&series, Period::Day, Aggregator::Sum);
        let values: Vec<Option<f64>> = sums.iter().map(|p| p.value).collect();
        assert_eq!(values, [Some(4.0), None, Some(9.0)]);
        assert_eq!((sums[0].instants, sums[0].valid), (3, 2));
        let value = |a| {
            by_period(&series, Period::Day, a)
                .iter()
                .map(|p| p.value)
                .collect::<Vec<_>>()
        };
        assert_eq!(value(Aggregator::Mean), [Some(2.0), None, Some(3.0)]);
        assert_eq!(value(Aggregator::Min), [Some(1.0), None, Some(2.0)]);
        assert_eq!(value(Aggregator::Max), [Some(3.0), None, Some(5.0)]);
        assert_eq!(value(Aggregator::Count), [Some(2.0), None, Some(3.0)]);
        assert_eq!(value(Aggregator::Mode), [Some(1.0), None, Some(2.0)]);
        assert_eq!(value(Aggregator::Nearest), [Some(1.0), None, Some(2.0)]);
    }

    proptest::proptest! {
        /// Every instant lies in the period that starts at or before it and
        /// ends after it, and the label names that period.
        #[test]
        fn every_instant_lies_in_its_period(
            instant in -4_000_000_000i64..8_000_000_000,
            kind in 0usize..5,
        ) {
            let period = [Period::Day, Period::Week, Period::Month, Period::Year, Period::Every(21_600)][kind];
            let start = period.start(instant);
            proptest::prop_assert!(start <= instant && instant < period.next(start));
            proptest::prop_assert_eq!(period.start(start), start);
            proptest::prop_assert_eq!(period.start(period.next(start)), period.next(start));
        }
    }
}
