//! One pooled PostgreSQL connection: the pool's manager, prepared statements, `atomic`
//! transactions, the schema migration and the write lock.
//!
//! Statements are prepared once per connection. Every mutation runs in a transaction of its
//! own, or joins the one `with_write_lock` holds (without a savepoint: a failed method fails
//! the whole change, and the commit is refused once one failed), and, except for usage
//! counters, sends a NOTIFY on the
//! store's channel so other nodes drop their caches (inside `with_write_lock`, once per tenant
//! with the change's close, or just before the commit); PostgreSQL delivers it on commit. The
//! writes that close a change go in one statement (`Store::close_change`, in
//! `connection/store_impl.rs`).
//!
//! The `Store` implementation is in `connection/store_impl.rs`, its longer operations in
//! `secrets.rs`, `keys.rs`, `references.rs` and `dump.rs` beside it; `rows.rs` maps rows.

mod dump;
mod keys;
mod references;
mod rows;
mod secrets;
mod store_impl;

use super::sql;
use super::MakeTlsConnector;
use crate::error::{Error, Result};
use crate::store::Store;
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The notification channel of a schema.
pub fn channel_of(schema: &str) -> String {
    format!("tbs_changes_{schema}")
}

/// Maps a driver error to STORAGE, keeping the server's message (which names keys, never
/// bound values).
fn storage(err: postgres::Error) -> Error {
    match err.as_db_error() {
        Some(db) => Error::storage(format!(
            "postgres: {} {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        )),
        None => Error::storage(format!("postgres: {err}")),
    }
}

/// Opens connections for the pool.
pub struct PgManager {
    config: postgres::Config,
    tls: MakeTlsConnector,
    schema: String,
    /// Changes in flight on the pool's connections (group commit, see `run_write_locked`).
    writers: Arc<AtomicUsize>,
}

impl PgManager {
    /// A manager connecting with `config` into `schema`.
    pub fn new(config: postgres::Config, tls: MakeTlsConnector, schema: String) -> PgManager {
        PgManager {
            config,
            tls,
            schema,
            writers: Arc::default(),
        }
    }
}

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConnection;
    type Error = Error;

    fn connect(&self) -> Result<PgConnection> {
        let mut client = self.config.connect(self.tls.clone()).map_err(storage)?;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {0}; SET search_path TO {0}",
                self.schema
            ))
            .map_err(storage)?;
        Ok(PgConnection {
            client,
            schema: self.schema.clone(),
            channel: channel_of(&self.schema),
            statements: HashMap::new(),
            write_locked: false,
            write_failed: None,
            pending_notify: Vec::new(),
            writers: self.writers.clone(),
        })
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<()> {
        conn.client.simple_query("").map(|_| ()).map_err(storage)
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client.is_closed()
    }
}

/// A connection with its prepared statements.
pub struct PgConnection {
    client: Client,
    schema: String,
    channel: String,
    statements: HashMap<&'static str, Statement>,
    /// Whether `with_write_lock` holds a transaction that the methods join.
    write_locked: bool,
    /// The first failure inside that transaction: its methods join it without a savepoint
    /// (two round trips each), so after one failed — even if its caller went on — the
    /// transaction is no longer one change's whole work, and it must not commit.
    write_failed: Option<Error>,
    /// The NOTIFY payloads of the methods that joined that transaction: sent once each, with
    /// the change's close or just before the commit (a round trip per method saved;
    /// PostgreSQL delivers them at commit either way).
    pending_notify: Vec<String>,
    /// Changes in flight on the pool's connections.
    writers: Arc<AtomicUsize>,
}

