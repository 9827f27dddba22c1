//! Helpers shared by the integration tests. Each test binary uses a subset.
#![allow(dead_code)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use tbsecrets::{Error, ErrorCode, MasterKey, Result, SecretStorage, StorageOptions};
use tempfile::TempDir;

mod fixtures;
pub mod full_disk;
pub mod key_command;
#[allow(unused_imports)]
pub use fixtures::*;

/// The default tenant of most tests.
pub const TENANT: &str = "13814000-1dd2-11b2-8080-808080808080";

/// A fresh temporary directory and the path of a store file inside it (not yet created).
pub fn temp_store() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secrets.db");
    (dir, path)
}

/// Options with an explicit master key and defaults otherwise.
pub fn options(key: &MasterKey) -> StorageOptions {
    StorageOptions::with_master_key(key.clone())
}

/// Opens (creating if needed) the store at `path` with `key`.
pub fn open(path: &Path, key: &MasterKey) -> SecretStorage {
    SecretStorage::open(path, options(key)).expect("open store")
}

/// A new store in a new temporary directory with a new master key.
pub struct Fixture {
    pub dir: TempDir,
    pub path: PathBuf,
    pub key: MasterKey,
    pub store: SecretStorage,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with_options(|_| {})
    }

    pub fn with_options(tweak: impl FnOnce(&mut StorageOptions)) -> Fixture {
        let (dir, path) = temp_store();
        let key = MasterKey::generate();
        let mut opts = options(&key);
        tweak(&mut opts);
        let store = SecretStorage::open(&path, opts).expect("open store");
        Fixture {
            dir,
            path,
            key,
            store,
        }
    }

    /// Another, independent handle (its own connection and cache) on the same store.
    pub fn reopen(&self) -> SecretStorage {
        open(&self.path, &self.key)
    }
}

/// Asserts that `result` failed with `code` and returns the error.
#[track_caller]
pub fn expect_code<T: Debug>(result: Result<T>, code: ErrorCode) -> Error {
    match result {
        Ok(v) => panic!("expected {code}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.code(), code, "unexpected error: {e}");
            e
        }
    }
}

/// Asserts INVALID_ARGUMENT whose message contains every one of `rule_words`.
#[track_caller]
pub fn expect_invalid<T: Debug>(result: Result<T>, rule_words: &[&str]) -> Error {
    let err = expect_code(result, ErrorCode::InvalidArgument);
    for word in rule_words {
        assert!(
            err.message().contains(word),
            "message {:?} does not name the rule ({word:?})",
            err.message()
        );
    }
    err
}

/// Whether `needle` occurs in `haystack` (an empty needle never does).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// Every row of every table (plus the schema version), rendered as text, in a stable order:
/// the store's logical content. Read through a separate read-only connection.
pub fn dump_store(path: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open store read-only");
    let mut out = Vec::new();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    out.push(format!("user_version={version}"));
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(tables.len() >= 4, "schema missing tables: {tables:?}");
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |row| {
                let mut line = format!("{table}:");
                for i in 0..columns {
                    let v: rusqlite::types::Value = row.get(i)?;
                    line.push_str(&format!(" {v:?}"));
                }
                Ok(line)
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.sort();
        out.push(format!("{table}: {} rows", rows.len()));
        out.extend(rows);
    }
    out
}

/// A read-write connection for tampering with the store behind the library's back.
pub fn raw_connection(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open raw connection");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    conn
}

/// A deterministic pseudo-random byte sequence (xorshift), for binary values.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
