//! Container ids: `psdock_` and seven hex digits, as the original named them.
//! One function, so that every part of a run (state records, notifications)
//! names the container the same way.

/// A fresh random container id.
pub fn generate() -> String {
    let mut bytes = [0u8; 4];
    // The kernel's generator does not fail once the system is up; should it
    // anyway, an id from the clock and pid is still unique enough for one host.
    let value = match getrandom::fill(&mut bytes) {
        Ok(()) => u32::from_ne_bytes(bytes),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            nanos ^ std::process::id().rotate_left(16)
        }
    };
    format!("psdock_{:07x}", value & 0x0fff_ffff)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_psdock_and_seven_hex_digits() {
        let a = super::generate();
        let hex = a.strip_prefix("psdock_").unwrap();
        assert_eq!(hex.len(), 7, "{a}");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{a}"
        );
        assert_ne!(a, super::generate());
    }
}
