//! psdock's integration tests: real containers from a busybox image built by the
//! suite, as root. One test binary; one module per area.

mod util;

// Command line forms, bad input and what it leaves behind.
mod cli;

// State records, psdock-ls, and reclaiming what a killed psdock left.
mod records;

// psdock-exec: entering a running container.
mod exec;
