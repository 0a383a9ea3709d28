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
}
