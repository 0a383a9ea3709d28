//! Man pages and shell completions: examples/gen-docs (its files, compiled in
//! here by path) against the clap definitions, real shells and a running
//! container.

#[path = "../../examples/gen-docs/completions.rs"]
mod completions;
#[path = "../../examples/gen-docs/generate.rs"]
mod generate;
#[path = "../../examples/gen-docs/man.rs"]
mod man;
#[path = "../../examples/gen-docs/pages.rs"]
mod pages;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use clap::CommandFactory;
use psdock::cli::{Args, ExecArgs, LsArgs};
use serde_json::Value;

use crate::records::start;
use crate::util::*;

/// The generator's output, once for the whole run.
fn docs() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let files = generate::generate(dir.path()).unwrap();
        assert_eq!(files.len(), 12, "{files:?}");
        dir
    })
    .path()
}

/// Each binary's name and every long and short flag of its clap definition
/// (help included, as psdock accepts `-help`), read here, not from the generator.
fn definitions() -> Vec<(String, Vec<String>, Vec<char>)> {
    [Args::command(), LsArgs::command(), ExecArgs::command()]
        .into_iter()
        .map(|mut cmd| {
            cmd.build();
            let longs = cmd.get_arguments().filter_map(|a| a.get_long());
            let longs = longs.map(str::to_owned).collect();
            let shorts = cmd.get_arguments().filter_map(|a| a.get_short()).collect();
            (cmd.get_name().to_owned(), longs, shorts)
        })
        .collect()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(docs().join(rel)).unwrap()
}

#[test]
fn man_pages_show_every_flag_with_one_dash_and_the_sections_beyond_the_flags() {
    for (name, longs, shorts) in definitions() {
        let page = read(&format!("man/{name}.1"));
        assert!(
            page.contains(&format!("\n.TH {} 1 ", name.to_uppercase())),
            "{page}"
        );
        for long in &longs {
            let long = long.replace('-', r"\-");
            assert!(
                page.contains(&format!(r"\fB\-{long}\fR")),
                "{name}: -{long}"
            );
            assert!(!page.contains(&format!(r"\-\-{long}")), "{name}: --{long}");
        }
        for short in shorts {
            assert!(
                page.contains(&format!(r"\fB\-{short}\fR")),
                "{name}: -{short}"
            );
        }
        for section in ["EXIT STATUS", "FILES", "ENVIRONMENT", "SEE ALSO"] {
            assert!(
                page.contains(&format!(".SH {section}\n")),
                "{name}: {section}"
            );
        }
        assert!(page.contains("PSDOCK_STATE_DIR"), "{name}");
        // man's own formatter reads it without a warning.
        let out = output(
            Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(docs().join(format!("man/{name}.1"))),
        );
        assert_eq!((code(&out), stderr(&out)), (0, String::new()), "{name}");
    }
    let psdock = read("man/psdock.1");
    for status in [r"\fB125\fR", r"\fB126\fR", r"\fB127\fR", r"\fB128+\fIN\fR"] {
        assert!(psdock.contains(status), "{status}");
    }
    assert!(psdock.contains("/var/lib/psdock/layers"));
    let exec = read("man/psdock-exec.1");
    assert!(
        exec.contains("psdock\\-exec \\- Run another command inside"),
        "{exec}"
    );
}

#[test]
fn completions_offer_every_flag_with_one_dash_and_the_shells_read_them() {
    for (name, longs, shorts) in definitions() {
        let bash = read(&format!("bash/{name}"));
        let opts = bash
            .lines()
            .find_map(|l| l.trim().strip_prefix("opts=\"-"))
            .map(|rest| format!("-{rest}"))
            .unwrap();
        let offered: Vec<&str> = opts.trim_end_matches('"').split(' ').collect();
        let zsh = read(&format!("zsh/_{name}"));
        let fish = read(&format!("fish/{name}.fish"));
        for long in &longs {
            assert!(
                offered.contains(&format!("-{long}").as_str()),
                "bash {name} -{long}"
            );
            assert!(
                !offered.contains(&format!("--{long}").as_str()),
                "bash {name} --{long}"
            );
            assert!(
                zsh.contains(&format!("-{long}[")) || zsh.contains(&format!("-{long}=[")),
                "zsh {name} -{long}"
            );
            assert!(!zsh.contains(&format!("--{long}")), "zsh {name} --{long}");
            assert!(
                fish.contains(&format!(" -o {long} ")),
                "fish {name} -{long}"
            );
        }
        for short in shorts {
            assert!(
                offered.contains(&format!("-{short}").as_str()),
                "bash {name} -{short}"
            );
            assert!(
                fish.contains(&format!(" -o {short} ")),
                "fish {name} -{short}"
            );
        }
        for (shell, file) in [
            ("bash", format!("bash/{name}")),
            ("zsh", format!("zsh/_{name}")),
            ("fish", format!("fish/{name}.fish")),
        ] {
            let out = output(Command::new(shell).arg("-n").arg(docs().join(file)));
            assert_eq!(code(&out), 0, "{shell} {name}: {}", stderr(&out));
        }
    }
}

