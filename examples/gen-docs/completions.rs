//! Shell completions from clap_complete, adapted to psdock's command line:
//! flags offered with one dash as users type them (src/cli/compat.rs), the
//! plug-in names of this build's registry as the values of -rootfs-driver,
//! -port-probe and -stdio, and psdock-exec's ID from `psdock-ls -q` at
//! completion time. Each edit of clap_complete's output checks that what it
//! edits is there: a new clap_complete that writes otherwise fails the
//! generation (and tests/integration/docs.rs) instead of shipping a script that
//! quietly lost its edits.

use clap::builder::PossibleValuesParser;
use clap_complete::Shell;
use psdock::plugin::{Kind, NetworkDriver, PortProbe, Registry, RootfsDriver, StdioSink};

use super::generate::{longs, Binary};

pub struct Scripts {
    pub bash: String,
    pub zsh: String,
    pub fish: String,
}

pub fn scripts(b: &Binary) -> Scripts {
    let mut cmd = with_plugin_names(b.cmd.clone());
    let name = cmd.get_name().to_owned();
    let mut generate = |shell| {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, &name, &mut out);
        String::from_utf8(out).expect("clap_complete writes UTF-8")
    };
    let (bash, zsh, fish) = (
        generate(Shell::Bash),
        generate(Shell::Zsh),
        generate(Shell::Fish),
    );
    let longs = longs(&b.cmd);
    let leading: Vec<String> = b
        .cmd
        .get_positionals()
        .take(b.leading.unwrap_or(0))
        .map(|a| a.get_id().to_string())
        .collect();
    Scripts {
        bash: bash_script(&bash, b, &longs),
        zsh: zsh_script(&zsh, &longs, &leading),
        fish: fish_script(&fish, &b.cmd, !leading.is_empty()),
    }
}

/// The plug-in names compiled into this build, as the values clap_complete
/// offers; the stdio sinks as the URL schemes `-stdio` picks them by (but the
/// default, which no URL names).
fn with_plugin_names(mut cmd: clap::Command) -> clap::Command {
    let stdio: Vec<String> = Registry::<dyn StdioSink>::new(Kind::Stdio)
        .compiled_in()
        .into_iter()
        .filter(|n| *n != psdock::stdio::options::DEFAULT_SCHEME)
        .map(|n| format!("{n}://"))
        .collect();
    let owned = |names: Vec<&str>| names.into_iter().map(str::to_owned).collect();
    let plugins = [
        (
            "rootfs-driver",
            owned(Registry::<dyn RootfsDriver>::new(Kind::Rootfs).compiled_in()),
        ),
        (
            "port-probe",
            owned(Registry::<dyn PortProbe>::new(Kind::Ports).compiled_in()),
        ),
        ("stdio", stdio),
        (
            "net",
            owned(Registry::<dyn NetworkDriver>::new(Kind::Net).compiled_in()),
        ),
    ];
    for (long, names) in plugins {
        let Some(id) = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .map(|a| a.get_id().clone())
        else {
            continue;
        };
        // clap names its values by `&'static str` alone; this runs once.
        let names: Vec<&'static str> = names.into_iter().map(|n| &*n.leak()).collect();
        cmd = cmd.mut_arg(id, |a| a.value_parser(PossibleValuesParser::new(names)));
    }
    cmd
}

/// `text` with `from` replaced by `to`; `from` must be there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "clap_complete's output changed: no {from:?}"
    );
    text.replace(from, to)
}

