//! SQL of the PostgreSQL backend. Tables live in the schema the URL names (`search_path` is
//! set on every connection), prefixed `tbs_` like the SQLite ones.

/// Schema migrations, applied in order; `tbs_schema_version` records how many ran.
/// They mirror `sqlite/schema.rs` statement for statement but stay written out twice: the
/// column types (BIGINT/BYTEA vs INTEGER/BLOB) differ, and a shipped migration never changes.
pub const MIGRATIONS: &[&str] = &[
    "CREATE TABLE tbs_meta (
         key   TEXT PRIMARY KEY,
         value BYTEA NOT NULL
     );
     CREATE TABLE tbs_tenant_keys (
         tenant     TEXT   NOT NULL,
         dek_id     BIGINT NOT NULL,
         kek_id     BIGINT NOT NULL,
         wrapped    BYTEA  NOT NULL,
         created_at BIGINT NOT NULL,
         PRIMARY KEY (tenant, dek_id)
     );
     CREATE TABLE tbs_secrets (
         tenant           TEXT   NOT NULL,
         name             TEXT   NOT NULL,
         type             TEXT   NOT NULL,
         description      TEXT   NOT NULL,
         version          BIGINT NOT NULL,
         created_at       BIGINT NOT NULL,
         updated_at       BIGINT NOT NULL,
         value_updated_at BIGINT NOT NULL,
         last_used_at     BIGINT,
         use_count        BIGINT NOT NULL DEFAULT 0,
         PRIMARY KEY (tenant, name)
     );
     CREATE TABLE tbs_secret_versions (
         tenant     TEXT   NOT NULL,
         name       TEXT   NOT NULL,
         version    BIGINT NOT NULL,
         dek_id     BIGINT NOT NULL,
         value      BYTEA  NOT NULL,
         created_at BIGINT NOT NULL,
         PRIMARY KEY (tenant, name, version)
     );",
    "CREATE TABLE tbs_references (
         tenant    TEXT NOT NULL,
         source_id TEXT NOT NULL,
         name      TEXT NOT NULL,
         type      TEXT,
         PRIMARY KEY (tenant, source_id, name)
     );
     CREATE INDEX tbs_references_by_name ON tbs_references (tenant, name, source_id);",
    // 3: authenticated state and the audit outbox (see the SQLite migration of the same number).
    "ALTER TABLE tbs_secrets ADD COLUMN seal_seq BIGINT NOT NULL DEFAULT 0;
     ALTER TABLE tbs_secrets ADD COLUMN seal BYTEA;
     CREATE TABLE tbs_audit_outbox (
         seq  BIGINT PRIMARY KEY,
         line TEXT   NOT NULL
     );
     INSERT INTO tbs_meta (key, value)
         SELECT 'state_adopt', '\\x01'::bytea WHERE EXISTS (SELECT 1 FROM tbs_meta WHERE key = 'key_check');
     DELETE FROM tbs_meta WHERE key LIKE 'audit_anchor:%';",
    // 4: the partial index of per-message patterns (see the SQLite migration of the same
    // number; `PATTERN_REFERENCES` repeats its predicate so the planner can use it).
    "CREATE INDEX tbs_references_patterns ON tbs_references (tenant, source_id, name)
         WHERE strpos(name, '{{') > 0;",
    // 5 (PostgreSQL only): names in byte order per tenant, the order `list` pages in, so a
    // page after a cursor (`LIST`: `name COLLATE "C" > $3 ORDER BY name COLLATE "C"`) is read
    // from this index instead of sorting the tenant. The primary key orders by the database's
    // collation, which need not be byte order; SQLite's primary key is byte order already.
    "CREATE INDEX tbs_secrets_name_bytes ON tbs_secrets (tenant, name COLLATE \"C\");",
    // 6: soft delete (see the SQLite migration 5).
    "ALTER TABLE tbs_secrets ADD COLUMN deleted_at BIGINT;
     CREATE INDEX tbs_secrets_deleted ON tbs_secrets (deleted_at) WHERE deleted_at IS NOT NULL;",
];

pub const HEADER: &str = "SELECT key, value FROM tbs_meta WHERE key IN ('kek_id', 'key_check')";
pub const INIT_META: &str =
    "INSERT INTO tbs_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
