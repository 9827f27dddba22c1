//! Dump and load of a whole store, for `migrate` (store-to-store copy).

use super::rows::insert_secret_row;
use super::SqliteStore;
use crate::error::Result;
use crate::model::SecretType;
use crate::store::DumpRows;
use crate::store::{StoreDump, StoredReference, StoredVersion, STATE_KEY};
use rusqlite::params;

impl DumpRows for SqliteStore {
    fn all_versions(&mut self) -> Result<Vec<(String, String, StoredVersion)>> {
        Ok(self
            .conn
            .prepare("SELECT tenant, name, version, dek_id, value, created_at FROM tbs_secret_versions ORDER BY tenant, name, version")?
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    StoredVersion {
                        version: row.get::<_, i64>(2)? as u64,
                        dek_id: row.get::<_, i64>(3)? as u32,
                        blob: row.get(4)?,
                        created_at: row.get(5)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn all_references(&mut self) -> Result<Vec<(String, StoredReference)>> {
        Ok(self
            .conn
            .prepare("SELECT tenant, source_id, name, type FROM tbs_references ORDER BY tenant, source_id, name")?
            .query_map([], |row| {
                let type_name: Option<String> = row.get(3)?;
                Ok((
                    row.get::<_, String>(0)?,
                    StoredReference {
                        source_id: row.get(1)?,
                        name: row.get(2)?,
                        secret_type: type_name.and_then(|t| t.parse().ok()),
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn load(&mut self, dump: &StoreDump) -> Result<()> {
        let tx = self.write_tx()?;
        let occupied: i64 = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM tbs_meta) + (SELECT COUNT(*) FROM tbs_secrets)",
            [],
            |r| r.get(0),
        )?;
        if occupied > 0 {
            return Err(crate::store::not_empty());
        }
        if let Some(header) = &dump.header {
            tx.execute(
                "INSERT INTO tbs_meta (key, value) VALUES ('kek_id', ?1), ('key_check', ?2)",
                params![header.kek_id.to_be_bytes().to_vec(), header.key_check],
            )?;
        }
        if let Some(state) = &dump.state {
            tx.execute(
                "INSERT INTO tbs_meta (key, value) VALUES (?1, ?2)",
                params![STATE_KEY, state],
            )?;
        }
        for (tenant, key) in &dump.tenant_keys {
            tx.execute(
                "INSERT INTO tbs_tenant_keys (tenant, dek_id, kek_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, key.dek_id, key.kek_id, key.blob, key.created_at],
            )?;
        }
        for s in &dump.secrets {
            insert_secret_row(&tx, s)?;
        }
        for (tenant, name, v) in &dump.versions {
            tx.execute(
                "INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant, name, v.version as i64, v.dek_id, v.blob, v.created_at],
            )?;
        }
        for (tenant, r) in &dump.references {
            tx.execute(
                "INSERT INTO tbs_references (tenant, source_id, name, type) VALUES (?1, ?2, ?3, ?4)",
                params![tenant, r.source_id, r.name, r.secret_type.map(SecretType::as_str)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}
