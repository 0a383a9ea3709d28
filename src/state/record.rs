//! The record itself, as stored in an entry.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

use crate::proc::ProcId;
use crate::rootfs::Upper;

/// The format of a record; a reader skips (as broken) any other.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// `psdock_` and 7 hex digits, unique among the entries.
    pub id: String,
    /// The psdock that owns the container.
    pub psdock: ProcId,
    /// The container's init as the host sees it; `None` while it is being made.
    pub init: Option<ProcId>,
    #[serde(with = "os")]
    pub image: PathBuf,
    #[serde(with = "os")]
    pub rootfs: PathBuf,
    #[serde(with = "os_list")]
    pub command: Vec<OsString>,
    /// The container's capability set, which psdock-exec gives too. Records
    /// written before it could be chosen had docker's default set.
    #[serde(default = "docker_caps")]
    pub caps: u64,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub created: Created,
    /// The container's system-call filter, for psdock-exec to apply too.
    #[serde(default)]
    pub seccomp: crate::spec::Seccomp,
    /// `-net`: the mode, the address and the published ports. Records
    /// written before psdock had a choice have none: theirs was `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<crate::plugin::NetInfo>,
    /// With a health check: where it stands. Older records have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Box<crate::health::HealthRecord>>,
    /// Under `-restart`: the restarts so far, and the exit code of the last
    /// attempt that ended. Records from before restarts have neither.
    #[serde(default)]
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<i32>,
}

/// What psdock made on disk for the container: all that a reclaim may remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// Where the overlay is mounted (ROOTFS).
    #[serde(with = "os")]
    pub mount: PathBuf,
    /// Whether psdock made the ROOTFS directory itself (else it was an empty
    /// directory that was given, and stays).
    pub rootfs_dir: bool,
    /// The hidden sibling: the lock, and where the upper and work directories
    /// are (`rootfs::upper_and_work`).
    #[serde(with = "os")]
    pub sibling: PathBuf,
    /// Where the upper directory was made. Records written before psdock had
    /// a choice have none: theirs was on disk.
    #[serde(default = "disk")]
    pub upper: Upper,
    /// The container's cgroup below each hierarchy's root, recorded before it
    /// is made; none when no limit was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<PathBuf>,
}

fn docker_caps() -> u64 {
    crate::container::caps::DOCKER_DEFAULT
}

fn disk() -> Upper {
    Upper::Disk
}

/// Where a container stands, as far as its record and /proc tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Its psdock and its init are alive.
    Running,
    /// Its psdock is alive and has not started the init yet.
    Starting,
    /// Its psdock is alive, its init has ended: psdock is tearing down.
    Stopping,
    /// Its psdock is alive, between two attempts of `-restart`.
    Restarting,
    /// Its psdock is gone: what it left is to be reclaimed.
    Stale,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Starting => "starting",
            Status::Stopping => "stopping",
            Status::Restarting => "restarting",
            Status::Stale => "stale",
        }
    }
}

impl Record {
    pub fn status(&self) -> Status {
        if !self.psdock.is_alive() {
            return Status::Stale;
        }
        match self.init {
            None if self.last_exit.is_some() => Status::Restarting,
            None => Status::Starting,
            Some(init) if init.is_alive() => Status::Running,
            Some(_) => Status::Stopping,
        }
    }
}

/// Paths and arguments are bytes on Linux: stored as a string when they are
/// UTF-8 (nearly always), else as an array of bytes, so that a reclaim finds
/// exactly the path that was made.
mod os {
    use super::*;

