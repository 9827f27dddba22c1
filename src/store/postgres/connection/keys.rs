//! Tenant data keys: inserting one under the current master key, re-wrapping all of them at a
//! master-key rotation, and the versions a tenant-key rotation re-seals.

use super::rows::wrapped_from_row;
use super::{payload, sql, storage, PgConnection};
use crate::error::{Error, Result};
use crate::model::SecretType;
use crate::store::KeyRows;
use crate::store::{Reseal, StoreHeader, StoredVersion, WrappedKey};

impl KeyRows for PgConnection {
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
        // A handle whose master key was rotated away must not add keys wrapped by it.
        let kek = key.kek_id.to_be_bytes().to_vec();
        let inserted = self.execute(
            sql::INSERT_KEY_CHECKED,
            &[
                &tenant,
                &i64::from(key.dek_id),
                &i64::from(key.kek_id),
                &key.blob,
                &key.created_at,
                &kek,
            ],
        )?;
        if inserted == 0 {
            let current: Option<Vec<u8>> =
                self.query_opt(sql::CURRENT_KEK, &[])?.map(|row| row.get(0));
            if current.as_deref() != Some(&kek[..]) {
                return Err(crate::store::master_key_rotated());
            }
        }
        Ok(inserted == 1)
    }

    fn all_tenant_keys(&mut self) -> Result<Vec<(String, WrappedKey)>> {
        if self.write_locked {
            // A master-key rotation: no key may be added between this read and its rewrap.
            let locked = self
                .client
                .batch_execute("LOCK TABLE tbs_tenant_keys IN EXCLUSIVE MODE");
            locked.map_err(|e| self.failed(storage(e)))?;
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
        self.atomic(Some("*"), |c| {
            c.client
                .batch_execute("LOCK TABLE tbs_tenant_keys IN EXCLUSIVE MODE")
                .map_err(storage)?;
            for (tenant, key) in keys {
                c.execute(
                    sql::REWRAP_KEY,
                    &[
                        tenant,
                        &i64::from(key.dek_id),
                        &i64::from(key.kek_id),
                        &key.blob,
                    ],
                )?;
            }
            let kek_id = header.kek_id.to_be_bytes().to_vec();
            c.execute(sql::SET_META, &[&"kek_id", &kek_id])?;
            c.execute(sql::SET_META, &[&"key_check", &header.key_check])?;
            Ok(())
        })
    }

    fn tenant_versions_page(
        &mut self,
        tenant: &str,
        except_dek: u32,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<(String, SecretType, StoredVersion)>> {
        let (after_name, after_version) = after.map_or(("", -1), |(n, v)| (n, v as i64));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(
            sql::TENANT_VERSIONS_PAGE,
            &[
                &tenant,
                &i64::from(except_dek),
                &after_name,
                &after_version,
                &limit,
            ],
        )?
        .iter()
        .map(|row| {
            let type_name: String = row.get(1);
            let secret_type: SecretType = type_name.parse().map_err(|_| {
                Error::integrity("stored metadata is malformed (type): corrupt or tampered store")
            })?;
            Ok((
                row.get::<_, String>(0),
                secret_type,
                StoredVersion {
                    version: row.get::<_, i64>(2) as u64,
                    dek_id: row.get::<_, i64>(3) as u32,
                    blob: row.get(4),
                    created_at: row.get(5),
                },
            ))
        })
        .collect()
    }

    fn count_tenant_versions(&mut self, tenant: &str) -> Result<(u64, u64)> {
        let row = self.query(sql::COUNT_TENANT_VERSIONS, &[&tenant])?;
        let (secrets, versions) = row
            .first()
            .map_or((0, 0), |r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
        Ok((secrets.max(0) as u64, versions.max(0) as u64))
    }

    fn reseal_versions(&mut self, tenant: &str, batch: &[Reseal]) -> Result<usize> {
        let note = payload(tenant);
        self.atomic(Some(&note), |c| {
            let mut resealed = 0;
            for r in batch {
                resealed += c.execute(
                    sql::RESEAL_VERSION,
                    &[
                        &tenant,
                        &r.name,
                        &(r.old.version as i64),
                        &i64::from(r.dek_id),
                        &r.blob,
                        &i64::from(r.old.dek_id),
                        &r.old.blob,
                    ],
                )?;
            }
            Ok(usize::try_from(resealed).unwrap_or(usize::MAX))
        })
    }
}
