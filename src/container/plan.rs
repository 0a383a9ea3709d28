//! The plan: everything the child needs, as C strings, built before the clone.

use std::ffi::{CString, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::spec::{self, BindMount, ProcessSpec, RunSpec};

pub struct PlannedBind {
    pub source: CString,
    /// Inside the container, absolute.
    pub target: PathBuf,
    pub readonly: bool,
    pub is_dir: bool,
}

/// A `-device` node, made in the container's /dev.
pub struct PlannedDevice {
    /// Directories below /dev to make first, outermost first.
    pub parents: Vec<CString>,
    pub path: CString,
    pub block: bool,
    pub dev: libc::dev_t,
    pub mode: u32,
}

/// A new container: its file systems and hostname, and the process it runs.
pub struct Plan {
    pub rootfs: CString,
    pub binds: Vec<PlannedBind>,
    /// The resolv.conf to bind read-only: the host's, or one made for a
    /// network of the container's own (`net::resolv`). `None`: the host has
    /// none or the image has no /etc.
    pub resolv_conf: Option<CString>,
    pub hostname: CString,
    pub process: ProcessPlan,
    /// A terminal of the container's own, allocated in its devpts: it becomes
    /// the init's 0, 1 and 2 (`process.stdio` is then unused).
    pub tty: Option<crate::stdio::pty::Tty>,
    /// The network namespace to join (`None`: psdock's own).
    pub netns: Option<RawFd>,
    /// `-device` nodes.
    pub devices: Vec<PlannedDevice>,
    /// `-init`: PID 1 is psdock's minimal init, the command its child.
    pub init: bool,
}

/// The process that ends up running in a container, the init or one entered
/// later by psdock-exec: who it runs as, where, and what it executes.
pub struct ProcessPlan {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub cwd: CString,
    /// Paths to try, in order: one when the command has a `/`, else one per
    /// directory of the container's PATH.
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// The capabilities it keeps (bit N for capability N): all it can have.
    pub caps: u64,
    /// The highest capability this kernel knows (`/proc/sys/kernel/cap_last_cap`).
    pub cap_last: u32,
    /// Descriptors that become the process's 0, 1, 2 (`None`: inherited).
    pub stdio: [Option<RawFd>; 3],
    /// The system-call filter, installed right before exec (`None`: unconfined).
    pub seccomp: Option<super::seccomp::Filter>,
    /// `cgroup.procs` files the process joins (writing `0`) before it enters
    /// the container, so that all it starts is born inside: psdock-exec's
    /// child, and `-init`'s PID 1 (which never stops at an exec, where
    /// psdock moves the plain init in).
    pub cgroup_procs: Vec<CString>,
}

fn cstr(b: &[u8]) -> CString {
    // The specs reject NUL bytes in everything they hand over.
    CString::new(b).expect("validated: no NUL byte")
}

impl Plan {
    pub fn new(spec: &RunSpec, stdio: [Option<RawFd>; 3]) -> Plan {
        let mut process = ProcessPlan::new(
            &ProcessSpec {
                command: spec.command.clone(),
                env: spec.env.clone(),
                cwd: spec.cwd.clone(),
                identity: spec.identity.clone(),
            },
            spec.caps,
            stdio,
        );
        process.seccomp = spec.seccomp.filter.clone();
        Plan {
            rootfs: cstr(spec.rootfs.as_os_str().as_bytes()),
            binds: spec.binds.iter().map(plan_bind).collect(),
            resolv_conf: (Path::new("/etc/resolv.conf").is_file()
                && spec.layers.is_dir(Path::new("etc")))
            .then(|| c"/etc/resolv.conf".to_owned()),
            hostname: cstr(spec.hostname.as_bytes()),
            process,
            tty: None,
            netns: None,
            devices: spec.limits.devices.iter().map(plan_device).collect(),
            init: spec.init,
        }
    }
}

impl ProcessPlan {
    /// `caps`: the container's capability set (`RunSpec::caps`, or the state
    /// record's for psdock-exec).
    pub fn new(spec: &ProcessSpec, caps: u64, stdio: [Option<RawFd>; 3]) -> ProcessPlan {
        let command = spec.command[0].as_bytes();
        let candidates = if command.contains(&b'/') {
            vec![cstr(command)]
        } else {
            let path = spec::env_var(&spec.env, "PATH")
                .map(|p| p.as_bytes())
                .unwrap_or(b"");
            path.split(|&b| b == b':')
                .filter(|dir| !dir.is_empty())
                .map(|dir| cstr(&[dir, b"/", command].concat()))
                .collect()
        };
        let cstrs = |v: &[OsString]| v.iter().map(|a| cstr(a.as_bytes())).collect();
        ProcessPlan {
            uid: spec.identity.uid,
            gid: spec.identity.gid,
            groups: spec.identity.groups.clone(),
            cwd: cstr(spec.cwd.as_os_str().as_bytes()),
            candidates,
            argv: cstrs(&spec.command),
            envp: cstrs(&spec.env),
            caps,
            cap_last: super::caps::last(),
            stdio,
            seccomp: None,
            cgroup_procs: Vec::new(),
        }
    }
}

fn plan_bind(b: &BindMount) -> PlannedBind {
    PlannedBind {
        source: cstr(b.source.as_os_str().as_bytes()),
        target: b.target.clone(),
        readonly: b.readonly,
        is_dir: b.source.is_dir(),
    }
}

fn plan_device(d: &spec::limits::Device) -> PlannedDevice {
    let parents = d
        .path
        .ancestors()
        .skip(1)
        .take_while(|p| p.starts_with("/dev") && *p != Path::new("/dev"))
        .map(|p| cstr(p.as_os_str().as_bytes()))
        .collect::<Vec<_>>();
    PlannedDevice {
        parents: parents.into_iter().rev().collect(),
        path: cstr(d.path.as_os_str().as_bytes()),
        block: d.kind == b'b',
        dev: libc::makedev(d.major as u32, d.minor as u32),
        mode: d.mode,
    }
}
