//! The layout of a filter program in classic BPF: our prologue, the binary
//! search on the call's number, and the argument blocks seccompiler
//! compiles. Only for the architectures psdock has a table for.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

use super::seccomp::{native, Action, Cond, Op, Rule, SeccompError};

pub(super) fn ret(action: Action) -> u32 {
    u32::from(seccomp_action(action))
}

/// One program: our prologue, the search over `leaves` (ascending numbers),
/// `otherwise` for the numbers between them, then the argument blocks.
pub(super) fn layout(
    leaves: Vec<(u32, Leaf)>,
    blocks: Vec<Vec<sock_filter>>,
    otherwise: Action,
) -> Vec<sock_filter> {
    let mut p = prologue(otherwise);
    // Runs of numbers with one answer: consecutive calls allowed outright
    // share a run, so the search compares run boundaries, not every call.
    let gap = Leaf::Ret(ret(otherwise));
    let mut runs: Vec<(u32, Leaf)> = Vec::with_capacity(leaves.len());
    let push = |runs: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf| {
        if runs.last().is_some_and(|r| r.0 == start) {
            // The run before it was empty.
            runs.pop();
        }
        match runs.last() {
            Some((_, l)) if *l == leaf && matches!(leaf, Leaf::Ret(_)) => {}
            _ => runs.push((start, leaf)),
        }
    };
    push(&mut runs, 0, gap);
    for (nr, leaf) in leaves {
        push(&mut runs, nr, leaf);
        push(&mut runs, nr + 1, gap);
    }
    let mut jumps = Vec::new();
    search(&runs, &mut p, &mut jumps);
    let mut starts = Vec::with_capacity(blocks.len());
    for b in blocks {
        starts.push(p.len());
        p.extend(b);
    }
    for (at, block) in jumps {
        p[at].k = (starts[block] - at - 1) as u32;
    }
    p
}

/// What the search answers for a run of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leaf {
    /// This return value.
    Ret(u32),
    /// The call's argument rules, in block `i`.
    Block(usize),
}

/// The binary search over `runs` (their first numbers, ascending; the number
/// in the accumulator is at least the first), appended to `p`. A branch
/// skips its left half with a conditional jump when it is short enough, else
/// through a long jump.
pub(super) fn search(
    runs: &[(u32, Leaf)],
    p: &mut Vec<sock_filter>,
    jumps: &mut Vec<(usize, usize)>,
) {
    if let [(_, leaf)] = runs {
        p.push(match leaf {
            Leaf::Ret(k) => stmt(RET_K, *k),
            Leaf::Block(b) => {
                jumps.push((p.len(), *b));
                stmt(JA, 0)
            }
        });
        return;
    }
    let mid = runs.len() / 2;
    let left = size(&runs[..mid]);
    if left <= u8::MAX as usize {
        p.push(jump(JGE_K, runs[mid].0, left as u8, 0));
    } else {
        p.push(jump(JGE_K, runs[mid].0, 0, 1));
        p.push(stmt(JA, left as u32));
    }
    search(&runs[..mid], p, jumps);
    search(&runs[mid..], p, jumps);
}

/// How many instructions [`search`] makes of `runs`.
pub(super) fn size(runs: &[(u32, Leaf)]) -> usize {
    if runs.len() == 1 {
        return 1;
    }
    let mid = runs.len() / 2;
    let left = size(&runs[..mid]);
    let head = if left <= u8::MAX as usize { 1 } else { 2 };
    head + left + size(&runs[mid..])
}

/// The argument rules of one call, as seccompiler compiles them: its program
/// for that call alone, without its architecture check. The block reloads
/// what it compares and ends in returns only, so it runs from wherever the
/// search jumps to it.
pub(super) fn arguments<'a>(
    nr: i64,
    rules: impl Iterator<Item = &'a Rule>,
    on_match: Action,
    otherwise: Action,
) -> Result<Vec<sock_filter>, SeccompError> {
    let rules = rules
        .map(|r| {
            let conds = r.conds.iter().map(condition).collect::<Result<_, _>>()?;
            SeccompRule::new(conds)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(SeccompError::Compile)?;
    let filter = SeccompFilter::new(
        BTreeMap::from([(nr, rules)]),
        seccomp_action(otherwise),
        seccomp_action(on_match),
        native::TARGET,
    )
    .map_err(SeccompError::Compile)?;
    let mut body: Vec<sock_filter> = filter.try_into().map_err(SeccompError::Compile)?;
    // seccompiler's architecture check: load, compare, kill.
    let kill = stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS);
    if body.len() <= 3 || body[2] != kill || body[0] != stmt(LD_W_ABS, ARCH_OFFSET) {
        return Err(SeccompError::Layout);
    }
    body.drain(..3);
    Ok(body)
}

pub(super) fn seccomp_action(a: Action) -> SeccompAction {
    match a {
        Action::Allow => SeccompAction::Allow,
        Action::Errno(e) => SeccompAction::Errno(e.into()),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Log => SeccompAction::Log,
    }
}

pub(super) fn condition(c: &Cond) -> Result<SeccompCondition, seccompiler::BackendError> {
    let op = match c.op {
        Op::Ne => SeccompCmpOp::Ne,
        Op::Lt => SeccompCmpOp::Lt,
        Op::Le => SeccompCmpOp::Le,
        Op::Eq => SeccompCmpOp::Eq,
        Op::Ge => SeccompCmpOp::Ge,
        Op::Gt => SeccompCmpOp::Gt,
        Op::MaskedEq(m) => SeccompCmpOp::MaskedEq(m),
    };
    let len = if c.wide {
        SeccompCmpArgLen::Qword
    } else {
        SeccompCmpArgLen::Dword
    };
    SeccompCondition::new(c.index, len, op, c.value)
}

// Classic BPF, as linux/filter.h spells it.
pub(super) const LD_W_ABS: u16 = 0x20;
pub(super) const JEQ_K: u16 = 0x05 | 0x10;
pub(super) const JGT_K: u16 = 0x05 | 0x20;
pub(super) const JGE_K: u16 = 0x05 | 0x30;
pub(super) const JA: u16 = 0x05;
pub(super) const JSET_K: u16 = 0x05 | 0x40;
pub(super) const RET_K: u16 = 0x06;
pub(super) const ARCH_OFFSET: u32 = 4;
pub(super) const NR_OFFSET: u32 = 0;

pub(super) fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

pub(super) fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Before the search: a call of another ABI gets EPERM (seccompiler's own
/// check would kill the process), and one past the table's last gets ENOSYS
/// when the program's fallback refuses. Leaves the number in the accumulator.
pub(super) fn prologue(otherwise: Action) -> Vec<sock_filter> {
    let eperm = ret(Action::Errno(libc::EPERM as u16));
    let mut p = vec![
        stmt(LD_W_ABS, ARCH_OFFSET),
        jump(JEQ_K, native::AUDIT, 1, 0),
        stmt(RET_K, eperm),
        stmt(LD_W_ABS, NR_OFFSET),
    ];
    if let Some(bit) = native::SECOND_ABI_BIT {
        p.push(jump(JSET_K, bit, 0, 1));
        p.push(stmt(RET_K, eperm));
    }
    if matches!(otherwise, Action::Errno(_)) {
        let last = syscalls::Sysno::last().id() as u32;
        p.push(jump(JGT_K, last, 0, 1));
        p.push(stmt(RET_K, ret(Action::Errno(libc::ENOSYS as u16))));
    }
    p
}
