//! `-seccomp default|unconfined|FILE`: the system-call filter of every process
//! of the container. FILE is a profile in the OCI runtime spec's
//! `linux.seccomp` form (what `runc spec` writes); docker's profile files have
//! the same shape plus `includes`/`excludes` conditions, which are honoured.
//! The filter is compiled here, before anything of the run exists.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};
use serde::{Deserialize, Serialize};

use super::SpecError;
use crate::container::seccomp::{self, Action, Cond, Filter, Op, Profile, Rule};

/// Which filter a container's processes get, as its state record keeps it:
/// psdock-exec gives an entered process the same one, from the profile's text
/// as it was read at the start, whatever happened to the file since.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    /// Records from before the filter have none: an entered process gets the
    /// default one, as every process of a new container does.
    #[default]
    Default,
    Unconfined,
    Profile(Box<ProfileText>),
}

/// A profile file as it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileText {
    /// The file, for messages.
    pub path: String,
    pub json: String,
}

/// The choice and its compiled filter (`None`: unconfined).
#[derive(Debug, Clone)]
pub struct SeccompSpec {
    pub choice: Seccomp,
    pub filter: Option<Filter>,
}

/// Larger than any real profile (docker's is 20 KiB), small enough to read whole.
const MAX_PROFILE: u64 = 1 << 20;

impl SeccompSpec {
    /// `-seccomp`'s value, for a container holding `caps` (bit N: capability N).
    pub fn from_arg(value: Option<&OsStr>, caps: u64) -> Result<Self, SpecError> {
        let choice = match value.map(|v| v.as_encoded_bytes()) {
            None | Some(b"default") => Seccomp::Default,
            Some(b"unconfined") => Seccomp::Unconfined,
            Some(_) => {
                let path = Path::new(value.unwrap_or_default());
                let json = read_profile(path).map_err(|why| bad(path, why))?;
                Seccomp::Profile(Box::new(ProfileText {
                    path: path.display().to_string(),
                    json,
                }))
            }
        };
        let filter = compile(&choice, caps)?;
        Ok(SeccompSpec { choice, filter })
    }
}

fn bad(path: &Path, why: impl Into<String>) -> SpecError {
    SpecError::Seccomp {
        value: path.to_owned(),
        why: why.into(),
    }
}

/// The filter `choice` stands for, for a container holding `caps`.
pub fn compile(choice: &Seccomp, caps: u64) -> Result<Option<Filter>, SpecError> {
    let (value, profile) = match choice {
        Seccomp::Unconfined => return Ok(None),
        Seccomp::Default => (
            PathBuf::from("default"),
            crate::container::seccomp::default_profile(caps),
        ),
        Seccomp::Profile(text) => {
            let path = PathBuf::from(&text.path);
            let profile = parse(&text.json, caps).map_err(|why| bad(&path, why))?;
            (path, profile)
        }
    };
    seccomp::supported().map_err(|e| bad(&value, e.to_string()))?;
    let filter = Filter::compile(&profile).map_err(|e| bad(&value, e.to_string()))?;
    Ok(Some(filter))
}

