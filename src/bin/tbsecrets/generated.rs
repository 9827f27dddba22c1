//! Shell completion scripts and manual pages, generated from the clap definitions in
//! [`crate::args`] (so they cannot drift from the commands).

use crate::args::Cli;
use clap::CommandFactory;
use tbsecrets::{Error, Result};

/// The completion script of `shell` for `tbsecrets`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tbsecrets", &mut out);
    out
}

/// The roff manual page of `tbsecrets` or, given a command path such as `["audit",
/// "verify"]`, of that command (`tbsecrets-audit-verify(1)`, with the global options).
pub fn man_page(path: &[String]) -> Result<Vec<u8>> {
    let mut cmd = Cli::command();
    // Propagates the global options and names the subcommands' pages (`tbsecrets-put`).
    cmd.build();
    let mut page = &cmd;
    for word in path {
        page = page.find_subcommand(word).ok_or_else(|| {
            let known: Vec<&str> = page
                .get_subcommands()
                .map(clap::Command::get_name)
                .filter(|name| *name != "help")
                .collect();
            Error::invalid(format!(
                "no command '{word}' (commands: {})",
                known.join(", ")
            ))
        })?;
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(page.clone())
        .source(format!("tbsecrets {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .map_err(|e| Error::internal(format!("cannot render the manual page: {e}")))?;
    Ok(out)
}
