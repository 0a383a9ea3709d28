//! What the log sinks (`journald://`, `syslog://` and its network forms)
//! share: the command's stdout and stderr on two pipes, cut into lines that
//! are delivered one message each, with the stream told by the message's
//! priority; the `?tag=`/`?facility=` query; and the hold-on-failure policy
//! of the file sink.
//!
//! Holding: a message that cannot be delivered is retried until it is. Nothing
//! more is read from the command meanwhile, so its pipes fill and its writes
//! block: the command is held, not killed, no line is dropped, and memory
//! stays at two read buffers and two partial lines. psdock says so once on
//! stderr, and again when delivery resumes.
//!
//! No allocation per line: a whole line found in a read is handed to the sink
//! where it lies; only the part of a line cut by the end of a read is carried,
//! in a buffer reused from line to line.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use super::prefix::Prefix;
use super::pump::{output_pipe, Fd, BUF};
use crate::plugin::{PumpEnd, Stdio, Transfer};

/// How long a failed delivery waits before it tries again.
const RETRY: Duration = Duration::from_millis(250);

/// Takes one message at a time; returns once it is delivered, or gathered
/// for [`Deliver::flush`] (retrying, and holding the command, as long as it
/// takes).
#[allow(async_fn_in_trait)]
pub trait Deliver {
    /// `stderr`: which stream the line came from. The message is `prefix`
    /// then `text`, without the newline.
    async fn deliver(&mut self, stderr: bool, prefix: &[u8], text: &[u8]);

    /// The end of what one read brought: a sink that gathers messages sends
    /// them now.
    async fn flush(&mut self) {}

    /// The command's output has all been handed over (and flushed).
    async fn finish(&mut self) {}
}

/// The container's descriptors for a log sink: stdin `/dev/null`, stdout and
/// stderr on two pipes; returns psdock's ends too (stdout's, stderr's).
pub fn pipes() -> io::Result<([Option<OwnedFd>; 3], [OwnedFd; 2])> {
    let (out_r, out_w) = output_pipe()?;
    let (err_r, err_w) = output_pipe()?;
    let null = std::fs::File::open("/dev/null")?;
    Ok((
        [Some(null.into()), Some(out_w), Some(err_w)],
        [out_r, err_r],
    ))
}

/// A [`Stdio`] whose pump cuts the two pipes into lines for `sink`; a line
/// longer than `max` bytes goes out in pieces of `max`.
pub fn stdio<D: Deliver + 'static>(
    sink: D,
    prefix: Option<Prefix>,
    max: usize,
) -> io::Result<Stdio> {
    let (child, ours) = pipes()?;
    Ok(Stdio {
        child,
        tty: None,
        pump: Some(Box::new(LinePump {
            pipes: ours,
            sink,
            prefix,
            max,
        })),
    })
}

struct LinePump<D> {
    pipes: [OwnedFd; 2],
    sink: D,
    prefix: Option<Prefix>,
    max: usize,
}

impl<D: Deliver + 'static> crate::plugin::Pump for LinePump<D> {
    fn start(self: Box<Self>, _: Option<OwnedFd>) -> io::Result<Transfer> {
        let LinePump {
            pipes: [out, err],
            mut sink,
            prefix,
            max,
        } = *self;
        let mut out = Side::new(Fd::new(out)?, false, max);
        let mut err = Side::new(Fd::new(err)?, true, max);
        Ok(Transfer {
            done: Box::pin(async move {
                let prefix = prefix.as_ref().map_or(&[][..], Prefix::as_bytes);
                while out.open || err.open {
                    // stdout first when both have data: each is read in
                    // turn as the other waits on its sink, so neither starves.
                    let (side, n) = tokio::select! {
                        biased;
                        n = out.fd.read(&mut out.buf), if out.open => (&mut out, n),
                        n = err.fd.read(&mut err.buf), if err.open => (&mut err, n),
                    };
                    match n {
                        Ok(n) if n > 0 => side.cut(n, prefix, &mut sink).await,
                        _ => {
                            side.open = false;
                            side.flush(prefix, &mut sink).await;
                        }
                    }
                    sink.flush().await;
                }
                sink.finish().await;
                PumpEnd::Drained(None)
            }),
            resize: None,
            raised: None,
        })
    }
}

/// One of the two pipes, with its read buffer and the part of a line that
/// its last read cut.
struct Side {
    fd: Fd,
    stderr: bool,
    open: bool,
    buf: Vec<u8>,
    carry: Vec<u8>,
    max: usize,
}

impl Side {
    fn new(fd: Fd, stderr: bool, max: usize) -> Self {
        Side {
            fd,
            stderr,
            open: true,
            buf: vec![0; BUF],
            carry: Vec::with_capacity(max.min(BUF)),
            max,
        }
    }

    /// Delivers the lines the last read (`n` bytes) completed.
    async fn cut(&mut self, n: usize, prefix: &[u8], sink: &mut impl Deliver) {
        let mut rest = &self.buf[..n];
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest);
            let piece = &rest[..end.unwrap_or(rest.len())];
            if self.carry.is_empty() && end.is_some() && piece.len() <= self.max {
                sink.deliver(self.stderr, prefix, piece).await;
            } else {
                // Carried over, or too long: through the carry buffer,
                // `max` bytes at most at a time.
                let mut piece = piece;
                while self.carry.len() + piece.len() > self.max {
                    let room = self.max - self.carry.len();
                    self.carry.extend_from_slice(&piece[..room]);
                    piece = &piece[room..];
                    sink.deliver(self.stderr, prefix, &self.carry).await;
                    self.carry.clear();
                }
                self.carry.extend_from_slice(piece);
                if end.is_some() {
                    sink.deliver(self.stderr, prefix, &self.carry).await;
                    self.carry.clear();
                }
            }
            rest = match end {
                Some(i) => &rest[i + 1..],
                None => &[],
            };
        }
    }

    /// The pipe ended: its unterminated last line, if any, goes out.
    async fn flush(&mut self, prefix: &[u8], sink: &mut impl Deliver) {
        if !self.carry.is_empty() {
            sink.deliver(self.stderr, prefix, &self.carry).await;
            self.carry.clear();
        }
    }
}

