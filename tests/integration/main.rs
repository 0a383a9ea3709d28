//! psdock's integration tests: real containers from a busybox image built by the
//! suite, as root. One test binary; one module per area.

mod util;
// A recording HTTP server on loopback for the web hook tests.
mod hook;

// Command line forms, bad input and what it leaves behind.
mod cli;
// -web-hook: order, payloads, signature, failing and hanging hooks.
mod notify;
// -bind-port with every port probe.
mod ports;
