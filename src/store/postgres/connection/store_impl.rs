//! The `Store` trait of `PgConnection`: metadata, the outbox and the write lock. The concern
//! traits are implemented in `secrets.rs`, `keys.rs`, `references.rs` and `dump.rs`.

use super::{sql, PgConnection};
use crate::error::{Error, Result};
use crate::store::{close_change_by_parts, ChangeClose, Store, StoreHeader};

impl Store for PgConnection {
    fn header(&mut self) -> Result<Option<StoreHeader>> {
        let rows = self.query(sql::HEADER, &[])?;
        StoreHeader::from_meta(rows.iter().map(|row| (row.get(0), row.get(1))))
    }

    fn initialize(&mut self, header: &StoreHeader) -> Result<StoreHeader> {
        let kek_id = header.kek_id.to_be_bytes().to_vec();
        self.atomic(None, |c| {
            c.execute(sql::INIT_META, &[&"kek_id", &kek_id])?;
            c.execute(sql::INIT_META, &[&"key_check", &header.key_check])?;
            Ok(())
        })?;
        self.header()?
            .ok_or_else(|| Error::internal("store header missing after initialisation"))
    }

    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .query_opt(sql::META, &[&key])?
            .map(|row| row.get::<_, Vec<u8>>(0)))
    }

    fn lock_meta(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .query_opt(sql::LOCK_META, &[&key])?
            .map(|row| row.get::<_, Vec<u8>>(0)))
    }

    fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.atomic(None, |c| {
            c.execute(sql::PUT_META, &[&key, &value]).map(|_| ())
        })
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(self
            .query_opt(sql::IS_EMPTY, &[])?
            .is_some_and(|row| row.get::<_, bool>(0)))
    }

    fn outbox_push(&mut self, seq: u64, line: &str) -> Result<()> {
        self.atomic(None, |c| {
            c.execute(sql::OUTBOX_PUSH, &[&(seq as i64), &line])
                .map(|_| ())
        })
    }

    fn outbox_after(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        Ok(self
            .query(sql::OUTBOX_AFTER, &[&(after as i64), &(limit as i64)])?
            .iter()
            .map(|row| (row.get::<_, i64>(0) as u64, row.get::<_, String>(1)))
            .collect())
    }

    fn outbox_prune(&mut self, through: u64) -> Result<()> {
        self.atomic(None, |c| {
            c.execute(sql::OUTBOX_PRUNE, &[&(through as i64)])
                .map(|_| ())
        })
    }

    fn close_change(&mut self, close: &ChangeClose<'_>) -> Result<()> {
        if !self.in_write_lock() {
            return close_change_by_parts(self, close);
        }
        // In the change's transaction, with the state row locked: one statement for all of
        // it, and an error fails the whole change (`run_write_locked` rolls it back).
        self.close_in_one_statement(close)
    }

    fn with_write_lock(
        &mut self,
        scope: &str,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<()> {
        self.run_write_locked(scope, false, f).map(|_| ())
    }

    fn with_write_lock_deferred(
        &mut self,
        scope: &str,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<Option<u64>> {
        // Any flush after the commit covers it: the ticket carries nothing.
        Ok(self.run_write_locked(scope, true, f)?.then_some(0))
    }
}