/// Says once that delivery fails (and again when it works), and paces the
/// retries. `what` names the destination in the messages.
pub struct Hold {
    what: String,
    stalled: bool,
}

impl Hold {
    pub fn new(what: String) -> Self {
        Hold {
            what,
            stalled: false,
        }
    }

    /// A delivery failed (`e`: why): waits before the next attempt.
    pub async fn failed(&mut self, e: &dyn std::fmt::Display) {
        if !self.stalled {
            self.stalled = true;
            eprintln!(
                "psdock: {}: {e}; the command is held until its output can be delivered",
                self.what
            );
        }
        tokio::time::sleep(RETRY).await;
    }

    pub fn delivered(&mut self) {
        if self.stalled {
            self.stalled = false;
            eprintln!("psdock: {}: delivering again", self.what);
        }
    }
}

/// The syslog facilities by name, as syslog(3) numbers them.
const FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The facility when `?facility=` is not given.
pub const DAEMON: u8 = 3;

/// The options of a log sink's URL, after `?`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub tag: Option<String>,
    pub facility: Option<u8>,
}

/// Splits `target` into what comes before `?` and the query; `keys` are the
/// options this sink takes.
pub fn query<'a>(target: &'a str, keys: &[&str]) -> Result<(&'a str, Query), String> {
    let (place, options) = target.split_once('?').unwrap_or((target, ""));
    let mut q = Query::default();
    for pair in options.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !keys.contains(&key) {
            return Err(format!(
                "unknown option `{key}` (known: {})",
                keys.join(", ")
            ));
        }
        match key {
            "tag" => {
                // RFC 5424's APP-NAME: 1 to 48 printable ASCII characters.
                if value.is_empty()
                    || value.len() > 48
                    || !value.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(format!(
                        "tag `{value}`: expected 1 to 48 printable ASCII characters, no spaces"
                    ));
                }
                q.tag = Some(value.to_owned());
            }
            _ => {
                let code = FACILITIES
                    .iter()
                    .find(|(name, _)| *name == value)
                    .map(|&(_, code)| code)
                    .ok_or_else(|| {
                        format!("facility `{value}`: expected daemon, user, local0 to local7, ...")
                    })?;
                q.facility = Some(code);
            }
        }
    }
    Ok((place, q))
}

/// The tag: `?tag=`, or else the command's name (`psdock` if it has none
/// that fits a tag).
pub fn tag(q: &Query, command: &str) -> String {
    if let Some(tag) = &q.tag {
        return tag.clone();
    }
    let name: String = command
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(48)
        .collect();
    if name.is_empty() {
        "psdock".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let keys = ["tag", "facility"];
        assert_eq!(query("", &keys), Ok(("", Query::default())));
        assert_eq!(
            query("h:514?tag=web&facility=local3", &keys),
            Ok((
                "h:514",
                Query {
                    tag: Some("web".into()),
                    facility: Some(19)
                }
            ))
        );
        assert!(query("?facility=nope", &keys).is_err());
        assert!(query("?tag=a b", &keys).is_err());
        assert!(query("?tag=", &keys).is_err());
        assert_eq!(
            query("?facility=daemon", &["tag"]).unwrap_err(),
            "unknown option `facility` (known: tag)"
        );
        assert_eq!(tag(&Query::default(), "nginx"), "nginx");
        assert_eq!(tag(&Query::default(), ""), "psdock");
    }

    /// Records what a sink would get.
    struct Seen(Vec<(bool, String)>);

    impl Deliver for Seen {
        async fn deliver(&mut self, stderr: bool, prefix: &[u8], text: &[u8]) {
            let mut m = prefix.to_vec();
            m.extend_from_slice(text);
            self.0.push((stderr, String::from_utf8(m).unwrap()));
        }
    }

    fn cut(reads: &[&str], max: usize) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (r, _w) = output_pipe().unwrap();
            let mut side = Side::new(Fd::new(r).unwrap(), false, max);
            let mut seen = Seen(Vec::new());
            for read in reads {
                side.buf[..read.len()].copy_from_slice(read.as_bytes());
                side.cut(read.len(), b"> ", &mut seen).await;
            }
            side.flush(b"> ", &mut seen).await;
            seen.0.into_iter().map(|(_, m)| m).collect()
        })
    }

    #[test]
    fn one_message_per_line_however_the_reads_fall() {
        assert_eq!(cut(&["a\nb\n"], 100), ["> a", "> b"]);
        assert_eq!(cut(&["he", "llo\nwor", "ld"], 100), ["> hello", "> world"]);
        assert_eq!(cut(&["\n\n"], 100), ["> ", "> "]);
        assert_eq!(cut(&["abcdefg\n"], 3), ["> abc", "> def", "> g"]);
        assert_eq!(cut(&["ab", "cdefg", "h\n"], 3), ["> abc", "> def", "> gh"]);
        assert_eq!(cut(&["abc\n"], 3), ["> abc"]);
    }
}
