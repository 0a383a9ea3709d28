//! The default filter: docker's default profile (moby `profiles/seccomp`),
//! written out as data. An allow-list: every call not named here fails with
//! EPERM. Names this architecture lacks are skipped, so one list serves
//! x86_64 and aarch64.
//!
//! Where it differs from docker's, on purpose: `ptrace` and
//! `process_vm_readv`/`writev` need CAP_SYS_PTRACE (docker allows them on
//! kernels from 4.8), and `socket`'s and `personality`'s first argument is
//! compared as the `int` the kernel reads.

use super::seccomp::{number, Action, Cond, Op, Profile, Rule};

/// Calls any program may need; none of them reaches past the process's own
/// files, memory, children and sockets, or beyond what its capabilities allow.
#[rustfmt::skip]
const ALLOWED: &[&[&str]] = &[
    // Files and directories, by path or descriptor.
    &[
        "access", "chdir", "chmod", "chown", "close", "close_range", "copy_file_range", "creat",
        "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir",
        "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "flock",
        "fstat", "fstatat", "fstatfs", "fsync", "ftruncate", "futimesat", "getcwd", "getdents",
        "getdents64", "lchown", "link", "linkat", "lseek", "lstat", "mkdir", "mkdirat", "mknod",
        "mknodat", "newfstatat", "open", "openat", "openat2", "pread64", "preadv", "preadv2",
        "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
        "rename", "renameat", "renameat2", "rmdir", "sendfile", "splice", "stat", "statfs",
        "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate",
        "umask", "unlink", "unlinkat", "utime", "utimensat", "utimes", "vmsplice", "write",
        "writev", "cachestat",
    ],
    // Extended attributes (the kernel checks them against capabilities).
    &[
        "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr",
        "listxattr", "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "setxattr",
        "getxattrat", "listxattrat", "removexattrat", "setxattrat",
    ],
    // Waiting on descriptors, and descriptors that deliver events.
    &[
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
        "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark",
        "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "pipe", "pipe2",
        "poll", "ppoll", "pselect6", "select", "signalfd", "signalfd4", "timerfd_create",
        "timerfd_gettime", "timerfd_settime",
    ],
    // Classic asynchronous I/O; io_uring is not here (docker dropped it: a
    // large, often exploited kernel surface).
    &[
        "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit",
    ],
    // Device control: what a descriptor allows is the device's own check.
    &["ioctl"],
    // Memory of the process itself.
    &[
        "brk", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock",
        "mlock2", "mlockall", "mmap", "mprotect", "mremap", "msync", "munlock", "munlockall",
        "munmap", "remap_file_pages", "map_shadow_stack", "mseal",
    ],
    // Processes: starting, executing, waiting, ending. `clone` and `clone3`
    // have rules of their own below.
    &[
        "execve", "execveat", "exit", "exit_group", "fork", "vfork", "wait4", "waitid", "kill",
        "tgkill", "tkill", "pidfd_open", "pidfd_send_signal", "process_mrelease",
        "restart_syscall", "set_tid_address", "rseq", "arch_prctl", "get_thread_area",
        "set_thread_area", "modify_ldt", "uretprobe", "prctl", "seccomp", "landlock_add_rule",
        "landlock_create_ruleset", "landlock_restrict_self",
    ],
    // Signals.
    &[
        "alarm", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
        "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sigaltstack",
    ],
    // Identity: reading it, and changing it as far as capabilities allow.
    &[
        "capget", "capset", "getegid", "geteuid", "getgid", "getgroups", "getpgid", "getpgrp",
        "getpid", "getppid", "getresgid", "getresuid", "getsid", "gettid", "getuid", "setfsgid",
        "setfsuid", "setgid", "setgroups", "setpgid", "setregid", "setresgid", "setresuid",
        "setreuid", "setsid", "setuid",
    ],
    // Limits, priorities, scheduling and accounting of one's own processes.
    &[
        "getpriority", "getrlimit", "getrusage", "ioprio_get", "ioprio_set", "prlimit64",
        "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
        "sched_getparam", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
        "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "setpriority",
        "setrlimit", "getcpu", "sysinfo", "times", "uname",
    ],
    // Time: reading clocks, sleeping, timers. Setting the clock needs CAP_SYS_TIME.
    &[
        "adjtimex", "clock_adjtime", "clock_getres", "clock_gettime", "clock_nanosleep",
        "getitimer", "gettimeofday", "nanosleep", "setitimer", "time", "timer_create",
        "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime",
    ],
    // Locking and thread synchronisation.
    &[
        "futex", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue", "get_robust_list",
        "set_robust_list",
    ],
    // Sockets; `socket` itself has a rule below.
    &[
        "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
        "listen", "recvfrom", "recvmmsg", "recvmsg", "sendmmsg", "sendmsg", "sendto",
        "setsockopt", "shutdown", "socketpair",
    ],
    // System V and POSIX IPC, within the container's own IPC namespace.
    &[
        "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
        "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
        "shmat", "shmctl", "shmdt", "shmget",
    ],
    // The random pool.
    &["getrandom"],
    // 32-bit ARM compatibility calls, on the architectures that have them.
    &["breakpoint", "cacheflush", "set_tls", "sync_file_range2"],
];

