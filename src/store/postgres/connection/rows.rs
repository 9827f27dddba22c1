//! Mapping between PostgreSQL rows and the stored row types.

use super::{sql, PgConnection};
use crate::error::{Error, Result};
use crate::model::{SecretInfo, SecretType};
use crate::store::{StoredSecret, StoredVersion, WrappedKey};
use postgres::types::ToSql;
use postgres::Row;

/// A `tbs_secrets` row (columns in `sql::SECRET_COLUMNS` order).
pub(super) fn secret_from_row(row: &Row) -> Result<StoredSecret> {
    let type_name: String = row.get(2);
    let secret_type: SecretType = type_name.parse().map_err(|_| {
        Error::integrity("stored metadata is malformed (type): corrupt or tampered store")
    })?;
    Ok(StoredSecret {
        info: SecretInfo {
            tenant: row.get(0),
            name: row.get(1),
            secret_type,
            description: row.get(3),
            version: row.get::<_, i64>(4) as u64,
            created_at: row.get(5),
            updated_at: row.get(6),
            value_updated_at: row.get(7),
            last_used_at: row.get(8),
            use_count: row.get::<_, i64>(9) as u64,
            deleted_at: row.get(12),
        },
        seal_seq: row.get::<_, i64>(10) as u64,
        seal: row.get::<_, Option<Vec<u8>>>(11).unwrap_or_default(),
    })
}

/// A `tbs_tenant_keys` row.
pub(super) fn wrapped_from_row(row: &Row) -> WrappedKey {
    WrappedKey {
        dek_id: row.get::<_, i64>(0) as u32,
        kek_id: row.get::<_, i64>(1) as u32,
        blob: row.get(2),
        created_at: row.get(3),
    }
}

/// A `tbs_secrets` row's values as statement parameters (`$1`–`$13`, the table's column
/// order), for [`insert_secret_row`] and [`create_secret_rows`].
struct SecretColumns<'a> {
    secret: &'a StoredSecret,
    type_name: &'static str,
    version: i64,
    use_count: i64,
    seal_seq: i64,
}

impl<'a> SecretColumns<'a> {
    fn of(secret: &'a StoredSecret) -> SecretColumns<'a> {
        SecretColumns {
            secret,
            type_name: secret.secret_type.as_str(),
            version: secret.version as i64,
            use_count: secret.use_count as i64,
            seal_seq: secret.seal_seq as i64,
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 13] {
        let s = self.secret;
        [
            &s.tenant,
            &s.name,
            &self.type_name,
            &s.description,
            &self.version,
            &s.created_at,
            &s.updated_at,
            &s.value_updated_at,
            &s.last_used_at,
            &self.use_count,
            &self.seal_seq,
            &s.seal,
            &s.deleted_at,
        ]
    }
}

/// Inserts a `tbs_secrets` row unless the name is taken; returns the rows inserted (0 or 1).
pub(super) fn insert_secret_row(c: &mut PgConnection, s: &StoredSecret) -> Result<u64> {
    c.execute(sql::INSERT_SECRET, &SecretColumns::of(s).params())
}

/// Inserts a new secret's row and its first version's row in one statement
/// ([`sql::CREATE_SECRET`]): 1, or 0 (nothing written) when the name is taken.
pub(super) fn create_secret_rows(
    c: &mut PgConnection,
    s: &StoredSecret,
    v: &StoredVersion,
) -> Result<u64> {
    let columns = SecretColumns::of(s);
    let (version, dek_id) = (v.version as i64, i64::from(v.dek_id));
    let mut params = columns.params().to_vec();
    params.extend_from_slice(&[&version, &dek_id, &v.blob, &v.created_at]);
    c.execute(sql::CREATE_SECRET, &params)
}

/// Inserts a `tbs_secret_versions` row.
pub(super) fn insert_version_row(
    c: &mut PgConnection,
    tenant: &str,
    name: &str,
    v: &StoredVersion,
) -> Result<u64> {
    execute_version(c, sql::INSERT_VERSION, tenant, name, v, true)
}

/// Runs `statement` over a `tbs_secret_versions` row's columns in their order: `$1` tenant,
/// `$2` name, `$3` version, `$4` DEK id, `$5` sealed value and, `with_created_at`, `$6` its
/// creation time.
pub(super) fn execute_version(
    c: &mut PgConnection,
    statement: &'static str,
    tenant: &str,
    name: &str,
    v: &StoredVersion,
    with_created_at: bool,
) -> Result<u64> {
    let (version, dek_id) = (v.version as i64, i64::from(v.dek_id));
    let params: [&(dyn ToSql + Sync); 6] =
        [&tenant, &name, &version, &dek_id, &v.blob, &v.created_at];
    let used = if with_created_at { 6 } else { 5 };
    c.execute(statement, &params[..used])
}
