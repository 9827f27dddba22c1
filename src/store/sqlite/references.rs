//! The reference index: which source documents use which secret.

use super::{execute_cached, SqliteStore};
use crate::error::Result;
use crate::model::SecretType;
use crate::store::ReferenceRows;
use crate::store::StoredReference;
use rusqlite::params;

/// A tenant's per-message patterns, read through the partial index `tbs_references_patterns`
/// (migration 4): its `instr(name, '{{') > 0` term is the index's WHERE clause word for word,
/// which SQLite needs to use it, and `INDEXED BY` keeps the planner from preferring the primary
/// key (which also gives the order) and scanning the tenant's every reference.
const PATTERN_REFERENCES: &str = "SELECT source_id, name, type
     FROM tbs_references INDEXED BY tbs_references_patterns
     WHERE tenant = ?1 AND instr(name, '{{') > 0 ORDER BY source_id, name";

impl ReferenceRows for SqliteStore {
    // The trait's signature, repeated by each backend's impl (`postgres/connection/references.rs` has the other).
    fn replace_references(
        &mut self,
        tenant: &str,
        source_id: &str,
        references: &[StoredReference],
    ) -> Result<()> {
        let tx = self.write_tx()?;
        execute_cached(
            &tx,
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
        let removed = execute_cached(
            &tx,
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
        self.reference_rows(PATTERN_REFERENCES, params![tenant])
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

#[cfg(test)]
mod tests {
    use super::super::{SqliteOptions, SqliteStore};
    use crate::store::{ReferenceRows, StoredReference};

    fn reference(name: &str) -> StoredReference {
        StoredReference {
            source_id: String::new(),
            name: name.to_owned(),
            secret_type: None,
        }
    }

    #[test]
    fn patterns_are_read_through_their_partial_index_not_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            create_if_missing: true,
            busy_timeout: std::time::Duration::from_secs(5),
        };
        let mut store = SqliteStore::open(&dir.path().join("refs.db"), &options).unwrap();
        store
            .replace_references(
                "t",
                "node-1",
                &[reference("a"), reference("dev-{{metadata.x}}")],
            )
            .unwrap();
        store
            .replace_references("t", "node-2", &[reference("b")])
            .unwrap();
        let found = store.pattern_references("t").unwrap();
        assert_eq!(
            found.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["dev-{{metadata.x}}"]
        );
        // The plan of the very statement `pattern_references` runs.
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", super::PATTERN_REFERENCES))
            .unwrap()
            .query_map(["t"], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("tbs_references_patterns")),
            "{plan:?}"
        );
    }
}
