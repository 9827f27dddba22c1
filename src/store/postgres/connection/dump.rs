//! Dump and load of a whole store, for `migrate` (store-to-store copy).

use super::{sql, storage, PgConnection};
use crate::error::Result;
use crate::model::SecretType;
use crate::store::{DumpRows, KeyRows, SecretRows};
use crate::store::{Store, StoreDump, StoredReference, StoredVersion};

impl DumpRows for PgConnection {
    fn dump(&mut self) -> Result<StoreDump> {
        let header = self.header()?;
        let tenant_keys = self.all_tenant_keys()?;
        let secrets = self.all_secrets()?;
        let state = self.meta(crate::store::STATE_KEY)?;
        let versions = self
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
            .collect();
        let references = self
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
            .collect();
        Ok(StoreDump {
            header,
            state,
            tenant_keys,
            secrets,
            versions,
            references,
        })
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
                c.execute(
                    sql::INSERT_SECRET,
                    &[
                        &s.tenant,
                        &s.name,
                        &s.secret_type.as_str(),
                        &s.description,
                        &(s.version as i64),
                        &s.created_at,
                        &s.updated_at,
                        &s.value_updated_at,
                        &s.last_used_at,
                        &(s.use_count as i64),
                        &(s.seal_seq as i64),
                        &s.seal,
                    ],
                )?;
            }
            for (tenant, name, v) in &dump.versions {
                c.execute(
                    sql::INSERT_VERSION,
                    &[
                        tenant,
                        name,
                        &(v.version as i64),
                        &i64::from(v.dek_id),
                        &v.blob,
                        &v.created_at,
                    ],
                )?;
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
