//! The three binaries, their clap definitions, and where each file goes.

use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

/// One binary: its clap definition, and how many positionals come before its
/// command (psdock-exec's ID), `None` when it takes no command.
pub struct Binary {
    pub cmd: clap::Command,
    pub leading: Option<usize>,
}

pub fn binaries() -> Vec<Binary> {
    let mut all = vec![
        Binary {
            cmd: psdock::cli::Args::command(),
            leading: Some(0),
        },
        Binary {
            cmd: psdock::cli::LsArgs::command(),
            leading: None,
        },
        Binary {
            cmd: psdock::cli::ExecArgs::command(),
            leading: Some(1),
        },
    ];
    for b in &mut all {
        // As src/cli/compat.rs parses them: the help flag is part of the set.
        b.cmd.build();
    }
    all
}

/// Every long flag of a command, without dashes: what compat.rs accepts with
/// one dash.
pub fn longs(cmd: &clap::Command) -> Vec<String> {
    cmd.get_arguments()
        .filter_map(|a| a.get_long())
        .map(str::to_owned)
        .collect()
}

/// Writes every page and script under `out`; returns the files written.
pub fn generate(out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut write = |rel: String, text: String| -> io::Result<()> {
        let path = out.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file under OUTDIR"))?;
        std::fs::write(&path, text)?;
        written.push(path);
        Ok(())
    };
    for b in binaries() {
        let name = b.cmd.get_name().to_owned();
        write(format!("man/{name}.1"), super::man::page(&b.cmd)?)?;
        let scripts = super::completions::scripts(&b);
        write(format!("bash/{name}"), scripts.bash)?;
        write(format!("zsh/_{name}"), scripts.zsh)?;
        write(format!("fish/{name}.fish"), scripts.fish)?;
    }
    Ok(written)
}
