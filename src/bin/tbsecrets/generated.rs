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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command's page renders, titled `tbsecrets-COMMAND`, with the global options.
    #[test]
    fn every_command_has_a_manual_page() {
        let cli = Cli::command();
        let mut paths: Vec<Vec<String>> = vec![Vec::new()];
        for command in cli.get_subcommands() {
            paths.push(vec![command.get_name().to_owned()]);
            for sub in command.get_subcommands() {
                paths.push(vec![
                    command.get_name().to_owned(),
                    sub.get_name().to_owned(),
                ]);
            }
        }
        for path in paths {
            let page = String::from_utf8(man_page(&path).unwrap()).unwrap();
            let title = std::iter::once("tbsecrets")
                .chain(path.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join("-");
            assert!(page.contains(&format!(".TH {title} 1 ")), "{title}: {page}");
            assert!(page.contains("TBS_STORE"), "{title}: no global options");
        }
        let wrong = man_page(&["put".to_owned(), "x".to_owned()]).unwrap_err();
        assert_eq!(wrong.code(), tbsecrets::ErrorCode::InvalidArgument);
    }

    #[test]
    fn a_completion_script_for_every_shell() {
        use clap::ValueEnum;
        for shell in clap_complete::Shell::value_variants() {
            let script = String::from_utf8(completions(*shell)).unwrap();
            assert!(script.contains("rotate-tenant-key"), "{shell}");
        }
    }
}
