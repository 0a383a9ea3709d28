//! psdock's integration tests: real containers from a busybox image built by the
//! suite, as root. One test binary; one module per area.

mod util;

// Command line forms, bad input and what it leaves behind.
mod cli;

// State records, psdock-ls, and reclaiming what a killed psdock left.
mod records;

// psdock-exec: entering a running container.
mod exec;

// The inherit sink on a real terminal: pty, size, raw mode restored.
mod stdio_tty;
// The inherit sink on pipes, the per-line prefix, bad stdio flags.
mod stdio_pipes;
// The file sink: appending, symlinks, rotation, retention, a full disk.
mod stdio_file;
// The tcp and tls sinks against real loopback listeners.
mod stdio_net;