/// Every `--LONG` (a whole word) as `-LONG`, longest names first.
fn single_dash(text: &str, longs: &[String]) -> String {
    let mut longs = longs.to_vec();
    longs.sort_by_key(|l| std::cmp::Reverse(l.len()));
    let mut out = text.to_owned();
    for long in &longs {
        let double = format!("--{long}");
        let mut next = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(&double) {
            let end = at + double.len();
            let before = rest[..at].chars().next_back();
            let after = rest[end..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
            next.push_str(&rest[..at]);
            next.push_str(if word(before) || word(after) {
                &double
            } else {
                &double[1..]
            });
            rest = &rest[end..];
        }
        next.push_str(rest);
        out = next;
    }
    assert!(
        longs.iter().all(|l| !out.contains(&format!("'--{l}"))),
        "a double-dash flag is left"
    );
    out
}

/// clap's function offers the flags and their values; a function of psdock's
/// own goes first. Flags come before the command (compat.rs stops at the first
/// word that is not a flag), so from there on the words are the command's own
/// and the shell's default completion applies; before it, psdock-exec's ID is
/// one of the running containers.
fn bash_script(clap: &str, b: &Binary, longs: &[String]) -> String {
    let mut text = single_dash(clap, longs);
    // The previous word may be typed either way: both select the flag's values.
    for long in longs {
        let case = format!(" -{long})\n");
        if text.contains(&case) {
            text = text.replace(&case, &format!(" -{long}|--{long})\n"));
        }
    }
    let Some(leading) = b.leading else {
        return text;
    };
    let clap_fn = text
        .split("complete -F ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("clap_complete's bash output names its function")
        .to_owned();
    let ours = format!("{clap_fn}_words");
    let mut value_flags: Vec<String> = Vec::new();
    for a in b.cmd.get_arguments() {
        if a.is_positional() || !a.get_action().takes_values() {
            continue;
        }
        let names = a.get_long().map(str::to_owned).into_iter();
        let names = names.chain(a.get_short().map(String::from));
        let names = names.chain(
            a.get_all_aliases()
                .unwrap_or_default()
                .into_iter()
                .map(str::to_owned),
        );
        for n in names {
            value_flags.push(format!("-{n}|--{n}"));
        }
    }
    let ids = if leading > 0 {
        r#"COMPREPLY=( $(compgen -W "$(psdock-ls -q 2>/dev/null)" -- "$cur") )"#
    } else {
        "COMPREPLY=()"
    };
    let value_flags = value_flags.join("|");
    text = edit(
        &text,
        &format!("complete -F {clap_fn} "),
        &format!("complete -F {ours} "),
    );
    format!(
        r#"{text}
# psdock's flags come before the command, which begins at the first word that
# is not a flag (after psdock-exec's ID): from there on the shell's default
# completion applies; psdock-exec's ID is one of the running containers.
{ours}() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} i=1 n=0
    while (( i < COMP_CWORD )); do
        case ${{COMP_WORDS[i]}} in
        --) n={after}; break ;;
        {value_flags}) (( i += 2 )); continue ;;
        -*) ;;
        *) (( n += 1 )); (( n > {leading} )) && break ;;
        esac
        (( i += 1 ))
    done
    if (( i > COMP_CWORD )) || [[ $cur == -* && n -le {leading} ]]; then
        {clap_fn} "$@"
    elif (( n < {leading} )); then
        {ids}
    else
        COMPREPLY=()
    fi
}}
"#,
        after = leading + 1,
    )
}

/// zsh's `_arguments` takes `-image` as readily as `--image`; without `-s`,
/// as psdock stacks no short flags (`-ifoo` is an error, not `-i foo`).
/// psdock-exec's ID: the running containers at completion time.
fn zsh_script(clap: &str, longs: &[String], leading: &[String]) -> String {
    let mut text = single_dash(clap, longs);
    text = edit(
        &text,
        "_arguments_options=(-s -S -C)",
        "_arguments_options=(-S -C)",
    );
    text = edit(
        &text,
        "_arguments_options=(-s -C)",
        "_arguments_options=(-C)",
    );
    for id in leading {
        let start = text
            .find(&format!("\n':{id} -- "))
            .expect("clap_complete's zsh output has the positional");
        let end = start + text[start..].find(":_default'").expect("its action");
        text.replace_range(
            end..end + ":_default'".len(),
            r#":{compadd -- ${(f)"$(psdock-ls -q 2>/dev/null)"}}'"#,
        );
    }
    text
}

/// fish's `-o` is an old-style flag: one dash, never stacked, as psdock reads
/// them all, the short ones too (`-ro` is `-rootfs` begun, not `-r o`).
/// psdock-exec's ID: the running containers at completion time, as the first
/// word that is not a flag.
fn fish_script(clap: &str, cmd: &clap::Command, ids: bool) -> String {
    let name = cmd.get_name();
    let mut text = clap.to_owned();
    for long in longs(cmd) {
        text = edit(&text, &format!(" -l {long} "), &format!(" -o {long} "));
    }
    for short in cmd.get_arguments().filter_map(|a| a.get_short()) {
        text = edit(&text, &format!(" -s {short} "), &format!(" -o {short} "));
    }
    if ids {
        text.push_str(&format!(
            "complete -c {name} -n __fish_is_first_arg -f -a '(psdock-ls -q 2>/dev/null)' -d 'running container'\n"
        ));
    }
    text
}
