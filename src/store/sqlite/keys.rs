//! Tenant data keys: inserting one under the current master key, re-wrapping all of them at a
//! master-key rotation, and the versions a tenant-key rotation re-seals.

use super::rows::wrapped_from_row;
use super::{execute_cached, SqliteStore};
use crate::error::Result;
use crate::model::SecretType;
use crate::store::KeyRows;
use crate::store::{Reseal, StoreHeader, StoredVersion, WrappedKey};
use rusqlite::{params, OptionalExtension};

impl KeyRows for SqliteStore {
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
        let tx = self.write_tx()?;
        let current: Option<Vec<u8>> = tx
            .query_row("SELECT value FROM tbs_meta WHERE key = 'kek_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if current.as_deref() != Some(&key.kek_id.to_be_bytes()[..]) {
            return Err(crate::store::master_key_rotated());
        }
        let inserted = execute_cached(
            &tx,
            "INSERT OR IGNORE INTO tbs_tenant_keys (tenant, dek_id, kek_id, wrapped, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant, key.dek_id, key.kek_id, key.blob, key.created_at],
        )?;
        tx.commit()?;
        Ok(inserted == 1)
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
        let tx = self.write_tx()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE tbs_tenant_keys SET kek_id = ?3, wrapped = ?4 WHERE tenant = ?1 AND dek_id = ?2",
            )?;
            for (tenant, key) in keys {
                update.execute(params![tenant, key.dek_id, key.kek_id, key.blob])?;
            }
        }
        execute_cached(
            &tx,
            "UPDATE tbs_meta SET value = ?1 WHERE key = 'kek_id'",
            params![header.kek_id.to_be_bytes().to_vec()],
        )?;
        execute_cached(
            &tx,
            "UPDATE tbs_meta SET value = ?1 WHERE key = 'key_check'",
            params![header.key_check],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn tenant_versions_page(
        &mut self,
        tenant: &str,
        except_dek: u32,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<(String, SecretType, StoredVersion)>> {
        let (after_name, after_version) = after.map_or(("", -1), |(n, v)| (n, v as i64));
        let mut stmt = self.conn.prepare_cached(
            "SELECT v.name, s.type, v.version, v.dek_id, v.value, v.created_at
             FROM tbs_secret_versions v JOIN tbs_secrets s ON s.tenant = v.tenant AND s.name = v.name
             WHERE v.tenant = ?1 AND v.dek_id <> ?2 AND (v.name, v.version) > (?3, ?4)
             ORDER BY v.name, v.version LIMIT ?5",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(
            params![tenant, except_dek, after_name, after_version, limit],
            |row| {
                let type_name: String = row.get(1)?;
                let secret_type = type_name.parse::<SecretType>().map_err(|_| {
                    rusqlite::Error::FromSqlConversionFailure(
                        1,
                        rusqlite::types::Type::Text,
                        "type".into(),
                    )
                })?;
                Ok((
                    row.get::<_, String>(0)?,
                    secret_type,
                    StoredVersion {
                        version: row.get::<_, i64>(2)? as u64,
                        dek_id: row.get::<_, i64>(3)? as u32,
                        blob: row.get(4)?,
                        created_at: row.get(5)?,
                    },
                ))
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn count_tenant_versions(&mut self, tenant: &str) -> Result<(u64, u64)> {
        let (secrets, versions): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT COUNT(DISTINCT name), COUNT(*) FROM tbs_secret_versions WHERE tenant = ?1",
            )?
            .query_row(params![tenant], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((secrets.max(0) as u64, versions.max(0) as u64))
    }

    fn reseal_versions(&mut self, tenant: &str, batch: &[Reseal]) -> Result<usize> {
        let tx = self.write_tx()?;
        let mut resealed = 0;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE tbs_secret_versions SET dek_id = ?4, value = ?5
                 WHERE tenant = ?1 AND name = ?2 AND version = ?3 AND dek_id = ?6 AND value = ?7",
            )?;
            for r in batch {
                resealed += stmt.execute(params![
                    tenant,
                    r.name,
                    r.old.version as i64,
                    r.dek_id,
                    r.blob,
                    r.old.dek_id,
                    r.old.blob
                ])?;
            }
        }
        tx.commit()?;
        Ok(resealed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SqliteOptions, SqliteStore};
    use crate::store::{KeyRows, Reseal};

    #[test]
    fn a_reseal_replaces_only_the_version_it_was_made_from() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            create_if_missing: true,
            busy_timeout: std::time::Duration::from_secs(5),
        };
        let mut store = SqliteStore::open(&dir.path().join("keys.db"), &options).unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO tbs_secrets (tenant, name, type, description, version, created_at,
                     updated_at, value_updated_at) VALUES ('t', 'a', 'TEXT', '', 1, 0, 0, 0),
                     ('t', 'b', 'TEXT', '', 1, 0, 0, 0);
                 INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at)
                 VALUES ('t', 'a', 1, 1, x'0a', 0), ('t', 'b', 1, 1, x'0b', 0);",
            )
            .unwrap();
        let page = store.tenant_versions_page("t", 2, None, 10).unwrap();
        assert_eq!(page.len(), 2);
        // 'b' changes between the read and the reseal (as a concurrent writer would).
        store
            .conn
            .execute_batch("UPDATE tbs_secret_versions SET value = x'bb' WHERE name = 'b'")
            .unwrap();
        let batch: Vec<Reseal> = page
            .into_iter()
            .map(|(name, _, old)| Reseal {
                name,
                old,
                dek_id: 2,
                blob: vec![0xff],
            })
            .collect();
        assert_eq!(store.reseal_versions("t", &batch).unwrap(), 1);
        let version = |name: &str| -> (i64, Vec<u8>) {
            store
                .conn
                .query_row(
                    "SELECT dek_id, value FROM tbs_secret_versions WHERE name = ?1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap()
        };
        assert_eq!(version("a"), (2, vec![0xff]), "resealed");
        assert_eq!(
            version("b"),
            (1, vec![0xbb]),
            "the concurrent write survives"
        );
        // Only versions not under key 2 are left to do, after the cursor.
        let rest = store.tenant_versions_page("t", 2, None, 10).unwrap();
        assert_eq!(rest.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(store
            .tenant_versions_page("t", 2, Some(("b", 1)), 10)
            .unwrap()
            .is_empty());
    }
}
