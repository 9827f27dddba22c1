//! One pooled PostgreSQL connection: the pool's manager, prepared statements, `atomic`
//! transactions, the schema migration and the write lock.
//!
//! Statements are prepared once per connection. Every mutation runs in a transaction (a
//! savepoint inside `with_write_lock`) and, except for usage counters, sends a NOTIFY on the
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
        let statement = self.client.prepare(sql).map_err(storage)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params).map_err(storage)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params).map_err(storage)
    }

    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params).map_err(storage)
    }

    /// Runs `f` atomically: in its own transaction, or in a savepoint of the transaction
    /// `with_write_lock` holds. With `notify`, other nodes are told about the change.
    fn atomic<R>(
        &mut self,
        notify: Option<&str>,
        f: impl FnOnce(&mut PgConnection) -> Result<R>,
    ) -> Result<R> {
        let (begin, commit, rollback) = if self.write_locked {
            (
                "SAVEPOINT tbs",
                "RELEASE SAVEPOINT tbs",
                "ROLLBACK TO SAVEPOINT tbs",
            )
        } else {
            ("BEGIN", "COMMIT", "ROLLBACK")
        };
        self.client.batch_execute(begin).map_err(storage)?;
        let joined = self.write_locked;
        let outcome = f(self).and_then(|value| {
            if let (Some(payload), false) = (notify, joined) {
                self.notify(payload)?;
            }
            Ok(value)
        });
        match outcome {
            Ok(value) => {
                self.client.batch_execute(commit).map_err(storage)?;
                if let (Some(payload), true) = (notify, joined) {
                    self.notify_at_commit(payload);
                }
                Ok(value)
            }
            Err(e) => {
                // If the connection is gone the pool discards it; nothing else to undo.
                let _ = self.client.batch_execute(rollback);
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
    /// (`Store::with_write_lock`); the methods `f` calls join it through savepoints.
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
        self.client.batch_execute(begin).map_err(storage)?;
        // Serialises writers of this one secret across every node until commit.
        if let Err(e) = self.execute(sql::ADVISORY_XACT_LOCK, &[&scope]) {
            let _ = self.client.batch_execute("ROLLBACK");
            return Err(e);
        }
        self.write_locked = true;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f(self)?;
            for payload in std::mem::take(&mut self.pending_notify) {
                self.notify(&payload)?;
            }
            Ok(())
        }));
        // The transaction's state ends with it, a panic included.
        self.write_locked = false;
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
