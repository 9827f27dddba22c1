//! Secrets and their versions: reading the current value, creating, appending a version,
//! deleting (soft), undeleting, erasing and listing.

use super::rows::{create_secret_rows, secret_from_row};
use super::{payload, sql, PgConnection};
use crate::error::{Error, Result};
use crate::model::{ListQuery, Page};
use crate::store::{name_taken, version_conflict, NextVersion, SecretRows, UsageUpdate};
use crate::store::{StoredSecret, StoredVersion};

impl SecretRows for PgConnection {
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
        let Some(row) = self.query_opt(sql::CURRENT, &[&tenant, &name])? else {
            return Ok(None);
        };
        let secret = secret_from_row(&row)?;
        let value = StoredVersion {
            version: secret.version,
            dek_id: row.get::<_, i64>(13) as u32,
            blob: row.get(14),
            created_at: row.get(15),
        };
        Ok(Some((secret, value)))
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
        let note = payload(&secret.tenant);
        self.atomic(Some(&note), |c| {
            if create_secret_rows(c, secret, value)? == 0 {
                let live = c.query_opt(sql::IS_LIVE, &[&secret.tenant, &secret.name])?;
                let deleted = live.is_some_and(|r| !r.get::<_, bool>(0));
                return Err(name_taken(secret, deleted));
            }
            Ok(())
        })
    }

    fn append_version(&mut self, next: &NextVersion<'_>) -> Result<()> {
        let (tenant, name, value) = (next.tenant, next.name, next.value);
        let note = payload(tenant);
        self.atomic(Some(&note), |c| {
            // Advance, insert and prune in one statement (one round trip).
            let keep_above = value.version as i64 - i64::from(next.max_versions.max(1));
            let inserted: i64 = c
                .query_opt(
                    sql::APPEND_VERSION,
                    &[
                        &tenant,
                        &name,
                        &(next.expected_current as i64),
                        &(value.version as i64),
                        &value.created_at,
                        &i64::from(value.dek_id),
                        &value.blob,
                        &keep_above,
                    ],
                )?
                .ok_or_else(|| Error::internal("appending a version returned no row"))?
                .get(0);
            if inserted == 0 {
                return match c.query_opt(sql::CURRENT_VERSION, &[&tenant, &name])? {
                    None => Err(Error::secret_not_found(tenant, name)),
                    Some(row) => Err(version_conflict(name, row.get(0), next.expected_current)),
                };
            }
            Ok(())
        })
    }

    fn set_description(&mut self, tenant: &str, name: &str, text: &str, now: i64) -> Result<()> {
        let changed = self.execute(sql::SET_DESCRIPTION, &[&tenant, &name, &text, &now])?;
        if changed == 0 {
            return Err(Error::secret_not_found(tenant, name));
        }
        Ok(())
    }

    fn delete(&mut self, tenant: &str, name: &str) -> Result<()> {
        let note = payload(tenant);
        self.atomic(Some(&note), |c| {
            // Zeros over the ciphertexts first: the new row versions hold no value (the old
            // ones stay until VACUUM; SECURITY.md says what that means).
            c.execute(sql::OVERWRITE_VERSIONS, &[&tenant, &name])?;
            c.execute(sql::DELETE_VERSIONS, &[&tenant, &name])?;
            if c.execute(sql::DELETE_SECRET, &[&tenant, &name])? == 0 {
                return Err(Error::secret_not_found(tenant, name)); // rolled back
            }
            Ok(())
        })
    }

    fn mark_deleted(&mut self, tenant: &str, name: &str, at: i64) -> Result<()> {
        let note = payload(tenant);
        self.atomic(Some(&note), |c| {
            if c.execute(sql::MARK_DELETED, &[&tenant, &name, &at])? == 0 {
                return Err(Error::secret_not_found(tenant, name));
            }
            Ok(())
        })
    }

    fn undelete(&mut self, tenant: &str, name: &str) -> Result<()> {
        let note = payload(tenant);
        self.atomic(Some(&note), |c| {
            if c.execute(sql::UNDELETE, &[&tenant, &name])? == 0 {
                return Err(Error::secret_not_found(tenant, name));
            }
            Ok(())
        })
    }

    fn deleted_before(&mut self, cutoff: i64) -> Result<Vec<(String, String)>> {
        Ok(self
            .query(sql::DELETED_BEFORE, &[&cutoff])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn list(&mut self, tenant: &str, query: &ListQuery) -> Result<Page<StoredSecret>> {
        let filter = query.name_contains.as_deref().unwrap_or("");
        let total: i64 = self
            .query_opt(sql::COUNT, &[&tenant, &filter, &query.deleted])?
            .map_or(0, |r| r.get(0));
        let after = query.after.as_deref().unwrap_or("");
        let items = self
            .query(
                sql::LIST,
                &[
                    &tenant,
                    &filter,
                    &after,
                    &query.fetch_limit(),
                    &query.fetch_offset(),
                    &query.deleted,
                ],
            )?
            .iter()
            .map(secret_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::of(items, total, query))
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

    fn seal_pointer(&mut self, tenant: &str, name: &str, seal_seq: u64, seal: &[u8]) -> Result<()> {
        self.atomic(Some(&payload(tenant)), |c| {
            c.seal_in_transaction(tenant, name, seal_seq as i64, seal)
        })
    }

    fn all_secrets(&mut self) -> Result<Vec<StoredSecret>> {
        self.query(sql::ALL_SECRETS, &[])?
            .iter()
            .map(secret_from_row)
            .collect()
    }
}

impl PgConnection {
    /// One pointer seal in the current transaction (NOT_FOUND if the secret is missing).
    pub(super) fn seal_in_transaction(
        &mut self,
        tenant: &str,
        name: &str,
        seal_seq: i64,
        seal: &[u8],
    ) -> Result<()> {
        let changed = self.execute(sql::SEAL_POINTER, &[&tenant, &name, &seal_seq, &seal])?;
        if changed == 0 {
            return Err(Error::secret_not_found(tenant, name));
        }
        Ok(())
    }
}
