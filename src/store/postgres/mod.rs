//! The PostgreSQL backend for ThingsBoard clusters: the same `Store` operations as SQLite over
//! a pool of connections, tables prefixed `tbs_` in their own schema, and cross-node cache
//! invalidation through LISTEN/NOTIFY.
//!
//! Opened from a URL: `postgres://user:pass@host:port/db?schema=tbsecrets&pool_max=8&sslmode=require&sslrootcert=/path/ca.pem`.
//! `schema`, `pool_max` and `sslrootcert` are ours; every other parameter (`sslmode`,
//! `connect_timeout`, `application_name`, …) is passed to the driver as it is.

mod connection;
mod listener;
mod sql;

use super::{Backend, Fingerprint, StoreGuard, SyncHooks};
use crate::error::{Error, Result};
use connection::PgManager;
use listener::Listener;
use std::path::PathBuf;
use std::time::Duration;

/// Default number of pooled connections per handle.
pub const DEFAULT_POOL_MAX: u32 = 8;
/// Default schema holding the tables.
pub const DEFAULT_SCHEMA: &str = "tbsecrets";

/// What a `postgres://` URL asks for.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Driver configuration (host, port, user, password, database, sslmode, …).
    pub config: postgres::Config,
    /// Schema of the tables.
    pub schema: String,
    /// Maximum pooled connections.
    pub pool_max: u32,
    /// Extra CA certificate (PEM) to trust for TLS.
    pub ssl_root_cert: Option<PathBuf>,
}

impl PgSettings {
    /// Parses a `postgres://` URL, taking out the parameters that are ours.
    pub fn from_url(url: &str) -> Result<PgSettings> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut schema = DEFAULT_SCHEMA.to_owned();
        let mut pool_max = DEFAULT_POOL_MAX;
        let mut ssl_root_cert = None;
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "schema" => schema = value.to_owned(),
                "pool_max" => {
                    pool_max = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| Error::invalid("pool_max must be a number from 1 to 1000"))?
                }
                "sslrootcert" => ssl_root_cert = Some(PathBuf::from(value)),
                _ => passed.push(pair),
            }
        }
        if !valid_identifier(&schema) {
            return Err(Error::invalid(format!(
                "schema '{schema}' must be 1-63 characters of a-z, 0-9 and _, not starting with a digit"
            )));
        }
        let driver_url = if passed.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", passed.join("&"))
        };
        // The driver's own error could echo the URL, password included: keep only its kind.
        let config: postgres::Config = driver_url.parse().map_err(|_| {
            Error::invalid("not a valid postgres:// URL (see the PostgreSQL connection URI format)")
        })?;
        Ok(PgSettings {
            config,
            schema,
            pool_max,
            ssl_root_cert,
        })
    }
}

fn valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// What makes the TLS sessions of the pool and the listener: rustls (ring provider), so no
/// build links OpenSSL.
pub(crate) type MakeTlsConnector = tokio_postgres_rustls::MakeRustlsConnect;

/// Builds the TLS connector: the system's roots plus the optional extra CA(s) of
/// `sslrootcert` (every certificate of that PEM file). Server certificates and host names are
/// verified whenever the driver negotiates TLS (`sslmode=prefer`, the default, or `require`).
fn tls_connector(settings: &PgSettings) -> Result<MakeTlsConnector> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};

    let mut roots = rustls::RootCertStore::empty();
    // Unreadable or malformed system certificates are skipped, as OpenSSL skips them.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = &settings.ssl_root_cert {
        let pem = std::fs::read(path).map_err(|e| {
            Error::invalid(format!("cannot read sslrootcert {}: {e}", path.display()))
        })?;
        let not_pem = || {
            Error::invalid(format!(
                "sslrootcert {} is not a PEM certificate",
                path.display()
            ))
        };
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| not_pem())?;
        if certs.is_empty() {
            return Err(not_pem());
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                Error::invalid(format!(
                    "sslrootcert {} holds a certificate that cannot be a trust anchor: {e}",
                    path.display()
                ))
            })?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::storage(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeTlsConnector::new(config))
}

