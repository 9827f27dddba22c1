//! The reference index: which source documents use which secret.

use super::SqliteStore;
use crate::error::Result;
use crate::model::SecretType;
use crate::store::ReferenceRows;
use crate::store::StoredReference;
use rusqlite::params;

impl ReferenceRows for SqliteStore {
    // The trait's signature, repeated by each backend's impl (`postgres/connection/references.rs` has the other).
    fn replace_references(
        &mut self,
        tenant: &str,
        source_id: &str,
        references: &[StoredReference],
    ) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "DELETE FROM tbs_references WHERE tenant = ?1 AND source_id = ?2",
            params![tenant, source_id],
        )?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO tbs_references (tenant, source_id, name, type)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in references {
                stmt.execute(params![
                    tenant,
                    source_id,
                    r.name,
                    r.secret_type.map(SecretType::as_str)
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn remove_references(&mut self, tenant: &str, source_id: &str) -> Result<usize> {
        let tx = self.write_tx()?;
        let removed = tx.execute(
            "DELETE FROM tbs_references WHERE tenant = ?1 AND source_id = ?2",
            params![tenant, source_id],
        )?;
        tx.commit()?;
        Ok(removed)
    }

    fn where_used(&mut self, tenant: &str, name: &str) -> Result<Vec<StoredReference>> {
        self.reference_rows(
            "SELECT source_id, name, type FROM tbs_references WHERE tenant = ?1 AND name = ?2
             ORDER BY source_id",
            params![tenant, name],
        )
    }

    fn pattern_references(&mut self, tenant: &str) -> Result<Vec<StoredReference>> {
        self.reference_rows(
            "SELECT source_id, name, type FROM tbs_references
             WHERE tenant = ?1 AND instr(name, '{{') > 0 ORDER BY source_id, name",
            params![tenant],
        )
    }
}

impl SqliteStore {
    /// The references a `SELECT source_id, name, type …` query returns.
    fn reference_rows(
        &mut self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<StoredReference>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |row| {
            let type_name: Option<String> = row.get(2)?;
            Ok(StoredReference {
                source_id: row.get(0)?,
                name: row.get(1)?,
                secret_type: type_name.and_then(|t| t.parse().ok()),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