/// What bash's programmable completion offers for `words` (the last is the
/// one being completed), from the generated script, as `complete -F` calls it.
fn bash_complete(sb: &Sandbox, binary: &str, words: &[&str]) -> Vec<String> {
    let script = r#"
        source "$1"; shift
        fn=$(complete -p "$1" | sed -n 's/.*-F \([^ ]*\).*/\1/p')
        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = output(
        Command::new("bash")
            .args(["-c", script, "bash"])
            .arg(docs().join(format!("bash/{binary}")))
            .arg(binary)
            .args(words)
            .env("PATH", path_with_binaries())
            .env("PSDOCK_STATE_DIR", sb.state_dir()),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// PATH with this build's psdock-ls first, as an installed one would be.
fn path_with_binaries() -> std::ffi::OsString {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_psdock-ls"));
    let mut dirs = vec![bin.parent().unwrap().to_owned()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

#[test]
fn psdock_exec_completes_the_id_of_a_running_container_in_bash_and_fish() {
    let sb = Sandbox::new();
    // Nothing runs yet: no id to offer.
    assert_eq!(
        bash_complete(&sb, "psdock-exec", &[""]),
        Vec::<String>::new()
    );
    let mut cmd = sb.psdock();
    cmd.args(["sleep", "1000"]);
    let c = start(&sb, cmd);
    let id = c.id().to_owned();
    assert_eq!(bash_complete(&sb, "psdock-exec", &[""]), [id.as_str()]);
    assert_eq!(
        bash_complete(&sb, "psdock-exec", &[&id[..9]]),
        [id.as_str()]
    );
    // After flags and their values, still the ID's place.
    assert_eq!(
        bash_complete(&sb, "psdock-exec", &["-e", "A=1", "-user=0", ""]),
        [id.as_str()]
    );
    // After the ID comes the command: no ids, no flags of psdock-exec's.
    assert_eq!(
        bash_complete(&sb, "psdock-exec", &[&id, "ls", ""]),
        Vec::<String>::new()
    );
    assert!(bash_complete(&sb, "psdock-exec", &[&id, "ls", "-"]).is_empty());
    assert_eq!(bash_complete(&sb, "psdock-exec", &[&id, "-cw"]), ["-cwd"]);

    let out = output(
        Command::new("fish")
            .arg("-c")
            .arg(r#"source $argv[1]; complete -C "psdock-exec ""#)
            .arg(docs().join("fish/psdock-exec.fish"))
            .env("PATH", path_with_binaries())
            .env("PSDOCK_STATE_DIR", sb.state_dir()),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.split('\t').next() == Some(&id)),
        "{}",
        stdout(&out)
    );
    drop(c);
}

#[test]
fn the_plugin_names_of_this_build_complete_their_flags() {
    let sb = Sandbox::new();
    let listing: Value = serde_json::from_slice(
        &output(Command::new(psdock()).args(["-list-drivers", "-json"])).stdout,
    )
    .unwrap();
    let compiled_in = |kind: &str| -> Vec<String> {
        let kind = listing
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == kind)
            .unwrap();
        let all = kind["implementations"].as_array().unwrap().iter();
        let mut names: Vec<String> = all
            .filter(|i| i["compiled_in"] == true)
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    for (flag, kind) in [
        ("-rootfs-driver", "rootfs"),
        ("--port-probe", "ports"),
        ("-net", "net"),
    ] {
        assert_eq!(
            sorted(bash_complete(&sb, "psdock", &[flag, ""])),
            compiled_in(kind),
            "{flag}"
        );
    }
    let schemes: Vec<String> = compiled_in("stdio")
        .into_iter()
        .filter(|n| n != "inherit")
        .map(|n| format!("{n}://"))
        .collect();
    assert!(schemes.contains(&"file://".to_owned()), "{schemes:?}");
    assert_eq!(
        sorted(bash_complete(&sb, "psdock", &["-stdio", ""])),
        sorted(schemes)
    );
    assert_eq!(bash_complete(&sb, "psdock", &["-upper", "d"]), ["disk"]);
    // The command's own words are the command's: no psdock flags there.
    assert!(bash_complete(&sb, "psdock", &["-i", "img", "ls", "-"]).is_empty());
}
