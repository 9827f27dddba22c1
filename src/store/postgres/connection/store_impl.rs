//! The `Store` trait of `PgConnection`: metadata, the outbox and the write lock. The concern
//! traits are implemented in `secrets.rs`, `keys.rs`, `references.rs` and `dump.rs`.

use super::{payload, sql, PgConnection};
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
        if !self.write_locked {
            return close_change_by_parts(self, close);
        }
        // In the change's transaction, with the state row locked: one round trip
        // (`sql::CLOSE_CHANGE`) for the last pointer's seal, the outbox, the state row and the
        // NOTIFYs queued for the commit (nothing is written after the close), plus one for
        // each pointer the change moved before that. An error fails the whole change
        // (`run_write_locked` rolls it back).
        let seal_seq = close.seal_seq as i64;
        let (last, others) = match close.seals.split_last() {
            Some((last, others)) => (Some(last), others),
            None => (None, &[][..]),
        };
        for (tenant, name, seal) in others {
            self.seal_in_transaction(tenant, name, seal_seq, seal)?;
        }
        for (tenant, _, _) in close.seals {
            self.notify_at_commit(&payload(tenant));
        }
        let seqs: Vec<i64> = close.outbox.iter().map(|(seq, _)| *seq as i64).collect();
        let lines: Vec<&str> = close.outbox.iter().map(|(_, line)| line.as_str()).collect();
        let prune = close.prune_through.map(|through| through as i64);
        let payloads = std::mem::take(&mut self.pending_notify);
        let channel = self.channel.clone();
        let row = self.query_opt(
            sql::CLOSE_CHANGE,
            &[
                &last.map(|(tenant, _, _)| *tenant),
                &last.map(|(_, name, _)| *name),
                &seal_seq,
                &last.map(|(_, _, seal)| seal.as_slice()),
                &seqs,
                &lines,
                &prune,
                &close.state.0,
                &close.state.1,
                &channel,
                &payloads,
            ],
        )?;
        let sealed: i64 = row
            .ok_or_else(|| Error::internal("closing a change returned no row"))?
            .get(0);
        match last {
            Some((tenant, name, _)) if sealed == 0 => Err(Error::secret_not_found(tenant, name)),
            _ => Ok(()),
        }
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
