//! `-bind-mount HOST:CONTAINER[:ro|rw]`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::SpecError;
use crate::fsutil;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Canonical host path: it exists, and symlinks on the host side are resolved now.
    pub source: PathBuf,
    /// Absolute path inside the container, without `..`.
    pub target: PathBuf,
    pub readonly: bool,
}

pub(super) fn parse_bind(value: OsString) -> Result<BindMount, SpecError> {
    let err = |why: String| SpecError::Bind {
        value: value.clone(),
        why,
    };
    let parts: Vec<&[u8]> = value.as_bytes().split(|&b| b == b':').collect();
    let (source, target, readonly) = match parts.as_slice() {
        [s, t] => (*s, *t, false),
        [s, t, b"ro"] => (*s, *t, true),
        [s, t, b"rw"] => (*s, *t, false),
        _ => return Err(err("expected HOST:CONTAINER[:ro|rw]".into())),
    };
    let source = Path::new(OsStr::from_bytes(source));
    let target = Path::new(OsStr::from_bytes(target));
    if !source.is_absolute() || !target.is_absolute() {
        return Err(err("both paths must be absolute".into()));
    }
    if target.components().any(|c| c == Component::ParentDir) {
        return Err(err("the container path must not contain `..`".into()));
    }
    if target.components().all(|c| c == Component::RootDir) {
        return Err(err("cannot mount over the container's /".into()));
    }
    let source = fsutil::canonicalize(source)
        .map_err(|e| err(format!("source {}: {e}", source.display())))?;
    Ok(BindMount {
        source,
        target: target.to_owned(),
        readonly,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_mount_forms() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().to_str().unwrap();
        let b = parse_bind(format!("{src}:/data:ro").into()).unwrap();
        assert!(b.readonly);
        assert_eq!(b.target, Path::new("/data"));
        assert!(!parse_bind(format!("{src}:/data").into()).unwrap().readonly);
        assert!(
            !parse_bind(format!("{src}:/data:rw").into())
                .unwrap()
                .readonly
        );
        for bad in [
            format!("{src}:/data:rx"),
            src.to_string(),
            format!("{src}:data"),
            format!("{src}:/a/../b"),
            format!("{src}:/"),
            "/no/such/source:/data".to_owned(),
        ] {
            let e = parse_bind(bad.clone().into()).unwrap_err().to_string();
            assert!(e.starts_with(&format!("-bind-mount {bad}: ")), "{e}");
        }
    }
}
