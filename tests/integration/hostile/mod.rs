//! The attacker's tests: a hostile image or command tries a known way out of
//! the container, and the host's files, devices, keys, binaries and
//! privileges stay out of reach. One file per class of hole, each test
//! playing the attacker on a real container.

// Hole 6: the system-call filter refuses keyrings, user namespaces, io_uring, bpf, perf, userfaultfd, VSOCK.
mod seccomp;
