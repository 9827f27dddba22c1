//! One pooled PostgreSQL connection and the `Store` operations on it.
//!
//! Statements are prepared once per connection. Every mutation runs in a transaction (a
//! savepoint inside `with_write_lock`) and, except for usage counters, sends a NOTIFY on the
//! store's channel so other nodes drop their caches; PostgreSQL delivers it on commit.

use super::sql;
use super::MakeTlsConnector;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{ListQuery, Page, SecretType};
use crate::store::{
    Store, StoreDump, StoreHeader, StoredReference, StoredSecret, StoredVersion, UsageUpdate,
    WrappedKey,
};
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};
use std::collections::HashMap;

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
}

impl PgManager {
    /// A manager connecting with `config` into `schema`.
    pub fn new(config: postgres::Config, tls: MakeTlsConnector, schema: String) -> PgManager {
        PgManager {
            config,
            tls,
            schema,
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
        let outcome = f(self).and_then(|value| {
            if let Some(payload) = notify {
                let channel = self.channel.clone();
                self.execute(sql::NOTIFY, &[&channel, &payload])?;
            }
            Ok(value)
        });
        match outcome {
            Ok(value) => {
                self.client.batch_execute(commit).map_err(storage)?;
                Ok(value)
            }
            Err(e) => {
                // If the connection is gone the pool discards it; nothing else to undo.
                let _ = self.client.batch_execute(rollback);
                Err(e)
            }
        }
    }

    /// Creates or upgrades the schema, serialised across nodes by an advisory lock.
    pub fn migrate(&mut self) -> Result<()> {
        let lock_key = format!("tbsecrets:{}", self.schema);
        self.client.batch_execute("BEGIN").map_err(storage)?;
        let result = (|| -> Result<()> {
            self.client
                .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_key])
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
}

fn secret_from_row(row: &Row) -> Result<StoredSecret> {
    let type_name: String = row.get(2);
    let secret_type: SecretType = type_name.parse().map_err(|_| {
        Error::integrity("stored metadata is malformed (type): corrupt or tampered store")
    })?;
    Ok(StoredSecret {
        tenant: row.get(0),
        name: row.get(1),
        secret_type,
        description: row.get(3),
        version: row.get::<_, i64>(4) as u64,
        created_at: row.get(5),
        updated_at: row.get(6),
        value_updated_at: row.get(7),
        last_used_at: row.get(8),
        use_count: row.get::<_, i64>(9) as u64,
        seal_seq: row.get::<_, i64>(10) as u64,
        seal: row.get::<_, Option<Vec<u8>>>(11).unwrap_or_default(),
    })
}

fn wrapped_from_row(row: &Row) -> WrappedKey {
    WrappedKey {
        dek_id: row.get::<_, i64>(0) as u32,
        kek_id: row.get::<_, i64>(1) as u32,
        blob: row.get(2),
        created_at: row.get(3),
    }
}

fn payload(tenant: &str) -> String {
    tenant.to_owned()
}

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

    fn active_tenant_key(&mut self, tenant: &str) -> Result<Option<WrappedKey>> {
        Ok(self
            .query_opt(sql::ACTIVE_KEY, &[&tenant])?
            .map(|r| wrapped_from_row(&r)))
    }

    fn tenant_key(&mut self, tenant: &str, dek_id: u32) -> Result<Option<WrappedKey>> {
        Ok(self
            .query_opt(sql::KEY_BY_ID, &[&tenant, &i64::from(dek_id)])?
            .map(|r| wrapped_from_row(&r)))
    }

    fn insert_tenant_key(&mut self, tenant: &str, key: &WrappedKey) -> Result<bool> {
        // A handle whose master key was rotated away must not add keys wrapped by it.
        let kek = key.kek_id.to_be_bytes().to_vec();
        let inserted = self.execute(
            sql::INSERT_KEY_CHECKED,
            &[
                &tenant,
                &i64::from(key.dek_id),
                &i64::from(key.kek_id),
                &key.blob,
                &key.created_at,
                &kek,
            ],
        )?;
        if inserted == 0 {
            let current: Option<Vec<u8>> =
                self.query_opt(sql::CURRENT_KEK, &[])?.map(|row| row.get(0));
            if current.as_deref() != Some(&kek[..]) {
                return Err(crate::store::master_key_rotated());
            }
        }
        Ok(inserted == 1)
    }

    fn secret(&mut self, tenant: &str, name: &str) -> Result<Option<StoredSecret>> {
        self.query_opt(sql::SECRET, &[&tenant, &name])?
            .map(|r| secret_from_row(&r))
            .transpose()
    }

    fn current(
        &mut self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<(StoredSecret, StoredVersion)>> {
        let Some(row) = self.query_opt(sql::CURRENT, &[&tenant, &name])? else {
            return Ok(None);
        };
        let secret = secret_from_row(&row)?;
        let value = StoredVersion {
            version: secret.version,
            dek_id: row.get::<_, i64>(12) as u32,
            blob: row.get(13),
            created_at: row.get(14),
        };
        Ok(Some((secret, value)))
    }

    fn version(&mut self, tenant: &str, name: &str, version: u64) -> Result<Option<StoredVersion>> {
        Ok(self
            .query_opt(sql::VERSION, &[&tenant, &name, &(version as i64)])?
            .map(|row| StoredVersion {
                version,
                dek_id: row.get::<_, i64>(0) as u32,
                blob: row.get(1),
                created_at: row.get(2),
            }))
    }

    fn versions(&mut self, tenant: &str, name: &str) -> Result<Vec<(u64, i64)>> {
        Ok(self
            .query(sql::VERSIONS, &[&tenant, &name])?
            .iter()
            .map(|row| (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1)))
            .collect())
    }

    fn create(&mut self, secret: &StoredSecret, value: &StoredVersion) -> Result<()> {
        let note = payload(&secret.tenant);
        self.atomic(Some(&note), |c| {
            let inserted = c.execute(
                sql::INSERT_SECRET,
                &[
                    &secret.tenant,
                    &secret.name,
                    &secret.secret_type.as_str(),
                    &secret.description,
                    &(secret.version as i64),
                    &secret.created_at,
                    &secret.updated_at,
                    &secret.value_updated_at,
                    &secret.last_used_at,
                    &(secret.use_count as i64),
                    &(secret.seal_seq as i64),
                    &secret.seal,
                ],
            )?;
            if inserted == 0 {
                return Err(Error::new(
                    ErrorCode::AlreadyExists,
                    format!(
                        "secret '{}' already exists in tenant '{}'",
                        secret.name, secret.tenant
                    ),
                ));
            }
            c.execute(
                sql::INSERT_VERSION,
                &[
                    &secret.tenant,
                    &secret.name,
                    &(value.version as i64),
                    &i64::from(value.dek_id),
                    &value.blob,
                    &value.created_at,
                ],
            )?;
            Ok(())
        })
    }

    fn append_version(
        &mut self,
        tenant: &str,
        name: &str,
        expected_current: u64,
        value: &StoredVersion,
        max_versions: u32,
    ) -> Result<()> {
        let note = payload(tenant);
        self.atomic(Some(&note), |c| {
            let advanced = c.execute(
                sql::ADVANCE_VERSION,
                &[
                    &tenant,
                    &name,
                    &(expected_current as i64),
                    &(value.version as i64),
                    &value.created_at,
                ],
            )?;
            if advanced == 0 {
                return match c.query_opt(sql::CURRENT_VERSION, &[&tenant, &name])? {
                    None => Err(Error::secret_not_found(tenant, name)),
                    Some(row) => Err(Error::new(
                        ErrorCode::Conflict,
                        format!(
                            "secret '{name}' is at version {}, not the expected version {expected_current}",
                            row.get::<_, i64>(0)
                        ),
                    )),
                };
            }
            c.execute(
                sql::INSERT_VERSION,
                &[
                    &tenant,
                    &name,
                    &(value.version as i64),
                    &i64::from(value.dek_id),
                    &value.blob,
                    &value.created_at,
                ],
            )?;
            let keep_above = value.version as i64 - i64::from(max_versions.max(1));
            c.execute(sql::PRUNE_VERSIONS, &[&tenant, &name, &keep_above])?;
            Ok(())
        })
    }

    fn set_description(
        &mut self,
        tenant: &str,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<()> {
        let changed = self.execute(sql::SET_DESCRIPTION, &[&tenant, &name, &description, &now])?;
        if changed == 0 {
            return Err(Error::secret_not_found(tenant, name));
        }
        Ok(())
    }

    fn delete(&mut self, tenant: &str, name: &str, force: bool) -> Result<()> {
        let note = payload(tenant);
        self.atomic(Some(&note), |c| {
            if !force {
                let sources: Vec<String> = c
                    .query(sql::SOURCES_OF, &[&tenant, &name])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                if !sources.is_empty() {
                    return Err(crate::store::in_use(name, &sources));
                }
            }
            if c.execute(sql::DELETE_SECRET, &[&tenant, &name])? == 0 {
                return Err(Error::secret_not_found(tenant, name));
            }
            c.execute(sql::DELETE_VERSIONS, &[&tenant, &name])?;
            Ok(())
        })
    }

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
        Ok(self
            .query(sql::WHERE_USED, &[&tenant, &name])?
            .iter()
            .map(|row| StoredReference {
                source_id: row.get(0),
                name: row.get(1),
                secret_type: row.get::<_, Option<String>>(2).and_then(|t| t.parse().ok()),
            })
            .collect())
    }

    fn list(&mut self, tenant: &str, query: &ListQuery) -> Result<Page<StoredSecret>> {
        let filter = query.name_contains.as_deref().unwrap_or("");
        let total: i64 = self
            .query_opt(sql::COUNT, &[&tenant, &filter])?
            .map_or(0, |r| r.get(0));
        let limit: Option<i64> = (query.limit != 0).then_some(query.limit as i64);
        let items = self
            .query(
                sql::LIST,
                &[&tenant, &filter, &limit, &(query.offset as i64)],
            )?
            .iter()
            .map(secret_from_row)
            .collect::<Result<Vec<_>>>()?;
        let has_more = (query.offset + items.len()) < total as usize;
        Ok(Page {
            items,
            total: total as usize,
            has_more,
        })
    }

    fn all_tenant_keys(&mut self) -> Result<Vec<(String, WrappedKey)>> {
        if self.write_locked {
            // A master-key rotation: no key may be added between this read and its rewrap.
            self.client
                .batch_execute("LOCK TABLE tbs_tenant_keys IN EXCLUSIVE MODE")
                .map_err(storage)?;
        }
        Ok(self
            .query(sql::ALL_KEYS, &[])?
            .iter()
            .map(|row| (row.get::<_, String>(4), wrapped_from_row(row)))
            .collect())
    }

    fn rewrap_tenant_keys(
        &mut self,
        keys: &[(String, WrappedKey)],
        header: &StoreHeader,
    ) -> Result<()> {
        self.atomic(Some("*"), |c| {
            c.client
                .batch_execute("LOCK TABLE tbs_tenant_keys IN EXCLUSIVE MODE")
                .map_err(storage)?;
            for (tenant, key) in keys {
                c.execute(
                    sql::REWRAP_KEY,
                    &[
                        tenant,
                        &i64::from(key.dek_id),
                        &i64::from(key.kek_id),
                        &key.blob,
                    ],
                )?;
            }
            let kek_id = header.kek_id.to_be_bytes().to_vec();
            c.execute(sql::SET_META, &[&"kek_id", &kek_id])?;
            c.execute(sql::SET_META, &[&"key_check", &header.key_check])?;
            Ok(())
        })
    }

    fn tenant_versions(
        &mut self,
        tenant: &str,
    ) -> Result<Vec<(String, SecretType, StoredVersion)>> {
        self.query(sql::TENANT_VERSIONS, &[&tenant])?
            .iter()
            .map(|row| {
                let type_name: String = row.get(1);
                let secret_type: SecretType = type_name.parse().map_err(|_| {
                    Error::integrity(
                        "stored metadata is malformed (type): corrupt or tampered store",
                    )
                })?;
                Ok((
                    row.get::<_, String>(0),
                    secret_type,
                    StoredVersion {
                        version: row.get::<_, i64>(2) as u64,
                        dek_id: row.get::<_, i64>(3) as u32,
                        blob: row.get(4),
                        created_at: row.get(5),
                    },
                ))
            })
            .collect()
    }

    fn reseal_version(&mut self, tenant: &str, name: &str, value: &StoredVersion) -> Result<()> {
        let note = payload(tenant);
        self.atomic(Some(&note), |c| {
            c.execute(
                sql::RESEAL_VERSION,
                &[
                    &tenant,
                    &name,
                    &(value.version as i64),
                    &i64::from(value.dek_id),
                    &value.blob,
                ],
            )?;
            Ok(())
        })
    }

    fn dump(&mut self) -> Result<StoreDump> {
        let header = self.header()?;
        let tenant_keys = self.all_tenant_keys()?;
        let secrets = self.all_secrets()?;
        let state = self.meta(crate::store::STATE_KEY)?;
        let versions = self
            .client
            .query("SELECT tenant, name, version, dek_id, value, created_at FROM tbs_secret_versions ORDER BY tenant, name, version", &[])
            .map_err(storage)?
            .iter()
            .map(|row| {
                (
                    row.get::<_, String>(0),
                    row.get::<_, String>(1),
                    StoredVersion {
                        version: row.get::<_, i64>(2) as u64,
                        dek_id: row.get::<_, i64>(3) as u32,
                        blob: row.get(4),
                        created_at: row.get(5),
                    },
                )
            })
            .collect();
        let references = self
            .client
            .query("SELECT tenant, source_id, name, type FROM tbs_references ORDER BY tenant, source_id, name", &[])
            .map_err(storage)?
            .iter()
            .map(|row| {
                (
                    row.get::<_, String>(0),
                    StoredReference {
                        source_id: row.get(1),
                        name: row.get(2),
                        secret_type: row.get::<_, Option<String>>(3).and_then(|t| t.parse().ok()),
                    },
                )
            })
            .collect();
        Ok(StoreDump {
            header,
            state,
            tenant_keys,
            secrets,
            versions,
            references,
        })
    }

    fn load(&mut self, dump: &StoreDump) -> Result<()> {
        self.atomic(Some("*"), |c| {
            // Serialise with a concurrent first open initialising the same schema.
            c.client
                .execute("LOCK TABLE tbs_meta IN EXCLUSIVE MODE", &[])
                .map_err(storage)?;
            let occupied: i64 = c
                .client
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM tbs_meta) + (SELECT COUNT(*) FROM tbs_secrets)",
                    &[],
                )
                .map_err(storage)?
                .get(0);
            if occupied > 0 {
                return Err(crate::store::not_empty());
            }
            if let Some(header) = &dump.header {
                let kek_id = header.kek_id.to_be_bytes().to_vec();
                c.execute(sql::INIT_META, &[&"kek_id", &kek_id])?;
                c.execute(sql::INIT_META, &[&"key_check", &header.key_check])?;
            }
            if let Some(state) = &dump.state {
                c.execute(sql::INIT_META, &[&crate::store::STATE_KEY, state])?;
            }
            for (tenant, key) in &dump.tenant_keys {
                c.execute(
                    sql::INSERT_KEY,
                    &[
                        tenant,
                        &i64::from(key.dek_id),
                        &i64::from(key.kek_id),
                        &key.blob,
                        &key.created_at,
                    ],
                )?;
            }
            for s in &dump.secrets {
                c.execute(
                    sql::INSERT_SECRET,
                    &[
                        &s.tenant,
                        &s.name,
                        &s.secret_type.as_str(),
                        &s.description,
                        &(s.version as i64),
                        &s.created_at,
                        &s.updated_at,
                        &s.value_updated_at,
                        &s.last_used_at,
                        &(s.use_count as i64),
                        &(s.seal_seq as i64),
                        &s.seal,
                    ],
                )?;
            }
            for (tenant, name, v) in &dump.versions {
                c.execute(
                    sql::INSERT_VERSION,
                    &[
                        tenant,
                        name,
                        &(v.version as i64),
                        &i64::from(v.dek_id),
                        &v.blob,
                        &v.created_at,
                    ],
                )?;
            }
            for (tenant, r) in &dump.references {
                c.execute(
                    sql::INSERT_REFERENCE,
                    &[
                        tenant,
                        &r.source_id,
                        &r.name,
                        &r.secret_type.map(SecretType::as_str),
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn record_usage(&mut self, updates: &[UsageUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        self.atomic(None, |c| {
            for u in updates {
                c.execute(
                    sql::RECORD_USAGE,
                    &[&u.tenant, &u.name, &(u.uses as i64), &u.last_used_at],
                )?;
            }
            Ok(())
        })
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

    fn seal_pointer(&mut self, tenant: &str, name: &str, seal_seq: u64, seal: &[u8]) -> Result<()> {
        let changed = self.atomic(Some(&payload(tenant)), |c| {
            c.execute(
                sql::SEAL_POINTER,
                &[&tenant, &name, &(seal_seq as i64), &seal],
            )
        })?;
        if changed == 0 {
            return Err(Error::secret_not_found(tenant, name));
        }
        Ok(())
    }

    fn all_secrets(&mut self) -> Result<Vec<StoredSecret>> {
        self.query(sql::ALL_SECRETS, &[])?
            .iter()
            .map(secret_from_row)
            .collect()
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

    fn with_write_lock(
        &mut self,
        scope: &str,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<()> {
        if self.write_locked {
            return f(self);
        }
        self.client.batch_execute("BEGIN").map_err(storage)?;
        // Serialises writers of this one secret across every node until commit.
        let locked = self
            .client
            .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&scope])
            .map_err(storage);
        if let Err(e) = locked {
            let _ = self.client.batch_execute("ROLLBACK");
            return Err(e);
        }
        self.write_locked = true;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        self.write_locked = false;
        match outcome {
            Ok(Ok(())) => self.client.batch_execute("COMMIT").map_err(|e| {
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
}