fn read_profile(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut text = String::new();
    file.take(MAX_PROFILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_PROFILE {
        return Err(format!("larger than {MAX_PROFILE} bytes"));
    }
    Ok(text)
}

/// docker's conditions on an entry, which the OCI form does not have.
#[derive(Default, Deserialize)]
struct DockerEntry {
    #[serde(default)]
    includes: DockerCondition,
    #[serde(default)]
    excludes: DockerCondition,
}

#[derive(Default, Deserialize)]
struct DockerCondition {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

#[derive(Deserialize)]
struct DockerProfile {
    #[serde(default)]
    syscalls: Option<Vec<DockerEntry>>,
}

/// docker's name for this architecture (Go's GOARCH).
const DOCKER_ARCH: &str = match std::env::consts::ARCH.as_bytes() {
    b"x86_64" => "amd64",
    b"aarch64" => "arm64",
    _ => std::env::consts::ARCH,
};

impl DockerEntry {
    /// Whether the entry applies (docker's `includes`: all of the
    /// capabilities, one of the architectures; `excludes`: none of them).
    /// `minKernel` is not checked: psdock needs a newer kernel than any
    /// docker's profile names.
    fn applies(&self, caps: u64) -> bool {
        let has = |name: &String| {
            crate::container::caps::number(name).is_some_and(|c| caps & (1 << c) != 0)
        };
        let here = |arches: &Vec<String>| arches.iter().any(|a| a == DOCKER_ARCH);
        self.includes.caps.iter().all(has)
            && (self.includes.arches.is_empty() || here(&self.includes.arches))
            && !self.excludes.caps.iter().any(has)
            && !here(&self.excludes.arches)
    }
}

/// A profile's text as this architecture's [`Profile`].
fn parse(json: &str, caps: u64) -> Result<Profile, String> {
    let oci: LinuxSeccomp = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let docker: DockerProfile = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let default = action(oci.default_action(), oci.default_errno_ret())
        .map_err(|e| format!("defaultAction: {e}"))?;
    let entries = oci.syscalls().clone().unwrap_or_default();
    let extras = docker.syscalls.unwrap_or_default();
    let mut rules = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if !extras.get(i).is_none_or(|d| d.applies(caps)) {
            continue;
        }
        let at = |e: String| format!("syscalls[{i}]: {e}");
        let action = action(entry.action(), entry.errno_ret()).map_err(at)?;
        let args = entry.args().clone().unwrap_or_default();
        let conds = args
            .iter()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()
            .map_err(at)?;
        // As runc reads it: several comparisons of one argument are
        // alternatives (libseccomp could not AND them), else all must hold.
        let repeated = conds
            .iter()
            .enumerate()
            .any(|(j, c)| conds[..j].iter().any(|d| d.index == c.index));
        let sets: Vec<Vec<Cond>> = if repeated {
            conds.iter().map(|c| vec![*c]).collect()
        } else {
            vec![conds]
        };
        // Names this architecture lacks are skipped, as libseccomp does.
        for nr in entry.names().iter().filter_map(|n| seccomp::number(n)) {
            for set in &sets {
                rules.push(Rule {
                    nr,
                    action,
                    conds: set.clone(),
                });
            }
        }
    }
    Ok(Profile { default, rules })
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<Action, String> {
    use LinuxSeccompAction as A;
    Ok(match a {
        A::ScmpActAllow => Action::Allow,
        A::ScmpActErrno => {
            let errno = errno.unwrap_or(libc::EPERM as u32);
            // The kernel keeps 12 bits of it: larger would wrap silently.
            if errno > 4095 {
                return Err(format!("errnoRet {errno} is larger than 4095"));
            }
            Action::Errno(errno as u16)
        }
        A::ScmpActKill | A::ScmpActKillThread => Action::KillThread,
        A::ScmpActKillProcess => Action::KillProcess,
        A::ScmpActTrap => Action::Trap,
        A::ScmpActLog => Action::Log,
        A::ScmpActNotify | A::ScmpActTrace => {
            return Err(format!(
                "action {} is not supported (it needs an agent or a tracer)",
                serde_json::to_string(&a)
                    .unwrap_or_default()
                    .trim_matches('"')
            ))
        }
    })
}

fn condition(arg: &LinuxSeccompArg) -> Result<Cond, String> {
    use LinuxSeccompOperator as O;
    if arg.index() > 5 {
        return Err(format!("argument index {} is past the sixth", arg.index()));
    }
    let (op, value) = match arg.op() {
        O::ScmpCmpNe => (Op::Ne, arg.value()),
        O::ScmpCmpLt => (Op::Lt, arg.value()),
        O::ScmpCmpLe => (Op::Le, arg.value()),
        O::ScmpCmpEq => (Op::Eq, arg.value()),
        O::ScmpCmpGe => (Op::Ge, arg.value()),
        O::ScmpCmpGt => (Op::Gt, arg.value()),
        // libseccomp's order: the mask, then the value it must give.
        O::ScmpCmpMaskedEq => (Op::MaskedEq(arg.value()), arg.value_two().unwrap_or(0)),
    };
    Ok(Cond {
        index: arg.index() as u8,
        op,
        value,
        wide: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nr(name: &str) -> i64 {
        seccomp::number(name).unwrap()
    }

    #[test]
    fn reads_the_oci_form() {
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],
                "syscalls":[
                  {"names":["read","no_such_call"],"action":"SCMP_ACT_ALLOW"},
                  {"names":["mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
                  {"names":["clone"],"action":"SCMP_ACT_ALLOW",
                   "args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                  {"names":["socket"],"action":"SCMP_ACT_KILL_PROCESS",
                   "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}
                ]}"#,
            0,
        )
        .unwrap();
        assert_eq!(p.default, Action::Errno(38));
        let rule = |name, action, conds: Vec<Cond>| Rule {
            nr: nr(name),
            action,
            conds,
        };
        let c = |op, value| Cond {
            index: 0,
            op,
            value,
            wide: true,
        };
        assert_eq!(
            p.rules,
            [
                rule("read", Action::Allow, vec![]),
                rule("mkdirat", Action::Errno(13), vec![]),
                rule("clone", Action::Allow, vec![c(Op::MaskedEq(2114060288), 0)]),
                rule("socket", Action::KillProcess, vec![c(Op::Eq, 1)]),
                rule("socket", Action::KillProcess, vec![c(Op::Eq, 2)]),
            ]
        );
    }

    #[test]
    fn honours_docker_s_conditions() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["SYS_ADMIN"]}},
            {"names":["getppid"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["s390x"]}}]}"#;
        let names = |caps| -> Vec<i64> {
            parse(json, caps)
                .unwrap()
                .rules
                .iter()
                .map(|r| r.nr)
                .collect()
        };
        assert_eq!(names(0), [nr("getpid")]);
        assert_eq!(names(1 << 21), [nr("mount")]);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        for (json, says) in [
            (
                r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#,
                "SCMP_ACT_NOTIFY is not supported",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_TRACE"}]}"#,
                "syscalls[0]: action SCMP_ACT_TRACE",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_SOMETIMES"}"#,
                "unknown variant",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}"#,
                "unknown variant",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
                "argument index 6",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":5000}"#,
                "4095",
            ),
            ("{", "EOF"),
        ] {
            let e = parse(json, 0).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
