//! `-stdout-prefix PREFIX[:COLOR]`: the prefix put at the start of every line.
//!
//! A line gets its prefix when its first byte goes out, never when its newline
//! does: so several lines in one read, a line split across reads and an
//! unterminated last line each get exactly one, and nothing is ever held back
//! waiting for the end of a line.

/// The colours the seed names, with their ANSI foreground codes.
pub const COLOURS: [(&str, u8); 7] = [
    ("white", 37),
    ("green", 32),
    ("blue", 34),
    ("magenta", 35),
    ("yellow", 33),
    ("cyan", 36),
    ("red", 31),
];

/// The bytes put before each line: the prefix, wrapped in bold colour and a
/// reset when a colour was asked for and colour is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(Box<[u8]>);

impl Prefix {
    /// `PREFIX:COLOR` takes the word after the last `:` as a colour when it is
    /// made of letters only: a known colour is used, an unknown one is an
    /// error. Anything else after a `:` (`web:8080`, `a: `) stays part of the
    /// prefix. `colour`: false when NO_COLOR is set.
    pub fn parse(value: &str, colour: bool) -> Result<Prefix, String> {
        let (text, code) = match value.rsplit_once(':') {
            Some((text, word))
                if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                let code = COLOURS
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(word))
                    .map(|&(_, code)| code)
                    .ok_or_else(|| {
                        let known: Vec<&str> = COLOURS.iter().map(|(n, _)| *n).collect();
                        format!("unknown colour `{word}` (known: {})", known.join(", "))
                    })?;
                (text, Some(code))
            }
            _ => (value, None),
        };
        if text.is_empty() {
            return Err("the prefix is empty".into());
        }
        Ok(Prefix(match code.filter(|_| colour) {
            Some(code) => format!("\x1b[1;{code}m{text}\x1b[0m").into_bytes().into(),
            None => text.as_bytes().into(),
        }))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Puts the prefix in front of each line of a byte stream. The output buffer
/// is reused from one read to the next: no allocation per line or per read
/// once it has grown to its working size.
pub struct Prefixer {
    prefix: Option<Prefix>,
    at_line_start: bool,
    out: Vec<u8>,
}

impl Prefixer {
    pub fn new(prefix: Option<Prefix>) -> Self {
        Self {
            prefix,
            at_line_start: true,
            out: Vec::new(),
        }
    }

    /// The bytes to write for `input`: `input` itself when there is no prefix.
    pub fn apply<'a>(&'a mut self, input: &'a [u8]) -> &'a [u8] {
        let Some(prefix) = &self.prefix else {
            return input;
        };
        let prefix = prefix.as_bytes();
        self.out.clear();
        let mut rest = input;
        while !rest.is_empty() {
            if self.at_line_start {
                self.out.extend_from_slice(prefix);
            }
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.out.extend_from_slice(&rest[..=i]);
                    rest = &rest[i + 1..];
                    self.at_line_start = true;
                }
                None => {
                    self.out.extend_from_slice(rest);
                    self.at_line_start = false;
                    break;
                }
            }
        }
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(prefix: &str, reads: &[&str]) -> String {
        let mut p = Prefixer::new(Some(Prefix::parse(prefix, false).unwrap()));
        reads
            .iter()
            .map(|r| String::from_utf8(p.apply(r.as_bytes()).to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn one_prefix_per_line_however_the_reads_fall() {
        assert_eq!(run("> ", &["a\nb\nc\n"]), "> a\n> b\n> c\n");
        assert_eq!(run("> ", &["hel", "lo\nwor", "ld\n"]), "> hello\n> world\n");
        assert_eq!(run("> ", &["a\n", "unterminated"]), "> a\n> unterminated");
        assert_eq!(run("> ", &["\n\n", "", "x"]), "> \n> \n> x");
        assert_eq!(run("> ", &["a", "\n", "\n"]), "> a\n> \n");
        assert_eq!(run("> ", &["\r\nb\r\n"]), "> \r\n> b\r\n");
    }

    #[test]
    fn without_a_prefix_bytes_pass_untouched() {
        let mut p = Prefixer::new(None);
        let input = b"a\nb";
        assert!(std::ptr::eq(p.apply(input), &input[..]));
    }

    #[test]
    fn colours_and_no_color() {
        assert_eq!(
            Prefix::parse("web:green", true).unwrap().as_bytes(),
            b"\x1b[1;32mweb\x1b[0m"
        );
        assert_eq!(
            Prefix::parse("web:RED", true).unwrap().as_bytes(),
            b"\x1b[1;31mweb\x1b[0m"
        );
        assert_eq!(
            Prefix::parse("web:green", false).unwrap().as_bytes(),
            b"web"
        );
        assert_eq!(
            Prefix::parse("web:purple", true).unwrap_err(),
            "unknown colour `purple` (known: white, green, blue, magenta, yellow, cyan, red)"
        );
        // NO_COLOR does not make a typo valid.
        assert!(Prefix::parse("web:purple", false).is_err());
    }

    #[test]
    fn a_colon_without_a_colour_word_stays_in_the_prefix() {
        assert_eq!(
            Prefix::parse("web:8080", true).unwrap().as_bytes(),
            b"web:8080"
        );
        assert_eq!(
            Prefix::parse("[web]: ", true).unwrap().as_bytes(),
            b"[web]: "
        );
        assert_eq!(Prefix::parse("a:b:", true).unwrap().as_bytes(), b"a:b:");
        assert_eq!(
            Prefix::parse("a:b:cyan", true).unwrap().as_bytes(),
            b"\x1b[1;36ma:b\x1b[0m"
        );
        assert!(Prefix::parse(":red", true).is_err());
        assert!(Prefix::parse("", true).is_err());
    }
}
