//! `-user` resolution against the image's own `/etc/passwd` and `/etc/group`,
//! never the host's.

use std::io::{BufRead, Read};

/// Who the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary group included.
    pub groups: Vec<u32>,
    /// From the passwd entry, if there is one.
    pub home: Option<String>,
}

impl Identity {
    pub fn root(passwd: impl BufRead, group: impl BufRead) -> Self {
        resolve("0", passwd, group).unwrap_or(Identity {
            uid: 0,
            gid: 0,
            groups: vec![0],
            home: Some("/root".into()),
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("no user `{0}` in the image's /etc/passwd")]
    NoUser(String),
    #[error("no group `{0}` in the image's /etc/group")]
    NoGroup(String),
    #[error("empty user or group")]
    Empty,
}

/// The longest line of /etc/passwd or /etc/group that is parsed; a longer one
/// is skipped, as a line without enough fields is. Real entries are well
/// below 1 KiB (a group listing a few hundred members fits in 64 KiB), and
/// only this much of a line is ever held, whatever the file's size.
const MAX_LINE: u64 = 64 << 10;

/// Calls `f` with the `:`-separated fields of each line of `file` until it
/// returns true, holding one line at a time. A read error ends the file
/// there: what could not be read is absent, as a missing file is.
fn each_line(mut file: impl BufRead, mut f: impl FnMut(&[&str]) -> bool) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut file).take(MAX_LINE + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() as u64 > MAX_LINE {
            // Too long to be an entry: skip to its end, a bounded piece at a time.
            while line.last() != Some(&b'\n') {
                line.clear();
                match (&mut file).take(MAX_LINE).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let fields: Vec<&str> = text.split(':').collect();
        if f(&fields) {
            return;
        }
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

impl PasswdEntry {
    fn parse(f: &[&str]) -> Option<Self> {
        if f.len() < 7 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0].to_owned(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5].to_owned(),
        })
    }
}

/// The entry named `user`, else (`user` being a number) the first with that uid.
fn find_user(passwd: impl BufRead, user: &str) -> Option<PasswdEntry> {
    let uid: Option<u32> = user.parse().ok();
    let (mut by_name, mut by_uid) = (None, None);
    each_line(passwd, |f| {
        let Some(e) = PasswdEntry::parse(f) else {
            return false;
        };
        if e.name == user {
            by_name = Some(e);
            return true;
        }
        if by_uid.is_none() && Some(e.uid) == uid {
            by_uid = Some(e);
        }
        false
    });
    by_name.or(by_uid)
}

/// In one pass over /etc/group: the gid of the group named `wanted`, and the
/// gids of the groups that list `member`, in file order.
fn scan_groups(
    group: impl BufRead,
    wanted: Option<&str>,
    member: Option<&str>,
) -> (Option<u32>, Vec<u32>) {
    let (mut named, mut member_of) = (None, Vec::new());
    each_line(group, |f| {
        if f.len() < 4 {
            return false;
        }
        let Ok(gid) = f[2].parse::<u32>() else {
            return false;
        };
        if named.is_none() && wanted == Some(f[0]) {
            named = Some(gid);
        }
        if let Some(m) = member {
            if f[3].split(',').any(|x| x == m) && !member_of.contains(&gid) {
                member_of.push(gid);
            }
        }
        false
    });
    (named, member_of)
}

/// Resolves `name`, `uid`, `name:group` or `uid:gid` against the image's
/// passwd and group files, each read once, a line at a time. A numeric uid
/// with no passwd entry runs with gid 0, as docker does; a name must exist.
pub fn resolve(
    spec: &str,
    passwd: impl BufRead,
    group: impl BufRead,
) -> Result<Identity, UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp == Some("") {
        return Err(UserError::Empty);
    }
    let entry = find_user(passwd, user);
    let (uid, mut gid, name, home) = match (entry, user.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), Some(e.home)),
        (None, Ok(uid)) => (uid, 0, None, None),
        (None, Err(_)) => return Err(UserError::NoUser(user.to_owned())),
    };
    // An explicit group replaces the supplementary list, as docker and su do.
    let member = name.as_deref().filter(|_| grp.is_none());
    let (named, member_of) = scan_groups(group, grp, member);
    if let Some(g) = grp {
        gid = match named {
            Some(gid) => gid,
            None => g.parse().map_err(|_| UserError::NoGroup(g.to_owned()))?,
        };
    }
    let mut groups = vec![gid];
    groups.extend(member_of.into_iter().filter(|g| *g != gid));
    Ok(Identity {
        uid,
        gid,
        groups,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nbroken line\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nstaff:x:50:app\naudio:x:29:root,app\n";
    const P: &[u8] = PASSWD.as_bytes();
    const G: &[u8] = GROUP.as_bytes();

    #[test]
    fn names_and_ids_resolve_in_the_given_files() {
        let app = resolve("app", P, G).unwrap();
        assert_eq!((app.uid, app.gid), (1000, 1000));
        assert_eq!(app.groups, [1000, 50, 29]);
        assert_eq!(app.home.as_deref(), Some("/home/app"));
        assert_eq!(resolve("1000", P, G).unwrap(), app);
        let staff = resolve("app:staff", P, G).unwrap();
        assert_eq!((staff.uid, staff.gid, staff.groups), (1000, 50, vec![50]));
        let nums = resolve("4242:77", P, G).unwrap();
        assert_eq!((nums.uid, nums.gid, nums.home), (4242, 77, None));
        assert_eq!(resolve("4242", P, G).unwrap().gid, 0);
        assert_eq!(Identity::root(P, G).groups, [0, 29]);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(resolve("bob", P, G), Err(UserError::NoUser("bob".into())));
        assert_eq!(
            resolve("app:wheel", P, G),
            Err(UserError::NoGroup("wheel".into()))
        );
        assert_eq!(resolve(":", P, G), Err(UserError::Empty));
        assert_eq!(resolve("app:", P, G), Err(UserError::Empty));
    }

    #[test]
    fn one_line_at_a_time_overlong_lines_skipped() {
        let long = "x".repeat(MAX_LINE as usize * 3);
        let passwd = format!("{long}:x:7:7::/:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n{long}");
        let app = resolve("app", passwd.as_bytes(), G).unwrap();
        assert_eq!((app.uid, app.home.as_deref()), (1000, Some("/home/app")));
        assert_eq!(resolve("7", passwd.as_bytes(), G).unwrap().gid, 0);
        let crlf = "app:x:5:6::/h:/bin/sh\r\n";
        let group = "staff:x:50:app\r\n";
        let app = resolve("app", crlf.as_bytes(), group.as_bytes()).unwrap();
        assert_eq!((app.uid, app.groups), (5, vec![6, 50]));
    }
}
