//! The attacker's hand inside a container: makes one raw system call and
//! prints `ok VALUE` or `errno N`, then exits 0 (so a filter that killed it
//! instead shows as a death by SIGSYS). Not a module of the test binary:
//! seccomp.rs compiles it with rustc, statically, into the test image, which
//! has no C library of its own.
//!
//! Usage: syscall-probe CALL [ARG]

use std::ffi::CString;

extern "C" {
    fn syscall(nr: i64, ...) -> i64;
}

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const MKDIRAT: i64 = 258;
    pub const SOCKET: i64 = 41;
    pub const PERSONALITY: i64 = 135;
    pub const UNSHARE: i64 = 272;
    pub const CLONE: i64 = 56;
    pub const CLONE3: i64 = 435;
    pub const ADD_KEY: i64 = 248;
    pub const KEYCTL: i64 = 250;
    pub const IO_URING_SETUP: i64 = 425;
    pub const BPF: i64 = 321;
    pub const PERF_EVENT_OPEN: i64 = 298;
    pub const USERFAULTFD: i64 = 323;
    pub const EXIT_GROUP: i64 = 231;
    pub const GETPID: i64 = 39;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const MKDIRAT: i64 = 34;
    pub const SOCKET: i64 = 198;
    pub const PERSONALITY: i64 = 92;
    pub const UNSHARE: i64 = 97;
    pub const CLONE: i64 = 220;
    pub const CLONE3: i64 = 435;
    pub const ADD_KEY: i64 = 217;
    pub const KEYCTL: i64 = 219;
    pub const IO_URING_SETUP: i64 = 425;
    pub const BPF: i64 = 280;
    pub const PERF_EVENT_OPEN: i64 = 241;
    pub const USERFAULTFD: i64 = 282;
    pub const EXIT_GROUP: i64 = 94;
    pub const GETPID: i64 = 172;
}

const KEY_SPEC_USER_KEYRING: i64 = -4;
const CLONE_NEWUSER: i64 = 0x1000_0000;
const SIGCHLD: i64 = 17;
const AT_FDCWD: i64 = -100;

/// A child made by a fork-like clone leaves at once, without touching
/// anything the parent owns.
unsafe fn leave_if_child(r: i64) {
    if r == 0 {
        syscall(nr::EXIT_GROUP, 0i64);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let c = |s: &str| CString::new(s).unwrap();
    // SAFETY: each call gets arguments of the kinds the kernel expects,
    // pointing at buffers that outlive it.
    let r = unsafe {
        match arg(0).as_str() {
            "add_key" => {
                let (kind, desc) = (c("user"), c(&arg(1)));
                let payload = b"secret from a container";
                syscall(
                    nr::ADD_KEY,
                    kind.as_ptr(),
                    desc.as_ptr(),
                    payload.as_ptr(),
                    payload.len(),
                    KEY_SPEC_USER_KEYRING,
                )
            }
            // KEYCTL_GET_KEYRING_ID of the user keyring: host root's, if reached.
            "keyctl" => syscall(nr::KEYCTL, 0i64, KEY_SPEC_USER_KEYRING, 0i64),
            "unshare-user" => syscall(nr::UNSHARE, CLONE_NEWUSER),
            "clone-user" => {
                let r = syscall(nr::CLONE, CLONE_NEWUSER | SIGCHLD, 0i64, 0i64, 0i64, 0i64);
                leave_if_child(r);
                r
            }
            "clone3" => {
                // struct clone_args, version 0: flags, pidfd, child_tid,
                // parent_tid, exit_signal, stack, stack_size, tls.
                let args: [u64; 8] = [0, 0, 0, 0, SIGCHLD as u64, 0, 0, 0];
                let r = syscall(nr::CLONE3, args.as_ptr(), 64i64);
                leave_if_child(r);
                r
            }
            "io_uring_setup" => {
                let params = [0u8; 120];
                syscall(nr::IO_URING_SETUP, 1i64, params.as_ptr())
            }
            "bpf" => {
                // BPF_MAP_CREATE of a one-entry array map.
                let attr: [u32; 8] = [2, 4, 4, 1, 0, 0, 0, 0];
                syscall(nr::BPF, 0i64, attr.as_ptr(), 32i64)
            }
            "perf_event_open" => {
                // A software clock on this very process, user space only:
                // what perf_event_paranoid 2 allows anyone.
                let mut attr = [0u64; 16];
                attr[0] = 1 | (128 << 32); // PERF_TYPE_SOFTWARE, size
                attr[1] = 1; // PERF_COUNT_SW_TASK_CLOCK
                attr[5] = 1 << 5 | 1 << 6; // exclude_kernel, exclude_hv
                syscall(nr::PERF_EVENT_OPEN, attr.as_ptr(), 0i64, -1i64, -1i64, 0i64)
            }
            // UFFD_USER_MODE_ONLY: allowed without privilege since 5.11.
            "userfaultfd" => syscall(nr::USERFAULTFD, 1i64),
            "socket-vsock" => syscall(nr::SOCKET, 40i64, 1i64, 0i64),
            "socket-unix" => syscall(nr::SOCKET, 1i64, 1i64, 0i64),
            "personality" => syscall(nr::PERSONALITY, i64::from_str_radix(&arg(1), 16).unwrap()),
            "mkdir" => syscall(nr::MKDIRAT, AT_FDCWD, c(&arg(1)).as_ptr(), 0o755i64),
            // The same calls through x32, the second ABI of x86_64.
            "x32-mkdir" => syscall(
                0x4000_0000 | nr::MKDIRAT,
                AT_FDCWD,
                c(&arg(1)).as_ptr(),
                0o755i64,
            ),
            "x32-getpid" => syscall(0x4000_0000 | nr::GETPID),
            "i386-getpid" => i386_getpid(),
            other => panic!("unknown call {other}"),
        }
    };
    if r < 0 {
        println!("errno {}", std::io::Error::last_os_error().raw_os_error().unwrap());
    } else {
        println!("ok {r}");
    }
}

/// getpid through `int 0x80`: the i386 ABI, from a 64-bit process.
#[cfg(target_arch = "x86_64")]
fn i386_getpid() -> i64 {
    let mut eax: i64 = 20;
    // SAFETY: getpid takes no argument and touches no memory.
    unsafe {
        std::arch::asm!("int 0x80", inout("rax") eax,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _)
    };
    let eax = eax as i32 as i64;
    if eax < 0 {
        // The kernel's raw -errno; make it look like libc's.
        unsafe { *libc_errno() = -eax as i32 };
        return -1;
    }
    eax
}

#[cfg(target_arch = "x86_64")]
extern "C" {
    #[link_name = "__errno_location"]
    fn libc_errno() -> *mut i32;
}

#[cfg(not(target_arch = "x86_64"))]
fn i386_getpid() -> i64 {
    panic!("no i386 ABI here")
}
