//! Each subcommand as a function from arguments to the bytes it prints on success.
//!
//! This file dispatches the commands and holds the helpers they share (opening the store,
//! the acting principal); `secrets.rs` has `put` and `resolve`, `maintenance.rs` `init` and
//! `audit verify`, `rotation.rs` the key rotations and their dry runs, `pkcs11.rs`
//! `pkcs11-keygen`, `io.rs` the bounded reading of files and stdin.

mod bundle;
mod io;
mod maintenance;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod rotation;
mod secrets;

use crate::args::{AuditCommand, Cli, Command, Global};
use crate::{keys, render};
use io::read_text;
use maintenance::{audit_verify, init};
use secrets::{put, resolve};
use std::path::Path;
use tbsecrets::{
    AllowList, Error, ErrorCode, ListQuery, Policy, Principal, Result, Role, SecretStorage,
    SecretType, Session, StorageOptions,
};

/// Runs the command; returns what it prints on stdout.
pub fn run(cli: &Cli) -> Result<Vec<u8>> {
    let g = &cli.global;
    match &cli.command {
        Command::Init { json } => init(g, *json),
        Command::Put {
            name,
            secret_type,
            description,
            file,
            json,
        } => {
            let store = open_existing(g)?;
            put(
                &store.session(principal(g, Role::TenantAdmin)?),
                &g.tenant,
                name,
                secret_type.map(SecretType::from),
                description.as_deref(),
                file.as_deref(),
                &store.options().limits,
                *json,
            )
        }
        Command::List {
            filter,
            deleted,
            after,
            limit,
            all: _,
            json,
        } => {
            let store = open_existing(g)?;
            let query = ListQuery {
                name_contains: filter.clone(),
                after: after.clone(),
                offset: 0,
                limit: limit.map_or(0, |n| n as usize),
                deleted: *deleted,
            };
            let page = store
                .session(principal(g, Role::TenantAdmin)?)
                .list(&g.tenant, &query)?;
            match (limit.is_some() || after.is_some(), *json) {
                (true, true) => render::json(&page),
                (true, false) => Ok(render::page(&page)),
                (false, _) => listing(&page.items, *json),
            }
        }
        Command::Info { name, json } => {
            let info = admin(&*open_existing(g)?, g)?.info(&g.tenant, name)?;
            if *json {
                render::json(&info)
            } else {
                Ok(render::info(&info))
            }
        }
        Command::History { name, json } => {
            let versions = admin(&*open_existing(g)?, g)?.history(&g.tenant, name)?;
            if *json {
                render::json(&versions)
            } else {
                Ok(render::history(&versions))
            }
        }
        Command::Get { name } => {
            let store = open_existing(g)?;
            let value = store
                .session(principal(g, Role::Service)?)
                .get(&g.tenant, name)?;
            Ok(value.as_bytes().to_vec())
        }
        Command::Delete { name, force, json } => {
            let store = open_existing(g)?;
            let session = admin(&store, g)?;
            session.delete_with(&g.tenant, name, *force)?;
            let retention = store.options().deleted_retention;
            let recoverable_until = deleted_at(&session, &g.tenant, name)?.map(|at| {
                at.saturating_add(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
            });
            let done = render::Deleted {
                action: "deleted",
                tenant: &g.tenant,
                name,
                force: *force,
                recoverable_until,
            };
            render::report(*json, &done, || render::deleted(name, recoverable_until))
        }
        Command::Undelete { name, json } => {
            admin(&*open_existing(g)?, g)?.undelete(&g.tenant, name)?;
            let done = render::SecretAction {
                action: "undeleted",
                tenant: &g.tenant,
                name,
            };
            render::report(*json, &done, || format!("undeleted secret '{name}'"))
        }
        Command::Destroy { name, yes, json } => {
            if !*yes {
                return Err(Error::invalid(format!(
                    "destroy erases secret '{name}' and all its versions for good: add --yes to confirm"
                )));
            }
            admin(&*open_existing(g)?, g)?.destroy(&g.tenant, name)?;
            let done = render::SecretAction {
                action: "destroyed",
                tenant: &g.tenant,
                name,
            };
            render::report(*json, &done, || format!("destroyed secret '{name}'"))
        }
        Command::Resolve {
            file,
            output,
            format,
            materialize_dir,
            source,
            vars,
            json,
        } => resolve(
            g,
            file,
            output.as_deref(),
            (*format).into(),
            materialize_dir.as_deref(),
            source.as_deref(),
            vars,
            *json,
        ),
        Command::Migrate { from, to, json } => {
            let key = keys::provider_for_store(from, g)?;
            let report = tbsecrets::migrate(from, to, StorageOptions::with_key_provider(key))?;
            render::report(*json, &report, || {
                format!(
                    "migrated {} secrets ({} versions, {} tenants, {} references); verified {} on the target",
                    report.secrets, report.versions, report.tenants, report.references, report.verified
                )
            })
        }
        Command::RotateMasterKey {
            new_key_file,
            to_key_provider,
            dry_run,
            json,
        } => match to_key_provider {
            Some(spec) => rotation::to_provider(g, spec, *dry_run, *json),
            None => rotation::master(g, new_key_file.as_deref(), *dry_run, *json),
        },
        Command::RotateTenantKey { dry_run, json } => rotation::tenant(g, *dry_run, *json),
        #[cfg(feature = "pkcs11")]
        Command::Pkcs11Keygen {
            module,
            token,
            key_label,
            pin_file,
            json,
        } => pkcs11::keygen(module, token, key_label, pin_file, *json),
        Command::Unused { days, json } => {
            let found = admin(&*open_existing(g)?, g)?.unused(&g.tenant, days_of(*days))?;
            listing(&found, *json)
        }
        Command::Stale { days, json } => {
            let found = admin(&*open_existing(g)?, g)?.stale(&g.tenant, days_of(*days))?;
            listing(&found, *json)
        }
        Command::References { file, json } => {
            let text = read_text(file)?;
            let refs = SecretStorage::references(&text)?;
            if *json {
                render::json(&refs)
            } else {
                Ok(render::references(&refs))
            }
        }
        Command::WhereUsed { name, json } => {
            let used = admin(&*open_existing(g)?, g)?.where_used(&g.tenant, name)?;
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
        Command::Recover {
            accept_restore,
            json,
        } => {
            let _store = open_existing_with(g, |o| o.accept_restore = *accept_restore)?;
            let done = render::Recovered {
                consistent: true,
                accept_restore: *accept_restore,
            };
            render::report(*json, &done, || {
                if *accept_restore {
                    "the store is consistent with its anchor file and audit log (a restore, if any, was accepted and audited as ACCEPT_RESTORE)"
                } else {
                    "the store is consistent with its anchor file and audit log: nothing to recover"
                }
                .to_owned()
            })
        }
        Command::Rollback {
            name,
            version,
            json,
        } => {
            let info = admin(&*open_existing(g)?, g)?.rollback(&g.tenant, name, *version)?;
            let done = render::RolledBack {
                action: "rolled_back",
                restored_version: *version,
                secret: &info,
            };
            render::report(*json, &done, || {
                format!(
                    "rolled secret '{name}' back to version {version}: now version {}",
                    info.version
                )
            })
        }
        Command::Export {
            output,
            recipients,
            recipients_files,
            all_versions,
            json,
        } => bundle::export(
            g,
            output,
            recipients,
            recipients_files,
            *all_versions,
            *json,
        ),
        Command::Import {
            bundle: file,
            identity,
            on_conflict,
            dry_run,
            trust,
            trusted_keys,
            json,
        } => {
            let options = bundle::import_options(*on_conflict, *dry_run, trust, trusted_keys)?;
            bundle::import(g, file, identity, &options, *json)
        }
        Command::ExportKey { json } => bundle::export_key(g, *json),
        Command::Manifest { files, json } => bundle::manifest(g, files, *json),
        Command::Completions { shell } => Ok(crate::generated::completions(*shell)),
        Command::Man { command } => crate::generated::man_page(command),
    }
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
    let key = keys::provider_for_store(&g.store, g)?;
    let mut options = StorageOptions {
        create_if_missing: false,
        ..StorageOptions::with_key_provider(key)
    };
    if let Some(path) = &g.policy {
        options.policy = Some(Policy::from_json(&read_text(path)?)?);
    }
    options.audit.path = g.audit_log.clone();
    if let Some(days) = g.deleted_retention_days {
        options.deleted_retention = std::time::Duration::from_secs(days.saturating_mul(86_400));
    }
    adjust(&mut options);
    SecretStorage::open(&g.store, options).map(Opened)
}

/// The principal the command acts as: --tenant, and --as or the command's default role,
/// restricted to the --allow patterns if any are given.
fn principal(g: &Global, default_role: Role) -> Result<Principal> {
    let mut principal = Principal::new(g.tenant.clone(), g.role.unwrap_or(default_role));
    if let Some(id) = g.principal.clone().or_else(|| std::env::var("USER").ok()) {
        if !id.is_empty() {
            principal = principal.with_id(id);
        }
    }
    if !g.allow.is_empty() {
        let allowed = AllowList::new(&g.allow)
            .map_err(|e| Error::invalid(format!("--allow: {}", e.message())))?;
        principal = principal.with_allowed_names(allowed);
    }
    Ok(principal)
}

/// A management session: --as, or TENANT_ADMIN.
/// When `name` was deleted, if it is a deleted (recoverable) secret now.
fn deleted_at(session: &Session<'_>, tenant: &str, name: &str) -> Result<Option<i64>> {
    let query = ListQuery {
        name_contains: Some(name.to_owned()),
        deleted: true,
        ..ListQuery::default()
    };
    Ok(session
        .list(tenant, &query)?
        .items
        .into_iter()
        .find(|s| s.name == name)
        .and_then(|s| s.deleted_at))
}

fn admin<'a>(store: &'a SecretStorage, g: &Global) -> Result<Session<'a>> {
    Ok(store.session(principal(g, Role::TenantAdmin)?))
}

/// Whether the store location is a database URL rather than a file.
fn is_url(store: &Path) -> bool {
    store.to_str().is_some_and(tbsecrets::is_postgres_url)
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
