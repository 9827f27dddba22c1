//! Export bundles and manifests (docs/FORMATS.md, "Export bundle"): `export_key`,
//! `export_bundle`, `import_bundle` and `manifest`, each one [`Session`] method; the bundle's
//! format is in `crate::bundle`.

use super::operation::Op;
use super::state::Pointer;
use super::{value_context, SecretStorage, Session};
use crate::access::Operation;
use crate::audit::AuditAction;
use crate::bundle::document::{self, BundledSecret, BundledVersion, Payload};
use crate::bundle::{
    envelope, invalid_bundle, ExportOptions, ExportPublicKey, ExportedBundle, ImportAction,
    ImportItem, ImportOptions, ImportReport, Manifest, ManifestDocument, ManifestStatus,
    OnConflict,
};
use crate::crypto::{open, seal, ExportSigner};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    now_millis, validate_description, validate_name, validate_tenant, validate_value, ListQuery,
    SecretType,
};
use crate::store::{name_taken, NextVersion, Store, StoredSecret, StoredVersion};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::BTreeSet;
use zeroize::Zeroizing;

/// Derives the export signing key from the store-wide reserved key.
const EXPORT_SIGNING_LABEL: &[u8] = b"tbsecrets export signing v1";

host_operations! {
    /// The public key this store signs export bundles with (`ed25519:…`): give it to the
    /// importing side as a trusted signer. The same for every handle of the store and for a
    /// migrated copy; a master-key rotation does not change it.
    fn export_key(&self) -> Result<ExportPublicKey>;

    /// Writes a tenant's secrets (names, types, descriptions, the current version or every
    /// kept version) into a bundle encrypted to the age recipients in `recipients` (`age1…`,
    /// one per line) and signed by this store's export key. Deleted secrets are not
    /// exported. Audited as the host, one EXPORT record per secret.
    ///
    /// ```
    /// use tbsecrets::bundle::{ExportOptions, ImportOptions};
    /// use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let key = || StorageOptions::with_master_key(MasterKey::generate());
    /// let from = SecretStorage::open(dir.path().join("a.db"), key())?;
    /// from.create("t", "db", SecretType::Text, b"s3cr3t", "the database")?;
    /// // An age key pair (the stock tool: `age-keygen -o key.txt`).
    /// use age::secrecy::ExposeSecret;
    /// let identity = age::x25519::Identity::generate();
    /// let recipient = identity.to_public().to_string();
    /// let bundle = from.export_bundle("t", &recipient, &ExportOptions::default())?;
    ///
    /// let to = SecretStorage::open(dir.path().join("b.db"), key())?;
    /// let trust = ImportOptions::default().trust(&from.export_key()?.to_string())?;
    /// let secret = identity.to_string();
    /// let report = to.import_bundle("t", &bundle.bytes, secret.expose_secret(), &trust)?;
    /// assert_eq!(report.items.len(), 1);
    /// assert_eq!(to.get("t", "db")?.as_str()?, "s3cr3t");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn export_bundle(&self, tenant: &str, recipients: &str, options: &ExportOptions)
        -> Result<ExportedBundle>;

    /// Imports a bundle into `tenant`: decrypts it with the age identity file's text
    /// `identity`, verifies its signature (this store's export key or one of
    /// `options.trusted_signers`, else INTEGRITY, before anything is written), then creates,
    /// skips or overwrites (as new versions) its secrets by `options.on_conflict`, all in one
    /// transaction; `options.dry_run` only reports. A deleted secret's name is taken: a
    /// conflict under `Fail`, left deleted under `Skip`, ALREADY_EXISTS (nothing imported)
    /// under `Overwrite`. Audited as the host, one IMPORT record per secret written.
    fn import_bundle(&self, tenant: &str, bundle: &[u8], identity: &str,
        options: &ImportOptions) -> Result<ImportReport>;

    /// The secrets `documents` need, each marked present, missing or mistyped in `tenant`;
    /// see [`crate::bundle::manifest`] for the documents alone.
    fn manifest(&self, tenant: &str, documents: &[ManifestDocument<'_>]) -> Result<Manifest>;
}

impl Session<'_> {
    /// This store's export public key; needs READ in every tenant. See
    /// [`SecretStorage::export_key`].
    pub fn export_key(&self) -> Result<ExportPublicKey> {
        let op = Op::store_wide(Operation::Read, AuditAction::Read, "read the export key");
        self.read(op, |store| {
            store.ensure_open()?;
            let mut conn = store.backend.connection()?;
            Ok(store.export_signer(conn.store())?.public_key())
        })
    }

    /// Exports a tenant's secrets; needs RESOLVE in the tenant (values leave the store).
    /// See [`SecretStorage::export_bundle`].
    pub fn export_bundle(
        &self,
        tenant: &str,
        recipients: &str,
        options: &ExportOptions,
    ) -> Result<ExportedBundle> {
        let op = Op::new(Operation::Resolve, AuditAction::Export, tenant, &[]);
        self.change(op, |store, change| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            let recipients = envelope::recipients(recipients)?;
            let mut payload = None;
            store.commit(super::commit::STATE_SCOPE, change, |backend, change| {
                let read = store.export_payload(backend, tenant, options)?;
                change.per_secret(
                    &read
                        .secrets
                        .iter()
                        .map(|s| (s.name.clone(), s.versions.last().map_or(0, |v| v.version)))
                        .collect::<Vec<_>>(),
                );
                payload = Some((read, store.export_signer(backend)?));
                Ok(())
            })?;
            let (payload, signer) =
                payload.ok_or_else(|| Error::internal("the export read nothing"))?;
            let document = document::sign(&payload, &signer)?;
            Ok(ExportedBundle {
                bytes: envelope::encrypt(&document, &recipients)?,
                secrets: payload.secrets.len(),
                versions: payload.secrets.iter().map(|s| s.versions.len()).sum(),
            })
        })
    }

    /// Imports a bundle; needs WRITE in the tenant. See [`SecretStorage::import_bundle`].
    pub fn import_bundle(
        &self,
        tenant: &str,
        bundle: &[u8],
        identity: &str,
        options: &ImportOptions,
    ) -> Result<ImportReport> {
        let op = Op::write(AuditAction::Import, tenant, &[]);
        self.change(op, |store, change| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            let plaintext = envelope::decrypt(bundle, identity)?;
            let mut trusted = options.trusted_signers.clone();
            {
                let mut conn = store.backend.connection()?;
                trusted.push(store.export_signer(conn.store())?.public_key());
            }
            let (payload, signer) = document::verify(&plaintext, &trusted)?;
            let secrets = decode_secrets(&payload, store)?;
            let mut report = ImportReport {
                dry_run: options.dry_run,
                signer: signer.to_string(),
                source_tenant: payload.tenant.clone(),
                exported_at: payload.exported_at,
                items: Vec::new(),
            };
            if options.dry_run {
                let mut conn = store.backend.connection()?;
                report.items = plan(store, conn.store(), tenant, &secrets, options.on_conflict)?;
                return Ok(report);
            }
            let scope = format!("{tenant}\u{1f}\u{1f}import");
            report.items = store.commit(&scope, change, |backend, change| {
                let mut items = plan(store, backend, tenant, &secrets, options.on_conflict)?;
                let conflicts: Vec<String> = items
                    .iter()
                    .filter(|i| i.action == ImportAction::Conflict)
                    .map(|i| describe_conflict(backend, tenant, &i.name))
                    .collect::<Result<_>>()?;
                if !conflicts.is_empty() {
                    return Err(Error::new(
                        ErrorCode::AlreadyExists,
                        format!(
                            "{} secret(s) of the bundle exist in tenant '{tenant}': {} (nothing was imported; choose skip or overwrite)",
                            conflicts.len(),
                            conflicts.join(", ")
                        ),
                    ));
                }
                let mut written = Vec::new();
                for (item, secret) in items.iter_mut().zip(&secrets) {
                    let version = match item.action {
                        ImportAction::Create => store.import_new(backend, tenant, secret)?,
                        ImportAction::Overwrite => store.import_over(backend, tenant, secret)?,
                        ImportAction::Skip | ImportAction::Conflict => continue,
                    };
                    change.moved_pointer(tenant, &secret.name, Pointer::live(secret.secret_type, version));
                    item.version = Some(version);
                    written.push((secret.name.clone(), version));
                }
                change.per_secret(&written);
                Ok(items)
            })?;
            for item in &report.items {
                if item.version.is_some() {
                    store.forget(tenant, &item.name);
                }
            }
            Ok(report)
        })
    }

    /// The secrets documents need, checked against a tenant; needs READ in it. See
    /// [`SecretStorage::manifest`].
    pub fn manifest(&self, tenant: &str, documents: &[ManifestDocument<'_>]) -> Result<Manifest> {
        self.read(Op::read(tenant, &[]), |store| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            let mut manifest = crate::bundle::manifest(documents)?;
            let mut conn = store.backend.connection()?;
            let backend = conn.store();
            for entry in &mut manifest.secrets {
                entry.status = Some(if crate::bundle::manifest_is_pattern(&entry.name) {
                    ManifestStatus::Pattern
                } else {
                    // A deleted secret is missing to the documents (they cannot resolve it).
                    match backend.secret(tenant, &entry.name)? {
                        None => ManifestStatus::Missing,
                        Some(found) if found.deleted_at.is_some() => ManifestStatus::Missing,
                        Some(found)
                            if entry.secret_type.is_some_and(|t| t != found.secret_type) =>
                        {
                            ManifestStatus::TypeMismatch
                        }
                        Some(_) => ManifestStatus::Present,
                    }
                });
            }
            manifest.tenant = Some(tenant.to_owned());
            Ok(manifest)
        })
    }
}

