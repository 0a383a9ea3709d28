//! The system-call filter: a profile (the default one, or one read from an
//! OCI `linux.seccomp` file) compiled into seccomp BPF before the clone, and
//! installed by the child right before exec.
//!
//! A program finds the call by a binary search on its number, over runs of
//! numbers that get one answer; a call with argument rules jumps to a block
//! that seccompiler (rust-vmm, pure Rust) compiled for it. seccompiler alone
//! lays a program out as one linear list, which made the kernel's cache of
//! constant answers cost 0.7 ms to build at install (the search: under
//! 0.1 ms), and gives each program one match action: argument rules whose
//! action is not "allow" get a program of their own per action, stacked on
//! the main one. The kernel runs every program of the stack and keeps the
//! most restrictive answer: the main one allows what such a rule matches,
//! its own program answers the rule's action.
//!
//! Each program starts with our own prologue instead of seccompiler's, whose
//! foreign-architecture answer is to kill the process: a call made through
//! another ABI (i386 through `int 0x80`, x32 on x86_64), which no rule of
//! ours describes, fails with EPERM; and a call newer than our table (a
//! kernel newer than psdock) fails with ENOSYS, so that a libc falls back to
//! an older call as it would on an older kernel, where EPERM would be taken
//! for a real refusal.

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use std::collections::BTreeMap;

use nix::errno::Errno;
use seccompiler::sock_filter;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use super::seccomp_bpf::{arguments, layout, ret, Leaf};

/// What a rule, or the profile's default, does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Errno(u16),
    KillThread,
    KillProcess,
    Trap,
    Log,
}

/// How an argument is compared; `MaskedEq(mask)` compares `arg & mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq(u64),
}

/// One comparison of a call's argument. `wide: false` compares the low 32
/// bits only, for arguments the kernel reads as an `int`: a caller could
/// otherwise pass junk in the high half that the filter sees and the kernel
/// drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub wide: bool,
}

/// A call (by this architecture's number) and the conditions, all of which
/// must hold for `action` to apply; none: the call alone decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub nr: i64,
    pub action: Action,
    pub conds: Vec<Cond>,
}

/// A profile with every name resolved for this architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub default: Action,
    pub rules: Vec<Rule>,
}

/// The compiled programs, installed in order. Built before the clone; the
/// child only hands them to the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    programs: Vec<Vec<sock_filter>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("no system-call table for this architecture ({0}); use -seccomp unconfined")]
    Arch(&'static str),
    #[error("cannot compile the filter: {0}")]
    Compile(seccompiler::BackendError),
    #[error("cannot compile the filter: seccompiler's program has an unknown layout")]
    Layout,
}

/// The running architecture's seccomp identity: seccompiler's name for it,
/// the kernel's `AUDIT_ARCH_*`, and the number bit of a second ABI sharing
/// that identity (x32 on x86_64).
#[cfg(target_arch = "x86_64")]
pub(super) mod native {
    pub const TARGET: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
    pub const AUDIT: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    pub const SECOND_ABI_BIT: Option<u32> = Some(0x4000_0000);
}
#[cfg(target_arch = "aarch64")]
pub(super) mod native {
    pub const TARGET: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;
    pub const AUDIT: u32 = 183 | 0x8000_0000 | 0x4000_0000;
    pub const SECOND_ABI_BIT: Option<u32> = None;
}

/// The default profile (docker's) for a container holding `caps` (bit N:
/// capability N).
pub fn default_profile(caps: u64) -> Profile {
    super::seccomp_default::profile(caps)
}

/// Whether this architecture has a table (and so can have a filter).
pub fn supported() -> Result<(), SeccompError> {
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        Ok(())
    } else {
        Err(SeccompError::Arch(std::env::consts::ARCH))
    }
}

/// This architecture's number for a call, `None` for a call it does not have
/// (skipped, as libseccomp does).
pub fn number(name: &str) -> Option<i64> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        // libseccomp's name for the call that this table calls `fstatat`.
        let name = match name {
            "newfstatat" if cfg!(target_arch = "aarch64") => "fstatat",
            n => n,
        };
        name.parse::<syscalls::Sysno>().ok().map(|s| s.id().into())
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = name;
        None
    }
}

