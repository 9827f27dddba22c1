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
    /// Read the master key (base64) from this open file descriptor until end of file, then
    /// close it (e.g. `--master-key-fd 3 3<key.b64` or a pipe). Recommended over
    /// TBS_MASTER_KEY, which other processes of the same user can read in /proc/PID/environ.
    #[arg(long, global = true, value_name = "N", conflicts_with_all = ["key_file", "master_key_stdin"])]
    pub master_key_fd: Option<i32>,
    /// Read the master key (base64) from standard input until end of file (then `put` needs
    /// --file for the value).
    #[arg(long, global = true, conflicts_with = "key_file")]
    pub master_key_stdin: bool,
    /// Who holds the master key (docs/KEY-CUSTODY.md): `raw` (the default: the key from
    /// --key-file, --master-key-fd, TBS_MASTER_KEY… as above), `command:PROGRAM [ARG…]` (a
    /// KMS hook program) or `pkcs11:module=…,token=…,key=…,pin-file=…`.
    #[arg(long, env = "TBS_KEY_PROVIDER", value_name = "SPEC", global = true)]
    pub key_provider: Option<String>,
    /// The role to act as in --tenant: SYS_ADMIN, TENANT_ADMIN, CUSTOMER_USER or SERVICE.
    /// Default: SERVICE for `resolve` and `get`, TENANT_ADMIN for everything else.
    #[arg(long = "as", env = "TBS_ROLE", value_parser = parse_role, global = true)]
    pub role: Option<tbsecrets::Role>,
    /// Who is acting (a user or service name), written to the audit log. Default: $USER.
    #[arg(long, env = "TBS_PRINCIPAL", global = true)]
    pub principal: Option<String>,
    /// An access policy (JSON) replacing the default ThingsBoard roles.
    #[arg(long, env = "TBS_POLICY_FILE", global = true)]
    pub policy: Option<PathBuf>,
    /// How many days a deleted secret stays recoverable with `undelete` (default 30; 0: a
    /// delete erases at once). Deleted secrets older than this are erased when the store opens.
    #[arg(
        long,
        env = "TBS_DELETED_RETENTION_DAYS",
        global = true,
        value_name = "DAYS"
    )]
    pub deleted_retention_days: Option<u64>,
    /// The audit log file. Default: `<store>.audit.jsonl` beside a SQLite store; none for a
    /// postgres:// store.
    #[arg(long, env = "TBS_AUDIT_LOG", global = true)]
    pub audit_log: Option<PathBuf>,
    /// Restrict the acting principal to the secret names matching PATTERN: an exact name or a
    /// glob (`*` any run of characters, `?` one character). Repeatable; any other name is
    /// PERMISSION_DENIED (audited), and listing, usage reports, untracking and key rotation
    /// are refused. Needed by `resolve --var`.
    #[arg(long = "allow", value_name = "PATTERN", global = true)]
    pub allow: Vec<String>,
    /// Whether --tenant (or TBS_TENANT) was given rather than defaulted (`manifest` checks
    /// a store only then).
    #[arg(skip)]
    pub tenant_given: bool,
}

fn parse_role(text: &str) -> Result<tbsecrets::Role, String> {
    text.parse()
        .map_err(|e: tbsecrets::Error| e.message().to_owned())
}

/// The secret type as written on the command line: the names the output prints (`TEXT`,
/// `TEXT_FILE`), in any case; `FILE` and `text-file` also name `TEXT_FILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TypeArg {
    /// A UTF-8 text value.
    #[value(name = "TEXT")]
    Text,
    /// A file's bytes (PEM certificate, key).
    #[value(name = "TEXT_FILE", alias = "FILE", alias = "text-file")]
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

/// `import --on-conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConflictArg {
    /// Import nothing when any name exists.
    Fail,
    /// Keep existing secrets, import the others.
    Skip,
    /// Write the bundle's values as new versions of existing secrets.
    Overwrite,
}

impl From<ConflictArg> for tbsecrets::bundle::OnConflict {
    fn from(value: ConflictArg) -> Self {
        match value {
            ConflictArg::Fail => tbsecrets::bundle::OnConflict::Fail,
            ConflictArg::Skip => tbsecrets::bundle::OnConflict::Skip,
            ConflictArg::Overwrite => tbsecrets::bundle::OnConflict::Overwrite,
        }
    }
}

/// How `resolve` reads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// JSON for `.json` files, YAML for `.yaml`/`.yml`, text otherwise.
    Auto,
    /// JSON: string values are resolved, keys are not.
    Json,
    /// YAML: scalar values are resolved (quoted by YAML's rules), keys are not.
    Yaml,
    /// Plain text.
    Text,
}

