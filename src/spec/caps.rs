//! `-cap-add` and `-cap-drop`: the container's capability set as a bit mask,
//! worked out as docker does (moby `oci/caps.TweakCapabilities`).

use super::SpecError;
use crate::container::caps::{self, DEFAULT};

/// One `-cap-add`/`-cap-drop` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cap {
    All,
    One(u32),
}

/// The set the container's processes get, for the flags as given. The kernel
/// and psdock's own set are only asked about when there is something to add.
pub fn from_args(add: &[String], drop: &[String]) -> Result<u64, SpecError> {
    if add.is_empty() {
        return tweak(add, drop, 0, 0);
    }
    let held = caps::held().map_err(SpecError::Capget)?;
    tweak(add, drop, caps::last(), held)
}

/// The default set, or every capability with `-cap-add ALL`, or none with
/// `-cap-drop ALL`; then the adds and drops as docker applies them. `cap_last`
/// is the highest capability the running kernel knows, `held` the ones psdock
/// has itself: a capability outside either cannot be added (a drop of it is
/// granted: there is nothing to drop), and `-cap-add ALL` means all that
/// psdock holds.
fn tweak(add: &[String], drop: &[String], cap_last: u32, held: u64) -> Result<u64, SpecError> {
    let known = if cap_last >= 63 {
        u64::MAX
    } else {
        (1u64 << (cap_last + 1)) - 1
    } & held;
    let mut adds = Vec::with_capacity(add.len());
    for value in add {
        let cap = parse("cap-add", value)?;
        if let Cap::One(n) = cap {
            if n > cap_last {
                return Err(SpecError::Capability {
                    flag: "cap-add",
                    value: value.clone(),
                    why: format!("this kernel does not have it (its last is {cap_last})"),
                });
            }
            if held & 1 << n == 0 {
                return Err(SpecError::Capability {
                    flag: "cap-add",
                    value: value.clone(),
                    why: "psdock does not hold it itself".into(),
                });
            }
        }
        adds.push(cap);
    }
    let drops = drop
        .iter()
        .map(|v| parse("cap-drop", v))
        .collect::<Result<Vec<_>, _>>()?;
    let mask = |caps: &[Cap]| caps.iter().fold(0u64, |m, c| m | bit(*c, known));
    Ok(if adds.contains(&Cap::All) {
        // Docker drops the named ones only: `-cap-drop ALL` means nothing here.
        let named = drops.iter().filter(|c| **c != Cap::All).copied();
        known & !named.fold(0, |m, c| m | bit(c, known))
    } else if drops.contains(&Cap::All) {
        mask(&adds)
    } else {
        // Adds after drops: a capability named by both is kept, as in docker.
        (DEFAULT & !mask(&drops)) | mask(&adds)
    })
}

fn bit(cap: Cap, known: u64) -> u64 {
    match cap {
        Cap::All => known,
        Cap::One(n) => 1 << n,
    }
}

/// `NET_RAW`, `net_raw`, `CAP_NET_RAW`, `ALL`.
fn parse(flag: &'static str, value: &str) -> Result<Cap, SpecError> {
    let upper = value.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(Cap::All);
    }
    match caps::number(&upper) {
        Some(n) => Ok(Cap::One(n)),
        None => Err(SpecError::Capability {
            flag,
            value: value.to_owned(),
            why: "no such capability".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(add: &[&str], drop: &[&str]) -> Result<u64, SpecError> {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        tweak(&v(add), &v(drop), 40, u64::MAX)
    }

    const NET_RAW: u64 = 1 << 13;
    const CHOWN: u64 = 1;

    #[test]
    fn names_are_docker_s_with_or_without_cap_in_any_case() {
        assert_eq!(caps(&[], &[]).unwrap(), DEFAULT);
        for name in ["NET_RAW", "net_raw", "CAP_NET_RAW", "cap_Net_Raw"] {
            assert_eq!(caps(&[name], &[]).unwrap(), DEFAULT | NET_RAW, "{name}");
        }
        assert_eq!(caps(&[], &["chown"]).unwrap(), DEFAULT & !CHOWN);
        assert_eq!(caps::NAMES[40], "CHECKPOINT_RESTORE");
        assert_eq!(caps::NAMES[27], "MKNOD");
    }

    #[test]
    fn all_works_as_in_docker() {
        let every = (1u64 << 41) - 1;
        assert_eq!(caps(&["ALL"], &[]).unwrap(), every);
        assert_eq!(caps(&["all"], &["CHOWN"]).unwrap(), every & !CHOWN);
        assert_eq!(caps(&["ALL"], &["ALL"]).unwrap(), every);
        assert_eq!(caps(&[], &["ALL"]).unwrap(), 0);
        assert_eq!(caps(&["CHOWN"], &["ALL"]).unwrap(), CHOWN);
        // Named by both: the add wins.
        assert_eq!(caps(&["NET_RAW"], &["NET_RAW"]).unwrap(), DEFAULT | NET_RAW);
    }

    #[test]
    fn unknown_names_and_caps_beyond_the_kernel_are_refused() {
        let err = caps(&["CAP_FLY"], &[]).unwrap_err().to_string();
        assert_eq!(err, "-cap-add CAP_FLY: no such capability");
        let err = caps(&[], &["sys_fly"]).unwrap_err().to_string();
        assert_eq!(err, "-cap-drop sys_fly: no such capability");
        let v = |s: &str| vec![s.to_owned()];
        let err = tweak(&v("BPF"), &[], 38, u64::MAX).unwrap_err();
        assert_eq!(
            err.to_string(),
            "-cap-add BPF: this kernel does not have it (its last is 38)"
        );
        assert_eq!(tweak(&[], &v("BPF"), 38, u64::MAX).unwrap(), DEFAULT);
        let all = (1 << 39) - 1;
        assert_eq!(tweak(&v("ALL"), &[], 38, u64::MAX).unwrap(), all);
        // What psdock lacks itself: not in ALL, and not to be added by name.
        let held = !(1 << 24);
        assert_eq!(tweak(&v("ALL"), &[], 38, held).unwrap(), all & held);
        let err = tweak(&v("SYS_RESOURCE"), &[], 38, held).unwrap_err();
        assert_eq!(
            err.to_string(),
            "-cap-add SYS_RESOURCE: psdock does not hold it itself"
        );
    }
}