pub const ACTIVE_KEY: &str = "SELECT dek_id, kek_id, wrapped, created_at FROM tbs_tenant_keys
                              WHERE tenant = $1 ORDER BY dek_id DESC LIMIT 1";
pub const KEY_BY_ID: &str = "SELECT dek_id, kek_id, wrapped, created_at FROM tbs_tenant_keys
                             WHERE tenant = $1 AND dek_id = $2";
pub const INSERT_KEY: &str =
    "INSERT INTO tbs_tenant_keys (tenant, dek_id, kek_id, wrapped, created_at)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
/// Inserts a data key only while its master key id is the store's current one; the lock on
/// the table is taken before the statement's snapshot, so a rotation holding the table locked
/// is seen once it commits.
pub const INSERT_KEY_CHECKED: &str =
    "INSERT INTO tbs_tenant_keys (tenant, dek_id, kek_id, wrapped, created_at)
     SELECT $1, $2, $3, $4, $5
     WHERE EXISTS (SELECT 1 FROM tbs_meta WHERE key = 'kek_id' AND value = $6)
     ON CONFLICT DO NOTHING";
pub const CURRENT_KEK: &str = "SELECT value FROM tbs_meta WHERE key = 'kek_id'";
pub const ALL_KEYS: &str = "SELECT dek_id, kek_id, wrapped, created_at, tenant FROM tbs_tenant_keys
                            ORDER BY tenant, dek_id";
pub const REWRAP_KEY: &str =
    "UPDATE tbs_tenant_keys SET kek_id = $3, wrapped = $4 WHERE tenant = $1 AND dek_id = $2";
pub const SET_META: &str = "UPDATE tbs_meta SET value = $2 WHERE key = $1";
pub const TENANT_VERSIONS_PAGE: &str =
    "SELECT v.name, s.type, v.version, v.dek_id, v.value, v.created_at
     FROM tbs_secret_versions v JOIN tbs_secrets s ON s.tenant = v.tenant AND s.name = v.name
     WHERE v.tenant = $1 AND v.dek_id <> $2 AND (v.name, v.version) > ($3, $4)
     ORDER BY v.name, v.version LIMIT $5";
pub const COUNT_TENANT_VERSIONS: &str =
    "SELECT COUNT(DISTINCT name), COUNT(*) FROM tbs_secret_versions WHERE tenant = $1";
pub const RESEAL_VERSION: &str = "UPDATE tbs_secret_versions SET dek_id = $4, value = $5
                                  WHERE tenant = $1 AND name = $2 AND version = $3
                                    AND dek_id = $6 AND value = $7";
pub const SECRET: &str = "SELECT tenant, name, type, description, version, created_at, updated_at,
                                 value_updated_at, last_used_at, use_count, seal_seq, seal, deleted_at
                          FROM tbs_secrets WHERE tenant = $1 AND name = $2";
pub const ALL_SECRETS: &str =
    "SELECT tenant, name, type, description, version, created_at, updated_at,
                                      value_updated_at, last_used_at, use_count, seal_seq, seal, deleted_at
                               FROM tbs_secrets ORDER BY tenant COLLATE \"C\", name COLLATE \"C\"";
pub const CURRENT: &str =
    "SELECT s.tenant, s.name, s.type, s.description, s.version, s.created_at, s.updated_at,
            s.value_updated_at, s.last_used_at, s.use_count, s.seal_seq, s.seal, s.deleted_at,
            v.dek_id, v.value, v.created_at
     FROM tbs_secrets s JOIN tbs_secret_versions v
       ON v.tenant = s.tenant AND v.name = s.name AND v.version = s.version
     WHERE s.tenant = $1 AND s.name = $2";
pub const VERSION: &str = "SELECT dek_id, value, created_at FROM tbs_secret_versions
                           WHERE tenant = $1 AND name = $2 AND version = $3";
pub const VERSIONS: &str = "SELECT version, created_at FROM tbs_secret_versions
                            WHERE tenant = $1 AND name = $2 ORDER BY version DESC";
