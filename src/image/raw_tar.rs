//! Test support, shared with the integration tests: a tar stream written
//! header by header, so that hostile names (which the tar crate's builder
//! refuses) can be made too.

/// A tar stream from (path, kind, data or link target) triples.
pub fn archive(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, kind, data_or_link) in entries {
        let mut h = tar::Header::new_gnu();
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let data: &[u8] = if kind.is_file() {
            data_or_link.as_bytes()
        } else {
            h.set_link_name_literal(data_or_link).unwrap();
            b""
        };
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}
