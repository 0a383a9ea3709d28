use crate::util::*;

/// The upper layer is thrown away when the run ends, so where the kernel has it
/// (5.10 and later) the overlay is `volatile`: its unmount then does not sync the
/// whole file system under the upper directory. The kernel's marker directory in
/// `work/` must not keep the teardown from removing everything.
#[test]
fn the_throwaway_upper_layer_is_mounted_volatile_and_still_removed() {
    let sb = Sandbox::new();
    let out = sb.run(["grep", " / / ", "/proc/self/mountinfo"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let root = stdout(&out);
    let release = nix::sys::utsname::uname()
        .unwrap()
        .release()
        .to_string_lossy()
        .into_owned();
    let expected = psdock::host::version_of(&release).is_some_and(|v| v >= (5, 10));
    let options = root.trim_end().rsplit(' ').next().unwrap_or_default();
    let volatile = options
        .split(',')
        .any(|o| o == "volatile" || o == "fsync=volatile");
    assert_eq!(volatile, expected, "kernel {release}, root mount: {root}");
    sb.assert_clean();
}
