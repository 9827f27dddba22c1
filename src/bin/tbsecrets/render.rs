//! Human-readable and JSON output: metadata tables, and the one sentence (or JSON object) of
//! each command that changes something.

use serde::Serialize;
use tbsecrets::{Error, Page, Result, SecretInfo, VersionInfo};

/// RFC 3339 text of a millisecond timestamp.
fn time(millis: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Pretty JSON of any serialisable metadata, with a final newline.
pub fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::internal(format!("cannot render JSON: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// One secret's metadata as `key: value` lines.
pub fn info(info: &SecretInfo) -> Vec<u8> {
    let last_used = info.last_used_at.map_or_else(|| "never".to_owned(), time);
    format!(
        "name:          {}\ntenant:        {}\ntype:          {}\ndescription:   {}\nversion:       {}\ncreated:       {}\nupdated:       {}\nvalue updated: {}\nlast used:     {}\nuse count:     {}\n",
        info.name,
        info.tenant,
        info.secret_type,
        info.description,
        info.version,
        time(info.created_at),
        time(info.updated_at),
        time(info.value_updated_at),
        last_used,
        info.use_count
    )
    .into_bytes()
}

/// A table of secrets; of deleted secrets (`list --deleted`), with their deletion time in
/// place of the update time.
pub fn list(items: &[SecretInfo]) -> Vec<u8> {
    let deleted = items.iter().any(|i| i.deleted_at.is_some());
    let width = items
        .iter()
        .map(|i| i.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<width$}  {:<9}  {:>7}  {:<20}  DESCRIPTION\n",
        "NAME",
        "TYPE",
        "VERSION",
        if deleted { "DELETED" } else { "UPDATED" }
    );
    for i in items {
        out.push_str(&format!(
            "{:<width$}  {:<9}  {:>7}  {:<20}  {}\n",
            i.name,
            i.secret_type.as_str(),
            i.version,
            time(i.deleted_at.unwrap_or(i.updated_at)),
            i.description
        ));
    }
    out.into_bytes()
}

/// One page of a listing: the table, then `next: --after NAME` when entries follow.
pub fn page(page: &Page<SecretInfo>) -> Vec<u8> {
    let mut out = list(&page.items);
    if let Some(next) = &page.next_after {
        out.extend_from_slice(format!("next: --after {next}\n").as_bytes());
    }
    out
}

/// A table of versions.
pub fn history(versions: &[VersionInfo]) -> Vec<u8> {
    let mut out = String::from("VERSION  CREATED               CURRENT\n");
    for v in versions {
        out.push_str(&format!(
            "{:>7}  {:<20}  {}\n",
            v.version,
            time(v.created_at),
            if v.current { "*" } else { "" }
        ));
    }
    out.into_bytes()
}

/// References as `NAME<TAB>TYPE` lines (`*` for the short form, any type).
pub fn references(refs: &[tbsecrets::placeholder::Reference]) -> Vec<u8> {
    refs.iter()
        .map(|r| {
            format!(
                "{}\t{}\n",
                r.name,
                r.secret_type.map_or("*", tbsecrets::SecretType::as_str)
            )
        })
        .collect::<String>()
        .into_bytes()
}

/// What a command that changes something prints: `human()` (one sentence and a line break),
/// or `value` as pretty JSON with `--json`.
pub fn report<T: serde::Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce() -> String,
) -> Result<Vec<u8>> {
    if json {
        self::json(value)
    } else {
        let mut out = human();
        out.push('\n');
        Ok(out.into_bytes())
    }
}

/// `put` and friends: the action (`created`, `updated`) and the secret's metadata.
#[derive(Serialize)]
pub struct Changed<'a> {
    /// `created` or `updated`.
    pub action: &'static str,
    /// The secret after the change.
    #[serde(flatten)]
    pub secret: &'a SecretInfo,
}

/// `rollback`: the restored version and the secret's metadata after it.
#[derive(Serialize)]
pub struct RolledBack<'a> {
    /// `rolled_back`.
    pub action: &'static str,
    /// The kept version whose value became current.
    pub restored_version: u64,
    /// The secret after the rollback (its new version).
    #[serde(flatten)]
    pub secret: &'a SecretInfo,
}

