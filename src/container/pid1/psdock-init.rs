//! `psdock-init`: the program `-init` runs as PID 1 of a container, once the
//! command has been started as its child (`src/container/reaper.rs`). It does
//! tini's job and nothing else: it reaps every process that ends in the
//! container, forwards every signal it receives to the command, and exits with
//! the command's code, 128+N if a signal N ended it.
//!
//! Not a module of psdock: a program of its own, without the standard library
//! or libc, built by `build.rs` with one `rustc` call and carried in psdock's
//! binary, which executes it from a sealed memfd. Its whole address space is
//! this file's code and a page of stack: nothing of psdock's (its memory, its
//! arguments, its binary) is in the container with it. Its system calls are
//! written out here because the program is built outside cargo, where no crate
//! (`syscalls` would do) can be linked in.
//!
//! What it starts with, all set by psdock's side before the exec: every signal
//! blocked (so that none is lost or acted on before the loop waits for it), no
//! capability, the command's user, no_new_privs, the parent's death signal,
//! no descriptor, and the command stopped at its exec, traced by this process.
//! The command is its first child, pid 2 of the new PID namespace.

#![no_std]
#![no_main]

use core::arch::{asm, global_asm};

/// The command: the first process PID 1 started (checked by psdock's side).
const COMMAND: usize = 2;

const PR_SET_DUMPABLE: usize = 4;
const PR_SET_NAME: usize = 15;
const PTRACE_DETACH: usize = 17;
const SIGKILL: usize = 9;
const SIGCHLD: usize = 17;
const WNOHANG: usize = 1;
const WALL: usize = 0x4000_0000;
const ESRCH: isize = 3;

#[cfg(target_arch = "x86_64")]
mod sys {
    // arch/x86/entry/syscalls/syscall_64.tbl
    pub const PRCTL: usize = 157;
    pub const PTRACE: usize = 101;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const EXIT_GROUP: usize = 231;

    /// A system call's raw result: a negative errno on failure.
    pub unsafe fn call(nr: usize, a: [usize; 4]) -> isize {
        let ret: isize;
        // SAFETY: the caller's; the kernel clobbers rcx and r11 only.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3],
                lateout("rcx") _, lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }
}

#[cfg(target_arch = "aarch64")]
mod sys {
    // include/uapi/asm-generic/unistd.h
    pub const PRCTL: usize = 167;
    pub const PTRACE: usize = 117;
    pub const RT_SIGTIMEDWAIT: usize = 137;
    pub const WAIT4: usize = 260;
    pub const KILL: usize = 129;
    pub const EXIT_GROUP: usize = 94;

    /// A system call's raw result: a negative errno on failure.
    pub unsafe fn call(nr: usize, a: [usize; 4]) -> isize {
        let ret: isize;
        // SAFETY: the caller's.
        unsafe {
            core::arch::asm!(
                "svc 0",
                in("x8") nr,
                inlateout("x0") a[0] as isize => ret,
                in("x1") a[1], in("x2") a[2], in("x3") a[3],
                options(nostack),
            );
        }
        ret
    }
}

// The kernel enters with the stack 16-byte aligned and no return address:
// align it the way a call expects and start.
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym main,
);

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".globl _start",
    "_start:",
    "mov x29, xzr",
    "mov x30, xzr",
    "bl {main}",
    "udf #0",
    main = sym main,
);

fn call(nr: usize, a: [usize; 4]) -> isize {
    // SAFETY: every call below passes integers, or pointers to locals that
    // outlive it.
    unsafe { sys::call(nr, a) }
}

fn exit(code: usize) -> ! {
    call(sys::EXIT_GROUP, [code, 0, 0, 0]);
    loop {
        // Not reached: exit_group does not return.
        unsafe { asm!("", options(nomem, nostack)) };
    }
}

extern "C" fn main() -> ! {
    // The exec made this process dumpable again, and nothing of the container
    // runs yet (the command is stopped): make /proc/1 root's again before it
    // does.
    if call(sys::PRCTL, [PR_SET_DUMPABLE, 0, 0, 0]) < 0 {
        call(sys::KILL, [COMMAND, SIGKILL, 0, 0]);
        exit(125);
    }
    // What `top` shows, instead of the memfd's name cut to 15 bytes.
    call(
        sys::PRCTL,
        [PR_SET_NAME, c"psdock-init".as_ptr() as usize, 0, 0],
    );
    // Let the command go. Not traced (psdock itself under a debugger) or
    // already killed: nothing to let go.
    let r = call(sys::PTRACE, [PTRACE_DETACH, COMMAND, 0, 0]);
    if r < 0 && r != -ESRCH {
        call(sys::KILL, [COMMAND, SIGKILL, 0, 0]);
    }
    let all: u64 = !0;
    loop {
        let sig = call(
            sys::RT_SIGTIMEDWAIT,
            [
                &all as *const u64 as usize,
                0,
                0,
                core::mem::size_of::<u64>(),
            ],
        );
        match sig {
            s if s == SIGCHLD as isize => reap(),
            // Interrupted (a stop and continue of the init): wait again.
            s if s <= 0 => {}
            // By pid: it cannot have been reused, since only this loop reaps it.
            s => {
                call(sys::KILL, [COMMAND, s as usize, 0, 0]);
            }
        }
    }
}

/// Reaps every child that has ended; leaves with the command's code once it
/// is among them.
fn reap() {
    loop {
        let mut status: i32 = 0;
        let pid = call(
            sys::WAIT4,
            [
                usize::MAX,
                &mut status as *mut i32 as usize,
                WNOHANG | WALL,
                0,
            ],
        );
        if pid <= 0 {
            return;
        }
        if pid as usize == COMMAND {
            let signal = status & 0x7f;
            exit(if signal == 0 {
                ((status >> 8) & 0xff) as usize
            } else {
                128 + signal as usize
            });
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(125)
}
