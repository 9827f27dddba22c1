//! The `Store` trait implementation of `PgConnection`: short operations inline, longer ones
//! forwarded to the concern files (`secrets.rs`, `keys.rs`, `references.rs`, `dump.rs`).

use super::rows::{secret_from_row, wrapped_from_row};
use super::{payload, sql, storage, PgConnection};
use crate::error::{Error, Result};
use crate::model::{ListQuery, Page, SecretType};
use crate::store::{
    Store, StoreDump, StoreHeader, StoredReference, StoredSecret, StoredVersion, UsageUpdate,
    WrappedKey,
};

impl Store for PgConnection {
    fn header(&mut self) -> Result<Option<StoreHeader>> {
        let rows = self.query(sql::HEADER, &[])?;
        StoreHeader::from_meta(rows.iter().map(|row| (row.get(0), row.get(1))))
    }

    fn initialize(&mut self, header: &StoreHeader) -> Result<StoreHeader> {
        let kek_id = header.kek_id.to_be_bytes().to_vec();
        self.atomic(None, |c| {
            c.execute(sql::INIT_META, &[&"kek_id", &kek_id])?;
            c.execute(sql::INIT_META, &[&"key_check", &header.key_check])?;
            Ok(())
        })?;
        self.header()?
            .ok_or_else(|| Error::internal("store header missing after initialisation"))
    }

    fn active_tenant_key(&mut self, tenant: &str) -> Result<Option<WrappedKey>> {
        Ok(self
            .query_opt(sql::ACTIVE_KEY, &[&tenant])?
            .map(|r| wrapped_from_row(&r)))
    }

    fn tenant_key(&mut self, tenant: &str, dek_id: u32) -> Result<Option<WrappedKey>> {
        Ok(self
            .query_opt(sql::KEY_BY_ID, &[&tenant, &i64::from(dek_id)])?
            .map(|r| wrapped_from_row(&r)))
    }

    fn insert_tenant_key(&mut self, tenant: &str, key: &WrappedKey) -> Result<bool> {
        self.insert_tenant_key_if_current_kek(tenant, key)
    }

    fn secret(&mut self, tenant: &str, name: &str) -> Result<Option<StoredSecret>> {
        self.query_opt(sql::SECRET, &[&tenant, &name])?
            .map(|r| secret_from_row(&r))
            .transpose()
    }

    fn current(
        &mut self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<(StoredSecret, StoredVersion)>> {
        self.current_with_value(tenant, name)
    }

    fn version(&mut self, tenant: &str, name: &str, version: u64) -> Result<Option<StoredVersion>> {
        Ok(self
            .query_opt(sql::VERSION, &[&tenant, &name, &(version as i64)])?
            .map(|row| StoredVersion {
                version,
                dek_id: row.get::<_, i64>(0) as u32,
                blob: row.get(1),
                created_at: row.get(2),
            }))
    }

    fn versions(&mut self, tenant: &str, name: &str) -> Result<Vec<(u64, i64)>> {
        Ok(self
            .query(sql::VERSIONS, &[&tenant, &name])?
            .iter()
            .map(|row| (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1)))
            .collect())
    }

    fn create(&mut self, secret: &StoredSecret, value: &StoredVersion) -> Result<()> {
        self.insert_secret(secret, value)
    }

    fn append_version(
        &mut self,
        tenant: &str,
        name: &str,
        expected_current: u64,
        value: &StoredVersion,
        max_versions: u32,
    ) -> Result<()> {
        self.append_version_trimmed(tenant, name, expected_current, value, max_versions)
    }

