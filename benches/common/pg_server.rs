//! The PostgreSQL server of a benchmark: `TBS_TEST_POSTGRES_URL` when set, else a throwaway
//! server started with scripts/pg-test-server.sh and stopped on drop — durable (`fsync=on`,
//! unlike the tests' server), so that creates measured on it are durable creates.

use std::path::Path;

/// A server to run against.
pub struct Server {
    /// Its connection URL.
    pub url: String,
    dir: Option<tempfile::TempDir>,
}

impl Server {
    /// The server of `TBS_TEST_POSTGRES_URL`, or a throwaway one.
    pub fn get() -> Server {
        if let Some(url) = std::env::var("TBS_TEST_POSTGRES_URL")
            .ok()
            .filter(|url| !url.is_empty())
        {
            return Server { url, dir: None };
        }
        let dir = tempfile::Builder::new()
            .prefix("tbsecrets-pg-bench")
            .tempdir()
            .unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-test-server.sh");
        let out = std::process::Command::new(script)
            .arg("start")
            .arg(dir.path().join("pg"))
            .env("TBS_PG_FSYNC", "on")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Server {
            url,
            dir: Some(dir),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-test-server.sh");
            let _ = std::process::Command::new(script)
                .arg("stop")
                .arg(dir.path().join("pg"))
                .status();
        }
    }
}
