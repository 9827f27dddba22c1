//! The PostgreSQL test server's URL, shared by every test file that needs one (include it
//! with `#[path = "common/postgres.rs"] mod test_postgres;`).

/// The URL of the test server from `TBS_TEST_POSTGRES_URL`. The suite fails (never skips)
/// without one; an empty value counts as unset, so that a location such as `?schema=x` is
/// never taken for a SQLite file name.
pub fn postgres_url() -> String {
    match std::env::var("TBS_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "TBS_TEST_POSTGRES_URL is not set: run ./scripts/test-all.sh, which starts a throwaway \
             PostgreSQL 15 (install it with `apt-get install -y postgresql-15`)"
        ),
    }
}
