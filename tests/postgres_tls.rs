//! PostgreSQL over TLS (rustls): `sslmode` and `sslrootcert` as README.md documents them,
//! against a throwaway server of its own that accepts TCP clients only over TLS, with a
//! certificate signed by a test CA (`TBS_PG_TLS=1 scripts/pg-test-server.sh start`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tbsecrets::{Error, ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};

/// A TLS-only PostgreSQL server in a temporary directory, stopped when dropped.
struct TlsServer {
    dir: tempfile::TempDir,
    url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-test-server.sh")
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::Builder::new()
            .prefix("tbsecrets-pg-tls")
            .tempdir()
            .unwrap();
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path().join("pg"))
            .env("TBS_PG_TLS", "1")
            .output()
            .expect("run scripts/pg-test-server.sh");
        assert!(
            out.status.success(),
            "pg-test-server.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        // A password the server (trust) ignores: no error may show it.
        let url = url.replacen("postgres://tbs@", "postgres://tbs:pw-hunter2@", 1);
        TlsServer { dir, url }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("pg/ca.pem")
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .status();
    }
}

fn open(location: &str) -> Result<SecretStorage, Error> {
    let mut options = StorageOptions::with_master_key(MasterKey::generate());
    options.busy_timeout = Duration::from_secs(3);
    SecretStorage::open(location, options)
}

fn refused(location: &str) -> Error {
    match open(location) {
        Ok(_) => panic!("{location} opened"),
        Err(e) => {
            assert!(!e.to_string().contains("pw-hunter2"), "{e}");
            e
        }
    }
}

#[test]
fn tls_with_sslrootcert_works_and_without_the_ca_or_tls_is_refused() {
    let server = TlsServer::start();
    let ca = server.ca().display().to_string();

    // The test CA named by sslrootcert: verified TLS (the server takes nothing else).
    for mode in ["require", "prefer"] {
        let location = format!(
            "{}?schema=tls_{mode}&sslmode={mode}&sslrootcert={ca}",
            server.url
        );
        let store = open(&location).unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        store
            .create("t", "db-password", SecretType::Text, b"v4lue", "")
            .unwrap();
        assert_eq!(store.get("t", "db-password").unwrap().as_bytes(), b"v4lue");
        store.close().unwrap();
    }

    // Without the CA the server's certificate is not trusted: STORAGE, not a plain fallback.
    let e = refused(&format!("{}?schema=tls_noca&sslmode=require", server.url));
    assert_eq!(e.code(), ErrorCode::Storage, "{e}");
    // Without TLS the server refuses (so the successes above were over TLS).
    let e = refused(&format!(
        "{}?schema=tls_off&sslmode=disable&sslrootcert={ca}",
        server.url
    ));
    assert_eq!(e.code(), ErrorCode::Storage, "{e}");
}

#[test]
fn an_unreadable_or_non_pem_sslrootcert_is_an_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "this is no certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    for path in [&not_pem, &missing] {
        // The file is read before any connection: no server is needed.
        let e = refused(&format!(
            "postgres://tbs:pw-hunter2@127.0.0.1:1/db?sslmode=require&sslrootcert={}",
            path.display()
        ));
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
        assert!(e.to_string().contains("sslrootcert"), "{e}");
    }
}