/// A PostgreSQL store: a connection pool and a notification listener.
pub struct PostgresBackend {
    pool: r2d2::Pool<PgManager>,
    listener: Listener,
}

impl PostgresBackend {
    /// Connects, creates or migrates the schema, and starts listening for changes.
    pub fn open(url: &str, timeout: Duration) -> Result<PostgresBackend> {
        let mut settings = PgSettings::from_url(url)?;
        if settings.config.get_connect_timeout().is_none() {
            settings
                .config
                .connect_timeout(timeout.min(Duration::from_secs(10)));
        }
        let tls = tls_connector(&settings)?;
        let manager = PgManager::new(
            settings.config.clone(),
            tls.clone(),
            settings.schema.clone(),
        );
        let pool = r2d2::Pool::builder()
            .max_size(settings.pool_max)
            .min_idle(Some(1))
            .test_on_check_out(false)
            .connection_timeout(timeout)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|e| Error::storage(format!("cannot connect to PostgreSQL: {e}")))?;
        {
            let mut conn = pool
                .get()
                .map_err(|e| Error::storage(format!("cannot connect to PostgreSQL: {e}")))?;
            conn.migrate()?;
        }
        let listener = Listener::start(settings.config, tls, &settings.schema, timeout)?;
        Ok(PostgresBackend { pool, listener })
    }
}

/// A pooled connection handed to the service.
struct Pooled(r2d2::PooledConnection<PgManager>);

impl StoreGuard for Pooled {
    fn store(&mut self) -> &mut dyn super::Store {
        &mut *self.0
    }
}

