//! Each subcommand as a function from arguments to the bytes it prints on success.

use crate::args::{AuditCommand, Cli, Command, Global};
use crate::progress::{Progress, Unit};
use crate::{keys, render};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use tbsecrets::crypto::write_key_file;
use tbsecrets::placeholder::MAX_DOCUMENT_BYTES;
use tbsecrets::service::{
    write_private_atomically, DocumentFormat, MaterializeOptions, ResolveOptions,
};
use tbsecrets::{
    Error, ErrorCode, Limits, ListQuery, MasterKey, Policy, Principal, Result, Role, SecretStorage,
    SecretType, Session, StorageOptions,
};
use zeroize::Zeroizing;

/// Runs the command; returns what it prints on stdout.
pub fn run(cli: &Cli) -> Result<Vec<u8>> {
    let g = &cli.global;
    match &cli.command {
        Command::Init => init(g),
        Command::Put {
            name,
            secret_type,
            description,
            file,
        } => {
            let store = open_existing(g)?;
            put(
                &store.session(principal(g, Role::TenantAdmin)),
                &g.tenant,
                name,
                secret_type.map(SecretType::from),
                description.as_deref(),
                file.as_deref(),
                &store.options().limits,
            )
        }
        Command::List { filter, json } => {
            let store = open_existing(g)?;
            let page = store.session(principal(g, Role::TenantAdmin)).list(
                &g.tenant,
                &ListQuery {
                    name_contains: filter.clone(),
                    ..ListQuery::default()
                },
            )?;
            listing(&page.items, *json)
        }
        Command::Info { name, json } => {
            let info = admin(&*open_existing(g)?, g).info(&g.tenant, name)?;
            if *json {
                render::json(&info)
            } else {
                Ok(render::info(&info))
            }
        }
        Command::History { name, json } => {
            let versions = admin(&*open_existing(g)?, g).history(&g.tenant, name)?;
            if *json {
                render::json(&versions)
            } else {
                Ok(render::history(&versions))
            }
        }
        Command::Reveal { name } => {
            let store = open_existing(g)?;
            let value = store
                .session(principal(g, Role::Service))
                .get_value(&g.tenant, name)?;
            Ok(value.as_bytes().to_vec())
        }
        Command::Rm { name, force } => {
            admin(&*open_existing(g)?, g).delete_with(&g.tenant, name, *force)?;
            Ok(format!("deleted {name}\n").into_bytes())
        }
        Command::Resolve {
            file,
            output,
            format,
            materialize_dir,
            source,
        } => resolve(
            g,
            file,
            output.as_deref(),
            (*format).into(),
            materialize_dir.as_deref(),
            source.as_deref(),
        ),
        Command::Migrate { from, to, json } => {
            let key = keys::key_for_store(from, g.key_file.as_deref())?;
            let report =
                tbsecrets::service::migrate(from, to, StorageOptions::with_master_key(key))?;
            if *json {
                render::json(&report)
            } else {
                Ok(format!(
                    "migrated {} secrets ({} versions, {} tenants, {} references); verified {} on the target\n",
                    report.secrets, report.versions, report.tenants, report.references, report.verified
                )
                .into_bytes())
            }
        }
        Command::RotateMasterKey { new_key_file } => {
            let new_key = tbsecrets::crypto::read_key_file(new_key_file)?;
            let store = open_existing(g)?;
            let progress = Progress::new("rewrapping data keys", Unit::Items);
            let report = store
                .session(principal(g, Role::TenantAdmin))
                .rotate_master_key_with_progress(&new_key, &mut |done, total| {
                    progress.update(done, total)
                })?;
            drop(progress);
            Ok(format!(
                "rewrapped {} tenant data keys under master key {}; the old key no longer opens the store: use {}\n",
                report.keys,
                report.key_id,
                new_key_file.display()
            )
            .into_bytes())
        }
        Command::RotateTenantKey => {
            let store = open_existing(g)?;
            let progress = Progress::new("re-encrypting versions", Unit::Items);
            let report = store
                .session(principal(g, Role::TenantAdmin))
                .rotate_tenant_key_with_progress(&g.tenant, &mut |done, total| {
                    progress.update(done, total)
                })?;
            drop(progress);
            Ok(format!(
                "tenant '{}' now uses data key {}; re-encrypted {} versions\n",
                g.tenant, report.key_id, report.versions
            )
            .into_bytes())
        }
        Command::Unused { days, json } => {
            let found = admin(&*open_existing(g)?, g).unused(&g.tenant, days_of(*days))?;
            listing(&found, *json)
        }
        Command::Stale { days, json } => {
            let found = admin(&*open_existing(g)?, g).stale(&g.tenant, days_of(*days))?;
            listing(&found, *json)
        }
        Command::Refs { file, json } => {
            let text = read_text(file)?;
            let refs = SecretStorage::references(&text)?;
            if *json {
                render::json(&refs)
            } else {
                Ok(render::references(&refs))
            }
        }
        Command::WhereUsed { name, json } => {
            let used = admin(&*open_existing(g)?, g).where_used(&g.tenant, name)?;
            if *json {
                render::json(&used)
            } else {
                Ok(used
                    .iter()
                    .map(|r| format!("{}\n", r.source_id))
                    .collect::<String>()
                    .into_bytes())
            }
        }
        Command::Audit {
            command: AuditCommand::Verify { log, json },
        } => audit_verify(g, log.as_deref(), *json),
        Command::Recover { accept_restore } => {
            let _store = open_existing_with(g, |o| o.accept_restore = *accept_restore)?;
            Ok(if *accept_restore {
                "the store is consistent with its anchor file and audit log (a restore, if any, was accepted and audited as ACCEPT_RESTORE)\n"
            } else {
                "the store is consistent with its anchor file and audit log: nothing to recover\n"
            }
            .as_bytes()
            .to_vec())
        }
        Command::Rollback { name, version } => {
            let info = admin(&*open_existing(g)?, g).rollback(&g.tenant, name, *version)?;
            Ok(format!("{}\n", info.version).into_bytes())
        }
    }
}

