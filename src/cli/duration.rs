//! Durations on the command line: `250ms`, `90s`, `5min`, `1h` or a bare number of seconds.

/// Parses `250ms`, `90s`, `5min`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 250ms, 90s, 5min or 1h"))?;
    let ms = match unit.trim() {
        "ms" => n,
        "" | "s" => n * 1000,
        "min" | "m" => n * 60_000,
        "h" => n * 3_600_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use ms, s, min or h"
            ))
        }
    };
    Ok(std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_parse_with_units() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(
            super::parse_duration("250ms"),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(super::parse_duration("0"), Ok(Duration::ZERO));
        assert!(super::parse_duration("5 parsecs").is_err());
    }
}
