//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// tbsecrets: encrypted, tenant-scoped secrets for ThingsBoard and its C integrations.
#[derive(Debug, Parser)]
#[command(name = "tbsecrets", version, about)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// The store file.
    #[arg(
        long,
        env = "TBS_STORE",
        default_value = "./tbsecrets.db",
        global = true
    )]
    pub store: PathBuf,
    /// The tenant to act in.
    #[arg(long, env = "TBS_TENANT", default_value = "default", global = true)]
    pub tenant: String,
    /// A master key file (base64, mode 0600); else TBS_MASTER_KEY, TBS_MASTER_KEY_FILE, or
    /// the key file `init` wrote beside the store.
    #[arg(long, global = true)]
    pub key_file: Option<PathBuf>,
}

/// The secret type as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TypeArg {
    /// A UTF-8 text value.
    Text,
    /// A file's bytes (PEM certificate, key).
    #[value(alias = "file")]
    TextFile,
}

impl From<TypeArg> for tbsecrets::SecretType {
    fn from(value: TypeArg) -> Self {
        match value {
            TypeArg::Text => tbsecrets::SecretType::Text,
            TypeArg::TextFile => tbsecrets::SecretType::TextFile,
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the store; without a configured key, generate a key file beside it.
    Init,
    /// Create a secret or add a new version; the value comes from --file or stdin.
    Put {
        /// Secret name.
        name: String,
        /// Secret type (for a new secret; must match an existing one).
        #[arg(long = "type", value_enum)]
        secret_type: Option<TypeArg>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// Read the value from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// List the tenant's secrets (never values).
    List {
        /// Only names containing this text.
        #[arg(long)]
        filter: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a secret's metadata.
    Info {
        /// Secret name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a secret's kept versions.
    History {
        /// Secret name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a secret's value to stdout, and nothing else.
    Reveal {
        /// Secret name.
        name: String,
    },
    /// Delete a secret.
    Rm {
        /// Secret name.
        name: String,
    },
    /// Write a new version equal to an older kept version.
    Rollback {
        /// Secret name.
        name: String,
        /// The kept version to restore.
        version: u64,
    },
}