impl Filter {
    /// The main program answers each call named outright with its rule's
    /// action, runs argument rules (allowing what any of them matches), and
    /// answers the default for the rest; argument rules whose action is not
    /// "allow" also get a program of their own per action (see the top).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub fn compile(profile: &Profile) -> Result<Filter, SeccompError> {
        let mut sorted: Vec<&Rule> = profile.rules.iter().collect();
        // Stable: a call's rules keep their order.
        sorted.sort_by_key(|r| r.nr);
        let mut leaves = Vec::with_capacity(sorted.len());
        let mut blocks = Vec::new();
        let mut stacked: BTreeMap<Action, Vec<&Rule>> = BTreeMap::new();
        for call in sorted.chunk_by(|a, b| a.nr == b.nr) {
            let nr = call[0].nr;
            // The most restrictive action of the rules that name it outright.
            let outright = call
                .iter()
                .filter(|r| r.conds.is_empty())
                .map(|r| r.action)
                .max_by_key(|a| rank(*a));
            let conditional = call.iter().copied().filter(|r| !r.conds.is_empty());
            let leaf = match outright {
                Some(a) => Leaf::Ret(ret(a)),
                None if profile.default == Action::Allow => Leaf::Ret(ret(Action::Allow)),
                None => {
                    let rules = conditional.clone();
                    blocks.push(arguments(nr, rules, Action::Allow, profile.default)?);
                    Leaf::Block(blocks.len() - 1)
                }
            };
            leaves.push((nr as u32, leaf));
            for r in conditional {
                if r.action != Action::Allow && outright.is_none_or(|a| rank(r.action) >= rank(a)) {
                    stacked.entry(r.action).or_default().push(r);
                }
            }
        }
        let mut programs = vec![layout(leaves, blocks, profile.default)];
        for (action, rules) in stacked {
            let mut leaves = Vec::new();
            let mut blocks = Vec::new();
            let mut i = 0;
            while i < rules.len() {
                let nr = rules[i].nr;
                let n = rules[i..].iter().take_while(|r| r.nr == nr).count();
                let call = rules[i..i + n].iter().copied();
                blocks.push(arguments(nr, call, action, Action::Allow)?);
                leaves.push((nr as u32, Leaf::Block(blocks.len() - 1)));
                i += n;
            }
            programs.push(layout(leaves, blocks, Action::Allow));
        }
        for p in &programs {
            if p.len() > 4096 {
                return Err(SeccompError::Compile(
                    seccompiler::BackendError::FilterTooLarge(p.len()),
                ));
            }
        }
        Ok(Filter { programs })
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub fn compile(_: &Profile) -> Result<Filter, SeccompError> {
        Err(SeccompError::Arch(std::env::consts::ARCH))
    }