/// Creates the store, generating a key file beside it when no key is configured.
fn init(g: &Global) -> Result<Vec<u8>> {
    if is_url(&g.store) {
        // A database: `init` creates the schema; the key must be configured (never beside it).
        let key = keys::configured_key(g.key_file.as_deref())?.ok_or_else(|| {
            Error::invalid("a postgres:// store needs a configured key: --key-file, TBS_MASTER_KEY or TBS_MASTER_KEY_FILE")
        })?;
        SecretStorage::open(&g.store, StorageOptions::with_master_key(key))?.close()?;
        return Ok(
            format!("store: {}\n", redact_password(&g.store.to_string_lossy())).into_bytes(),
        );
    }
    if g.store.exists() {
        return Err(Error::new(
            ErrorCode::AlreadyExists,
            format!("store {} already exists", g.store.display()),
        ));
    }
    let mut out = String::new();
    let key = match keys::configured_key(g.key_file.as_deref())? {
        Some(key) => key,
        None => {
            let key = MasterKey::generate();
            let path = keys::default_key_file(&g.store);
            write_key_file(&path, &key)?;
            eprintln!(
                "warning: the master key was written beside the store; in production keep the key and the data apart (move the key file and use --key-file or TBS_MASTER_KEY_FILE)"
            );
            out.push_str(&format!("key file: {}\n", path.display()));
            key
        }
    };
    let store = SecretStorage::open(&g.store, StorageOptions::with_master_key(key))?;
    store.close()?;
    out.push_str(&format!("store: {}\n", g.store.display()));
    Ok(out.into_bytes())
}

/// Resolves a config file to stdout or, atomically and with mode 0600, to `output`.
fn resolve(
    g: &Global,
    file: &Path,
    output: Option<&Path>,
    format: DocumentFormat,
    materialize_dir: Option<&Path>,
    source: Option<&str>,
) -> Result<Vec<u8>> {
    let store = open_existing_with(g, |options| {
        options.materialize = materialize_dir.map(|dir| MaterializeOptions {
            dir: dir.to_path_buf(),
            keep_on_close: true,
        });
    })?;
    let options = ResolveOptions {
        materialize_files: materialize_dir.is_some(),
    };
    let service = store.session(principal(g, Role::Service));
    let resolved = Zeroizing::new(service.resolve_file(&g.tenant, file, format, options)?);
    if let Some(source) = source {
        // Recording references is management: TENANT_ADMIN unless --as says otherwise.
        admin(&store, g).track_references(&g.tenant, source, &read_text(file)?)?;
    }
    store.close()?;
    match output {
        Some(path) => {
            write_private_atomically(path, resolved.as_bytes())?;
            Ok(Vec::new())
        }
        None => Ok(resolved.as_bytes().to_vec()),
    }
}

/// Reads a UTF-8 text file (a document or a policy) of at most
/// [`MAX_DOCUMENT_BYTES`](tbsecrets::placeholder::MAX_DOCUMENT_BYTES).
fn read_text(path: &Path) -> Result<String> {
    let what = path.display().to_string();
    let file = open_file(path, &what)?;
    let bytes = read_bounded(file, MAX_DOCUMENT_BYTES, &what)?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::invalid(format!("{what} is not UTF-8 text")))
}

