//! Durations as operators write them: `500ms`, `90s`, `15m`, `26h`, `7d`, or a bare number of
//! seconds. Kept tiny on purpose: plugins are small and pull in no parsing crates.

use std::time::Duration;

/// Parse a duration; the error says what was wrong.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration (examples: 90s, 15m, 26h, 7d)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        "w" => value * 7.0 * 86_400.0,
        other => return Err(format!("`{text}`: unknown unit `{other}` (use ms, s, m, h, d or w)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

/// Format seconds compactly for summaries: `45s`, `12m`, `5h 3m`, `3d 4h`.
pub fn human(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse("26h").unwrap(), Duration::from_secs(26 * 3600));
        assert_eq!(parse("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("30").unwrap(), Duration::from_secs(30));
    }

    #[test]
    fn rejects_bad_text() {
        for bad in ["", "m", "10x", "-5s", "1e400s"] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn formats_for_humans() {
        assert_eq!(human(45), "45s");
        assert_eq!(human(720), "12m");
        assert_eq!(human(5 * 3600 + 180), "5h 3m");
        assert_eq!(human(3 * 86_400 + 4 * 3600), "3d 4h");
    }
}