/// Capabilities by number (linux/capability.h).
mod cap {
    pub const DAC_READ_SEARCH: u32 = 2;
    pub const SYS_MODULE: u32 = 16;
    pub const SYS_RAWIO: u32 = 17;
    pub const SYS_CHROOT: u32 = 18;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_PACCT: u32 = 20;
    pub const SYS_ADMIN: u32 = 21;
    pub const SYS_BOOT: u32 = 22;
    pub const SYS_NICE: u32 = 23;
    pub const SYS_TIME: u32 = 25;
    pub const SYS_TTY_CONFIG: u32 = 26;
    pub const SYSLOG: u32 = 34;
    pub const PERFMON: u32 = 38;
    pub const BPF: u32 = 39;
}

/// Calls allowed only when the container holds the capability that guards
/// them in the kernel: the filter then adds nothing to the capability check,
/// and without the capability the call is never reached at all.
#[rustfmt::skip]
const WITH_CAPABILITY: &[(u32, &[&str])] = &[
    // Mounts, namespaces, BPF, perf, quotas, names: what CAP_SYS_ADMIN guards.
    (
        cap::SYS_ADMIN,
        &[
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
            "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at",
            "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname",
            "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
        ],
    ),
    (cap::DAC_READ_SEARCH, &["open_by_handle_at"]),
    (cap::SYS_BOOT, &["reboot"]),
    (cap::SYS_CHROOT, &["chroot"]),
    (
        cap::SYS_MODULE,
        &["delete_module", "init_module", "finit_module"],
    ),
    (cap::SYS_PACCT, &["acct"]),
    (
        cap::SYS_PTRACE,
        &[
            "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
            "ptrace",
        ],
    ),
    (cap::SYS_RAWIO, &["iopl", "ioperm"]),
    (cap::SYS_TIME, &["settimeofday", "stime", "clock_settime"]),
    (cap::SYS_TTY_CONFIG, &["vhangup"]),
    (
        cap::SYS_NICE,
        &[
            "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node",
        ],
    ),
    (cap::SYSLOG, &["syslog"]),
    (cap::BPF, &["bpf"]),
    (cap::PERFMON, &["perf_event_open"]),
];

/// Namespace flags of `clone`: without CAP_SYS_ADMIN, a clone may make none.
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// Execution domains a program may switch to: Linux itself, with or without
/// 32-bit addresses or a read-implies-exec heap (old JITs), and the query.
const PERSONAS: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Address families a socket may not be opened in: VSOCK reaches the
/// hypervisor or the host over a channel of its own.
const AF_VSOCK: u64 = 40;