/// Opens a file to read; a directory or an unreadable file is `INVALID_ARGUMENT`.
fn open_file(path: &Path, what: &str) -> Result<std::fs::File> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::invalid(format!("cannot read {what}: {e}")))?;
    let is_dir = file.metadata().is_ok_and(|m| m.is_dir());
    if is_dir {
        return Err(Error::invalid(format!(
            "cannot read {what}: it is a directory, not a file"
        )));
    }
    Ok(file)
}

/// Reads all of `reader` if it holds at most `limit` bytes; otherwise `INVALID_ARGUMENT`
/// after reading `limit + 1` bytes, never more (stdin or `/dev/zero` cannot exhaust memory).
/// The buffer is zeroized when dropped, and so is every smaller buffer it outgrew.
fn read_bounded(reader: impl Read, limit: usize, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let cap = limit.saturating_add(1);
    let mut reader = reader.take(u64::try_from(cap).unwrap_or(u64::MAX));
    let mut buf = Zeroizing::new(Vec::with_capacity(cap.min(64 * 1024)));
    while buf.len() < cap {
        if buf.len() == buf.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                buf.capacity().saturating_mul(2).clamp(buf.len() + 1, cap),
            ));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        let len = buf.len();
        // Read into the spare capacity (no reallocation: the length stays within it).
        let capacity = buf.capacity();
        buf.resize(capacity, 0);
        let read = reader.read(&mut buf[len..]);
        buf.truncate(len + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::invalid(format!("cannot read {what}: {e}"))),
        }
    }
    if buf.len() > limit {
        return Err(Error::invalid(format!(
            "{what} is larger than the limit of {limit} bytes"
        )));
    }
    Ok(buf)
}

/// An open store that, when the command is done, closes it and warns on stderr if audit
/// records of committed changes could not be delivered to the log (they wait in the store
/// and go out with the next run); the command's exit status stays that of the command.
pub struct Opened(SecretStorage);

impl std::ops::Deref for Opened {
    type Target = SecretStorage;

    fn deref(&self) -> &SecretStorage {
        &self.0
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let closed = self.0.close();
        if let Some(e) = self.0.audit_delivery_error() {
            eprintln!(
                "tbsecrets: warning: committed, but the audit log was not written ({e}); the records wait in the store and are written by the next run"
            );
        } else if let Err(e) = closed {
            eprintln!("tbsecrets: warning: closing the store: {e}");
        }
    }
}

/// Opens a store that must already exist.
fn open_existing(g: &Global) -> Result<Opened> {
    open_existing_with(g, |_| {})
}

/// Opens an existing store, letting the caller adjust the options.
fn open_existing_with(g: &Global, adjust: impl FnOnce(&mut StorageOptions)) -> Result<Opened> {
    if !is_url(&g.store) && !g.store.exists() {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!(
                "store {} does not exist; run `tbsecrets init` first",
                g.store.display()
            ),
        ));
    }
    let key = keys::key_for_store(&g.store, g.key_file.as_deref())?;
    let mut options = StorageOptions {
        create_if_missing: false,
        ..StorageOptions::with_master_key(key)
    };
    if let Some(path) = &g.policy {
        options.policy = Some(Policy::from_json(&read_text(path)?)?);
    }
    options.audit.path = g.audit_log.clone();
    adjust(&mut options);
    SecretStorage::open(&g.store, options).map(Opened)
}

/// The principal the command acts as: --tenant, and --as or the command's default role.
fn principal(g: &Global, default_role: Role) -> Principal {
    let principal = Principal::new(g.tenant.clone(), g.role.unwrap_or(default_role));
    match g.principal.clone().or_else(|| std::env::var("USER").ok()) {
        Some(id) if !id.is_empty() => principal.with_id(id),
        _ => principal,
    }
}

/// A management session: --as, or TENANT_ADMIN.
fn admin<'a>(store: &'a SecretStorage, g: &Global) -> Session<'a> {
    store.session(principal(g, Role::TenantAdmin))
}

/// Verifies the audit log with the store's key; store-wide, so by default only SYS_ADMIN.
fn audit_verify(g: &Global, log: Option<&Path>, json: bool) -> Result<Vec<u8>> {
    let store = open_existing(g)?;
    let progress = Progress::new("verifying audit log", Unit::Bytes);
    let report = admin(&store, g)
        .verify_audit_log_with_progress(log, &mut |done, total| progress.update(done, total))?;
    drop(progress);
    let path = log
        .map(Path::to_path_buf)
        .or_else(|| store.audit_log_path())
        .unwrap_or_default();
    store.close()?;
    if let Some(problem) = &report.problem {
        return Err(Error::new(
            ErrorCode::Integrity,
            format!(
                "audit log {} is broken at line {}: {} ({} records before it verified)",
                path.display(),
                problem.line,
                problem.reason,
                report.records
            ),
        ));
    }
    if json {
        render::json(&report)
    } else {
        Ok(format!(
            "audit log {}: {} records intact (last sequence number {})\n",
            path.display(),
            report.records,
            report.last_seq
        )
        .into_bytes())
    }
}

