//! What the syslog sinks share (`syslog://`, `syslog+udp://`, `syslog+tcp://`
//! in `sinks/syslog.rs`, `syslog+tls://` in `sinks/syslog_tls.rs`): the
//! message formats, the connection to the receiver and its re-dialing.
//!
//! The local socket gets RFC 3164 as the libc `syslog` writes it:
//! `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, in local time. The network forms get
//! RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME TAG PID - - MSG`, in UTC to the
//! microsecond; a datagram each over UDP, octet-counted (RFC 6587: the
//! length, a space, the message) over TCP and TLS (RFC 5425), where the
//! messages of one read from the command go out in one write.
//!
//! The priority is the facility (`daemon` unless `?facility=`) with severity
//! info for stdout, err for stderr. A message that cannot be sent is retried,
//! re-dialing the receiver, holding the command meanwhile
//! (`super::lines`).

use std::io::{self, Write};
use std::os::fd::RawFd;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UdpSocket, UnixDatagram};

use super::lines::{self, Deliver, Hold};
use super::StdioSpec;
use crate::plugin::{LocalFuture, PluginError, Stdio};

/// The longest message text over a datagram (rsyslog's default maximum);
/// a longer line goes out in several messages.
pub const MAX_DATAGRAM_LINE: usize = 8 * 1024;
/// The longest message text over a stream.
pub const MAX_STREAM_LINE: usize = 64 * 1024;

const INFO: u8 = 6;
const ERR: u8 = 3;

/// A connection to the receiver.
pub enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    /// TCP or TLS (messages are octet-counted), with the TCP socket.
    Stream(Pin<Box<dyn Duplex>>, RawFd),
}

/// A TCP or TLS stream.
pub trait Duplex: AsyncRead + AsyncWrite {}

impl<S: AsyncRead + AsyncWrite> Duplex for S {}

/// How long the receiver has to close its side once psdock closed its own.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Conn {
    async fn send(&mut self, message: &[u8]) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.send(message).await.map(drop),
            Conn::Udp(s) => s.send(message).await.map(drop),
            Conn::Stream(s, fd) => {
                closed(*fd)?;
                s.write_all(message).await?;
                // TLS holds records until flushed.
                s.flush().await
            }
        }
    }
}

/// Fails if the receiver has closed its side (its FIN is the next byte to
/// read): a write would still be taken by the kernel, and lost. Receivers
/// send nothing else but TLS records, which are left in place.
fn closed(fd: RawFd) -> io::Result<()> {
    let mut byte = 0u8;
    // SAFETY: a one-byte buffer, valid for the call.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the receiver closed the connection",
        )),
        n if n < 0 => match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            e => Err(e),
        },
        _ => Ok(()),
    }
}

/// Opens a connection for a spec whose target is the receiver's place (the
/// query taken off); called again after a failure.
pub type Dial = for<'a> fn(&'a StdioSpec) -> LocalFuture<'a, Result<Conn, PluginError>>;

/// The message forms.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// RFC 3164, as the libc writes to the local socket.
    Local,
    /// RFC 5424 in a datagram.
    Datagram,
    /// RFC 5424, octet-counted.
    Stream,
}

/// Opens `spec` with `dial`: the query is checked, the receiver dialed
/// before the container exists.
pub async fn open(spec: &StdioSpec, dial: Dial, form: Form) -> Result<Stdio, PluginError> {
    let fail = |why: String| format!("-stdio {}: {why}", spec.url);
    let (place, query) = lines::query(&spec.target, &["tag", "facility"]).map_err(fail)?;
    if form == Form::Local && !place.is_empty() {
        return Err(fail("expected syslog:// or syslog://?tag=NAME&facility=NAME".into()).into());
    }
    let prefix = spec.prefix.clone();
    let mut spec = spec.clone();
    spec.target = place.to_owned();
    let conn = dial(&spec).await?;
    let facility = query.facility.unwrap_or(lines::DAEMON);
    let sink = Syslog {
        hold: Hold::new(format!("-stdio {}", spec.url)),
        conn: Some(conn),
        dial,
        stamp: Stamp::default(),
        head: [
            header(form, facility * 8 + INFO, &query, &spec),
            header(form, facility * 8 + ERR, &query, &spec),
        ],
        form,
        out: Vec::new(),
        spec,
    };
    let max = match form {
        Form::Stream => MAX_STREAM_LINE,
        _ => MAX_DATAGRAM_LINE,
    };
    Ok(lines::stdio(sink, prefix, max)?)
}

/// The parts of a message that do not change, before and after the
/// timestamp: for RFC 3164 `<PRI>` and ` TAG[PID]: `, for RFC 5424 `<PRI>1 `
/// and ` HOST TAG PID - - `.
fn header(form: Form, pri: u8, query: &lines::Query, spec: &StdioSpec) -> (Vec<u8>, Vec<u8>) {
    let tag = lines::tag(query, &spec.origin.command);
    let pid = std::process::id();
    match form {
        Form::Local => (format!("<{pri}>").into(), format!(" {tag}[{pid}]: ").into()),
        _ => {
            let host = nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
                .unwrap_or_else(|| "-".into());
            (
                format!("<{pri}>1 ").into(),
                format!(" {host} {tag} {pid} - - ").into(),
            )
        }
    }
}

