//! Dump and load of a whole store, for `migrate` (store-to-store copy).

use super::rows::{insert_secret_row, insert_version_row};
use super::{sql, storage, PgConnection};
use crate::error::Result;
use crate::model::SecretType;
use crate::store::DumpRows;
use crate::store::{StoreDump, StoredReference, StoredVersion};

impl DumpRows for PgConnection {
    fn all_versions(&mut self) -> Result<Vec<(String, String, StoredVersion)>> {
        Ok(self
            .client
            .query("SELECT tenant, name, version, dek_id, value, created_at FROM tbs_secret_versions ORDER BY tenant, name, version", &[])
            .map_err(storage)?
            .iter()
            .map(|row| {
                (
                    row.get::<_, String>(0),
                    row.get::<_, String>(1),
                    StoredVersion {
                        version: row.get::<_, i64>(2) as u64,
                        dek_id: row.get::<_, i64>(3) as u32,
                        blob: row.get(4),
                        created_at: row.get(5),
                    },
                )
            })
            .collect())
    }

    fn all_references(&mut self) -> Result<Vec<(String, StoredReference)>> {
        Ok(self
            .client
            .query("SELECT tenant, source_id, name, type FROM tbs_references ORDER BY tenant, source_id, name", &[])
            .map_err(storage)?
            .iter()
            .map(|row| {
                (
                    row.get::<_, String>(0),
                    StoredReference {
                        source_id: row.get(1),
                        name: row.get(2),
                        secret_type: row.get::<_, Option<String>>(3).and_then(|t| t.parse().ok()),
                    },
                )
            })
            .collect())
    }

    fn load(&mut self, dump: &StoreDump) -> Result<()> {
        self.atomic(Some("*"), |c| {
            // Serialise with a concurrent first open initialising the same schema.
            c.client
                .execute("LOCK TABLE tbs_meta IN EXCLUSIVE MODE", &[])
                .map_err(storage)?;
            let occupied: i64 = c
                .client
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM tbs_meta) + (SELECT COUNT(*) FROM tbs_secrets)",
                    &[],
                )
                .map_err(storage)?
                .get(0);
            if occupied > 0 {
                return Err(crate::store::not_empty());
            }
            if let Some(header) = &dump.header {
                let kek_id = header.kek_id.to_be_bytes().to_vec();
                c.execute(sql::INIT_META, &[&"kek_id", &kek_id])?;
                c.execute(sql::INIT_META, &[&"key_check", &header.key_check])?;
            }
            if let Some(state) = &dump.state {
                c.execute(sql::INIT_META, &[&crate::store::STATE_KEY, state])?;
            }
            for (tenant, key) in &dump.tenant_keys {
                c.execute(
                    sql::INSERT_KEY,
                    &[
                        tenant,
                        &i64::from(key.dek_id),
                        &i64::from(key.kek_id),
                        &key.blob,
                        &key.created_at,
                    ],
                )?;
            }
            for s in &dump.secrets {
                insert_secret_row(c, s)?;
            }
            for (tenant, name, v) in &dump.versions {
                insert_version_row(c, tenant, name, v)?;
            }
            for (tenant, r) in &dump.references {
                c.execute(
                    sql::INSERT_REFERENCE,
                    &[
                        tenant,
                        &r.source_id,
                        &r.name,
                        &r.secret_type.map(SecretType::as_str),
                    ],
                )?;
            }
            Ok(())
        })
    }
}