/// A bundled secret decoded and validated.
struct Incoming {
    name: String,
    secret_type: SecretType,
    description: String,
    values: Vec<Zeroizing<Vec<u8>>>,
}

/// Every secret of the payload decoded and validated like a create (INTEGRITY for what no
/// export writes, INVALID_ARGUMENT for a value over this store's limits).
fn decode_secrets(payload: &Payload, store: &SecretStorage) -> Result<Vec<Incoming>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(payload.secrets.len());
    for secret in &payload.secrets {
        let name = &secret.name;
        validate_name(name).map_err(|e| invalid_bundle(format!("bundle: {}", e.message())))?;
        if !seen.insert(name.as_str()) {
            return Err(invalid_bundle(format!(
                "bundle: secret '{name}' appears twice"
            )));
        }
        let secret_type: SecretType = secret
            .secret_type
            .parse()
            .map_err(|_| invalid_bundle(format!("bundle: secret '{name}' has no valid type")))?;
        validate_description(&secret.description)
            .map_err(|e| invalid_bundle(format!("bundle: {}", e.message())))?;
        if secret.versions.is_empty() {
            return Err(invalid_bundle(format!(
                "bundle: secret '{name}' has no version"
            )));
        }
        let mut values = Vec::with_capacity(secret.versions.len());
        for version in &secret.versions {
            let mut value = Zeroizing::new(Vec::new());
            STANDARD
                .decode_vec(version.value.as_bytes(), &mut value)
                .map_err(|_| {
                    invalid_bundle(format!("bundle: a value of '{name}' is not base64"))
                })?;
            validate_value(secret_type, &value, &store.options.limits)
                .map_err(|e| e.prefixed_by(&format!("secret '{name}' of the bundle")))?;
            values.push(value);
        }
        out.push(Incoming {
            name: name.clone(),
            secret_type,
            description: secret.description.clone(),
            values,
        });
    }
    Ok(out)
}

