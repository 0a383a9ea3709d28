//! Writes psdock's man pages and shell completions, made from the clap
//! definitions of the three binaries, into OUTDIR:
//!
//!   cargo run --example gen-docs -- OUTDIR
//!
//! OUTDIR/man/NAME.1, OUTDIR/bash/NAME, OUTDIR/zsh/_NAME, OUTDIR/fish/NAME.fish.
//! scripts/build-deb.sh runs it at package time; tests/integration/docs.rs runs
//! the same code (these files, by path). It is an example, not part of the
//! binaries, so that clap_mangen and clap_complete stay dev-dependencies.

mod completions;
mod generate;
mod man;
mod pages;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: gen-docs OUTDIR");
        std::process::exit(2);
    };
    match generate::generate(std::path::Path::new(&out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
        }
        Err(e) => {
            eprintln!("gen-docs: {}: {e}", out.to_string_lossy());
            std::process::exit(1);
        }
    }
}
