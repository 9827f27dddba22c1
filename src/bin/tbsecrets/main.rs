//! `tbsecrets`: the operator's command line over a secret store.
//!
//! Errors print one line on stderr naming the error code, nothing goes to stdout, and the
//! exit status is the error's stable number (docs/CLI.md); 0 only on success.
//!
//! The process is hardened before anything else happens: no core dumps (SECURITY.md).

mod args;
mod commands;
mod generated;
mod keys;
mod progress;
mod render;

use std::io::Write;
use std::process::ExitCode;
use tbsecrets::ErrorCode;

fn main() -> ExitCode {
    if let Err(err) = tbsecrets::hardening::harden_process() {
        return fail(&err);
    }
    let parsed = <args::Cli as clap::CommandFactory>::command()
        .try_get_matches()
        .and_then(|matches| {
            let mut cli = <args::Cli as clap::FromArgMatches>::from_arg_matches(&matches)?;
            cli.global.tenant_given = !matches!(
                matches.value_source("tenant"),
                None | Some(clap::parser::ValueSource::DefaultValue)
            );
            Ok(cli)
        });
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            // Usage errors follow the same one-line rule as every other error.
            // clap lists details on the lines after the first (e.g. the missing arguments):
            // join them, up to the usage block, into the one line.
            let rendered = err.render().to_string();
            let detail = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty() && !line.starts_with("Usage:"))
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            let detail = detail.strip_prefix("error: ").unwrap_or(&detail);
            let detail = if detail.is_empty() {
                "invalid arguments"
            } else {
                detail
            };
            eprintln!(
                "tbsecrets: {}: {detail} (see tbsecrets --help)",
                ErrorCode::InvalidArgument
            );
            return ExitCode::from(ErrorCode::InvalidArgument.as_i32() as u8);
        }
    };
    if let Err(err) = load_key(&cli) {
        return fail(&err);
    }
    match commands::run(&cli) {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(&output)
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::from(ErrorCode::Storage.as_i32() as u8);
            }
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err),
    }
}

/// Reads the key from `--master-key-fd` / `--master-key-stdin`, if given.
fn load_key(cli: &args::Cli) -> tbsecrets::Result<()> {
    let g = &cli.global;
    if g.master_key_stdin || g.master_key_fd == Some(0) {
        if let args::Command::Put { file: None, .. } = &cli.command {
            return Err(tbsecrets::Error::invalid(
                "stdin carries the master key, so give the value with --file",
            ));
        }
    }
    keys::load_from_stream(g.master_key_fd, g.master_key_stdin)
}

/// Prints the one-line error and returns its exit status.
fn fail(err: &tbsecrets::Error) -> ExitCode {
    eprintln!("tbsecrets: {err}");
    ExitCode::from(err.code().as_i32() as u8)
}