impl From<FormatArg> for tbsecrets::DocumentFormat {
    fn from(value: FormatArg) -> Self {
        match value {
            FormatArg::Auto => tbsecrets::DocumentFormat::Auto,
            FormatArg::Json => tbsecrets::DocumentFormat::Json,
            FormatArg::Yaml => tbsecrets::DocumentFormat::Yaml,
            FormatArg::Text => tbsecrets::DocumentFormat::Text,
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the store; without a configured key, generate a key file beside it.
    Init {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a secret or add a new version; the value comes from --file or stdin.
    Put {
        /// Secret name.
        name: String,
        /// Secret type, in any case (for a new secret, default TEXT; must match an existing
        /// one). FILE is short for TEXT_FILE.
        #[arg(long = "type", value_enum, ignore_case = true)]
        secret_type: Option<TypeArg>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// Read the value from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the tenant's secrets (never values): all of them, or one page with --limit.
    List {
        /// Only names containing this text.
        #[arg(long)]
        filter: Option<String>,
        /// List the deleted secrets still recoverable with `undelete` (with their deletion
        /// time) instead of the live ones.
        #[arg(long)]
        deleted: bool,
        /// Only names after this one: the cursor a previous page printed.
        #[arg(long, value_name = "NAME")]
        after: Option<String>,
        /// One page of at most N secrets, and the cursor of the next (N > 0).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "all")]
        limit: Option<u32>,
        /// Every secret (the default without --limit).
        #[arg(long)]
        all: bool,
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
    /// Print a secret's value to stdout, and nothing else (alias: `reveal`).
    ///
    /// There is no --json: it would put the value inside a JSON document.
    #[command(visible_alias = "reveal")]
    Get {
        /// Secret name.
        name: String,
    },
    /// Delete a secret (refused while sources reference it, unless --force) (alias: `rm`).
    #[command(visible_alias = "rm")]
    Delete {
        /// Secret name.
        name: String,
        /// Delete even while sources reference it.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Bring back a deleted secret with its versions (within the retention, see `list --deleted`).
    Undelete {
        /// Secret name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Erase a secret (live or deleted) and all its versions for good: the stored ciphertexts
    /// are overwritten. Refused without --yes.
    Destroy {
        /// Secret name.
        name: String,
        /// Confirm: the secret cannot be recovered afterwards.
        #[arg(long)]
        yes: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Resolve the secret placeholders of a config file (strict: fails naming every problem).
    Resolve {
        /// The file to resolve.
        file: PathBuf,
        /// Write the result here (atomically, mode 0600) instead of stdout.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// How to read the file (in any case).
        #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
        format: FormatArg,
        /// Write TEXT_FILE values as files into this private directory and substitute their paths.
        #[arg(long)]
        materialize_dir: Option<PathBuf>,
        /// Also record the file's references under this source id (for `where-used`).
        #[arg(long)]
        source: Option<String>,
        /// A message variable for per-message names: `KEY=VALUE` or `metadata.KEY=VALUE` fills
        /// `{{metadata.KEY}}`, `data.KEY=VALUE` fills `{{data.KEY}}`. Repeatable; per-message
        /// names resolve only with --allow, to names matching it.
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
        /// With -o, print the confirmation as JSON (without -o, stdout is the document).
        #[arg(long, requires = "output")]
        json: bool,
    },
    /// Copy a store to a new, empty one (e.g. a SQLite file to PostgreSQL), ciphertexts as
    /// they are, and verify that every secret opens on the target with the same key.
    Migrate {
        /// The source store (a file path or a postgres:// URL).
        #[arg(long)]
        from: PathBuf,
        /// The target store (a postgres:// URL or a file path); must be empty.
        #[arg(long)]
        to: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace the master key: rewrap every tenant data key under the key in --new-key-file
    /// (values are not re-encrypted); afterwards only the new key opens the store. Online:
    /// readers keep reading. With --dry-run: what would be rewrapped and an estimated time.
    RotateMasterKey {
        /// The new master key file (base64, mode 0600), e.g. written by `init` elsewhere.
        #[arg(long, required_unless_present_any = ["dry_run", "to_key_provider"])]
        new_key_file: Option<PathBuf>,
        /// Move the master key to this provider instead (a spec as for --key-provider, e.g.
        /// `command:/usr/local/bin/kms-hook key-1`); afterwards only it opens the store.
        #[arg(long, value_name = "SPEC", conflicts_with = "new_key_file")]
        to_key_provider: Option<String>,
        /// Report what would be rewrapped and an estimated time; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create the AES-256 master key of the pkcs11 key provider in a PKCS#11 token
    /// (C_GenerateKey: a token object, sensitive, never extractable, encrypt/decrypt only).
    /// Refuses a label that the token already has.
    #[cfg(feature = "pkcs11")]
    Pkcs11Keygen {
        /// The PKCS#11 module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so.
        #[arg(long)]
        module: PathBuf,
        /// The label of the (initialized) token.
        #[arg(long)]
        token: String,
        /// The label (CKA_LABEL) of the new key: `key=` of the provider spec.
        #[arg(long)]
        key_label: String,
        /// A file holding the token's user PIN (mode 0600).
        #[arg(long)]
        pin_file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give the tenant (--tenant) a new data key and re-encrypt all its kept versions (in
    /// batches; run it again to finish an interrupted one). With --dry-run: what would be
    /// re-encrypted and an estimated time.
    RotateTenantKey {
        /// Report what would be re-encrypted and an estimated time; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List secrets not read or resolved for N days (never used ones included).
    Unused {
        /// Age in days.
        #[arg(long)]
        days: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List secrets whose value is older than N days (due for rotation).
    Stale {
        /// Age in days.
        #[arg(long)]
        days: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the secrets a config file references (alias: `refs`).
    #[command(visible_alias = "refs")]
    References {
        /// The file to read.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the sources that reference a secret.
    WhereUsed {
        /// Secret name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The tamper-evident audit log.
    Audit {
        /// What to do with it.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Write a new version equal to an older kept version.
    Rollback {
        /// Secret name.
        name: String,
        /// The kept version to restore.
        version: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check whether the store is older than its anchor file or audit log (restored from an
    /// older copy: exit status 15, ROLLBACK_DETECTED); with --accept-restore, accept such a
    /// deliberate restore: the store moves past both, in one audited change (ACCEPT_RESTORE).
    Recover {
        /// Accept a store older than its anchor file or audit log.
        #[arg(long)]
        accept_restore: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the tenant's secrets (names, types, descriptions, values) into one file encrypted
    /// to age recipients and signed by this store's export key (`export-key`). Acts as
    /// SERVICE by default: values leave the store.
    Export {
        /// The bundle file to write (mode 0600, atomically).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// An age recipient (`age1…`, from `age-keygen`). Repeatable.
        #[arg(long = "recipient", short = 'r', value_name = "KEY")]
        recipients: Vec<String>,
        /// A file of age recipients, one per line (`#` comments). Repeatable.
        #[arg(long = "recipients-file", short = 'R', value_name = "PATH")]
        recipients_files: Vec<PathBuf>,
        /// Every kept version of each secret, not only the current one.
        #[arg(long)]
        all_versions: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Import a bundle written by `export` into the tenant: all or nothing, in one
    /// transaction; a bundle that was changed or signed by an untrusted store is refused
    /// (INTEGRITY) before anything is written.
    Import {
        /// The bundle file.
        bundle: PathBuf,
        /// The age identity file whose key the bundle was encrypted to (`age-keygen -o`).
        #[arg(long, short = 'i', value_name = "KEYFILE")]
        identity: PathBuf,
        /// What to do with names that exist: fail (import nothing), skip, or overwrite (a
        /// new version).
        #[arg(long, value_enum, default_value = "fail", ignore_case = true)]
        on_conflict: ConflictArg,
        /// Only report what would be created, skipped or overwritten.
        #[arg(long)]
        dry_run: bool,
        /// The exporting store's export key (`ed25519:…`, printed there by `export-key`).
        /// Repeatable; this store's own key is always trusted.
        #[arg(long = "trust", value_name = "PUBKEY")]
        trust: Vec<String>,
        /// A file of trusted export keys, one per line (`#` comments).
        #[arg(long = "trusted-keys", value_name = "PATH")]
        trusted_keys: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print this store's export public key (`ed25519:…`): importers pass it to `import
    /// --trust`. Store-wide: needs READ in every tenant (by default `--as SYS_ADMIN`).
    ExportKey {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the secrets configuration exports (rule chains, integrations) need, with the
    /// files using each; with --tenant, also which are missing from the store (all of them
    /// at once; exit status NOT_FOUND, 2, when any is missing or of another type).
    Manifest {
        /// The configuration files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script for SHELL to stdout (e.g. `tbsecrets completions bash
    /// > /etc/bash_completion.d/tbsecrets`).
    Completions {
        /// The shell.
        #[arg(value_enum, ignore_case = true)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout: `tbsecrets man | man -l -`; with COMMAND, the
    /// page of that command (`tbsecrets man audit verify` prints `tbsecrets-audit-verify(1)`).
    Man {
        /// A command (and its subcommand) whose page to print instead (e.g. `put`).
        command: Vec<String>,
    },
}

/// `tbsecrets audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every record's MAC and chain link; report the first bad line (exit status
    /// INTEGRITY) or how many records are intact. Store-wide: needs READ in every tenant
    /// (by default `--as SYS_ADMIN`).
    Verify {
        /// The log to verify (default: the store's, see --audit-log).
        #[arg(long)]
        log: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command that prints something takes --json, except `get` (its output is the
    /// value) and the generators of completions and manual pages.
    #[test]
    fn every_command_that_prints_takes_json() {
        let cli = Cli::command();
        let mut leaves = Vec::new();
        for command in cli.get_subcommands() {
            if command.has_subcommands() {
                leaves.extend(command.get_subcommands());
            } else {
                leaves.push(command);
            }
        }
        assert!(leaves.len() >= 19, "{}", leaves.len());
        for command in leaves {
            let name = command.get_name();
            let json = command.get_arguments().any(|a| a.get_id() == "json");
            let expected = !matches!(name, "get" | "completions" | "man");
            assert_eq!(json, expected, "{name}: --json");
        }
    }
}