/// `rm`.
#[derive(Serialize)]
pub struct Deleted<'a> {
    /// `deleted`.
    pub action: &'static str,
    /// The tenant.
    pub tenant: &'a str,
    /// The deleted secret.
    pub name: &'a str,
    /// Whether --force was given.
    pub force: bool,
    /// Until when `undelete` recovers it (milliseconds since the epoch); `None`: erased at
    /// once (a deleted retention of 0).
    pub recoverable_until: Option<i64>,
}

/// The line `rm` prints: until when the secret is recoverable, and how to erase it now.
pub fn deleted(name: &str, recoverable_until: Option<i64>) -> String {
    match recoverable_until {
        Some(until) => format!(
            "deleted secret '{name}': recoverable with `tbsecrets undelete {name}` until {}; \
             `tbsecrets destroy {name} --yes` erases it now",
            time(until)
        ),
        None => format!("deleted secret '{name}' and erased it (deleted retention 0)"),
    }
}

/// `undelete` and `destroy`.
#[derive(Serialize)]
pub struct SecretAction<'a> {
    /// `undeleted` or `destroyed`.
    pub action: &'static str,
    /// The tenant.
    pub tenant: &'a str,
    /// The secret.
    pub name: &'a str,
}

/// `init`.
#[derive(Serialize)]
pub struct Initialized<'a> {
    /// The store (a URL's password redacted).
    pub store: &'a str,
    /// The key file generated beside the store, if one was.
    pub key_file: Option<&'a str>,
}

/// `rotate-master-key`.
#[derive(Serialize)]
pub struct MasterRotated {
    /// `rotated_master_key`.
    pub action: &'static str,
    /// Tenant data keys rewrapped.
    pub keys: usize,
    /// The new master key's id.
    pub key_id: u32,
    /// The key file that now opens the store.
    pub new_key_file: String,
}

/// `rotate-master-key --to-key-provider`.
#[derive(Serialize)]
pub struct ProviderRotated {
    /// `rotated_master_key`.
    pub action: &'static str,
    /// Tenant data keys rewrapped.
    pub keys: usize,
    /// The new master key's id.
    pub key_id: u32,
    /// The provider that now holds the key (its description: never a credential).
    pub key_provider: String,
}

/// `rotate-tenant-key`.
#[derive(Serialize)]
pub struct TenantRotated<'a> {
    /// `rotated_tenant_key`.
    pub action: &'static str,
    /// The tenant.
    pub tenant: &'a str,
    /// The tenant's new data key id.
    pub key_id: u32,
    /// Kept versions re-encrypted.
    pub versions: usize,
}

/// `rotate-master-key --dry-run` and `rotate-tenant-key --dry-run`.
#[derive(Serialize)]
pub struct RotationPlanned<'a> {
    /// `planned_master_key_rotation` or `planned_tenant_key_rotation`.
    pub action: &'static str,
    /// Always true: nothing was changed.
    pub dry_run: bool,
    /// The tenant (tenant-key rotation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
    /// The plan.
    #[serde(flatten)]
    pub plan: &'a tbsecrets::RotationPlan,
}

impl<'a> RotationPlanned<'a> {
    /// The dry run of `action`.
    pub fn new(
        action: &'static str,
        tenant: Option<&'a str>,
        plan: &'a tbsecrets::RotationPlan,
    ) -> Self {
        RotationPlanned {
            action,
            dry_run: true,
            tenant,
            plan,
        }
    }
}

/// `recover`.
#[derive(Serialize)]
pub struct Recovered {
    /// Always true (an inconsistent store is an error, ROLLBACK_DETECTED).
    pub consistent: bool,
    /// Whether --accept-restore was given.
    pub accept_restore: bool,
}

/// `resolve -o`.
#[derive(Serialize)]
pub struct Resolved<'a> {
    /// `resolved`.
    pub action: &'static str,
    /// The file read.
    pub file: String,
    /// The file written (mode 0600).
    pub output: String,
    /// The source id the references were recorded under, if any.
    pub source: Option<&'a str>,
}
