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

/// A duration: a whole number of seconds (as `-kill-timeout` takes them), or
/// a number with a unit (`100ms`, `1m30s`, `2h`), at least 1 ms.
pub fn duration(value: &str) -> Result<std::time::Duration, String> {
    const WHAT: &str = "must be a duration: seconds, or a number with a unit (100ms, 10s, 1m)";
    let d = match value.parse::<u64>() {
        Ok(s) => std::time::Duration::from_secs(s),
        // humantime also takes `1m 30s`: one word here, as every other value.
        Err(_) if value.starts_with(|c: char| c.is_ascii_digit()) && !value.contains(' ') => {
            humantime::parse_duration(value).map_err(|_| WHAT.to_owned())?
        }
        Err(_) => return Err(WHAT.into()),
    };
    if d < std::time::Duration::from_millis(1) {
        return Err("must be at least 1ms".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds_or_with_a_unit() {
        use std::time::Duration;
        assert_eq!(duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
        for bad in ["0", "0s", "-1", "", "x", "1x", " 1s", "1.5", "10 s"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

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
}
