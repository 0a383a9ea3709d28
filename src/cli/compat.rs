use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use clap::{CommandFactory, FromArgMatches};

use super::Args;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("unknown flag {0}")]
    Unknown(String),
    #[error("{0}")]
    Clap(String),
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Parsed<T = Args> {
    Run(Box<T>),
    /// `--help` or `--version`: print this and exit 0.
    Print(String),
}

struct Flag {
    long: String,
    names: Vec<String>,
    takes_value: bool,
}

/// The flags clap knows, with every name they go by (long, aliases, short).
fn flags(cmd: &clap::Command) -> Vec<Flag> {
    cmd.get_arguments()
        .filter(|a| !a.is_positional())
        .filter_map(|a| {
            let long = a.get_long()?.to_owned();
            let mut names = vec![long.clone()];
            names.extend(
                a.get_all_aliases()
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_owned),
            );
            names.extend(a.get_short().map(String::from));
            Some(Flag {
                long,
                names,
                takes_value: a.get_action().takes_values(),
            })
        })
        .collect()
}

/// Rewrites a Go-style command line into clap's form: every flag, however it
/// is spelled (`-image x`, `--image=x`, `-i x`, `--i x`), becomes `--image x`,
/// and a `--` is put before the first word that is not a flag, so that
/// everything from there on belongs to the command. A word that looks like a
/// flag but is none is an error: `-imagee` must never be read as `-i magee`.
///
/// Positionals declared before the command (psdock-exec's `ID`) are taken as
/// they come, wherever they stand among the flags.
fn rewrite(cmd: &clap::Command, argv: Vec<OsString>) -> Result<Vec<OsString>, CliError> {
    let flags = flags(cmd);
    let mut leading = cmd
        .get_positionals()
        .filter(|a| !a.is_trailing_var_arg_set())
        .count();
    let mut out = Vec::with_capacity(argv.len() + 1);
    let mut words = argv.into_iter();
    out.extend(words.next());
    while let Some(word) = words.next() {
        let bytes = word.as_bytes();
        if bytes == b"--" {
            out.push(word);
            break;
        }
        if leading > 0 && (bytes.len() < 2 || bytes[0] != b'-') {
            leading -= 1;
            out.push(word);
            continue;
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            out.push("--".into());
            out.push(word);
            break;
        }
        let body = bytes.strip_prefix(b"--").unwrap_or(&bytes[1..]);
        let (name, inline) = match body.iter().position(|&b| b == b'=') {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let flag = flags
            .iter()
            .find(|f| f.names.iter().any(|n| n.as_bytes() == name))
            .ok_or_else(|| CliError::Unknown(word.to_string_lossy().into_owned()))?;
        match inline {
            Some(value) => {
                let mut joined = format!("--{}=", flag.long).into_bytes();
                joined.extend_from_slice(value);
                out.push(OsString::from_vec(joined));
            }
            None => {
                out.push(format!("--{}", flag.long).into());
                if flag.takes_value {
                    out.extend(words.next());
                }
            }
        }
    }
    out.extend(words);
    Ok(out)
}

/// Parses psdock's command line.
pub fn parse(argv: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Parsed, CliError> {
    parse_as::<Args>(argv)
}

/// Parses the command line of psdock or one of its helpers, Go-style flags and all.
pub fn parse_as<T: CommandFactory + FromArgMatches>(
    argv: impl IntoIterator<Item = impl Into<OsString>>,
) -> Result<Parsed<T>, CliError> {
    let mut cmd = T::command();
    cmd.build();
    let argv = rewrite(&cmd, argv.into_iter().map(Into::into).collect())?;
    let matches = match cmd.try_get_matches_from_mut(argv) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind::*;
            return match e.kind() {
                DisplayHelp | DisplayVersion => Ok(Parsed::Print(e.render().to_string())),
                _ => Err(CliError::Clap(one_line(&e, &mut cmd))),
            };
        }
    };
    let args = T::from_arg_matches(&matches).map_err(|e| CliError::Clap(one_line(&e, &mut cmd)))?;
    Ok(Parsed::Run(Box::new(args)))
}

/// clap's error as psdock says it, on one line: each flag by its Go-style name
/// (`-upper`, which every spelling the user may have typed maps to, not the
/// `--upper <WHERE>` clap saw after [`rewrite`]), the value, what is wrong, and
/// the valid values where there is a list.
fn one_line(e: &clap::Error, cmd: &mut clap::Command) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind::*};
    let strings = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.as_str()],
        Some(ContextValue::Strings(v)) => v.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let names = |kind| {
        let names: Vec<String> = strings(kind).into_iter().map(flag_name).collect();
        names.join(", ")
    };
    let flag = names(ContextKind::InvalidArg);
    let value = strings(ContextKind::InvalidValue).concat();
    let valid = one_of(&strings(ContextKind::ValidValue));
    match e.kind() {
        InvalidValue if value.is_empty() && valid.is_empty() => format!("{flag} needs a value"),
        InvalidValue if value.is_empty() => format!("{flag} needs a value: {valid}"),
        InvalidValue if !valid.is_empty() => format!("{flag} '{value}': must be {valid}"),
        ValueValidation => match std::error::Error::source(e) {
            Some(why) => format!("{flag} '{value}': {why}"),
            None => format!("{flag} '{value}': invalid value"),
        },
        ArgumentConflict => match names(ContextKind::PriorArg) {
            prior if prior.is_empty() || prior == flag => format!("{flag} given twice"),
            prior => format!("{flag} cannot be used with {prior}"),
        },
        MissingRequiredArgument => {
            let usage = cmd.render_usage().to_string();
            let usage = usage.trim().trim_start_matches("Usage: ");
            format!("missing {flag} (usage: {usage})")
        }
        _ => {
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or_default();
            let line = line.strip_prefix("error: ").unwrap_or(line);
            line.replace("'--", "'-")
        }
    }
}