impl Backend for PostgresBackend {
    fn connection(&self) -> Result<Box<dyn StoreGuard + '_>> {
        let conn = self
            .pool
            .get()
            .map_err(|e| Error::storage(format!("no PostgreSQL connection available: {e}")))?;
        Ok(Box::new(Pooled(conn)))
    }

    fn try_connection(&self) -> Option<Box<dyn StoreGuard + '_>> {
        self.pool
            .try_get()
            .map(|conn| Box::new(Pooled(conn)) as Box<dyn StoreGuard + '_>)
    }

    fn change_token(&self) -> Option<Fingerprint> {
        self.listener.token()
    }

    fn sync_commits(&self, _ticket: u64, _hooks: &dyn SyncHooks) -> Result<()> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| Error::storage(format!("no PostgreSQL connection available: {e}")))?;
        conn.flush_wal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::is_postgres_url;

    #[test]
    fn url_parameters_are_split_between_us_and_the_driver() {
        let s = PgSettings::from_url(
            "postgres://tb:pw@127.0.0.1:5432/thingsboard?schema=tb_secrets&pool_max=3&sslmode=disable&sslrootcert=/x/ca.pem",
        )
        .unwrap();
        assert_eq!(s.schema, "tb_secrets");
        assert_eq!(s.pool_max, 3);
        assert_eq!(s.ssl_root_cert, Some(PathBuf::from("/x/ca.pem")));
        assert_eq!(s.config.get_dbname(), Some("thingsboard"));
        assert_eq!(s.config.get_ssl_mode(), postgres::config::SslMode::Disable);
        let d = PgSettings::from_url("postgresql://localhost/db").unwrap();
        assert_eq!(
            (d.schema.as_str(), d.pool_max),
            (DEFAULT_SCHEMA, DEFAULT_POOL_MAX)
        );
    }

    /// A backend on the test server (`TBS_TEST_POSTGRES_URL`, as the suite's other
    /// PostgreSQL tests) in a schema of its own.
    fn test_backend(name: &str) -> PostgresBackend {
        let url = std::env::var("TBS_TEST_POSTGRES_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .expect("TBS_TEST_POSTGRES_URL is not set: run ./scripts/test-all.sh");
        let separator = if url.contains('?') { '&' } else { '?' };
        let schema = format!("unit_{name}_{}", std::process::id());
        PostgresBackend::open(
            &format!("{url}{separator}schema={schema}"),
            Duration::from_secs(10),
        )
        .unwrap()
    }

    /// Inside a change the methods join its transaction without a savepoint, so a failed one
    /// refuses the commit even when the change's code goes on: a failed statement (which
    /// aborts the transaction, and whose `COMMIT` PostgreSQL answers with a rollback) or a
    /// method's own error (its first writes may have run). Nothing the change wrote commits,
    /// and the connection serves the next change.
    #[test]
    fn a_change_that_goes_on_after_a_failed_write_commits_nothing() {
        let backend = test_backend("failed_write");
        let mut conn = backend.connection().unwrap();
        let store = conn.store();
        let failed_statement = store
            .with_write_lock("unit", &mut |tx| {
                tx.put_meta("before-statement", b"v")?;
                let err = tx.set_description("t", "n", "a NUL \0 PostgreSQL refuses", 0);
                assert_eq!(err.unwrap_err().code(), crate::ErrorCode::Storage);
                Ok(())
            })
            .unwrap_err();
        let failed_method = store
            .with_write_lock("unit", &mut |tx| {
                tx.put_meta("before-method", b"v")?;
                let err = tx.mark_deleted("t", "missing", 0).unwrap_err();
                assert_eq!(err.code(), crate::ErrorCode::NotFound);
                Ok(())
            })
            .unwrap_err();
        for err in [failed_statement, failed_method] {
            assert_eq!(err.code(), crate::ErrorCode::Internal, "{err}");
            assert!(err.to_string().contains("nothing committed"), "{err}");
        }
        assert_eq!(store.meta("before-statement").unwrap(), None);
        assert_eq!(store.meta("before-method").unwrap(), None);
        store
            .with_write_lock("unit", &mut |tx| tx.put_meta("after", b"v"))
            .unwrap();
        assert_eq!(store.meta("after").unwrap().as_deref(), Some(&b"v"[..]));
    }

    /// The lock a change takes with its `BEGIN` (a quoted literal) is the one the prepared
    /// statement takes for the same scope, so nodes of either kind exclude each other; a
    /// scope a literal cannot hold takes the prepared statement's.
    #[test]
    fn the_write_lock_sent_with_begin_is_the_prepared_statements_lock() {
        let backend = test_backend("lock_literal");
        let url = std::env::var("TBS_TEST_POSTGRES_URL").unwrap();
        let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut conn = backend.connection().unwrap();
        for scope in [
            "tenant/it's \\ \"quoted\"",
            "tenant/$tbs$ends it",
            "tenant/plain",
        ] {
            conn.store()
                .with_write_lock(scope, &mut |_| {
                    let free: bool = other
                        .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&scope])
                        .unwrap()
                        .get(0);
                    assert!(!free, "{scope}: held by the change");
                    Ok(())
                })
                .unwrap();
            let free: bool = other
                .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&scope])
                .unwrap()
                .get(0);
            assert!(free, "{scope}: released at commit");
            other
                .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&scope])
                .unwrap();
        }
        assert!(sql::advisory_xact_lock_literal("tenant/$tbs$ends it").is_none());
        assert!(sql::advisory_xact_lock_literal("nul \0").is_none());
    }

    #[test]
    fn bad_urls_are_invalid_arguments_without_the_password() {
        for url in [
            "postgres://u:hunter2@h/db?schema=Bad-Name",
            "postgres://u:hunter2@h/db?pool_max=0",
            "postgres://u:hunter2@h/db?frobnicate=1",
        ] {
            let err = PgSettings::from_url(url).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidArgument, "{url}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        assert!(is_postgres_url("postgres://x") && is_postgres_url("postgresql://x"));
        assert!(!is_postgres_url("/var/lib/tbsecrets.db"));
    }
}