    pub fn serialize<S: Serializer, T: AsRef<OsStr>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let v = v.as_ref();
        match v.to_str() {
            Some(text) => s.serialize_str(text),
            None => s.collect_seq(v.as_bytes()),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>, T: From<OsString>>(
        d: D,
    ) -> Result<T, D::Error> {
        Ok(T::from(Text::deserialize(d)?.into()))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Text {
        Str(String),
        Bytes(Vec<u8>),
    }

    impl From<Text> for OsString {
        fn from(t: Text) -> OsString {
            match t {
                Text::Str(s) => s.into(),
                Text::Bytes(b) => OsString::from_vec(b),
            }
        }
    }
}

mod os_list {
    use super::*;

    struct One<'a>(&'a OsStr);

    impl Serialize for One<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            os::serialize(&self.0, s)
        }
    }

    pub fn serialize<S: Serializer>(v: &[OsString], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|a| One(a)))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<OsString>, D::Error> {
        Ok(Vec::<os::Text>::deserialize(d)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            version: VERSION,
            id: "psdock_0a1b2c3".into(),
            psdock: ProcId { pid: 10, start: 20 },
            init: Some(ProcId { pid: 11, start: 21 }),
            image: "/img".into(),
            rootfs: PathBuf::from(OsStr::from_bytes(b"/r/\xffroot")),
            command: vec!["sh".into(), OsString::from_vec(b"-c\xfe".to_vec())],
            caps: 0x800405fb,
            started_at: "2026-01-02T03:04:05Z".into(),
            created: Created {
                mount: PathBuf::from(OsStr::from_bytes(b"/r/\xffroot")),
                rootfs_dir: true,
                sibling: PathBuf::from(OsStr::from_bytes(b"/r/.\xffroot.psdock")),
                upper: Upper::Tmpfs,
                cgroup: None,
            },
            seccomp: crate::spec::Seccomp::Unconfined,
            net: None,
            health: None,
            restarts: 0,
            last_exit: None,
        }
    }

    #[test]
    fn a_record_from_before_restarts_has_none() {
        let mut r = record();
        r.restarts = 2;
        r.last_exit = Some(3);
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.ends_with(r#","restarts":2,"last_exit":3}"#), "{text}");
        let old = text.replace(r#","restarts":2,"last_exit":3"#, "");
        r.restarts = 0;
        r.last_exit = None;
        assert_eq!(serde_json::from_str::<Record>(&old).unwrap(), r);
        r.init = None;
        r.psdock = ProcId::current().unwrap();
        assert_eq!(r.status(), Status::Starting);
        r.last_exit = Some(3);
        assert_eq!(r.status(), Status::Restarting);
    }

    #[test]
    fn a_record_from_before_the_upper_choice_had_it_on_disk() {
        let mut r = record();
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#","upper":"tmpfs"}"#), "{text}");
        let old = text.replace(r#","upper":"tmpfs""#, "");
        r.created.upper = Upper::Disk;
        assert_eq!(serde_json::from_str::<Record>(&old).unwrap(), r);
    }

    #[test]
    fn a_record_from_before_the_capability_choice_had_docker_s_set() {
        let mut r = record();
        let text = serde_json::to_string(&r).unwrap();
        let caps = format!(r#","caps":{}"#, 0x800405fbu64);
        assert!(text.contains(&caps), "{text}");
        let old = text.replace(&caps, "");
        r.caps = 0xa80425fb;
        assert_eq!(serde_json::from_str::<Record>(&old).unwrap(), r);
    }

    #[test]
    fn a_record_from_before_the_filter_gets_the_default_one() {
        let mut r = record();
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.ends_with(r#","seccomp":"unconfined","restarts":0}"#),
            "{text}"
        );
        let old = text.replace(r#","seccomp":"unconfined""#, "");
        r.seccomp = crate::spec::Seccomp::Default;
        assert_eq!(serde_json::from_str::<Record>(&old).unwrap(), r);
        r.seccomp = crate::spec::Seccomp::Profile(Box::new(crate::spec::ProfileText {
            path: "/p.json".into(),
            json: r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#.into(),
        }));
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.contains(r#""seccomp":{"profile":{"path":"/p.json","json":"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }

    #[test]
    fn the_health_state_is_kept_and_older_records_have_none() {
        let mut r = record();
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("health"), "{text}");
        r.health = Some(Box::new(crate::health::HealthRecord {
            status: crate::health::Health::Unhealthy,
            failing_streak: 3,
            last_check: None,
        }));
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.contains(r#","health":{"status":"unhealthy","failing_streak":3},"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }

    #[test]
    fn round_trips_with_paths_that_are_not_utf8() {
        let r = record();
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""image":"/img""#), "{text}");
        assert!(text.contains(r#""rootfs":[47,114,47,255,"#), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }

    #[test]
    fn a_dead_psdock_makes_an_entry_stale() {
        let me = ProcId::current().unwrap();
        let mut r = record();
        r.psdock = ProcId {
            start: me.start + 1,
            ..me
        };
        assert_eq!(r.status(), Status::Stale);
        r.psdock = me;
        r.init = None;
        assert_eq!(r.status(), Status::Starting);
        r.init = Some(me);
        assert_eq!(r.status(), Status::Running);
        r.init = Some(ProcId { pid: 0, start: 1 });
        assert_eq!(r.status(), Status::Stopping);
    }
}
