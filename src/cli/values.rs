//! Parsers for numeric flag values whose error says what is accepted in
//! words: clap's range check names the type's limits instead ("0 is not in
//! 1..18446744073709551615").

/// A whole number of seconds, at least 1.
pub fn seconds(value: &str) -> Result<u64, &'static str> {
    match value.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number of seconds, at least 1"),
    }
}

/// A TCP port, 1 to 65535.
pub fn port(value: &str) -> Result<u16, &'static str> {
    match value.parse::<u16>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a port number from 1 to 65535"),
    }
}

/// A count, at least 1.
pub fn count(value: &str) -> Result<u32, &'static str> {
    match value.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number, at least 1"),
    }
}

/// A duration: whole seconds as `-kill-timeout` takes them, or a number with
/// a unit as docker writes its times (`500ms`, `30s`, `1m30s`).
pub fn duration(value: &str) -> Result<std::time::Duration, &'static str> {
    const WHY: &str = "must be whole seconds or a number with a unit (500ms, 30s, 1m30s)";
    if let Ok(n) = value.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(n));
    }
    // humantime also reads `1m 30s`: one word here, as every other value; a
    // sign or a fraction it refuses.
    match humantime::parse_duration(value) {
        Ok(d) if value.starts_with(|c: char| c.is_ascii_digit()) && !value.contains(' ') => Ok(d),
        _ => Err(WHY),
    }
}

/// A [`duration`] of 1 ms at least, as docker requires of its health-check
/// times and restart delays: any closer would be a busy loop.
pub fn positive_duration(value: &str) -> Result<std::time::Duration, &'static str> {
    match duration(value) {
        Ok(d) if d < std::time::Duration::from_millis(1) => Err("must be at least 1ms"),
        d => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_one_up() {
        assert_eq!(seconds("10"), Ok(10));
        assert_eq!(port("65535"), Ok(65535));
        assert_eq!(count("5"), Ok(5));
        for bad in ["0", "-1", "1.5", "x", "", "99999999999999999999999"] {
            assert!(seconds(bad).is_err(), "{bad}");
            assert!(count(bad).is_err(), "{bad}");
            assert!(port(bad).is_err(), "{bad}");
        }
        assert!(port("65536").is_err());
    }

    #[test]
    fn durations_in_seconds_or_with_a_unit() {
        use std::time::Duration;
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("100ms"), Ok(Duration::from_millis(100)));
        for bad in ["-1", "1.5", "x", "", "s", "10 parsecs", "1x", " 1s", "10 s"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        assert!(positive_duration("0").is_err());
        assert!(positive_duration("0s").is_err());
        assert!(positive_duration("999us").is_err());
        assert_eq!(positive_duration("2s"), Ok(Duration::from_secs(2)));
    }
}
