//! The `Store` trait of `SqliteStore`: metadata, the outbox and the write lock. The concern
//! traits are implemented in `secrets.rs`, `keys.rs`, `references.rs` and `dump.rs`.

use super::{execute_cached, SqliteStore, MAX_BATCH};
use crate::error::{Error, Result};
use crate::store::{close_change_by_parts, ChangeClose, Store, StoreHeader};
use rusqlite::{params, OptionalExtension};

/// How long the checkpoint after a destroy waits for other connections' readers.
const SCRUB_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Store for SqliteStore {
    fn header(&mut self) -> Result<Option<StoreHeader>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, value FROM tbs_meta WHERE key IN ('kek_id', 'key_check')",
        )?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        StoreHeader::from_meta(rows)
    }

    fn initialize(&mut self, header: &StoreHeader) -> Result<StoreHeader> {
        let tx = self.write_tx()?;
        execute_cached(
            &tx,
            "INSERT OR IGNORE INTO tbs_meta (key, value) VALUES ('kek_id', ?1)",
            params![header.kek_id.to_be_bytes().to_vec()],
        )?;
        execute_cached(
            &tx,
            "INSERT OR IGNORE INTO tbs_meta (key, value) VALUES ('key_check', ?1)",
            params![header.key_check],
        )?;
        tx.commit()?;
        self.header()?
            .ok_or_else(|| Error::internal("store header missing after initialisation"))
    }

    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT value FROM tbs_meta WHERE key = ?1")?;
        // Text or blob alike (an edited value may have changed type): the caller authenticates it.
        Ok(stmt
            .query_row(params![key], |row| {
                Ok(row.get_ref(0)?.as_bytes_or_null()?.map(<[u8]>::to_vec))
            })
            .optional()?
            .flatten())
    }

    fn lock_meta(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        // A write transaction of SQLite already excludes every other writer.
        self.meta(key)
    }

    fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let tx = self.write_tx()?;
        tx.prepare_cached(
            "INSERT INTO tbs_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![key, value])?;
        tx.commit()?;
        Ok(())
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM tbs_tenant_keys)
                AND NOT EXISTS (SELECT 1 FROM tbs_secrets)",
            [],
            |r| r.get(0),
        )?)
    }

    fn outbox_push(&mut self, seq: u64, line: &str) -> Result<()> {
        let tx = self.write_tx()?;
        tx.prepare_cached("INSERT INTO tbs_audit_outbox (seq, line) VALUES (?1, ?2)")?
            .execute(params![seq as i64, line])?;
        tx.commit()?;
        Ok(())
    }

    fn outbox_after(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, line FROM tbs_audit_outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, limit as i64], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn outbox_prune(&mut self, through: u64) -> Result<()> {
        let tx = self.write_tx()?;
        tx.prepare_cached("DELETE FROM tbs_audit_outbox WHERE seq <= ?1")?
            .execute(params![through as i64])?;
        tx.commit()?;
        Ok(())
    }

    fn close_change(&mut self, close: &ChangeClose<'_>) -> Result<()> {
        // In the change's transaction (its savepoint, in a batch): an error fails the whole
        // change, which is rolled back, so no savepoint per statement (two fewer statements
        // for each of the seal, the outbox rows and the state row).
        self.unguarded(|store| close_change_by_parts(store, close))
    }

    fn with_write_lock(
        &mut self,
        _scope: &str,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<()> {
        self.run_write_locked(f)
    }

    fn data_version(&mut self) -> Result<Option<u64>> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))?;
        Ok(Some(version as u64))
    }

    fn scrub(&mut self) -> Result<()> {
        // Copies every WAL frame into the database and truncates the WAL to zero bytes, so the
        // frames that still held a destroyed secret's pages are gone. It waits for readers of
        // other connections, at most SCRUB_WAIT (not the whole busy timeout: this handle's
        // connection is held meanwhile); past that it is partial (SQLITE_BUSY, ignored by the
        // caller) and the frames go with a later checkpoint.
        self.conn.busy_timeout(SCRUB_WAIT.min(self.busy_timeout))?;
        let checkpoint = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        self.conn.busy_timeout(self.busy_timeout)?;
        checkpoint?;
        Ok(())
    }

    fn with_write_lock_deferred(
        &mut self,
        _scope: &str,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<Option<u64>> {
        if self.write_locked {
            // Inside another change: its commit decides.
            return f(self).map(|()| None);
        }
        let outcome = self.run_in_batch(f);
        // The turn ends: the batch stays open only for a change waiting for the connection,
        // and only while a sync runs (else its sync starts now, as the next batch fills).
        let full = self.batch.is_some_and(|b| b.changes >= MAX_BATCH);
        if full || !self.group.waiting() || !self.group.syncing() {
            self.end_batch();
        }
        match outcome {
            Ok(outcome) => outcome.map(Some),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
