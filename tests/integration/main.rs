//! psdock's integration tests: real containers from a busybox image built by the
//! suite, as root. One test binary; one module per area.

mod util;
// A recording HTTP server on loopback for the web hook tests.
mod hook;

// Bad values: exit 125, one line naming flag and value, nothing left behind.
mod bad_input;
// Bind mounts: ro/rw, created targets, symlinks that try to escape the rootfs.
mod binds;
// Resource limits: a cgroup per container, applied, joined and removed.
mod cgroups;
// Command line forms: spellings, `-flag=value`, last wins, where the command starts.
mod cli;
// Namespaces, PID 1, system mounts and the exit codes of the command.
mod container;
// Rootfs drivers: the listing, an explicit choice, no fallback.
mod drivers;
// Man pages and shell completions from examples/gen-docs, against real shells.
mod docs;
// psdock-exec: entering a running container.
mod exec;
// Health checks: states in psdock-ls and on the web hook, timeouts, the image's check.
mod health;
// Capabilities, no_new_privs, masked /proc, clean fds and signals, PDEATHSIG.
mod hardening;
// -init: reaping, signal forwarding, exit codes, the terminal, the init's privileges.
mod init;
// A hostile image or command against the container boundary, one file per hole.
mod hostile;
// -net host|none|bridge, -publish: namespaces, veth pairs, a real bridge, NAT.
mod net;
// The resolv.conf of a container with a network of its own, from a host file the test binds.
mod net_dns;
// -web-hook: order, payloads, signature, failing and hanging hooks.
mod notify;
// The overlay rootfs: mount options and teardown.
mod overlay;
// OCI layouts and rootfs tarballs: layers, whiteouts, config, the cache, refusals.
mod oci;
// -bind-port with every port probe.
mod ports;
// State records, psdock-ls, and reclaiming what a killed psdock left.
mod records;
// -restart: attempts in fresh rootfs, the backoff, stopping, the hook and psdock-ls.
mod restart;
// ROOTFS: accepted forms, the lock, the untouched image, the view from the host.
mod rootfs;
// Forwarding, the PID-1 rule, the kill timeout, held signals, the end of the init.
mod signals;
// Under systemd: NOTIFY_SOCKET's notifications, the watchdog, the unit template.
mod systemd;
// -user, -env, -env-file, HOME, -cwd and -hostname.
mod user_env;

// The inherit sink on a real terminal: pty, size, raw mode restored.
mod stdio_tty;
// The inherit sink on pipes, the per-line prefix, bad stdio flags.
mod stdio_pipes;
// The file sink: appending, symlinks, rotation, retention, a full disk.
mod stdio_file;
// The tcp sink against real loopback listeners.
mod stdio_net;
// -stdio tls://: trust, pinning, mutual TLS, certificate refusals.
mod stdio_tls;
// -stdio journald:// against a real systemd-journald in a private mount namespace.
mod stdio_journald;
// -stdio syslog://, syslog+udp://, +tcp://, +tls:// against real receivers.
mod stdio_syslog;
