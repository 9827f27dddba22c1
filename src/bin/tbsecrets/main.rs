//! `tbsecrets`: the operator's command line over a secret store.
//!
//! Errors print one line on stderr naming the error code, nothing goes to stdout, and the
//! exit status is the error's stable number (DESIGN.md §6); 0 only on success.

mod args;
mod commands;
mod keys;
mod progress;
mod render;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;
use tbsecrets::ErrorCode;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
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
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let detail = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!(
                "tbsecrets: {}: {detail} (see tbsecrets --help)",
                ErrorCode::InvalidArgument
            );
            return ExitCode::from(ErrorCode::InvalidArgument.as_i32() as u8);
        }
    };
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
        Err(err) => {
            eprintln!("tbsecrets: {err}");
            ExitCode::from(err.code().as_i32() as u8)
        }
    }
}
