//! Tenant data keys: inserting one under the current master key, re-wrapping all of them at a
//! master-key rotation, and the versions a tenant-key rotation re-seals.

use super::{payload, sql, storage, PgConnection};
use crate::error::{Error, Result};
use crate::model::SecretType;
use crate::store::{StoreHeader, StoredVersion, WrappedKey};

impl PgConnection {
    /// The body of [`Store::insert_tenant_key`](crate::store::Store::insert_tenant_key).
    pub(super) fn insert_tenant_key_if_current_kek(
        &mut self,
        tenant: &str,
        key: &WrappedKey,
    ) -> Result<bool> {
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

    /// The body of [`Store::rewrap_tenant_keys`](crate::store::Store::rewrap_tenant_keys).
    pub(super) fn rewrap_keys_and_header(
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

    /// The body of [`Store::tenant_versions`](crate::store::Store::tenant_versions).
    pub(super) fn tenant_version_rows(
        &mut self,
        tenant: &str,
    ) -> Result<Vec<(String, SecretType, StoredVersion)>> {
        self.query(sql::TENANT_VERSIONS, &[&tenant])?
            .iter()
            .map(|row| {
                let type_name: String = row.get(1);
                let secret_type: SecretType = type_name.parse().map_err(|_| {
                    Error::integrity(
                        "stored metadata is malformed (type): corrupt or tampered store",
                    )
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

    /// The body of [`Store::reseal_version`](crate::store::Store::reseal_version).
    pub(super) fn reseal_version_row(
        &mut self,
        tenant: &str,
        name: &str,
        value: &StoredVersion,
    ) -> Result<()> {
        let note = payload(tenant);
        self.atomic(Some(&note), |c| {
            c.execute(
                sql::RESEAL_VERSION,
                &[
                    &tenant,
                    &name,
                    &(value.version as i64),
                    &i64::from(value.dek_id),
                    &value.blob,
                ],
            )?;
            Ok(())
        })
    }
}