    fn set_description(
        &mut self,
        tenant: &str,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<()> {
        let changed = self.execute(sql::SET_DESCRIPTION, &[&tenant, &name, &description, &now])?;
        if changed == 0 {
            return Err(Error::secret_not_found(tenant, name));
        }
        Ok(())
    }

    fn delete(&mut self, tenant: &str, name: &str, force: bool) -> Result<()> {
        self.delete_secret(tenant, name, force)
    }

    fn replace_references(
        &mut self,
        tenant: &str,
        source_id: &str,
        references: &[StoredReference],
    ) -> Result<()> {
        self.replace_reference_rows(tenant, source_id, references)
    }

    fn remove_references(&mut self, tenant: &str, source_id: &str) -> Result<usize> {
        Ok(self.execute(sql::DELETE_SOURCE, &[&tenant, &source_id])? as usize)
    }

    fn where_used(&mut self, tenant: &str, name: &str) -> Result<Vec<StoredReference>> {
        self.references_to(tenant, name)
    }

    fn pattern_references(&mut self, tenant: &str) -> Result<Vec<StoredReference>> {
        Ok(self
            .query(
                "SELECT source_id, name, type FROM tbs_references
                 WHERE tenant = $1 AND strpos(name, '{{') > 0 ORDER BY source_id, name",
                &[&tenant],
            )?
            .iter()
            .map(|row| StoredReference {
                source_id: row.get(0),
                name: row.get(1),
                secret_type: row.get::<_, Option<String>>(2).and_then(|t| t.parse().ok()),
            })
            .collect())
    }

    fn list(&mut self, tenant: &str, query: &ListQuery) -> Result<Page<StoredSecret>> {
        self.list_page(tenant, query)
    }

    fn all_tenant_keys(&mut self) -> Result<Vec<(String, WrappedKey)>> {
        if self.write_locked {
            // A master-key rotation: no key may be added between this read and its rewrap.
            self.client
                .batch_execute("LOCK TABLE tbs_tenant_keys IN EXCLUSIVE MODE")
                .map_err(storage)?;
        }
        Ok(self
            .query(sql::ALL_KEYS, &[])?
            .iter()
            .map(|row| (row.get::<_, String>(4), wrapped_from_row(row)))
            .collect())
    }

    fn rewrap_tenant_keys(
        &mut self,
        keys: &[(String, WrappedKey)],
        header: &StoreHeader,
    ) -> Result<()> {
        self.rewrap_keys_and_header(keys, header)
    }

    fn tenant_versions(
        &mut self,
        tenant: &str,
    ) -> Result<Vec<(String, SecretType, StoredVersion)>> {
        self.tenant_version_rows(tenant)
    }

    fn reseal_version(&mut self, tenant: &str, name: &str, value: &StoredVersion) -> Result<()> {
        self.reseal_version_row(tenant, name, value)
    }

    fn dump(&mut self) -> Result<StoreDump> {
        self.dump_all()
    }

    fn load(&mut self, dump: &StoreDump) -> Result<()> {
        self.load_into_empty(dump)
    }

    fn record_usage(&mut self, updates: &[UsageUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        self.atomic(None, |c| {
            for u in updates {
                c.execute(
                    sql::RECORD_USAGE,
                    &[&u.tenant, &u.name, &(u.uses as i64), &u.last_used_at],
                )?;
            }
            Ok(())
        })
    }

    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .query_opt(sql::META, &[&key])?
            .map(|row| row.get::<_, Vec<u8>>(0)))
    }

    fn lock_meta(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .query_opt(sql::LOCK_META, &[&key])?
            .map(|row| row.get::<_, Vec<u8>>(0)))
    }

    fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.atomic(None, |c| {
            c.execute(sql::PUT_META, &[&key, &value]).map(|_| ())
        })
    }

    fn seal_pointer(&mut self, tenant: &str, name: &str, seal_seq: u64, seal: &[u8]) -> Result<()> {
        let changed = self.atomic(Some(&payload(tenant)), |c| {
            c.execute(
                sql::SEAL_POINTER,
                &[&tenant, &name, &(seal_seq as i64), &seal],
            )
        })?;
        if changed == 0 {
            return Err(Error::secret_not_found(tenant, name));
        }
        Ok(())
    }

    fn all_secrets(&mut self) -> Result<Vec<StoredSecret>> {
        self.query(sql::ALL_SECRETS, &[])?
            .iter()
            .map(secret_from_row)
            .collect()
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(self
            .query_opt(sql::IS_EMPTY, &[])?
            .is_some_and(|row| row.get::<_, bool>(0)))
    }

    fn outbox_push(&mut self, seq: u64, line: &str) -> Result<()> {
        self.atomic(None, |c| {
            c.execute(sql::OUTBOX_PUSH, &[&(seq as i64), &line])
                .map(|_| ())
        })
    }

    fn outbox_after(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        Ok(self
            .query(sql::OUTBOX_AFTER, &[&(after as i64), &(limit as i64)])?
            .iter()
            .map(|row| (row.get::<_, i64>(0) as u64, row.get::<_, String>(1)))
            .collect())
    }

    fn outbox_prune(&mut self, through: u64) -> Result<()> {
        self.atomic(None, |c| {
            c.execute(sql::OUTBOX_PRUNE, &[&(through as i64)])
                .map(|_| ())
        })
    }

    fn with_write_lock(
        &mut self,
        scope: &str,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<()> {
        self.run_write_locked(scope, f)
    }
}