/// The insert of a `tbs_secrets` row from `$1`–`$13` (the table's column order) unless the
/// name is taken, written once for [`INSERT_SECRET`] and [`CREATE_SECRET`].
macro_rules! insert_secret {
    () => {
        "INSERT INTO tbs_secrets (tenant, name, type, description, version, created_at,
                                  updated_at, value_updated_at, last_used_at, use_count,
                                  seal_seq, seal, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT DO NOTHING"
    };
}
pub const INSERT_SECRET: &str = insert_secret!();
/// A new secret's row and its first version's in one statement (one round trip): no version
/// row when the name is taken (`ON CONFLICT DO NOTHING`), so the count is 1 or 0.
pub const CREATE_SECRET: &str = concat!(
    "WITH secret AS (",
    insert_secret!(),
    " RETURNING tenant, name)
     INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at)
     SELECT tenant, name, $14::BIGINT, $15::BIGINT, $16::BYTEA, $17::BIGINT FROM secret"
);
pub const INSERT_VERSION: &str =
    "INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at)
     VALUES ($1, $2, $3, $4, $5, $6)";
/// A secret's next version in one statement: the row advanced from the expected current
/// version `$3` to `$4` (at `$5`), the version's row (`$6` DEK id, `$7` sealed value), and the
/// versions up to `$8` pruned — all only if the row advanced. One row: the versions inserted
/// (1, or 0 when the secret is missing, deleted or at another version).
pub const APPEND_VERSION: &str = "WITH advanced AS (
         UPDATE tbs_secrets SET version = $4, updated_at = $5, value_updated_at = $5
         WHERE tenant = $1 AND name = $2 AND version = $3 AND deleted_at IS NULL
         RETURNING tenant, name),
     inserted AS (
         INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at)
         SELECT tenant, name, $4, $6::BIGINT, $7::BYTEA, $5 FROM advanced
         RETURNING 1),
     pruned AS (
         DELETE FROM tbs_secret_versions
         WHERE tenant = $1 AND name = $2 AND version <= $8
           AND EXISTS (SELECT 1 FROM advanced))
     SELECT count(*) FROM inserted";
pub const CURRENT_VERSION: &str =
    "SELECT version FROM tbs_secrets WHERE tenant = $1 AND name = $2 AND deleted_at IS NULL";
pub const SET_DESCRIPTION: &str = "UPDATE tbs_secrets SET description = $3, updated_at = $4
     WHERE tenant = $1 AND name = $2 AND deleted_at IS NULL";
pub const DELETE_SECRET: &str = "DELETE FROM tbs_secrets WHERE tenant = $1 AND name = $2";
pub const DELETE_VERSIONS: &str = "DELETE FROM tbs_secret_versions WHERE tenant = $1 AND name = $2";
/// Overwrites the stored ciphertexts of a secret's versions with zero bytes of the same length
/// before they are deleted (see SECURITY.md on what that means under MVCC).
pub const OVERWRITE_VERSIONS: &str =
    "UPDATE tbs_secret_versions SET value = decode(repeat('00', length(value)), 'hex')
     WHERE tenant = $1 AND name = $2";
pub const MARK_DELETED: &str = "UPDATE tbs_secrets SET deleted_at = $3
                                WHERE tenant = $1 AND name = $2 AND deleted_at IS NULL";
pub const UNDELETE: &str = "UPDATE tbs_secrets SET deleted_at = NULL
                            WHERE tenant = $1 AND name = $2 AND deleted_at IS NOT NULL";
pub const DELETED_BEFORE: &str = "SELECT tenant, name FROM tbs_secrets
                                  WHERE deleted_at IS NOT NULL AND deleted_at <= $1
                                  ORDER BY tenant COLLATE \"C\", name COLLATE \"C\"";
pub const IS_LIVE: &str =
    "SELECT deleted_at IS NULL FROM tbs_secrets WHERE tenant = $1 AND name = $2";
pub const DELETE_SOURCE: &str = "DELETE FROM tbs_references WHERE tenant = $1 AND source_id = $2";
pub const INSERT_REFERENCE: &str = "INSERT INTO tbs_references (tenant, source_id, name, type)
                                    VALUES ($1, $2, $3, $4)
                                    ON CONFLICT (tenant, source_id, name) DO UPDATE SET type = $4";
pub const WHERE_USED: &str = "SELECT source_id, name, type FROM tbs_references
                              WHERE tenant = $1 AND name = $2 ORDER BY source_id";
