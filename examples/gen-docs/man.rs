//! A man page from clap_mangen, with the flags spelled as users type them and
//! the sections a man page needs beyond the flags (from pages.rs).

use std::io;

use clap_mangen::Man;

/// The whole page of one binary, in roff.
pub fn page(cmd: &clap::Command) -> io::Result<String> {
    let name = cmd.get_name();
    let man = Man::new(cmd.clone())
        .title(name.to_uppercase())
        .date(date())
        .source(format!("psdock {}", env!("CARGO_PKG_VERSION")))
        .manual("psdock manual");
    let mut roff = Vec::new();
    man.render_title(&mut roff)?;
    man.render_name_section(&mut roff)?;
    man.render_synopsis_section(&mut roff)?;
    man.render_description_section(&mut roff)?;
    man.render_options_section(&mut roff)?;
    roff.extend_from_slice(super::pages::extra(name).as_bytes());
    man.render_version_section(&mut roff)?;
    let roff = String::from_utf8(roff).map_err(io::Error::other)?;
    Ok(single_dash(
        &once_preamble(&roff),
        &super::generate::longs(cmd),
    ))
}

/// The page's date: SOURCE_DATE_EPOCH's (reproducible builds; build-deb.sh
/// sets it to the commit's time), or today's.
fn date() -> String {
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap_or_else(std::time::SystemTime::now);
    humantime::format_rfc3339_seconds(now).to_string()[..10].to_owned()
}

/// Each section rendered alone starts with roff's quote preamble: keep the first.
fn once_preamble(roff: &str) -> String {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    assert!(roff.starts_with(PREAMBLE), "clap_mangen's output changed");
    format!("{PREAMBLE}{}", roff.replace(PREAMBLE, ""))
}

/// `\-\-image` as `\-image`: psdock reads its flags Go-style (src/cli/compat.rs)
/// and its README spells them so. Longest names first, so that `image` does not
/// cut `image-ref` short.
pub fn single_dash(roff: &str, longs: &[String]) -> String {
    let mut longs: Vec<String> = longs.iter().map(|l| l.replace('-', r"\-")).collect();
    longs.sort_by_key(|l| std::cmp::Reverse(l.len()));
    let mut out = roff.to_owned();
    for long in longs {
        out = out.replace(&format!(r"\-\-{long}"), &format!(r"\-{long}"));
    }
    out
}
