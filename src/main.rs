//! The `psdock` binary.
//!
//! It starts without std's runtime set-up (`no_main`). That set-up's main cost
//! is the stack-overflow guard: glibc finds the main thread's stack by reading
//! and `sscanf`-parsing `/proc/self/maps`, which pulls glibc's stdio and scanf
//! code into every supervisor (about 300 KiB of its resident memory) and adds
//! file I/O to every start. A stack overflow still ends psdock with SIGSEGV, only
//! without std's message. What else std's set-up does and psdock relies on is done
//! here; `std::env::args_os` works without it (glibc hands argv to std's own
//! `.init_array` hook).
#![no_main]

use std::os::raw::{c_char, c_int};

#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    reopen_closed_stdio();
    // As std's runtime does: a write to a closed pipe is an EPIPE error that
    // psdock handles, not a signal that kills it. The container's init resets
    // the disposition before exec.
    // SAFETY: setting a disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // `exit` (not a return) runs std's clean-up, which flushes stdout.
    std::process::exit(psdock::run::main(std::env::args_os()))
}

/// A closed fd 0, 1 or 2 is opened on `/dev/null`, as std's runtime does:
/// otherwise the first file psdock opens would take its number and receive
/// output meant for the terminal.
fn reopen_closed_stdio() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
        {
            // The lowest free number is `fd`: the ones below it are open.
            // SAFETY: a plain open of a constant, NUL-terminated path.
            if unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } == -1 {
                std::process::abort();
            }
        }
    }
}
