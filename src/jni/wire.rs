//! The compact binary form in which metadata results cross to Java, decoded by
//! `org.tbsecrets.internal.Wire`.
//!
//! Big-endian throughout. A string is `u32 length | UTF-8 bytes`; a type is one byte (`0` TEXT,
//! `1` TEXT_FILE, `255` none); an optional time is `u8 present | i64`. Values never appear here.

use crate::audit::AuditVerification;
use crate::error::PlaceholderProblem;
use crate::model::{Page, SecretInfo, SecretType, VersionInfo};
use crate::placeholder::Reference;
use crate::service::{RotationPlan, RotationReport};
use crate::store::StoredReference;

/// The byte for "no type" (a placeholder without `;type:`).
const NO_TYPE: u8 = 255;

/// A growing encoded result.
#[derive(Default)]
pub(super) struct Wire(Vec<u8>);

impl Wire {
    /// Takes the encoded bytes out.
    pub(super) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }

    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    fn u32(&mut self, v: usize) -> &mut Self {
        // Every length and count here is far below 4 GiB (bounded names, pages of a store).
        let v = u32::try_from(v).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.i64(i64::try_from(v).unwrap_or(i64::MAX))
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.u32(s.len());
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    fn secret_type(&mut self, t: Option<SecretType>) -> &mut Self {
        self.u8(t.map_or(NO_TYPE, SecretType::as_u8))
    }

    /// A materialised resolve result: `u8 changed | [u32 length | UTF-8 document] | u32 count |
    /// paths`, the document only when `Some`. The buffer is reserved once, so no reallocation
    /// leaves a copy of the document (which holds values) behind: the caller wipes the result.
    pub(super) fn materialized(&mut self, document: Option<&[u8]>, files: &[String]) -> &mut Self {
        let size = 1
            + document.map_or(0, |d| 4 + d.len())
            + 4
            + files.iter().map(|f| 4 + f.len()).sum::<usize>();
        self.0.reserve_exact(size);
        match document {
            Some(document) => {
                self.u8(1).u32(document.len());
                self.0.extend_from_slice(document);
            }
            None => {
                self.u8(0);
            }
        }
        self.u32(files.len());
        for file in files {
            self.str(file);
        }
        self
    }

    /// One `SecretInfo`: `str tenant | str name | u8 type | str description | i64 version |
    /// i64 created_at | i64 updated_at | i64 value_updated_at | (u8 1 | i64 last_used_at | u8 0)
    /// | i64 use_count | (u8 1 | i64 deleted_at | u8 0)`.
    pub(super) fn info(&mut self, info: &SecretInfo) -> &mut Self {
        self.str(&info.tenant)
            .str(&info.name)
            .secret_type(Some(info.secret_type))
            .str(&info.description)
            .u64(info.version)
            .i64(info.created_at)
            .i64(info.updated_at)
            .i64(info.value_updated_at);
        match info.last_used_at {
            Some(at) => self.u8(1).i64(at),
            None => self.u8(0),
        };
        self.u64(info.use_count);
        match info.deleted_at {
            Some(at) => self.u8(1).i64(at),
            None => self.u8(0),
        }
    }

    /// A page of `SecretInfo`: `u32 count | items | i64 total | u8 has_more | u8 has_next |
    /// [string next_after]`.
    pub(super) fn page(&mut self, page: &Page<SecretInfo>) -> &mut Self {
        self.u32(page.items.len());
        for info in &page.items {
            self.info(info);
        }
        self.u64(page.total as u64).u8(u8::from(page.has_more));
        match &page.next_after {
            Some(next) => self.u8(1).str(next),
            None => self.u8(0),
        }
    }

    /// A list of `SecretInfo`: `u32 count | items`.
    pub(super) fn infos(&mut self, infos: &[SecretInfo]) -> &mut Self {
        self.u32(infos.len());
        for info in infos {
            self.info(info);
        }
        self
    }

    /// A rotation report: `i64 keys | i64 versions | i64 key_id`.
    pub(super) fn rotation(&mut self, report: &RotationReport) -> &mut Self {
        self.u64(report.keys as u64)
            .u64(report.versions as u64)
            .u64(u64::from(report.key_id))
    }

    /// A rotation plan: `i64 tenants | i64 keys | i64 secrets | i64 versions | i64 key_id |
    /// i64 sampled | i64 estimated_micros`.
    pub(super) fn plan(&mut self, plan: &RotationPlan) -> &mut Self {
        self.u64(plan.tenants as u64)
            .u64(plan.keys as u64)
            .u64(plan.secrets as u64)
            .u64(plan.versions as u64)
            .u64(u64::from(plan.key_id))
            .u64(plan.sampled as u64)
            .u64(plan.estimated_micros)
    }

    /// An audit verification: `i64 records | i64 last_seq | u8 problem | (i64 line | str
    /// reason)?`.
    pub(super) fn verification(&mut self, v: &AuditVerification) -> &mut Self {
        self.u64(v.records).u64(v.last_seq);
        match &v.problem {
            Some(p) => self.u8(1).u64(p.line).str(&p.reason),
            None => self.u8(0),
        }
    }

    /// Kept versions: `u32 count | (i64 version | i64 created_at | u8 current)*`.
    pub(super) fn versions(&mut self, versions: &[VersionInfo]) -> &mut Self {
        self.u32(versions.len());
        for v in versions {
            self.u64(v.version)
                .i64(v.created_at)
                .u8(u8::from(v.current));
        }
        self
    }

    /// References of a document: `u32 count | (str name | type)*`.
    pub(super) fn references(&mut self, references: &[Reference]) -> &mut Self {
        self.u32(references.len());
        for r in references {
            self.str(&r.name).secret_type(r.secret_type);
        }
        self
    }

    /// Where-used entries: `u32 count | (str source_id | str name | type)*`.
    pub(super) fn usages(&mut self, usages: &[StoredReference]) -> &mut Self {
        self.u32(usages.len());
        for u in usages {
            self.str(&u.source_id)
                .str(&u.name)
                .secret_type(u.secret_type);
        }
        self
    }

    /// Placeholder problems of an error: `u32 count | (i32 code | str name | i64 offset | str
    /// reason)*`.
    pub(super) fn problems(&mut self, problems: &[PlaceholderProblem]) -> &mut Self {
        self.u32(problems.len());
        for p in problems {
            self.0.extend_from_slice(&p.code.as_i32().to_be_bytes());
            self.str(&p.name).u64(p.offset as u64).str(&p.reason);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn info_layout() {
        let info = SecretInfo {
            tenant: "t".into(),
            name: "ключ".into(),
            secret_type: SecretType::TextFile,
            description: String::new(),
            version: 3,
            created_at: 1,
            updated_at: 2,
            value_updated_at: 2,
            last_used_at: None,
            use_count: 7,
            deleted_at: None,
        };
        let mut w = Wire::default();
        w.info(&info);
        let bytes = w.take();
        let mut expected = vec![0, 0, 0, 1, b't', 0, 0, 0, 8];
        expected.extend_from_slice("ключ".as_bytes());
        expected.push(1);
        expected.extend_from_slice(&[0, 0, 0, 0]);
        for v in [3i64, 1, 2, 2] {
            expected.extend_from_slice(&v.to_be_bytes());
        }
        expected.push(0);
        expected.extend_from_slice(&7i64.to_be_bytes());
        expected.push(0);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn problems_and_untyped_references() {
        let mut w = Wire::default();
        w.references(&[Reference {
            name: "a".into(),
            secret_type: None,
        }])
        .problems(&[PlaceholderProblem {
            code: ErrorCode::NotFound,
            name: "b".into(),
            offset: 9,
            reason: "r".into(),
        }]);
        let bytes = w.take();
        assert_eq!(&bytes[..6], &[0, 0, 0, 1, 0, 0]);
        assert_eq!(bytes[9], NO_TYPE);
        assert_eq!(&bytes[10..18], &[0, 0, 0, 1, 0, 0, 0, 2]);
    }
}