pub const PATTERN_REFERENCES: &str = "SELECT source_id, name, type FROM tbs_references
    WHERE tenant = $1 AND strpos(name, '{{') > 0 ORDER BY source_id, name";
pub const COUNT: &str =
    "SELECT COUNT(*) FROM tbs_secrets WHERE tenant = $1 AND strpos(name, $2) > 0
     AND (deleted_at IS NOT NULL) = $3";
pub const LIST: &str = "SELECT tenant, name, type, description, version, created_at, updated_at,
                               value_updated_at, last_used_at, use_count, seal_seq, seal, deleted_at
                        FROM tbs_secrets
                        WHERE tenant = $1 AND name COLLATE \"C\" > $3 AND strpos(name, $2) > 0
                          AND (deleted_at IS NOT NULL) = $6
                        ORDER BY name COLLATE \"C\" LIMIT $4 OFFSET $5";
pub const RECORD_USAGE: &str = "UPDATE tbs_secrets
                                SET use_count = use_count + $3,
                                    last_used_at = GREATEST(COALESCE(last_used_at, 0), $4)
                                WHERE tenant = $1 AND name = $2 AND deleted_at IS NULL";
pub const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// Serialises the writers of one scope (a tenant's secret) across every node until commit.
pub const ADVISORY_XACT_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";

/// [`ADVISORY_XACT_LOCK`] with `scope` as a dollar-quoted literal, to send in one simple
/// query with the `BEGIN` (one round trip instead of two). `None` for a scope that a literal
/// cannot hold as it is (a `$`, which could end the quote early, or a NUL): use the prepared
/// statement. The same lock either way: `hashtext` of the same text.
pub fn advisory_xact_lock_literal(scope: &str) -> Option<String> {
    if scope.contains(['$', '\0']) {
        return None;
    }
    Some(format!(
        "SELECT pg_advisory_xact_lock(hashtext($tbs${scope}$tbs$))"
    ))
}
pub const META: &str = "SELECT value FROM tbs_meta WHERE key = $1";
pub const LOCK_META: &str = "SELECT value FROM tbs_meta WHERE key = $1 FOR UPDATE";
pub const PUT_META: &str = "INSERT INTO tbs_meta (key, value) VALUES ($1, $2)
                            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
pub const SEAL_POINTER: &str =
    "UPDATE tbs_secrets SET seal_seq = $3, seal = $4 WHERE tenant = $1 AND name = $2";
pub const IS_EMPTY: &str = "SELECT NOT EXISTS (SELECT 1 FROM tbs_tenant_keys)
                                AND NOT EXISTS (SELECT 1 FROM tbs_secrets)";
/// Everything that closes a change (`Store::close_change`) in one round trip: the seal of
/// one pointer ($1 tenant, $2 name — NULL for none —, $3 the sequence number, $4 the seal; the
/// rows sealed come back), the outbox lines ($5 numbers, $6 lines), the outbox rows a synced
/// log holds ($7, NULL for none), the state row ($8 key, $9 value) and the change's
/// notifications ($10 channel, $11 payloads). Each part touches its own rows, so the one
/// snapshot they share changes nothing.
pub const CLOSE_CHANGE: &str = "WITH sealed AS (
        UPDATE tbs_secrets SET seal_seq = $3, seal = $4 WHERE tenant = $1 AND name = $2
        RETURNING 1
    ), pushed AS (
        INSERT INTO tbs_audit_outbox (seq, line)
        SELECT * FROM unnest($5::bigint[], $6::text[])
    ), pruned AS (
        DELETE FROM tbs_audit_outbox WHERE seq <= $7::bigint
    ), state AS (
        INSERT INTO tbs_meta (key, value) VALUES ($8, $9)
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
    )
    SELECT (SELECT count(*) FROM sealed),
           (SELECT count(*) FROM (SELECT pg_notify($10, p) FROM unnest($11::text[]) AS p) AS n)";
pub const OUTBOX_PUSH: &str = "INSERT INTO tbs_audit_outbox (seq, line) VALUES ($1, $2)";
pub const OUTBOX_AFTER: &str =
    "SELECT seq, line FROM tbs_audit_outbox WHERE seq > $1 ORDER BY seq LIMIT $2";
pub const OUTBOX_PRUNE: &str = "DELETE FROM tbs_audit_outbox WHERE seq <= $1";