/// A conflicting name for the import's error: a deleted one says how to recover or erase it.
fn describe_conflict(backend: &mut dyn Store, tenant: &str, name: &str) -> Result<String> {
    Ok(match backend.secret(tenant, name)? {
        Some(s) if s.deleted_at.is_some() => {
            format!("{name} (deleted: undelete it, or destroy it to reuse the name)")
        }
        _ => name.to_owned(),
    })
}

/// What an import does with each secret, given what `backend` holds.
fn plan(
    store: &SecretStorage,
    backend: &mut dyn Store,
    tenant: &str,
    secrets: &[Incoming],
    on_conflict: OnConflict,
) -> Result<Vec<ImportItem>> {
    let mut items = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let action = match backend.secret(tenant, &secret.name)? {
            None => ImportAction::Create,
            Some(existing) => {
                crate::service::state::verify_pointer(&store.state_key, &existing)?;
                match on_conflict {
                    OnConflict::Fail => ImportAction::Conflict,
                    // A deleted name is reserved (as for create): skip leaves it deleted, and
                    // overwrite refuses rather than resurrect its old versions.
                    OnConflict::Overwrite if existing.deleted_at.is_some() => {
                        return Err(name_taken(&existing, true)
                            .prefixed_by("nothing was imported"));
                    }
                    OnConflict::Skip => ImportAction::Skip,
                    OnConflict::Overwrite if existing.secret_type != secret.secret_type => {
                        return Err(Error::new(
                            ErrorCode::TypeMismatch,
                            format!(
                                "secret '{}' is {} in tenant '{tenant}' but {} in the bundle (nothing was imported)",
                                secret.name, existing.secret_type, secret.secret_type
                            ),
                        ))
                    }
                    OnConflict::Overwrite => ImportAction::Overwrite,
                }
            }
        };
        items.push(ImportItem {
            name: secret.name.clone(),
            secret_type: secret.secret_type,
            action,
            versions: secret.values.len(),
            version: None,
        });
    }
    Ok(items)
}

impl SecretStorage {
    /// The export signing key (derived from the store-wide reserved key).
    fn export_signer(&self, backend: &mut dyn Store) -> Result<ExportSigner> {
        let reserved = self
            .keyring
            .active_key(backend, crate::audit::AUDIT_KEY_TENANT)?;
        Ok(reserved.derive_signing_key(EXPORT_SIGNING_LABEL))
    }