/// The default profile for a container holding `caps` (bit N: capability N).
pub fn profile(caps: u64) -> Profile {
    let has = |c: u32| caps & (1 << c) != 0;
    let mut rules = Vec::with_capacity(400);
    let mut allow = |name: &str, conds: Vec<Cond>| {
        if let Some(nr) = number(name) {
            rules.push(Rule {
                nr,
                action: Action::Allow,
                conds,
            });
        }
    };
    for name in ALLOWED.iter().flat_map(|g| g.iter()) {
        allow(name, Vec::new());
    }
    for (_, names) in WITH_CAPABILITY.iter().filter(|(c, _)| has(*c)) {
        for name in *names {
            allow(name, Vec::new());
        }
    }
    let arg0 = |op, value, wide| Cond {
        index: 0,
        op,
        value,
        wide,
    };
    for persona in PERSONAS {
        allow("personality", vec![arg0(Op::Eq, *persona, false)]);
    }
    allow("socket", vec![arg0(Op::Ne, AF_VSOCK, false)]);
    if !has(cap::SYS_ADMIN) {
        allow("clone", vec![arg0(Op::MaskedEq(CLONE_NAMESPACES), 0, true)]);
        // clone3 passes its flags in memory, out of a filter's sight: refuse it
        // as a kernel without it would, and libcs fall back to clone.
        if let Some(nr) = number("clone3") {
            rules.push(Rule {
                nr,
                action: Action::Errno(libc::ENOSYS as u16),
                conds: Vec::new(),
            });
        }
    }
    Profile {
        default: Action::Errno(libc::EPERM as u16),
        rules,
    }
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::super::seccomp::tests::{call, ALLOW, ENOSYS, EPERM};
    use super::super::seccomp::Filter;
    use super::*;

    /// What docker refuses, and so must the default filter.
    #[rustfmt::skip]
    const REFUSED: &[&str] = &[
        "keyctl", "add_key", "request_key", "unshare", "setns", "mount", "umount2", "io_uring_setup",
        "io_uring_enter", "bpf", "perf_event_open", "userfaultfd", "kexec_load", "init_module",
        "finit_module", "ptrace", "process_vm_readv", "reboot", "swapon", "pivot_root",
        "open_by_handle_at", "syslog", "settimeofday",
    ];

    /// Names of the other architecture only (or of both).
    #[rustfmt::skip]
    const ELSEWHERE: &[&str] = &[
        "epoll_ctl_old", "epoll_wait_old", "newfstatat", "fstatat", "open", "stat", "lstat", "time",
        "arch_prctl", "modify_ldt", "get_thread_area", "set_thread_area", "uretprobe", "breakpoint",
        "cacheflush", "set_tls", "sync_file_range2", "access", "chmod", "chown", "creat", "dup2",
        "epoll_create", "epoll_wait", "eventfd", "fork", "futimesat", "getdents", "getpgrp",
        "inotify_init", "lchown", "link", "mkdir", "mknod", "pause", "pipe", "poll", "readlink",
        "rename", "rmdir", "select", "signalfd", "symlink", "unlink", "utime", "utimes", "vfork",
        "alarm", "iopl", "ioperm", "lookup_dcookie", "umount", "stime", "sync_file_range",
        "map_shadow_stack", "getrlimit", "setrlimit",
    ];

    fn default_filter(caps: u64) -> Filter {
        Filter::compile(&profile(caps)).unwrap()
    }

    #[test]
    fn refuses_what_docker_refuses() {
        let f = default_filter(super::super::caps::DEFAULT);
        let z = [0; 6];
        for name in REFUSED {
            assert_eq!(call(&f, name, z), EPERM, "{name}");
        }
        for name in [
            "read", "openat", "execve", "wait4", "chroot", "getpid", "futex",
        ] {
            assert_eq!(call(&f, name, z), ALLOW, "{name}");
        }
        assert_eq!(call(&f, "clone3", z), ENOSYS);
    }

    #[test]
    fn argument_rules() {
        let f = default_filter(super::super::caps::DEFAULT);
        let a0 = |v| [v, 0, 0, 0, 0, 0];
        assert_eq!(call(&f, "socket", a0(libc::AF_INET as u64)), ALLOW);
        assert_eq!(call(&f, "socket", a0(libc::AF_VSOCK as u64)), EPERM);
        assert_eq!(call(&f, "personality", a0(0xffff_ffff)), ALLOW);
        assert_eq!(call(&f, "personality", a0(0x0040_0000)), EPERM); // READ_IMPLIES_EXEC
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(call(&f, "clone", a0(thread)), ALLOW);
        for ns in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET] {
            assert_eq!(call(&f, "clone", a0(thread | ns as u64)), EPERM, "{ns:x}");
        }
    }

    #[test]
    fn capabilities_open_their_groups() {
        let admin = default_filter(super::super::caps::DEFAULT | 1 << cap::SYS_ADMIN);
        let z = [0; 6];
        assert_eq!(call(&admin, "mount", z), ALLOW);
        assert_eq!(call(&admin, "clone3", z), ALLOW);
        let newuser = [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0];
        assert_eq!(call(&admin, "clone", newuser), ALLOW);
        let ptrace = default_filter(1 << cap::SYS_PTRACE);
        assert_eq!(call(&ptrace, "ptrace", z), ALLOW);
        assert_eq!(call(&ptrace, "mount", z), EPERM);
        assert_eq!(call(&ptrace, "chroot", z), EPERM);
        let bpf = default_filter(1 << cap::BPF);
        assert_eq!(call(&bpf, "bpf", z), ALLOW);
        assert_eq!(call(&bpf, "perf_event_open", z), EPERM);
    }

    #[test]
    fn every_name_is_a_call_somewhere() {
        // A typo would silently allow nothing: each name must be known to
        // this architecture or be one of the other architecture's own.
        let names = ALLOWED
            .iter()
            .flat_map(|g| g.iter())
            .chain(WITH_CAPABILITY.iter().flat_map(|(_, n)| n.iter()));
        for name in names {
            assert!(
                number(name).is_some() || ELSEWHERE.contains(name),
                "{name} is no system call here"
            );
        }
    }
}
