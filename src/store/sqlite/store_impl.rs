//! The `Store` trait implementation of `SqliteStore`: short operations inline, longer ones
//! forwarded to the concern files (`secrets.rs`, `keys.rs`, `references.rs`, `dump.rs`).

use super::rows::{not_found, secret_from_row, wrapped_from_row, SECRET_COLUMNS};
use super::SqliteStore;
use crate::error::{Error, Result};
use crate::model::{ListQuery, Page, SecretType};
use crate::store::{
    Store, StoreDump, StoreHeader, StoredReference, StoredSecret, StoredVersion, UsageUpdate,
    WrappedKey,
};
use rusqlite::{params, OptionalExtension};

impl Store for SqliteStore {
    fn header(&mut self) -> Result<Option<StoreHeader>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, value FROM tbs_meta WHERE key IN ('kek_id', 'key_check')",
        )?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        StoreHeader::from_meta(rows)
    }

    fn initialize(&mut self, header: &StoreHeader) -> Result<StoreHeader> {
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT OR IGNORE INTO tbs_meta (key, value) VALUES ('kek_id', ?1)",
            params![header.kek_id.to_be_bytes().to_vec()],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO tbs_meta (key, value) VALUES ('key_check', ?1)",
            params![header.key_check],
        )?;
        tx.commit()?;
        self.header()?
            .ok_or_else(|| Error::internal("store header missing after initialisation"))
    }

    fn active_tenant_key(&mut self, tenant: &str) -> Result<Option<WrappedKey>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT dek_id, kek_id, wrapped, created_at FROM tbs_tenant_keys
                 WHERE tenant = ?1 ORDER BY dek_id DESC LIMIT 1",
            )?
            .query_row(params![tenant], wrapped_from_row)
            .optional()?)
    }

    fn tenant_key(&mut self, tenant: &str, dek_id: u32) -> Result<Option<WrappedKey>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT dek_id, kek_id, wrapped, created_at FROM tbs_tenant_keys
                 WHERE tenant = ?1 AND dek_id = ?2",
            )?
            .query_row(params![tenant, dek_id], wrapped_from_row)
            .optional()?)
    }

    fn insert_tenant_key(&mut self, tenant: &str, key: &WrappedKey) -> Result<bool> {
        self.insert_tenant_key_if_current_kek(tenant, key)
    }

    fn secret(&mut self, tenant: &str, name: &str) -> Result<Option<StoredSecret>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {SECRET_COLUMNS} FROM tbs_secrets WHERE tenant = ?1 AND name = ?2"
            ))?
            .query_row(params![tenant, name], secret_from_row)
            .optional()?)
    }

    fn current(
        &mut self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<(StoredSecret, StoredVersion)>> {
        self.current_with_value(tenant, name)
    }

    fn version(&mut self, tenant: &str, name: &str, version: u64) -> Result<Option<StoredVersion>> {
        self.version_row(tenant, name, version)
    }

    fn versions(&mut self, tenant: &str, name: &str) -> Result<Vec<(u64, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, created_at FROM tbs_secret_versions
             WHERE tenant = ?1 AND name = ?2 ORDER BY version DESC",
        )?;
        let rows = stmt.query_map(params![tenant, name], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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
        self.update_description(tenant, name, description, now)
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
        let tx = self.write_tx()?;
        let removed = tx.execute(
            "DELETE FROM tbs_references WHERE tenant = ?1 AND source_id = ?2",
            params![tenant, source_id],
        )?;
        tx.commit()?;
        Ok(removed)
    }

    fn where_used(&mut self, tenant: &str, name: &str) -> Result<Vec<StoredReference>> {
        self.references_to(tenant, name)
    }

    fn pattern_references(&mut self, tenant: &str) -> Result<Vec<StoredReference>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT source_id, name, type FROM tbs_references
             WHERE tenant = ?1 AND instr(name, '{{') > 0 ORDER BY source_id, name",
        )?;
        let rows = stmt.query_map(rusqlite::params![tenant], |row| {
            let type_name: Option<String> = row.get(2)?;
            Ok(StoredReference {
                source_id: row.get(0)?,
                name: row.get(1)?,
                secret_type: type_name.and_then(|t| t.parse().ok()),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn list(&mut self, tenant: &str, query: &ListQuery) -> Result<Page<StoredSecret>> {
        self.list_page(tenant, query)
    }

    fn all_tenant_keys(&mut self) -> Result<Vec<(String, WrappedKey)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT dek_id, kek_id, wrapped, created_at, tenant FROM tbs_tenant_keys
             ORDER BY tenant, dek_id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(4)?, wrapped_from_row(row)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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
        let tx = self.write_tx()?;
        tx.execute(
            "UPDATE tbs_secret_versions SET dek_id = ?4, value = ?5
             WHERE tenant = ?1 AND name = ?2 AND version = ?3",
            params![tenant, name, value.version as i64, value.dek_id, value.blob],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn dump(&mut self) -> Result<StoreDump> {
        self.dump_all()
    }

    fn load(&mut self, dump: &StoreDump) -> Result<()> {
        self.load_into_empty(dump)
    }

    fn record_usage(&mut self, updates: &[UsageUpdate]) -> Result<()> {
        self.add_usage(updates)
    }

    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT value FROM tbs_meta WHERE key = ?1")?;
        // Text or blob alike (an edited value may have changed type): the caller authenticates it.
        Ok(stmt
            .query_row(params![key], |row| {
                Ok(row.get_ref(0)?.as_bytes_or_null()?.map(<[u8]>::to_vec))
            })
            .optional()?
            .flatten())
    }

    fn lock_meta(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        // A write transaction of SQLite already excludes every other writer.
        self.meta(key)
    }

    fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let tx = self.write_tx()?;
        tx.prepare_cached(
            "INSERT INTO tbs_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![key, value])?;
        tx.commit()?;
        Ok(())
    }

    fn seal_pointer(&mut self, tenant: &str, name: &str, seal_seq: u64, seal: &[u8]) -> Result<()> {
        let tx = self.write_tx()?;
        let changed = tx
            .prepare_cached(
                "UPDATE tbs_secrets SET seal_seq = ?3, seal = ?4 WHERE tenant = ?1 AND name = ?2",
            )?
            .execute(params![tenant, name, seal_seq as i64, seal])?;
        if changed == 0 {
            return Err(not_found(tenant, name));
        }
        tx.commit()?;
        Ok(())
    }

    fn all_secrets(&mut self) -> Result<Vec<StoredSecret>> {
        Ok(self
            .conn
            .prepare(&format!(
                "SELECT {SECRET_COLUMNS} FROM tbs_secrets ORDER BY tenant, name"
            ))?
            .query_map([], secret_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM tbs_tenant_keys)
                AND NOT EXISTS (SELECT 1 FROM tbs_secrets)",
            [],
            |r| r.get(0),
        )?)
    }

    fn outbox_push(&mut self, seq: u64, line: &str) -> Result<()> {
        let tx = self.write_tx()?;
        tx.prepare_cached("INSERT INTO tbs_audit_outbox (seq, line) VALUES (?1, ?2)")?
            .execute(params![seq as i64, line])?;
        tx.commit()?;
        Ok(())
    }

    fn outbox_after(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, line FROM tbs_audit_outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, limit as i64], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn outbox_prune(&mut self, through: u64) -> Result<()> {
        let tx = self.write_tx()?;
        tx.prepare_cached("DELETE FROM tbs_audit_outbox WHERE seq <= ?1")?
            .execute(params![through as i64])?;
        tx.commit()?;
        Ok(())
    }

    fn with_write_lock(
        &mut self,
        _scope: &str,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<()> {
        self.run_write_locked(f)
    }
}
