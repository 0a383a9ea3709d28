//! psdock's resident memory while it supervises. Most of the code a run
//! executes runs once, at start-up (flag parsing, image checks, the overlay,
//! the container's set-up), and the kernel maps the binary in 64 KiB windows
//! around each page it runs: about 2.6 MiB of the supervisor's 3.4 MiB, which
//! would stay resident for as long as the command runs. Once the command
//! runs, psdock drops its mappings of its own code (MADV_DONTNEED); the pages
//! stay in the page cache, and the few that supervising runs come back on
//! first use, as minor faults.

use std::ffi::{c_int, c_void};

/// The executable flag of a program header.
const PF_X: u32 = 1;

/// Drops the mappings of the executable's code pages; nothing to undo, no
/// failure worth reporting (the pages simply stay).
pub fn release_startup_code() {
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: usize, _: *mut c_void) -> c_int {
        // SAFETY: glibc hands a valid description of a loaded object; the
        // first one is the executable itself.
        let info = unsafe { &*info };
        // SAFETY: `sysconf` takes no pointer.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: `dlpi_phnum` headers follow `dlpi_phdr`.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type != libc::PT_LOAD || ph.p_flags & PF_X == 0 {
                continue;
            }
            // Whole pages of the segment only: its neighbours keep theirs.
            let start = (info.dlpi_addr as usize + ph.p_vaddr as usize).next_multiple_of(page);
            let end = (info.dlpi_addr as usize + (ph.p_vaddr + ph.p_memsz) as usize) / page * page;
            if end > start {
                // SAFETY: a read-only, file-backed mapping of the executable:
                // dropping its pages only makes the next use fault them in
                // again from the file, which the mapping keeps open.
                unsafe { libc::madvise(start as *mut c_void, end - start, libc::MADV_DONTNEED) };
            }
        }
        1
    }
    // SAFETY: the callback only reads what glibc hands it.
    unsafe { libc::dl_iterate_phdr(Some(each), std::ptr::null_mut()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This binary's resident code, in KiB, from /proc/self/smaps.
    fn own_code_kib() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut ours = false;
        let mut total = 0;
        for line in smaps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields
                .first()
                .is_some_and(|f| f.contains('-') && f.len() > 8)
            {
                ours = fields.get(1).is_some_and(|p| p.contains('x'))
                    && fields
                        .get(5)
                        .is_some_and(|p| std::path::Path::new(p) == exe);
            } else if ours && fields.first() == Some(&"Rss:") {
                total += fields[1].parse::<u64>().unwrap();
            }
        }
        total
    }

    #[test]
    fn the_code_run_so_far_is_no_longer_resident() {
        let before = own_code_kib();
        assert!(before > 0, "no resident code found in /proc/self/smaps");
        release_startup_code();
        let after = own_code_kib();
        // Code never leaves by itself (no memory pressure here), while the
        // other tests, running in parallel threads, fault some back in: less
        // than before is what only the release explains.
        assert!(after < before, "{before} KiB before, {after} KiB after");
    }
}
