//! Secrets and their versions: reading the current value, creating, appending a version,
//! describing, deleting (soft), undeleting, erasing, listing, and counting uses.

use super::rows::{insert_secret_row, not_found, secret_from_row, SECRET_COLUMNS};
use super::{execute_cached, query_row_cached, SqliteStore};
use crate::error::Result;
use crate::model::{ListQuery, Page};
use crate::store::{name_taken, version_conflict, NextVersion, SecretRows};
use crate::store::{StoredSecret, StoredVersion, UsageUpdate};
use rusqlite::{params, OptionalExtension};

impl SecretRows for SqliteStore {
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
        let sql = "SELECT s.tenant, s.name, s.type, s.description, s.version, s.created_at,
                          s.updated_at, s.value_updated_at, s.last_used_at, s.use_count,
                          s.seal_seq, s.seal, s.deleted_at, v.dek_id, v.value, v.created_at
                   FROM tbs_secrets s JOIN tbs_secret_versions v
                     ON v.tenant = s.tenant AND v.name = s.name AND v.version = s.version
                   WHERE s.tenant = ?1 AND s.name = ?2";
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row(params![tenant, name], |row| {
                let secret = secret_from_row(row)?;
                let value = StoredVersion {
                    version: secret.version,
                    dek_id: row.get::<_, i64>(13)? as u32,
                    blob: row.get(14)?,
                    created_at: row.get(15)?,
                };
                Ok((secret, value))
            })
            .optional()?)
    }

    fn version(&mut self, tenant: &str, name: &str, version: u64) -> Result<Option<StoredVersion>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT dek_id, value, created_at FROM tbs_secret_versions
                 WHERE tenant = ?1 AND name = ?2 AND version = ?3",
            )?
            .query_row(params![tenant, name, version as i64], |row| {
                Ok(StoredVersion {
                    version,
                    dek_id: row.get::<_, i64>(0)? as u32,
                    blob: row.get(1)?,
                    created_at: row.get(2)?,
                })
            })
            .optional()?)
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
        let tx = self.write_tx()?;
        if insert_secret_row(&tx, secret)? == 0 {
            let deleted: bool = query_row_cached(
                &tx,
                "SELECT deleted_at IS NOT NULL FROM tbs_secrets WHERE tenant = ?1 AND name = ?2",
                params![secret.tenant, secret.name],
                |r| r.get(0),
            )?;
            return Err(name_taken(secret, deleted));
        }
        execute_cached(
            &tx,
            "INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                secret.tenant,
                secret.name,
                value.version as i64,
                value.dek_id,
                value.blob,
                value.created_at
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn append_version(&mut self, next: &NextVersion<'_>) -> Result<()> {
        let (tenant, name, value) = (next.tenant, next.name, next.value);
        let tx = self.write_tx()?;
        let current: Option<i64> = tx
            .query_row(
                "SELECT version FROM tbs_secrets
                 WHERE tenant = ?1 AND name = ?2 AND deleted_at IS NULL",
                params![tenant, name],
                |r| r.get(0),
            )
            .optional()?;
        let current = current.ok_or_else(|| not_found(tenant, name))? as u64;
        if current != next.expected_current {
            return Err(version_conflict(
                name,
                current as i64,
                next.expected_current,
            ));
        }
        execute_cached(
            &tx,
            "INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                tenant,
                name,
                value.version as i64,
                value.dek_id,
                value.blob,
                value.created_at
            ],
        )?;
        execute_cached(
            &tx,
            "UPDATE tbs_secrets SET version = ?3, updated_at = ?4, value_updated_at = ?4
             WHERE tenant = ?1 AND name = ?2",
            params![tenant, name, value.version as i64, value.created_at],
        )?;
        execute_cached(
            &tx,
            "DELETE FROM tbs_secret_versions WHERE tenant = ?1 AND name = ?2 AND version <= ?3",
            params![
                tenant,
                name,
                value.version as i64 - i64::from(next.max_versions.max(1))
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn set_description(&mut self, tenant: &str, name: &str, text: &str, now: i64) -> Result<()> {
        let tx = self.write_tx()?;
        let changed = execute_cached(
            &tx,
            "UPDATE tbs_secrets SET description = ?3, updated_at = ?4
             WHERE tenant = ?1 AND name = ?2 AND deleted_at IS NULL",
            params![tenant, name, text, now],
        )?;
        if changed == 0 {
            return Err(not_found(tenant, name));
        }
        tx.commit()?;
        Ok(())
    }

    fn delete(&mut self, tenant: &str, name: &str) -> Result<()> {
        let tx = self.write_tx()?;
        // The connection runs with `secure_delete` on (see `sqlite/mod.rs`): the pages the
        // overwritten values and the deleted rows leave are zeroed, not only unlinked.
        execute_cached(
            &tx,
            "UPDATE tbs_secret_versions SET value = zeroblob(length(value))
             WHERE tenant = ?1 AND name = ?2",
            params![tenant, name],
        )?;
        execute_cached(
            &tx,
            "DELETE FROM tbs_secret_versions WHERE tenant = ?1 AND name = ?2",
            params![tenant, name],
        )?;
        let deleted = execute_cached(
            &tx,
            "DELETE FROM tbs_secrets WHERE tenant = ?1 AND name = ?2",
            params![tenant, name],
        )?;
        if deleted == 0 {
            return Err(not_found(tenant, name)); // the transaction rolls back
        }
        tx.commit()?;
        Ok(())
    }

    fn mark_deleted(&mut self, tenant: &str, name: &str, at: i64) -> Result<()> {
        let tx = self.write_tx()?;
        let changed = execute_cached(
            &tx,
            "UPDATE tbs_secrets SET deleted_at = ?3
             WHERE tenant = ?1 AND name = ?2 AND deleted_at IS NULL",
            params![tenant, name, at],
        )?;
        if changed == 0 {
            return Err(not_found(tenant, name));
        }
        tx.commit()?;
        Ok(())
    }

    fn undelete(&mut self, tenant: &str, name: &str) -> Result<()> {
        let tx = self.write_tx()?;
        let changed = execute_cached(
            &tx,
            "UPDATE tbs_secrets SET deleted_at = NULL
             WHERE tenant = ?1 AND name = ?2 AND deleted_at IS NOT NULL",
            params![tenant, name],
        )?;
        if changed == 0 {
            return Err(not_found(tenant, name));
        }
        tx.commit()?;
        Ok(())
    }

    fn deleted_before(&mut self, cutoff: i64) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT tenant, name FROM tbs_secrets
             WHERE deleted_at IS NOT NULL AND deleted_at <= ?1 ORDER BY tenant, name",
        )?;
        let rows = stmt.query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn list(&mut self, tenant: &str, query: &ListQuery) -> Result<Page<StoredSecret>> {
        let filter = query.name_contains.as_deref().unwrap_or("");
        let total: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM tbs_secrets WHERE tenant = ?1 AND instr(name, ?2) > 0
                 AND (deleted_at IS NOT NULL) = ?3",
            )?
            .query_row(params![tenant, filter, query.deleted], |r| r.get(0))?;
        // Keyset paging: the primary key (tenant, name) is read from the cursor on, so a page
        // costs the same wherever it starts. No cursor: names after "" (every name).
        let after = query.after.as_deref().unwrap_or("");
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SECRET_COLUMNS} FROM tbs_secrets
             WHERE tenant = ?1 AND name > ?3 AND instr(name, ?2) > 0
               AND (deleted_at IS NOT NULL) = ?6
             ORDER BY name LIMIT ?4 OFFSET ?5"
        ))?;
        let items = stmt
            .query_map(
                params![
                    tenant,
                    filter,
                    after,
                    query.fetch_limit().unwrap_or(-1),
                    query.fetch_offset(),
                    query.deleted
                ],
                secret_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Page::of(items, total, query))
    }

    fn record_usage(&mut self, updates: &[UsageUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let tx = self.write_tx()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE tbs_secrets
                 SET use_count = use_count + ?3,
                     last_used_at = MAX(COALESCE(last_used_at, 0), ?4)
                 WHERE tenant = ?1 AND name = ?2 AND deleted_at IS NULL",
            )?;
            for u in updates {
                stmt.execute(params![u.tenant, u.name, u.uses as i64, u.last_used_at])?;
            }
        }
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
}
