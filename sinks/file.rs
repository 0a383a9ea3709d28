//! `file`: `file:///path/to/app.log`. Picked by the `file` scheme.
//!
//! The command's stdout and stderr share one pipe, in the order it wrote
//! them; psdock appends what comes out of it to the log (created 0640, never
//! through a symlink), with the prefix if any, and rotates the log with
//! `-log-rotate` (see `crate::stdio::rotate`). stdin is /dev/null: a file
//! is not interactive.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use crate::plugin::{
    always_usable, Descriptor, Held, LocalFuture, PluginError, Pump, PumpEnd, Stdio, StdioSink,
    StdioSpec, Transfer,
};
use crate::stdio::prefix::{Prefix, Prefixer};
use crate::stdio::pump::{copy, named, output_pipe, Fd, Stop};
use crate::stdio::rotate::Log;

struct FileSink;

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "file",
        feature: "stdio-file",
        priority: 0,
        summary: "appends stdout and stderr to a file, rotated with -log-rotate",
        probe: always_usable,
        build: Some(|_| Box::new(FileSink)),
    }
}

impl StdioSink for FileSink {
    fn flags(&self) -> &'static [&'static str] {
        &["-log-rotate"]
    }

    fn open<'a>(&'a self, spec: &'a StdioSpec) -> LocalFuture<'a, Result<Stdio, PluginError>> {
        Box::pin(async move {
            let log = Log::open(Path::new(&spec.target), spec.rotate)
                .map_err(|e| format!("-stdio {}: {e}", spec.url))?;
            Ok(Box::new(Opened {
                log,
                prefix: spec.prefix.clone(),
                name: format!("-stdio {}", spec.url),
            })
            .reopen()?)
        })
    }
}

/// The log, open: each container (a restart's too) gets a pipe of its own
/// into it, so that the rotation carries on across them.
struct Opened {
    log: Log,
    prefix: Option<Prefix>,
    /// `-stdio URL`, for a message on a failure.
    name: String,
}

impl Held for Opened {
    fn reopen(self: Box<Self>) -> io::Result<Stdio> {
        let (r, w) = output_pipe()?;
        let null = std::fs::File::open("/dev/null")?;
        Ok(Stdio {
            child: [Some(null.into()), Some(w.try_clone()?), Some(w)],
            tty: None,
            pump: Some(Box::new(FilePump {
                pipe: r,
                log: self.log,
                prefix: self.prefix,
                name: self.name,
            })),
        })
    }
}

struct FilePump {
    pipe: OwnedFd,
    log: Log,
    prefix: Option<Prefix>,
    name: String,
}

impl Pump for FilePump {
    fn start(self: Box<Self>, _: Option<OwnedFd>) -> io::Result<Transfer> {
        let FilePump {
            pipe,
            mut log,
            prefix,
            name,
        } = *self;
        let pipe = Fd::new(pipe)?;
        let mut prefixer = Prefixer::new(prefix.clone());
        Ok(Transfer {
            done: Box::pin(async move {
                match copy(&pipe, &mut prefixer, &mut log).await {
                    Stop::Write(e) => PumpEnd::PeerGone(named(&name, e)),
                    Stop::End | Stop::Read(_) => {
                        PumpEnd::Drained(Some(Box::new(Opened { log, prefix, name })))
                    }
                }
            }),
            resize: None,
            raised: None,
        })
    }
}
