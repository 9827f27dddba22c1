//! The reference index: which source documents use which secret.

use super::{sql, PgConnection};
use crate::error::Result;
use crate::model::SecretType;
use crate::store::ReferenceRows;
use crate::store::StoredReference;

impl ReferenceRows for PgConnection {
    // The trait's signature, repeated by each backend's impl (`sqlite/references.rs` has the other).
    fn replace_references(
        &mut self,
        tenant: &str,
        source_id: &str,
        references: &[StoredReference],
    ) -> Result<()> {
        self.atomic(None, |c| {
            c.execute(sql::DELETE_SOURCE, &[&tenant, &source_id])?;
            for r in references {
                c.execute(
                    sql::INSERT_REFERENCE,
                    &[
                        &tenant,
                        &source_id,
                        &r.name,
                        &r.secret_type.map(SecretType::as_str),
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn remove_references(&mut self, tenant: &str, source_id: &str) -> Result<usize> {
        Ok(self.execute(sql::DELETE_SOURCE, &[&tenant, &source_id])? as usize)
    }

    fn where_used(&mut self, tenant: &str, name: &str) -> Result<Vec<StoredReference>> {
        let rows = self.query(sql::WHERE_USED, &[&tenant, &name])?;
        Ok(rows.iter().map(reference_from_row).collect())
    }

    fn pattern_references(&mut self, tenant: &str) -> Result<Vec<StoredReference>> {
        let rows = self.query(sql::PATTERN_REFERENCES, &[&tenant])?;
        Ok(rows.iter().map(reference_from_row).collect())
    }
}

/// A reference from a `SELECT source_id, name, type …` row.
fn reference_from_row(row: &::postgres::Row) -> StoredReference {
    StoredReference {
        source_id: row.get(0),
        name: row.get(1),
        secret_type: row.get::<_, Option<String>>(2).and_then(|t| t.parse().ok()),
    }
}