/// The timestamp of the current second, formatted once per second.
#[derive(Default)]
struct Stamp {
    second: i64,
    text: Vec<u8>,
}

impl Stamp {
    /// Writes the current time in `form`'s format to `out`.
    fn write(&mut self, form: Form, out: &mut Vec<u8>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let second = now.as_secs() as i64;
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text.clear();
            // SAFETY: a zeroed tm is valid; the *_r calls fill it.
            let mut tm: libc::tm = unsafe { std::mem::zeroed() };
            let t = second as libc::time_t;
            if form == Form::Local {
                // SAFETY: both pointers are valid for the call.
                unsafe { libc::localtime_r(&t, &mut tm) };
                const MONTHS: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                let _ = write!(
                    self.text,
                    "{} {:2} {:02}:{:02}:{:02}",
                    MONTHS[tm.tm_mon.clamp(0, 11) as usize],
                    tm.tm_mday,
                    tm.tm_hour,
                    tm.tm_min,
                    tm.tm_sec
                );
            } else {
                // SAFETY: both pointers are valid for the call.
                unsafe { libc::gmtime_r(&t, &mut tm) };
                let _ = write!(
                    self.text,
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                    tm.tm_year + 1900,
                    tm.tm_mon + 1,
                    tm.tm_mday,
                    tm.tm_hour,
                    tm.tm_min,
                    tm.tm_sec
                );
            }
        }
        out.extend_from_slice(&self.text);
        if form != Form::Local {
            let _ = write!(out, ".{:06}Z", now.subsec_micros());
        }
    }
}

struct Syslog {
    spec: StdioSpec,
    dial: Dial,
    /// None after a failure, until re-dialed.
    conn: Option<Conn>,
    form: Form,
    stamp: Stamp,
    /// What goes before and after the timestamp, for stdout and stderr.
    head: [(Vec<u8>, Vec<u8>); 2],
    /// The messages being sent, reused from one batch to the next.
    out: Vec<u8>,
    hold: Hold,
}

impl Syslog {
    /// Appends the message to `out`, octet-counted on a stream.
    fn build(&mut self, stderr: bool, prefix: &[u8], text: &[u8]) {
        let (before, after) = &self.head[usize::from(stderr)];
        if self.form == Form::Stream {
            let len = before.len() + STAMP_5424 + after.len() + prefix.len() + text.len();
            let _ = write!(self.out, "{len} ");
        }
        let start = self.out.len();
        self.out.extend_from_slice(before);
        self.stamp.write(self.form, &mut self.out);
        debug_assert!(
            self.form == Form::Local || self.out.len() - start - before.len() == STAMP_5424
        );
        self.out.extend_from_slice(after);
        self.out.extend_from_slice(prefix);
        self.out.extend_from_slice(text);
    }

    /// Sends `out` whole, re-dialing and holding as long as it takes.
    async fn send(&mut self) {
        if self.out.is_empty() {
            return;
        }
        loop {
            let conn = match &mut self.conn {
                Some(conn) => conn,
                None => match (self.dial)(&self.spec).await {
                    Ok(conn) => self.conn.insert(conn),
                    Err(e) => {
                        // The dialer's message names `-stdio` already.
                        let e = e.to_string();
                        let why = e.split_once(": ").map_or(e.as_str(), |(_, why)| why);
                        self.hold.failed(&why).await;
                        continue;
                    }
                },
            };
            match conn.send(&self.out).await {
                Ok(()) => break,
                Err(e) => {
                    self.conn = None;
                    self.hold.failed(&crate::error::plain(&e)).await;
                }
            }
        }
        self.out.clear();
        self.hold.delivered();
    }
}

/// The length of an RFC 5424 timestamp: `2026-12-05T01:52:03.123456Z`.
const STAMP_5424: usize = 27;

/// On a stream, messages are gathered up to this size, or to the end of what
/// one read from the command brought, and written together.
const BATCH: usize = 64 * 1024;

impl Deliver for Syslog {
    async fn deliver(&mut self, stderr: bool, prefix: &[u8], text: &[u8]) {
        self.build(stderr, prefix, text);
        if self.form != Form::Stream || self.out.len() >= BATCH {
            self.send().await;
        }
    }

    async fn flush(&mut self) {
        self.send().await;
    }

    /// Closes a stream cleanly (a TLS close_notify, a FIN), then reads what
    /// the receiver sent (TLS session tickets) until it closes: closing with
    /// unread data would reset the connection, and the receiver could lose
    /// the last messages.
    async fn finish(&mut self) {
        self.send().await;
        if let Some(Conn::Stream(s, _)) = &mut self.conn {
            let drain = async {
                s.shutdown().await?;
                let mut buf = [0u8; 4096];
                while s.read(&mut buf).await? > 0 {}
                io::Result::Ok(())
            };
            let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
        }
    }
}
