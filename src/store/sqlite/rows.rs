//! Mapping between SQLite rows and the stored row types.

use crate::error::Error;
use crate::model::{SecretInfo, SecretType};
use crate::store::{StoredSecret, WrappedKey};
use rusqlite::Row;

/// The columns of `tbs_secrets`, in the order `secret_from_row` reads them.
pub(super) const SECRET_COLUMNS: &str =
    "tenant, name, type, description, version, created_at, updated_at, \
                              value_updated_at, last_used_at, use_count, seal_seq, seal, deleted_at";

pub(super) fn secret_from_row(row: &Row<'_>) -> rusqlite::Result<StoredSecret> {
    let type_name: String = row.get(2)?;
    let secret_type = type_name.parse::<SecretType>().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, "type".into())
    })?;
    Ok(StoredSecret {
        info: SecretInfo {
            tenant: row.get(0)?,
            name: row.get(1)?,
            secret_type,
            description: row.get(3)?,
            version: row.get::<_, i64>(4)? as u64,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
            value_updated_at: row.get(7)?,
            last_used_at: row.get(8)?,
            use_count: row.get::<_, i64>(9)? as u64,
            deleted_at: row.get(12)?,
        },
        seal_seq: row.get::<_, i64>(10)? as u64,
        seal: row.get::<_, Option<Vec<u8>>>(11)?.unwrap_or_default(),
    })
}

/// Inserts a `tbs_secrets` row unless the name is taken; returns the rows inserted (0 or 1).
pub(super) fn insert_secret_row(
    conn: &rusqlite::Connection,
    s: &StoredSecret,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO tbs_secrets ({SECRET_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?
    .execute(rusqlite::params![
        s.tenant,
        s.name,
        s.secret_type.as_str(),
        s.description,
        s.version as i64,
        s.created_at,
        s.updated_at,
        s.value_updated_at,
        s.last_used_at,
        s.use_count as i64,
        s.seal_seq as i64,
        s.seal,
        s.deleted_at
    ])
}

pub(super) fn wrapped_from_row(row: &Row<'_>) -> rusqlite::Result<WrappedKey> {
    Ok(WrappedKey {
        dek_id: row.get::<_, i64>(0)? as u32,
        kek_id: row.get::<_, i64>(1)? as u32,
        blob: row.get(2)?,
        created_at: row.get(3)?,
    })
}

pub(super) fn not_found(tenant: &str, name: &str) -> Error {
    Error::secret_not_found(tenant, name)
}