/// Reads a value of `secret_type` from a file or stdin into a zeroizing buffer, reading at
/// most one byte more than the store's limit allows: a TEXT_FILE value has at most
/// `max_file_bytes` bytes; a TEXT value of `max_text_chars` characters at most 4 bytes per
/// character, plus the line break that ends typed input. The exact check is the store's.
fn read_value(
    file: Option<&Path>,
    secret_type: SecretType,
    limits: &Limits,
) -> Result<Zeroizing<Vec<u8>>> {
    let (limit, kind) = match secret_type {
        SecretType::Text => (
            limits.max_text_chars.saturating_mul(4).saturating_add(2),
            "TEXT",
        ),
        SecretType::TextFile => (limits.max_file_bytes, "TEXT_FILE"),
    };
    match file {
        Some(path) => {
            let what = format!("value file {}", path.display());
            let value = read_bounded(open_file(path, &what)?, limit, &what);
            value.map_err(|e| over_limit(e, kind, limits))
        }
        None => {
            // Unbuffered (a duplicate of fd 0): the lock's buffer would read ahead of the limit.
            let stdin = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::invalid(format!("cannot read the value on stdin: {e}")))?;
            read_bounded(std::fs::File::from(stdin), limit, "the value on stdin")
                .map_err(|e| over_limit(e, kind, limits))
        }
    }
}

/// Adds the value limit of `kind` to a size error of [`read_bounded`].
fn over_limit(err: Error, kind: &str, limits: &Limits) -> Error {
    if !err.message().contains("larger than the limit") {
        return err;
    }
    let rule = if kind == "TEXT" {
        format!(
            "a TEXT value has at most {} characters",
            limits.max_text_chars
        )
    } else {
        format!(
            "a TEXT_FILE value has at most {} bytes",
            limits.max_file_bytes
        )
    };
    Error::invalid(format!("{} ({rule})", err.message()))
}

/// Creates the secret or adds a version, reading the value from `file` or stdin once its type
/// is known; prints the version.
fn put(
    store: &Session<'_>,
    tenant: &str,
    name: &str,
    requested: Option<SecretType>,
    description: Option<&str>,
    file: Option<&Path>,
    limits: &Limits,
) -> Result<Vec<u8>> {
    let existing = match store.info(tenant, name) {
        Ok(info) => Some(info),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(e),
    };
    let secret_type = match (&existing, requested) {
        (Some(info), Some(t)) if info.secret_type != t => {
            return Err(Error::new(
                ErrorCode::TypeMismatch,
                format!(
                    "secret '{name}' is {}; its type cannot change to {t}",
                    info.secret_type
                ),
            ))
        }
        (Some(info), _) => info.secret_type,
        (None, t) => t.unwrap_or(SecretType::Text),
    };
    let mut value = read_value(file, secret_type, limits)?;
    if secret_type == SecretType::Text {
        // A TEXT value typed or piped in ends with one newline that is not part of it.
        let newline = if value.ends_with(b"\r\n") {
            2
        } else {
            usize::from(value.ends_with(b"\n"))
        };
        let len = value.len() - newline;
        value.truncate(len);
    }
    let info = match existing {
        Some(_) => {
            let info = store.update_value(tenant, name, &value, None)?;
            match description {
                Some(d) => store.update_description(tenant, name, d)?,
                None => info,
            }
        }
        None => store.create(tenant, name, secret_type, &value, description.unwrap_or(""))?,
    };
    Ok(format!("{}\n", info.version).into_bytes())
}

/// Whether the store location is a database URL rather than a file.
fn is_url(store: &Path) -> bool {
    store
        .to_str()
        .is_some_and(tbsecrets::store::is_postgres_url)
}

/// A URL with any password replaced by `***`, for printing.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn days_of(days: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(days) * 86_400)
}

/// Secrets as a table or JSON.
fn listing(items: &[tbsecrets::SecretInfo], json: bool) -> Result<Vec<u8>> {
    if json {
        render::json(&items)
    } else {
        Ok(render::list(items))
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://tb:s3cr3t@db:5432/tb?schema=x"),
            "postgres://tb:***@db:5432/tb?schema=x"
        );
        assert_eq!(
            redact_password("postgres://tb@db/tb"),
            "postgres://tb@db/tb"
        );
        assert_eq!(redact_password("./tbsecrets.db"), "./tbsecrets.db");
    }
}
