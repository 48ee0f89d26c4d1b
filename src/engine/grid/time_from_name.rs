//! Instants read from file names with a strftime-like pattern, such as
//! `rain_%Y%m%d%H.tif` for `rain_2024050112.tif`. Pure, no I/O.

use super::time::{days_from_civil, days_in_month};

/// Why a name does not give an instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A `%` field the pattern language does not have.
    #[error("'%{0}' is not a field of a --time-from-name pattern (use %Y %m %d %H %M %S %j or %%)")]
    UnknownField(char),
    /// The name does not follow the pattern.
    #[error("its name does not match '{pattern}' ({why})")]
    NoMatch {
        /// The pattern.
        pattern: String,
        /// Where it stopped matching.
        why: String,
    },
    /// The fields name no instant (month 13, 30 February, hour 24…).
    #[error("its name gives {0}, which is not a date and time")]
    NotADate(String),
}

/// The instant (seconds since the epoch, UTC) `name` gives under `pattern`.
/// The whole name must match. Fields: `%Y` (4 digits), `%m`, `%d`, `%H`,
/// `%M`, `%S` (2 digits), `%j` (day of the year, 3 digits), `%%` (a `%`);
/// anything else must be in the name as written. Missing fields are the
/// start of their unit (month 1, day 1, 00:00:00).
///
/// # Errors
/// A [`NameError`] saying why.
pub fn instant_from_name(pattern: &str, name: &str) -> Result<i64, NameError> {
    let no_match = |why: String| NameError::NoMatch {
        pattern: pattern.to_string(),
        why,
    };
    let (mut y, mut m, mut d, mut day_of_year) = (1970i64, 1u32, 1u32, None);
    let mut hms = [0i64; 3];
    let mut rest = name;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            rest = rest
                .strip_prefix(c)
                .ok_or_else(|| no_match(format!("expected '{c}' at '{rest}'")))?;
            continue;
        }
        let field = chars.next().ok_or(NameError::UnknownField(' '))?;
        let width = match field {
            '%' => {
                rest = rest
                    .strip_prefix('%')
                    .ok_or_else(|| no_match(format!("expected '%' at '{rest}'")))?;
                continue;
            }
            'Y' => 4,
            'j' => 3,
            'm' | 'd' | 'H' | 'M' | 'S' => 2,
            other => return Err(NameError::UnknownField(other)),
        };
        let digits = rest
            .get(..width)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| no_match(format!("expected {width} digits for %{field} at '{rest}'")))?;
        rest = &rest[width..];
        let v: i64 = digits.parse().map_err(|_| no_match(digits.to_string()))?;
        let small = u32::try_from(v).unwrap_or(u32::MAX);
        match field {
            'Y' => y = v,
            'm' => m = small,
            'd' => d = small,
            'j' => day_of_year = Some(v),
            'H' => hms[0] = v,
            'M' => hms[1] = v,
            _ => hms[2] = v,
        }
    }
    if !rest.is_empty() {
        return Err(no_match(format!("'{rest}' left over")));
    }
    let shown = format!(
        "{y:04}-{m:02}-{d:02}{} {:02}:{:02}:{:02}",
        day_of_year.map_or_else(String::new, |j| format!(" (day {j})")),
        hms[0],
        hms[1],
        hms[2]
    );
    let days = match day_of_year {
        Some(j) => {
            let in_year = if days_in_month(y, 2) == 29 { 366 } else { 365 };
            if !(1..=in_year).contains(&j) {
                return Err(NameError::NotADate(shown));
            }
            days_from_civil(y, 1, 1) + j - 1
        }
        None => {
            if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
                return Err(NameError::NotADate(shown));
            }
            days_from_civil(y, m, d)
        }
    };
    if hms[0] > 23 || hms[1] > 59 || hms[2] > 59 {
        return Err(NameError::NotADate(shown));
    }
    Ok(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::time::format_instant;

    fn at(pattern: &str, name: &str) -> String {
        format_instant(instant_from_name(pattern, name).unwrap())
    }

    #[test]
    fn fields_give_the_instant() {
        assert_eq!(
            at("rain_%Y%m%d%H.tif", "rain_2024050112.tif"),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            at("%Y-%m-%dT%H%M%S", "2024-02-29T235958"),
            "2024-02-29T23:59:58Z"
        );
        assert_eq!(
            at("MOD_%Y%j.hdf", "MOD_2024061.hdf"),
            "2024-03-01T00:00:00Z"
        );
        assert_eq!(at("t%%%Y", "t%1999"), "1999-01-01T00:00:00Z");
    }

    #[test]
    fn names_that_do_not_fit_say_why() {
        let e = |p: &str, n: &str| instant_from_name(p, n).unwrap_err().to_string();
        assert!(e("rain_%Y%m%d%H.tif", "snow_2024050112.tif").contains("expected 'r'"));
        assert!(e("rain_%Y%m%d%H.tif", "rain_20240501.tif").contains("2 digits for %H"));
        assert!(e("rain_%Y%m%d.tif", "rain_20240501.tif.aux.xml").contains("'.aux.xml' left over"));
        assert!(e("r_%Y%m%d", "r_20240230").contains("2024-02-30"));
        assert!(e("r_%Y%j", "r_2023366").contains("not a date"));
        assert!(e("r_%Y%m%d%H", "r_2024010124").contains("not a date"));
        assert!(e("r_%q", "r_1").contains("'%q'"));
    }
}