    /// Installs every program on the calling thread. For the cloned child:
    /// plain system calls on memory built before the clone, no allocation.
    /// no_new_privs must be set already.
    pub fn install(&self) -> Result<(), Errno> {
        #[repr(C)]
        struct Fprog {
            len: libc::c_ushort,
            filter: *const sock_filter,
        }
        for p in &self.programs {
            let prog = Fprog {
                len: p.len() as libc::c_ushort,
                filter: p.as_ptr(),
            };
            // SAFETY: the kernel copies the program from memory that outlives the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog as *const Fprog,
                )
            };
            if r != 0 {
                return Err(Errno::last());
            }
        }
        Ok(())
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
/// How restrictive an action is: the kernel keeps the highest of a stack.
fn rank(a: Action) -> u8 {
    match a {
        Action::Allow => 0,
        Action::Log => 1,
        Action::Errno(_) => 2,
        Action::Trap => 3,
        Action::KillThread => 4,
        Action::KillProcess => 5,
    }
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(super) mod tests {
    use super::super::seccomp_bpf::{JA, JEQ_K, JGE_K, JGT_K, JSET_K, LD_W_ABS, RET_K};
    use super::*;

    /// Runs a program as the kernel would on one call.
    pub fn run(p: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = &p[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => {
                    let o = i.k as usize;
                    acc = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
                }
                0x54 => acc &= i.k, // ALU AND K
                JA => pc += i.k as usize,
                RET_K => return i.k,
                c => {
                    let hit = match c {
                        JEQ_K => acc == i.k,
                        JGT_K => acc > i.k,
                        JGE_K => acc >= i.k,
                        JSET_K => acc & i.k != 0,
                        _ => panic!("unexpected instruction {i:?}"),
                    };
                    pc += if hit { i.jt } else { i.jf } as usize;
                }
            }
        }
    }

    /// What the kernel answers: the most restrictive result of the stack.
    pub fn answer(f: &Filter, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        // Precedence: KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > ... > LOG > ALLOW.
        let rank = |r: u32| match r & 0xffff_0000 {
            0x8000_0000 => 0,
            0 => 1,
            0x0003_0000 => 2,
            0x0005_0000 => 3,
            0x7ffc_0000 => 8,
            0x7fff_0000 => 9,
            _ => 5,
        };
        f.programs
            .iter()
            .rev()
            .map(|p| run(p, arch, nr, args))
            .min_by_key(|r| rank(*r))
            .unwrap()
    }

    pub fn call(f: &Filter, name: &str, args: [u64; 6]) -> u32 {
        answer(f, native::AUDIT, number(name).unwrap() as u32, args)
    }

    pub const ALLOW: u32 = 0x7fff_0000;
    pub const EPERM: u32 = 0x0005_0000 | 1;
    pub const ENOSYS: u32 = 0x0005_0000 | 38;

    fn profile(default: Action, rules: &[(&str, Action, &[Cond])]) -> Filter {
        Filter::compile(&Profile {
            default,
            rules: rules
                .iter()
                .map(|(n, a, c)| Rule {
                    nr: number(n).unwrap(),
                    action: *a,
                    conds: c.to_vec(),
                })
                .collect(),
        })
        .unwrap()
    }

    #[test]
    fn several_actions_stack_and_the_rule_s_action_wins() {
        let eq = |v| Cond {
            index: 0,
            op: Op::Eq,
            value: v,
            wide: true,
        };
        let f = profile(
            Action::Errno(1),
            &[
                ("read", Action::Allow, &[]),
                ("getpid", Action::Errno(38), &[]),
                ("getppid", Action::Log, &[]),
                ("close", Action::Allow, &[eq(3)]),
                ("close", Action::Trap, &[eq(4)]),
            ],
        );
        let z = [0; 6];
        assert_eq!(call(&f, "read", z), ALLOW);
        assert_eq!(call(&f, "write", z), EPERM);
        assert_eq!(call(&f, "getpid", z), ENOSYS);
        assert_eq!(call(&f, "getppid", z), 0x7ffc_0000);
        assert_eq!(call(&f, "close", [3, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call(&f, "close", [4, 0, 0, 0, 0, 0]), 0x0003_0000);
        assert_eq!(call(&f, "close", [5, 0, 0, 0, 0, 0]), EPERM);
    }

    #[test]
    fn other_abis_get_eperm_and_calls_past_the_table_enosys() {
        let f = profile(Action::Errno(1), &[("getpid", Action::Allow, &[])]);
        let getpid = number("getpid").unwrap() as u32;
        const I386: u32 = 3 | 0x4000_0000;
        assert_eq!(answer(&f, I386, getpid, [0; 6]), EPERM);
        assert_eq!(answer(&f, native::AUDIT, 4000, [0; 6]), ENOSYS);
        if let Some(bit) = native::SECOND_ABI_BIT {
            assert_eq!(answer(&f, native::AUDIT, bit | getpid, [0; 6]), EPERM);
        }
        // A deny-list (default allow) must not be sidestepped through x32 either.
        let f = profile(Action::Allow, &[("mkdirat", Action::Errno(13), &[])]);
        assert_eq!(answer(&f, I386, getpid, [0; 6]), EPERM);
        assert_eq!(answer(&f, native::AUDIT, getpid, [0; 6]), ALLOW);
        if let Some(bit) = native::SECOND_ABI_BIT {
            let mkdir = number("mkdirat").unwrap() as u32;
            assert_eq!(answer(&f, native::AUDIT, bit | mkdir, [0; 6]), EPERM);
        }
    }

    #[test]
    fn the_search_answers_every_number_as_the_rules_say() {
        // Every third number and 100 to 199 allowed, every seventh only with
        // argument 0 = 1: runs of one call and of many, long jumps over
        // subtrees and into blocks.
        let eq1 = Cond {
            index: 0,
            op: Op::Eq,
            value: 1,
            wide: true,
        };
        let rule = |nr: i64, conds: Vec<Cond>| Rule {
            nr,
            action: Action::Allow,
            conds,
        };
        let rules: Vec<Rule> = (0..460)
            .filter(|n| n % 3 == 0 || (100..200).contains(n))
            .map(|n| rule(n, vec![]))
            .chain((0..460).filter(|n| n % 7 == 0).map(|n| rule(n, vec![eq1])))
            .collect();
        let f = Filter::compile(&Profile {
            default: Action::Errno(1),
            rules,
        })
        .unwrap();
        let last = syscalls::Sysno::last().id() as u32;
        for nr in 0..600u32 {
            for arg in [0, 1] {
                let want = if nr > last {
                    ENOSYS
                } else if (nr % 3 == 0 || (100..200).contains(&nr)) && nr < 460
                    || nr % 7 == 0 && nr < 460 && arg == 1
                {
                    ALLOW
                } else {
                    EPERM
                };
                let got = answer(&f, native::AUDIT, nr, [arg, 0, 0, 0, 0, 0]);
                assert_eq!(got, want, "call {nr} with {arg}");
            }
        }
    }

    #[test]
    fn narrow_comparisons_ignore_the_high_half() {
        let ne = Cond {
            index: 0,
            op: Op::Ne,
            value: 40,
            wide: false,
        };
        let f = profile(Action::Errno(1), &[("socket", Action::Allow, &[ne])]);
        assert_eq!(call(&f, "socket", [2, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call(&f, "socket", [40, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&f, "socket", [(1 << 32) | 40, 0, 0, 0, 0, 0]), EPERM);
    }
}
