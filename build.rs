//! Builds `psdock-init`, the PID 1 of `-init` (src/container/pid1/psdock-init.rs):
//! a static program without the standard library, which psdock's binary carries
//! (`include_bytes!`) and executes from a sealed memfd. One `rustc` call for the
//! target being built, with none of the flags meant for psdock itself.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "src/container/pid1/psdock-init.rs";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let exe = out.join("psdock-init");
    if !matches!(arch.as_str(), "x86_64" | "aarch64") {
        // Written for these two only; elsewhere `-init` says it is not there.
        std::fs::write(&exe, b"").expect("write an empty psdock-init");
        return;
    }
    let status = Command::new(rustc)
        .args(["--edition", "2021", "--crate-type", "bin", "--crate-name"])
        .arg("psdock_init")
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "codegen-units=1",
        ])
        .args(["-C", "debuginfo=0", "-C", "strip=symbols"])
        // Position-independent and static: loaded at a random address, with
        // nothing to relocate (the program holds no pointer in its data).
        .args([
            "-C",
            "relocation-model=pie",
            "-C",
            "target-feature=+crt-static",
        ])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args(["-C", "link-arg=-Wl,--build-id=none"])
        .arg("-o")
        .arg(&exe)
        .arg(SOURCE)
        // Cargo's flags for psdock (a linker script, a static glibc) are not
        // for this program.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .status()
        .expect("run rustc for psdock-init");
    assert!(status.success(), "rustc failed on {SOURCE}");
}