/// `--upper <WHERE>` as `-upper`, a positional's `<ID>` as `ID`.
fn flag_name(clap_name: &str) -> String {
    let word = clap_name.split_whitespace().next().unwrap_or_default();
    match word.strip_prefix("--") {
        Some(long) => format!("-{long}"),
        None => word.trim_matches(['<', '>']).to_owned(),
    }
}

/// "a", "a or b", "a, b or c".
fn one_of(values: &[&str]) -> String {
    match values {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(words: &[&str]) -> Args {
        let argv = std::iter::once("psdock").chain(words.iter().copied());
        match parse(argv).unwrap() {
            Parsed::Run(a) => *a,
            Parsed::Print(p) => panic!("unexpected print: {p}"),
        }
    }

    fn err(words: &[&str]) -> String {
        let argv = std::iter::once("psdock").chain(words.iter().copied());
        parse(argv).unwrap_err().to_string()
    }

    #[test]
    fn every_spelling_of_a_flag_is_accepted() {
        for words in [
            ["-image", "img"],
            ["--image", "img"],
            ["-i", "img"],
            ["--i", "img"],
        ] {
            assert_eq!(
                run(&words).image.unwrap().to_str(),
                Some("img"),
                "{words:?}"
            );
        }
        assert_eq!(run(&["-image=img"]).image.unwrap().to_str(), Some("img"));
        assert_eq!(run(&["--bind-mount", "/a:/b"]).bind_mount, ["/a:/b"]);
        assert_eq!(
            run(&["-v", "/a:/b", "-bind-mount=/c:/d"]).bind_mount,
            ["/a:/b", "/c:/d"]
        );
        assert_eq!(
            run(&["-w", "/tmp"]).process.cwd.unwrap().to_str(),
            Some("/tmp")
        );
    }

    #[test]
    fn the_command_starts_at_the_first_non_flag() {
        let a = run(&["-i", "I", "-r", "R", "ls", "-l", "-i", "x"]);
        assert_eq!(a.command, ["ls", "-l", "-i", "x"]);
        assert_eq!(a.image.unwrap().to_str(), Some("I"));
        let a = run(&["-i", "I", "--", "-weird", "--image"]);
        assert_eq!(a.command, ["-weird", "--image"]);
    }

    #[test]
    fn unknown_multi_letter_flags_are_errors_not_short_clusters() {
        assert_eq!(err(&["-imagee", "x", "true"]), "unknown flag -imagee");
        assert_eq!(err(&["-ifoo", "true"]), "unknown flag -ifoo");
        assert_eq!(err(&["--nope", "true"]), "unknown flag --nope");
        assert_eq!(err(&["-x", "true"]), "unknown flag -x");
    }

    #[test]
    fn repeated_single_value_flags_last_wins_and_lists_accumulate() {
        let a = run(&[
            "-hostname",
            "a",
            "-hostname",
            "b",
            "-e",
            "A=1,B=2",
            "-e",
            "C",
        ]);
        assert_eq!(a.hostname.as_deref(), Some("b"));
        assert_eq!(a.process.env, ["A=1,B=2", "C"]);
    }

    #[test]
    fn values_may_start_with_a_dash() {
        assert_eq!(run(&["-e", "-X=1", "true"]).process.env, ["-X=1"]);
    }

    #[test]
    fn bad_values_name_the_flag_and_value_on_one_line() {
        let e = err(&["-kill-timeout", "soon", "true"]);
        assert!(e.starts_with("-kill-timeout 'soon': "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = err(&["-kill-timeout", "0", "true"]);
        assert!(e.contains("'0'"), "{e}");
    }

    #[test]
    fn clap_errors_use_the_go_style_name_whatever_was_typed() {
        for typed in ["-upper", "--upper"] {
            assert_eq!(
                err(&[typed, "ram", "true"]),
                "-upper 'ram': must be tmpfs or disk"
            );
        }
        assert_eq!(
            err(&["--upper=ram", "true"]),
            "-upper 'ram': must be tmpfs or disk"
        );
        assert_eq!(err(&["-upper"]), "-upper needs a value: tmpfs or disk");
        assert_eq!(err(&["-hostname"]), "-hostname needs a value");
        let e = err(&["-bind-port", "http", "true"]);
        assert!(e.starts_with("-bind-port 'http': "), "{e}");
    }

    #[test]
    fn helpers_name_their_own_flags_and_usage() {
        let ls = |w: &[&str]| {
            let argv = std::iter::once("psdock-ls").chain(w.iter().copied());
            parse_as::<super::super::LsArgs>(argv)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(ls(&["--json", "-q"]), "-json cannot be used with -quiet");
        let exec = parse_as::<super::super::ExecArgs>(["psdock-exec"]).unwrap_err();
        assert_eq!(
            exec.to_string(),
            "missing ID (usage: psdock-exec ID [OPTIONS] COMMAND [ARGS...])"
        );
    }

    #[test]
    fn valid_values_are_listed_in_order() {
        assert_eq!(one_of(&["a"]), "a");
        assert_eq!(one_of(&["a", "b"]), "a or b");
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }

    #[test]
    fn help_and_version_print() {
        for w in ["-h", "-help", "--help"] {
            match parse(["psdock", w]).unwrap() {
                Parsed::Print(p) => assert!(p.contains("-i, --image <IMAGE>"), "{p}"),
                Parsed::Run(_) => panic!("{w} did not print help"),
            }
        }
        match parse(["psdock", "-version"]).unwrap() {
            Parsed::Print(p) => assert!(p.starts_with("psdock "), "{p}"),
            Parsed::Run(_) => panic!("no version"),
        }
    }
}
