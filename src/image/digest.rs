//! sha256 over whatever streams through a reader: how every blob and tarball
//! is checked as it is unpacked, without reading it twice.

use std::io::{self, Read};

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

/// How often, in bytes read, a [`Digesting`] looks for a pending SIGINT or
/// SIGTERM: a system call per MiB is nothing beside hashing it, and a MiB
/// takes milliseconds, so psdock answers at once even to a layer that never ends
/// (a gzip bomb: its compressed and its unpacked stream are both read through one).
const STOP_EVERY: u64 = 1 << 20;

/// Hashes, counts and reports progress for every byte read through it, and
/// fails every read once SIGINT or SIGTERM is pending.
pub struct Digesting<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    progress: ProgressBar,
    next_check: u64,
    stopped: Option<i32>,
}

impl<R: Read> Digesting<R> {
    pub fn new(inner: R, progress: ProgressBar) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            read: 0,
            progress,
            next_check: 0,
            stopped: None,
        }
    }

    /// Reads the rest, so that the digest covers all of it even when the
    /// consumer stopped early (an error, or a tar end marker before the end).
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((format!("{:x}", self.hasher.finalize()), self.read))
    }
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read >= self.next_check {
            self.next_check = self.read.saturating_add(STOP_EVERY);
            self.stopped = self.stopped.or_else(crate::signals::stop_pending);
        }
        if let Some(sig) = self.stopped {
            return Err(io::Error::other(format!(
                "stopped by {}",
                crate::signals::name(sig)
            )));
        }
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// The sha256 of all that `r` yields, as lowercase hex.
pub fn of_reader(r: impl Read) -> io::Result<String> {
    Ok(Digesting::new(r, ProgressBar::hidden()).finish()?.0)
}

/// The sha256 of bytes in memory, as lowercase hex.
pub fn of_bytes(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_cover_what_was_not_consumed() {
        let data = b"hello world, and then some".to_vec();
        let mut r = Digesting::new(&data[..], ProgressBar::hidden());
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        let (hex, n) = r.finish().unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(hex, of_bytes(&data));
        assert_eq!(
            of_bytes(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