    /// A tenant's secrets read and opened for an export, in name order.
    fn export_payload(
        &self,
        backend: &mut dyn Store,
        tenant: &str,
        options: &ExportOptions,
    ) -> Result<Payload> {
        let secrets = backend.list(tenant, &ListQuery::default())?.items;
        let mut all: Vec<(String, SecretType, StoredVersion)> = Vec::new();
        if options.all_versions {
            // Every kept version, page by page (data key ids start at 1: 0 excludes none).
            const PAGE: usize = 4096;
            loop {
                let after = all.last().map(|(name, _, v)| (name.as_str(), v.version));
                let page = backend.tenant_versions_page(tenant, 0, after, PAGE)?;
                let last = page.len() < PAGE;
                all.extend(page);
                if last {
                    break;
                }
            }
        }
        all.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.version.cmp(&b.2.version)));
        let mut out = Vec::with_capacity(secrets.len());
        for secret in secrets {
            crate::service::state::verify_pointer(&self.state_key, &secret)?;
            let stored: Vec<StoredVersion> = if options.all_versions {
                let start = all.partition_point(|v| v.0 < secret.name);
                all[start..]
                    .iter()
                    .take_while(|v| v.0 == secret.name && v.2.version <= secret.version)
                    .map(|v| v.2.clone())
                    .collect()
            } else {
                let (_, current) = backend
                    .current(tenant, &secret.name)?
                    .ok_or_else(|| Error::secret_not_found(tenant, &secret.name))?;
                vec![current]
            };
            out.push(self.bundled(backend, tenant, &secret, stored)?);
        }
        Ok(Payload {
            tenant: tenant.to_owned(),
            exported_at: now_millis(),
            all_versions: options.all_versions,
            secrets: out,
        })
    }

    /// One secret's versions opened and encoded for a bundle.
    fn bundled(
        &self,
        backend: &mut dyn Store,
        tenant: &str,
        secret: &StoredSecret,
        stored: Vec<StoredVersion>,
    ) -> Result<BundledSecret> {
        let mut versions = Vec::with_capacity(stored.len());
        for version in stored {
            let key = self.keyring.key(backend, tenant, version.dek_id)?;
            let context = value_context(tenant, &secret.name, secret.secret_type, version.version);
            let plaintext = open(key.cipher(), &context, &version.blob)?;
            let mut value = Zeroizing::new(String::with_capacity(plaintext.len() * 4 / 3 + 4));
            STANDARD.encode_string(&*plaintext, &mut value);
            versions.push(BundledVersion {
                version: version.version,
                created_at: version.created_at,
                value,
            });
        }
        Ok(BundledSecret {
            name: secret.name.clone(),
            secret_type: secret.secret_type.as_str().to_owned(),
            description: secret.description.clone(),
            versions,
        })
    }

    /// Creates an imported secret with its versions in order; returns the current version.
    fn import_new(&self, backend: &mut dyn Store, tenant: &str, secret: &Incoming) -> Result<u64> {
        let key = self.keyring.active_key(backend, tenant)?;
        let now = now_millis();
        let seal_version = |version: u64, value: &[u8]| -> Result<StoredVersion> {
            let context = value_context(tenant, &secret.name, secret.secret_type, version);
            Ok(StoredVersion {
                version,
                dek_id: key.id(),
                blob: seal(key.cipher(), key.id(), &context, value)?,
                created_at: now,
            })
        };
        let first = secret
            .values
            .first()
            .ok_or_else(|| Error::internal("an imported secret without a value"))?;
        let stored = StoredSecret::first_version(
            tenant,
            &secret.name,
            secret.secret_type,
            &secret.description,
            now,
        );
        backend.create(&stored, &seal_version(1, first)?)?;
        let mut current = 1;
        for value in &secret.values[1..] {
            current = self.append_imported(backend, tenant, secret, current, value)?;
        }
        Ok(current)
    }

    /// Writes an imported secret's versions as new versions of the existing one.
    fn import_over(&self, backend: &mut dyn Store, tenant: &str, secret: &Incoming) -> Result<u64> {
        let mut current = self
            .authentic_secret(backend, tenant, &secret.name)?
            .version;
        for value in &secret.values {
            current = self.append_imported(backend, tenant, secret, current, value)?;
        }
        backend.set_description(tenant, &secret.name, &secret.description, now_millis())?;
        Ok(current)
    }

    fn append_imported(
        &self,
        backend: &mut dyn Store,
        tenant: &str,
        secret: &Incoming,
        current: u64,
        value: &[u8],
    ) -> Result<u64> {
        let key = self.keyring.active_key(backend, tenant)?;
        let version = current + 1;
        let context = value_context(tenant, &secret.name, secret.secret_type, version);
        let stored = StoredVersion {
            version,
            dek_id: key.id(),
            blob: seal(key.cipher(), key.id(), &context, value)?,
            created_at: now_millis(),
        };
        backend.append_version(&NextVersion {
            tenant,
            name: &secret.name,
            expected_current: current,
            value: &stored,
            max_versions: self.options.max_versions,
        })?;
        Ok(version)
    }
}
