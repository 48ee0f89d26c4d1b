//! Numbers and byte counts as people read them, for messages, the command
//! line and the explorer.

/// A number for display: at most 6 decimals, no trailing zeros.
#[must_use]
pub fn short_number(v: f64) -> String {
    let text = format!("{v:.6}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A byte count for people (SI units): `812 B`, `4.1 kB`, `107 kB`, `2.4 GB`.
#[must_use]
pub fn human_bytes(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", units[unit])
    } else {
        format!("{value:.0} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers_drop_noise() {
        assert_eq!(short_number(89.994_067_349_451_16), "89.994067");
        assert_eq!(short_number(100.0), "100");
        assert_eq!(short_number(0.5), "0.5");
    }

    #[test]
    fn byte_counts_read_as_people_write_them() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(4096), "4.1 kB");
        assert_eq!(human_bytes(106_752), "107 kB");
        assert_eq!(human_bytes(2_400_000_000), "2.4 GB");
    }
}
