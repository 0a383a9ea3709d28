//! The attacker's tests: a hostile image or command tries a known way out of
//! the container, and the host's files, devices, keys, binaries and
//! privileges stay out of reach. One file per class of hole, each test
//! playing the attacker on a real container.
// Image content against cleanup: trees deeper than the fd limit, /proc or /sys as symlinks.
mod image_cleanup;
// Image content against psdock's memory: a huge /etc/passwd in the image or the container.
mod image_memory;
// Image content against psdock's progress: blobs that are links, FIFOs, overflowing sizes, endless layers.
mod image_hang;
