//! systemd's service notifications (sd_notify(3)). Under a `Type=notify` unit,
//! `NOTIFY_SOCKET` names a unix datagram socket, a path or `@name` in the
//! abstract namespace, where psdock says which process is the service
//! (`MAINPID`), when it is ready (`READY=1`, at the moment the run counts as
//! `running`), what it is doing (`STATUS=`), that it is stopping
//! (`STOPPING=1`), and keeps the watchdog fed (`WATCHDOG=1` every half
//! `WATCHDOG_USEC`). Without `NOTIFY_SOCKET` none of it exists: one look at the
//! environment is the whole cost.
//!
//! Written here rather than with the `sd-notify` crate, which opens a socket
//! and formats a message at every call: the watchdog's ping would allocate
//! and make a system call more each time, and a send could not be bounded in
//! time. The socket is opened once, its address resolved once, and every
//! message but `MAINPID` and a restart's is a constant. No `SCM_CREDENTIALS`
//! either: libsystemd adds them only when it speaks for another process; for
//! the sender's own the kernel stamps its pid, uid and gid itself.

use std::cell::Cell;
use std::ffi::OsString;
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use nix::sys::time::{TimeVal, TimeValLike};

/// The longest a send may block on a full queue (systemd busy): the
/// supervisor must keep forwarding signals.
const SEND_TIMEOUT_SECS: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SdNotifyError {
    #[error("NOTIFY_SOCKET {0:?}: not an absolute path or an @abstract socket name")]
    Address(OsString),
    #[error("NOTIFY_SOCKET {0:?}: cannot open a socket for it: {1}")]
    Socket(OsString, nix::Error),
    #[error("WATCHDOG_USEC {0:?}: not a whole number of microseconds above 0")]
    Watchdog(OsString),
}

pub struct SdNotify {
    fd: OwnedFd,
    addr: UnixAddr,
    /// `NOTIFY_SOCKET` as given, for messages.
    name: OsString,
    /// Half of `WATCHDOG_USEC`, when the watchdog is psdock's to feed.
    ping_every: Option<Duration>,
    stopping: Cell<bool>,
    warned: Cell<bool>,
}

impl SdNotify {
    /// The notifier `NOTIFY_SOCKET` asks for (none when unset or empty). A
    /// malformed address or watchdog period is psdock's error: systemd would
    /// otherwise wait for a `READY=1` that never comes.
    pub fn from_env() -> Result<Option<Self>, SdNotifyError> {
        let name = match std::env::var_os("NOTIFY_SOCKET") {
            Some(name) if !name.is_empty() => name,
            _ => return Ok(None),
        };
        let addr = match name.as_bytes() {
            [b'@', abstract_name @ ..] => UnixAddr::new_abstract(abstract_name),
            [b'/', ..] => UnixAddr::new(Path::new(&name)),
            _ => return Err(SdNotifyError::Address(name)),
        }
        .map_err(|_| SdNotifyError::Address(name.clone()))?;
        let ping_every = watchdog_period(
            std::env::var_os("WATCHDOG_USEC"),
            std::env::var_os("WATCHDOG_PID"),
        )?;
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .and_then(|fd| {
            socket::setsockopt(
                &fd,
                sockopt::SendTimeout,
                &TimeVal::seconds(SEND_TIMEOUT_SECS),
            )?;
            Ok(fd)
        })
        .map_err(|e| SdNotifyError::Socket(name.clone(), e))?;
        Ok(Some(Self {
            fd,
            addr,
            name,
            ping_every,
            stopping: Cell::new(false),
            warned: Cell::new(false),
        }))
    }

    /// psdock is the service's main process, setting the container up.
    pub fn starting(&self) {
        self.send(format!("MAINPID={}\nSTATUS=starting", std::process::id()).as_bytes());
    }

    /// The run counts as running: `-bind-port` is listened on, or the
    /// command was executed.
    pub fn ready(&self) {
        self.send(b"READY=1\nSTATUS=running");
    }

    /// psdock was told to stop, or the command has ended. Said once.
    pub fn stopping(&self) {
        if !self.stopping.replace(true) {
            self.send(b"STOPPING=1\nSTATUS=stopping");
        }
    }

    /// The command has ended and is started again after `delay` (for a
    /// restart policy). The service stays up meanwhile: no `STOPPING=1`.
    pub fn restarting(&self, delay: Duration) {
        // As the flags write it: docker's 100 ms first wait is not "0 s".
        let delay = humantime::format_duration(delay);
        self.send(format!("STATUS=restarting in {delay}").as_bytes());
    }

    /// Feeds the watchdog every half `WATCHDOG_USEC`, from now on, for as
    /// long as it is polled; never ends (pending forever without a watchdog).
    pub async fn keep_watchdog(&self) {
        let Some(every) = self.ping_every else {
            return std::future::pending().await;
        };
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.send(b"WATCHDOG=1");
        }
    }

    fn send(&self, message: &[u8]) {
        let sent = socket::sendto(
            self.fd.as_raw_fd(),
            message,
            &self.addr,
            MsgFlags::MSG_NOSIGNAL,
        );
        // Once: the run goes on either way, and systemd acts on what it
        // missed (a start or watchdog timeout).
        if let Err(e) = sent {
            if !self.warned.replace(true) {
                eprintln!(
                    "psdock: NOTIFY_SOCKET {:?}: cannot send to it: {e}",
                    self.name
                );
            }
        }
    }
}

/// Runs `main` with the watchdog fed beside it, when there is one.
pub async fn watching<T>(notify: Option<&SdNotify>, main: impl Future<Output = T>) -> T {
    match notify {
        Some(notify) if notify.ping_every.is_some() => tokio::select! {
            biased;
            out = main => out,
            () = notify.keep_watchdog() => unreachable!("the watchdog's pings never end"),
        },
        _ => main.await,
    }
}

/// Half of `WATCHDOG_USEC`, unless `WATCHDOG_PID` names another process
/// (the watchdog is then that one's, as sd_watchdog_enabled(3) reads it).
fn watchdog_period(
    usec: Option<OsString>,
    pid: Option<OsString>,
) -> Result<Option<Duration>, SdNotifyError> {
    let Some(usec) = usec else {
        return Ok(None);
    };
    let micros = usec
        .to_str()
        .and_then(|u| u.parse::<u64>().ok())
        .filter(|&u| u > 0)
        .ok_or_else(|| SdNotifyError::Watchdog(usec.clone()))?;
    let ours = pid.is_none_or(|p| p.to_str() == Some(&std::process::id().to_string()));
    Ok(ours.then(|| Duration::from_micros(micros / 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_fed_at_half_its_period_and_only_when_it_is_psdocks() {
        let own = Some(OsString::from(std::process::id().to_string()));
        let usec = || Some(OsString::from("3000000"));
        let half = Some(Duration::from_millis(1500));
        assert_eq!(watchdog_period(usec(), None).unwrap(), half);
        assert_eq!(watchdog_period(usec(), own).unwrap(), half);
        assert_eq!(watchdog_period(usec(), Some("1".into())).unwrap(), None);
        assert_eq!(watchdog_period(None, None).unwrap(), None);
        for bad in ["0", "-5", "1s", ""] {
            assert_eq!(
                watchdog_period(Some(bad.into()), None)
                    .unwrap_err()
                    .to_string(),
                format!("WATCHDOG_USEC {bad:?}: not a whole number of microseconds above 0")
            );
        }
    }
}
