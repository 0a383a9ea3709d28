//! `-user` resolution against the image's own `/etc/passwd` and `/etc/group`,
//! never the host's.

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
    pub fn root(passwd: &str, group: &str) -> Self {
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

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3],
        })
    })
}

/// Resolves `name`, `uid`, `name:group` or `uid:gid`. A numeric uid with no
/// passwd entry runs with gid 0, as docker does; a name must exist.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Identity, UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp == Some("") {
        return Err(UserError::Empty);
    }
    let entry = passwd_entries(passwd).find(|e| e.name == user).or_else(|| {
        let uid: u32 = user.parse().ok()?;
        passwd_entries(passwd).find(|e| e.uid == uid)
    });
    let (uid, mut gid, name, home) = match (&entry, user.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), Some(e.home.to_owned())),
        (None, Ok(uid)) => (uid, 0, None, None),
        (None, Err(_)) => return Err(UserError::NoUser(user.to_owned())),
    };
    if let Some(g) = grp {
        gid = match group_entries(group).find(|e| e.name == g) {
            Some(e) => e.gid,
            None => g.parse().map_err(|_| UserError::NoGroup(g.to_owned()))?,
        };
    }
    let mut groups = vec![gid];
    // An explicit group replaces the supplementary list, as docker and su do.
    if let (Some(name), None) = (name, grp) {
        for e in group_entries(group) {
            if e.members.split(',').any(|m| m == name) && !groups.contains(&e.gid) {
                groups.push(e.gid);
            }
        }
    }
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

    #[test]
    fn names_and_ids_resolve_in_the_given_files() {
        let app = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!((app.uid, app.gid), (1000, 1000));
        assert_eq!(app.groups, [1000, 50, 29]);
        assert_eq!(app.home.as_deref(), Some("/home/app"));
        assert_eq!(resolve("1000", PASSWD, GROUP).unwrap(), app);
        let staff = resolve("app:staff", PASSWD, GROUP).unwrap();
        assert_eq!((staff.uid, staff.gid, staff.groups), (1000, 50, vec![50]));
        let nums = resolve("4242:77", PASSWD, GROUP).unwrap();
        assert_eq!((nums.uid, nums.gid, nums.home), (4242, 77, None));
        assert_eq!(resolve("4242", PASSWD, GROUP).unwrap().gid, 0);
        assert_eq!(Identity::root(PASSWD, GROUP).groups, [0, 29]);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve("bob", PASSWD, GROUP),
            Err(UserError::NoUser("bob".into()))
        );
        assert_eq!(
            resolve("app:wheel", PASSWD, GROUP),
            Err(UserError::NoGroup("wheel".into()))
        );
        assert_eq!(resolve(":", PASSWD, GROUP), Err(UserError::Empty));
        assert_eq!(resolve("app:", PASSWD, GROUP), Err(UserError::Empty));
    }
}