impl PgConnection {
    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let prepared = self.client.prepare(sql);
        let statement = prepared.map_err(|e| self.failed(storage(e)))?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        let rows = self.client.query(&statement, params);
        rows.map_err(|e| self.failed(storage(e)))
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        let row = self.client.query_opt(&statement, params);
        row.map_err(|e| self.failed(storage(e)))
    }

    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.statement(sql)?;
        let changed = self.client.execute(&statement, params);
        changed.map_err(|e| self.failed(storage(e)))
    }

    /// Notes `error` as the write lock's transaction's failure (PostgreSQL aborts a
    /// transaction at a failed statement: its `COMMIT` would roll back).
    fn failed(&mut self, error: Error) -> Error {
        if self.write_locked && self.write_failed.is_none() {
            self.write_failed = Some(error.clone());
        }
        error
    }

    /// Runs `f` atomically: in its own transaction, or as part of the transaction
    /// `with_write_lock` holds, which commits all of the change or nothing (no savepoint:
    /// a failure of `f` there refuses the commit, see `write_failed`). With `notify`, other
    /// nodes are told about the change.
    fn atomic<R>(
        &mut self,
        notify: Option<&str>,
        f: impl FnOnce(&mut PgConnection) -> Result<R>,
    ) -> Result<R> {
        if self.write_locked {
            let outcome = f(self);
            match &outcome {
                Ok(_) => {
                    if let Some(payload) = notify {
                        self.notify_at_commit(payload);
                    }
                }
                Err(e) => {
                    self.failed(e.clone());
                }
            }
            return outcome;
        }
        self.client.batch_execute("BEGIN").map_err(storage)?;
        let outcome = f(self).and_then(|value| {
            if let Some(payload) = notify {
                self.notify(payload)?;
            }
            Ok(value)
        });
        match outcome {
            Ok(value) => {
                self.client.batch_execute("COMMIT").map_err(storage)?;
                Ok(value)
            }
            Err(e) => {
                // If the connection is gone the pool discards it; nothing else to undo.
                let _ = self.client.batch_execute("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Queues the NOTIFY of `payload` for the commit of the transaction `with_write_lock`
    /// holds (once per payload).
    fn notify_at_commit(&mut self, payload: &str) {
        if !self.pending_notify.iter().any(|p| p == payload) {
            self.pending_notify.push(payload.to_owned());
        }
    }

    /// Tells other nodes (at commit) that the store changed in the tenant of `payload`.
    fn notify(&mut self, payload: &str) -> Result<()> {
        let channel = self.channel.clone();
        self.execute(sql::NOTIFY, &[&channel, &payload]).map(|_| ())
    }

    /// Creates or upgrades the schema, serialised across nodes by an advisory lock.
    pub fn migrate(&mut self) -> Result<()> {
        let lock_key = format!("tbsecrets:{}", self.schema);
        self.client.batch_execute("BEGIN").map_err(storage)?;
        let result = (|| -> Result<()> {
            self.client
                .execute(sql::ADVISORY_XACT_LOCK, &[&lock_key])
                .map_err(storage)?;
            self.client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS tbs_schema_version (version INTEGER NOT NULL)",
                )
                .map_err(storage)?;
            let current: i32 = match self
                .client
                .query_opt("SELECT version FROM tbs_schema_version", &[])
                .map_err(storage)?
            {
                Some(row) => row.get(0),
                None => {
                    self.client
                        .execute("INSERT INTO tbs_schema_version (version) VALUES (0)", &[])
                        .map_err(storage)?;
                    0
                }
            };
            let known = sql::MIGRATIONS.len() as i32;
            if current > known {
                return Err(Error::storage(format!(
                    "store schema version {current} is newer than this library supports ({known}); upgrade tbsecrets"
                )));
            }
            for migration in &sql::MIGRATIONS[current as usize..] {
                self.client.batch_execute(migration).map_err(storage)?;
            }
            self.client
                .execute("UPDATE tbs_schema_version SET version = $1", &[&known])
                .map_err(storage)?;
            Ok(())
        })();
        match result {
            Ok(()) => self.client.batch_execute("COMMIT").map_err(storage),
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Runs `f` inside one transaction holding the advisory lock of `scope`
    /// (`Store::with_write_lock`); the methods `f` calls join it without a savepoint each
    /// (two round trips saved a method), and once one of them failed the transaction does
    /// not commit, even if `f` goes on and succeeds (`write_failed`).
    ///
    /// With `deferred` and other changes in flight on the pool, the transaction commits with
    /// `synchronous_commit = off`: its locks (the state row serialises every change) go at
    /// once instead of after the WAL flush, and the caller makes it durable with
    /// [`PgConnection::flush_wal`] (group commit: PostgreSQL flushes the WAL of every waiting
    /// backend at once). Returns whether the commit still needs that flush.
    pub(super) fn run_write_locked(
        &mut self,
        scope: &str,
        deferred: bool,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<bool> {
        if self.write_locked {
            return f(self).map(|()| false);
        }
        let in_flight = InFlight::enter(self.writers.clone());
        let defer = deferred && in_flight.others > 0;
        let begin = if defer {
            "BEGIN; SET LOCAL synchronous_commit = off"
        } else {
            "BEGIN"
        };
        // Serialises writers of this one secret across every node until commit: the lock
        // goes with the BEGIN in one round trip when `scope` can be quoted, else on its own.
        let lock = sql::advisory_xact_lock_literal(scope);
        let begun = match &lock {
            Some(lock) => self.client.batch_execute(&format!("{begin}; {lock}")),
            None => self.client.batch_execute(begin),
        };
        let locked = begun.map_err(storage).and_then(|()| match lock {
            Some(_) => Ok(()),
            None => self.execute(sql::ADVISORY_XACT_LOCK, &[&scope]).map(|_| ()),
        });
        if let Err(e) = locked {
            let _ = self.client.batch_execute("ROLLBACK");
            return Err(e);
        }
        self.write_locked = true;
        self.write_failed = None;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f(self)?;
            for payload in std::mem::take(&mut self.pending_notify) {
                self.notify(&payload)?;
            }
            // A method failed and its caller went on: what the failed method left half
            // done must not commit.
            match self.write_failed.take() {
                Some(first) => Err(Error::internal(format!(
                    "a write of this change failed and the change went on: nothing committed ({first})"
                ))),
                None => Ok(()),
            }
        }));
        // The transaction's state ends with it, a panic included.
        self.write_locked = false;
        self.write_failed = None;
        self.pending_notify.clear();
        match outcome {
            Ok(Ok(())) => self
                .client
                .batch_execute("COMMIT")
                .map(|()| defer)
                .map_err(|e| {
                    let _ = self.client.batch_execute("ROLLBACK");
                    storage(e)
                }),
            Ok(Err(e)) => {
                let _ = self.client.batch_execute("ROLLBACK");
                Err(e)
            }
            Err(panic) => {
                let _ = self.client.batch_execute("ROLLBACK");
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Returns once the WAL is flushed past every commit made before the call, on any
    /// connection: a transactional WAL record committed with `synchronous_commit = on` is
    /// flushed with everything inserted before it.
    pub(super) fn flush_wal(&mut self) -> Result<()> {
        self.client
            .batch_execute("SELECT pg_logical_emit_message(true, 'tbsecrets', '')")
            .map_err(storage)
    }
}

/// One change in flight on a pool's connections (counted while it runs).
struct InFlight {
    writers: Arc<AtomicUsize>,
    /// The other changes in flight when this one entered.
    others: usize,
}

impl InFlight {
    fn enter(writers: Arc<AtomicUsize>) -> InFlight {
        let others = writers.fetch_add(1, Ordering::AcqRel);
        InFlight { writers, others }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.writers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The NOTIFY payload of a change in `tenant`.
fn payload(tenant: &str) -> String {
    tenant.to_owned()
}
