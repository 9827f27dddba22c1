/* Session handles acting as principals (allowed and denied READ, WRITE, DELETE and RESOLVE
 * under the default and a custom policy), NULL / invalid arguments of the new functions,
 * sessions outliving their root handle, the audit log (callback, file, verification and
 * tampering), key rotation and usage reports.
 * Usage: test_access WORK_DIR (an empty private directory). */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static const char *TA = "tenant-a";
static const char *TB = "tenant-b";
static const char BAD_UTF8[] = {'b', 'a', 'd', (char)0xff, 0};
static uint8_t KEY[32];
static uint8_t NEW_KEY[32];
static char work[4096];

/* Every secret value this program stores: no audit record may contain one. */
static const char *const VALUES[] = {"svc-password-123", "tenant-b-value-456",
                                     "updated-value-789", "sys-made-value-000",
                                     "admin-made-value-111"};
#define VALUE_COUNT (sizeof VALUES / sizeof VALUES[0])

static const char *path_in(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", work, name);
    return out;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int last_error_contains(const char *needle) {
    return strstr(tbs_last_error_message(), needle) != NULL;
}

static tbs_status put(tbs_store *store, const char *tenant, const char *name, const char *value) {
    return tbs_store_create(store, tenant, name, TBS_TYPE_TEXT, (const uint8_t *)value,
                            strlen(value), NULL, NULL);
}

/* Gets a value and checks it equals `want`; returns the status. */
static tbs_status get_equals(tbs_store *store, const char *tenant, const char *name,
                             const char *want) {
    tbs_buffer value = {NULL, 0};
    tbs_status status = tbs_store_get(store, tenant, name, &value);
    if (status == TBS_OK) {
        CHECK(buffer_equals(&value, want));
    } else {
        CHECK(value.data == NULL && value.len == 0); /* untouched on failure */
    }
    tbs_buffer_free(&value);
    return status;
}

/* The unsigned number after `"field":` in a JSON buffer (0 if absent). */
static unsigned long long json_number(const tbs_buffer *json, const char *field) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", field);
    if (json->data == NULL) {
        return 0;
    }
    const char *at = strstr((const char *)json->data, key);
    return at == NULL ? 0 : strtoull(at + strlen(key), NULL, 10);
}

/* What the audit callback has seen (it may run on any thread using the store). */
static struct {
    pthread_mutex_t lock;
    unsigned long records;
    unsigned long denied;
    unsigned long service_records;
    unsigned long bad_lines;  /* not NUL-terminated at len, or not a JSON object */
    unsigned long with_value; /* holding a stored value: must stay 0 */
} audit = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0};

static int audit_user_data_tag;

static void on_audit(const char *line, size_t len, void *user_data) {
    pthread_mutex_lock(&audit.lock);
    audit.records++;
    if (user_data != &audit_user_data_tag || line == NULL || line[len] != 0 ||
        strlen(line) != len || len < 2 || line[0] != '{' || line[len - 1] != '}') {
        audit.bad_lines++;
    } else {
        if (strstr(line, "\"outcome\":\"PERMISSION_DENIED\"") != NULL) {
            audit.denied++;
        }
        if (strstr(line, "\"role\":\"SERVICE\"") != NULL &&
            strstr(line, "\"principal\":\"rule-engine\"") != NULL) {
            audit.service_records++;
        }
        for (size_t i = 0; i < VALUE_COUNT; i++) {
            if (strstr(line, VALUES[i]) != NULL) {
                audit.with_value++;
            }
        }
    }
    pthread_mutex_unlock(&audit.lock);
}

static tbs_store *open_store(const char *name, const uint8_t *key, const tbs_options *options) {
    char db[4200];
    tbs_store *store = NULL;
    CHECK_OK(tbs_store_open(path_in(db, sizeof db, name), key, 32, options, &store));
    return store;
}

static tbs_store *session(tbs_store *root, const char *tenant, tbs_role role, const char *id) {
    tbs_store *session = NULL;
    CHECK_OK(tbs_store_session(root, tenant, role, id, &session));
    CHECK(session != NULL && session != root);
    return session;
}

/* Allowed and denied READ, WRITE, DELETE and RESOLVE under the default policy. */
static void test_default_policy(tbs_store *root) {
    CHECK_OK(put(root, TA, "api-key", VALUES[0]));
    CHECK_OK(put(root, TB, "b-key", VALUES[1]));

    tbs_store *svc = session(root, TA, TBS_ROLE_SERVICE, "rule-engine");
    tbs_store *admin = session(root, TA, TBS_ROLE_TENANT_ADMIN, "alice");
    tbs_store *sys = session(root, "platform", TBS_ROLE_SYS_ADMIN, NULL);
    tbs_store *customer = session(root, TA, TBS_ROLE_CUSTOMER_USER, "bob");
    tbs_buffer out = {NULL, 0};

    /* RESOLVE: SERVICE in its tenant only; administrators never see values. */
    CHECK_OK(get_equals(svc, TA, "api-key", VALUES[0]));
    CHECK_STATUS(get_equals(admin, TA, "api-key", VALUES[0]), TBS_PERMISSION_DENIED);
    CHECK(last_error_contains("TENANT_ADMIN of tenant 'tenant-a' may not RESOLVE"));
    CHECK_STATUS(get_equals(svc, TB, "b-key", VALUES[1]), TBS_PERMISSION_DENIED);
    CHECK_STATUS(get_equals(sys, TB, "b-key", VALUES[1]), TBS_PERMISSION_DENIED);
    CHECK_STATUS(get_equals(customer, TA, "api-key", VALUES[0]), TBS_PERMISSION_DENIED);
    const char *doc = "{\"k\":\"${secret:api-key}\"}";
    CHECK_OK(tbs_store_resolve_json(svc, TA, (const uint8_t *)doc, strlen(doc), 0, &out));
    CHECK(buffer_contains(&out, VALUES[0]));
    tbs_buffer_free(&out);
    CHECK_STATUS(tbs_store_resolve_json(admin, TA, (const uint8_t *)doc, strlen(doc), 0, &out),
                 TBS_PERMISSION_DENIED);
    CHECK(out.data == NULL);
    CHECK_STATUS(tbs_store_resolve_text(svc, TB, (const uint8_t *)"x", 1, 0, &out),
                 TBS_PERMISSION_DENIED);

    /* READ: metadata for SERVICE and TENANT_ADMIN in their tenant, SYS_ADMIN anywhere. */
    CHECK_OK(tbs_store_info(svc, TA, "api-key", &out));
    CHECK(buffer_contains(&out, "\"name\":\"api-key\"") && !buffer_contains(&out, VALUES[0]));
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_list(admin, TA, NULL, 0, 0, &out));
    CHECK(buffer_contains(&out, "\"total\":1"));
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_list(sys, TB, NULL, 0, 0, &out));
    CHECK(buffer_contains(&out, "b-key"));
    tbs_buffer_free(&out);
    CHECK_STATUS(tbs_store_info(svc, TB, "b-key", &out), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_history(admin, TB, "b-key", &out), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_list(customer, TA, NULL, 0, 0, &out), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_where_used(customer, TA, "api-key", &out), TBS_PERMISSION_DENIED);
    CHECK(out.data == NULL);

    /* WRITE: administrators in their scope; SERVICE never. */
    uint64_t version = 0;
    CHECK_OK(tbs_store_create(admin, TA, "admin-made", TBS_TYPE_TEXT, (const uint8_t *)VALUES[4],
                              strlen(VALUES[4]), "by alice", &version));
    CHECK(version == 1);
    CHECK_STATUS(put(svc, TA, "svc-made", "x"), TBS_PERMISSION_DENIED);
    CHECK(last_error_contains("SERVICE of tenant 'tenant-a' may not WRITE"));
    CHECK_STATUS(put(admin, TB, "admin-made", "x"), TBS_PERMISSION_DENIED);
    CHECK_OK(put(sys, TB, "sys-made", VALUES[3]));
    CHECK_OK(tbs_store_update_value(admin, TA, "api-key", (const uint8_t *)VALUES[2],
                                    strlen(VALUES[2]), TBS_ANY_VERSION, &version));
    CHECK(version == 2);
    CHECK_OK(get_equals(svc, TA, "api-key", VALUES[2]));
    CHECK_STATUS(tbs_store_update_value(svc, TA, "api-key", (const uint8_t *)"x", 1,
                                        TBS_ANY_VERSION, NULL),
                 TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_update_description(svc, TA, "api-key", "no"), TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_update_description(admin, TA, "api-key", "the API key"));
    CHECK_STATUS(tbs_store_rollback(svc, TA, "api-key", 1, NULL), TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_rollback(admin, TA, "api-key", 1, &version));
    CHECK(version == 3);
    CHECK_OK(get_equals(svc, TA, "api-key", VALUES[0]));
    const char *uses = "${secret:api-key}";
    CHECK_STATUS(tbs_store_track_references(svc, TA, "node-1", (const uint8_t *)uses,
                                            strlen(uses), NULL),
                 TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_track_references(admin, TA, "node-1", (const uint8_t *)uses, strlen(uses),
                                        NULL));
    CHECK_OK(tbs_store_where_used(svc, TA, "api-key", &out));
    CHECK(buffer_contains(&out, "node-1"));
    tbs_buffer_free(&out);
    CHECK_STATUS(tbs_store_untrack(svc, TA, "node-1", NULL), TBS_PERMISSION_DENIED);

    /* DELETE: administrators in their scope. */
    CHECK_STATUS(tbs_store_delete(svc, TA, "admin-made", false), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_delete(admin, TB, "sys-made", false), TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_delete(admin, TA, "admin-made", false));
    CHECK_STATUS(tbs_store_delete(admin, TA, "api-key", false), TBS_IN_USE);
    CHECK_OK(tbs_store_delete(sys, TB, "sys-made", false));
    /* undelete and destroy need DELETE like delete */
    CHECK_STATUS(tbs_store_undelete(svc, TA, "admin-made"), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_destroy(svc, TA, "admin-made"), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_undelete(admin, TB, "sys-made"), TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_undelete(admin, TA, "admin-made"));
    CHECK_OK(tbs_store_destroy(admin, TA, "admin-made"));
    CHECK_STATUS(tbs_store_info(root, TB, "sys-made", &out), TBS_NOT_FOUND);

    /* Usage reports need READ. */
    CHECK_OK(tbs_store_unused(svc, TA, 0, &out));
    CHECK(out.data != NULL && out.data[0] == '[' && buffer_contains(&out, "\"name\":\"api-key\""));
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_unused(admin, TA, 36500, &out));
    CHECK(buffer_equals(&out, "[]")); /* api-key was used moments ago */
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_stale(sys, TA, 0, &out));
    CHECK(buffer_contains(&out, "api-key"));
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_stale(root, TA, 36500, &out));
    CHECK(buffer_equals(&out, "[]"));
    tbs_buffer_free(&out);
    CHECK_STATUS(tbs_store_stale(svc, TB, 0, &out), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_unused(customer, TA, 0, &out), TBS_PERMISSION_DENIED);

    /* Store-wide and root-only calls. */
    tbs_store *sentinel = (tbs_store *)&sentinel;
    tbs_store *derived = sentinel;
    CHECK_STATUS(tbs_store_session(svc, TA, TBS_ROLE_SYS_ADMIN, NULL, &derived),
                 TBS_PERMISSION_DENIED);
    CHECK(last_error_contains("root handle"));
    CHECK_STATUS(tbs_store_session(sys, TA, TBS_ROLE_SERVICE, NULL, &derived),
                 TBS_PERMISSION_DENIED);
    CHECK(derived == sentinel);
    CHECK_STATUS(tbs_store_clear_materialized(svc), TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_clear_materialized(root));
    CHECK_OK(tbs_store_flush_usage(svc));
    CHECK_STATUS(tbs_store_verify_audit_log(svc, NULL, &out), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_audit_log_path(admin, &out), TBS_PERMISSION_DENIED);
    CHECK(out.data == NULL);
    CHECK_OK(tbs_store_verify_audit_log(sys, NULL, &out));
    CHECK(buffer_contains(&out, "\"problem\":null"));
    tbs_buffer_free(&out);

    /* Rotation dry runs: the rotation's permission, a typed error, nothing created. */
    CHECK_STATUS(tbs_store_plan_tenant_key_rotation(svc, TA, &out), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_plan_tenant_key_rotation(sys, "nobody", &out), TBS_NOT_FOUND);
    CHECK_OK(tbs_store_plan_tenant_key_rotation(admin, TA, &out));
    CHECK(json_number(&out, "keys") == 1 && json_number(&out, "versions") >= 3 &&
          json_number(&out, "key_id") == 2);
    tbs_buffer_free(&out);
    CHECK_STATUS(tbs_store_plan_master_key_rotation(admin, &out), TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_plan_master_key_rotation(sys, &out));
    CHECK(json_number(&out, "tenants") >= 2 && json_number(&out, "key_id") == 2);
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_plan_master_key_rotation(sys, NULL));

    /* Tenant-key rotation is WRITE in the tenant. */
    CHECK_STATUS(tbs_store_rotate_tenant_key(svc, TA, &out), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_rotate_tenant_key(admin, TB, NULL), TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_rotate_tenant_key(admin, TA, &out));
    CHECK(json_number(&out, "keys") == 1 && json_number(&out, "versions") >= 3 &&
          json_number(&out, "key_id") == 2);
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_rotate_tenant_key(sys, TB, NULL));
    CHECK_OK(get_equals(svc, TA, "api-key", VALUES[0]));
    CHECK_OK(get_equals(root, TB, "b-key", VALUES[1]));
    /* Master-key rotation needs WRITE in every tenant. */
    CHECK_STATUS(tbs_store_rotate_master_key(admin, NEW_KEY, 32, NULL), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_rotate_master_key(svc, NEW_KEY, 32, &out), TBS_PERMISSION_DENIED);
    CHECK(out.data == NULL);

    CHECK_OK(tbs_store_close(customer));
    CHECK_OK(tbs_store_close(sys));
    CHECK_OK(tbs_store_close(admin));
    CHECK_OK(tbs_store_close(svc));
    /* The root handle still works after its sessions are gone. */
    CHECK_OK(get_equals(root, TA, "api-key", VALUES[0]));
}

/* NULL pointers, invalid roles and invalid UTF-8 for the new functions. */
static void test_arguments(tbs_store *root) {
    tbs_store *sentinel = (tbs_store *)&sentinel;
    tbs_store *out = sentinel;
    tbs_buffer buf = {NULL, 0};

    CHECK_STATUS(tbs_store_session(NULL, TA, TBS_ROLE_SERVICE, NULL, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("store is NULL"));
    CHECK_STATUS(tbs_store_session(root, NULL, TBS_ROLE_SERVICE, NULL, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("tenant is NULL"));
    CHECK_STATUS(tbs_store_session(root, TA, TBS_ROLE_SERVICE, NULL, NULL), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("out_session is NULL"));
    CHECK_STATUS(tbs_store_session(root, TA, 0, NULL, &out), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("unknown role 0"));
    CHECK_STATUS(tbs_store_session(root, TA, 5, NULL, &out), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_session(root, TA, 0xFFFFFFFFu, NULL, &out), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_session(root, BAD_UTF8, TBS_ROLE_SERVICE, NULL, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("UTF-8"));
    CHECK_STATUS(tbs_store_session(root, TA, TBS_ROLE_SERVICE, BAD_UTF8, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("principal_id is not valid UTF-8"));
    CHECK_STATUS(tbs_store_session(root, "", TBS_ROLE_SERVICE, NULL, &out), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_session(root, "a\tb", TBS_ROLE_SERVICE, NULL, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_session(root, TA, TBS_ROLE_SERVICE, "", &out), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_session(root, TA, TBS_ROLE_SERVICE, "a\nb", &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(out == sentinel);

    CHECK_STATUS(tbs_store_rotate_master_key(NULL, NEW_KEY, 32, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_rotate_master_key(root, NULL, 32, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_rotate_master_key(root, NULL, 0, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_rotate_master_key(root, NEW_KEY, 16, &buf), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("32 bytes"));
    CHECK_STATUS(tbs_store_rotate_tenant_key(NULL, TA, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_rotate_tenant_key(root, NULL, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_rotate_tenant_key(root, BAD_UTF8, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_plan_tenant_key_rotation(root, NULL, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_plan_master_key_rotation(NULL, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_verify_audit_log(NULL, NULL, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_verify_audit_log(root, BAD_UTF8, &buf), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("log_path is not valid UTF-8"));
    CHECK_STATUS(tbs_store_unused(NULL, TA, 1, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_unused(root, NULL, 1, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_unused(root, BAD_UTF8, 1, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_unused(root, TA, 1, NULL), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("out_json is NULL"));
    CHECK_STATUS(tbs_store_stale(NULL, TA, 1, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_stale(root, NULL, 1, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_stale(root, BAD_UTF8, 1, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_stale(root, TA, 1, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_audit_log_path(NULL, &buf), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_audit_log_path(root, NULL), TBS_INVALID_ARGUMENT);
    CHECK(buf.data == NULL && buf.len == 0);
    /* Closing NULL is still a no-op. */
    CHECK_OK(tbs_store_close(NULL));
}

/* A session outliving its root handle fails with TBS_CLOSED, without crashing or leaking. */
static void test_session_after_root_close(void) {
    tbs_store *root = open_store("closing.db", KEY, NULL);
    if (root == NULL) {
        return;
    }
    CHECK_OK(put(root, TA, "k", VALUES[0]));
    tbs_store *svc = session(root, TA, TBS_ROLE_SERVICE, NULL);
    tbs_store *admin = session(root, TA, TBS_ROLE_TENANT_ADMIN, NULL);
    CHECK_OK(get_equals(svc, TA, "k", VALUES[0]));
    CHECK_OK(tbs_store_close(admin)); /* frees only the session */
    CHECK_OK(get_equals(root, TA, "k", VALUES[0]));
    CHECK_OK(get_equals(svc, TA, "k", VALUES[0]));

    CHECK_OK(tbs_store_close(root));
    tbs_buffer out = {NULL, 0};
    CHECK_STATUS(get_equals(svc, TA, "k", VALUES[0]), TBS_CLOSED);
    CHECK(last_error_contains("closed"));
    CHECK_STATUS(tbs_store_info(svc, TA, "k", &out), TBS_CLOSED);
    CHECK_STATUS(tbs_store_info(svc, TB, "k", &out), TBS_CLOSED); /* even if it were denied */
    CHECK_STATUS(put(svc, TA, "k2", "v"), TBS_CLOSED);
    CHECK_STATUS(tbs_store_flush_usage(svc), TBS_CLOSED);
    CHECK_STATUS(tbs_store_unused(svc, TA, 0, &out), TBS_CLOSED);
    tbs_store *derived = NULL;
    CHECK_STATUS(tbs_store_session(svc, TA, TBS_ROLE_SERVICE, NULL, &derived), TBS_CLOSED);
    CHECK(derived == NULL && out.data == NULL);
    CHECK_OK(tbs_store_close(svc)); /* the last handle: the store is freed now */
}

/* The version 1 layout of tbs_options (before the access and audit fields). */
struct options_v1 {
    uint32_t version;
    uint32_t max_versions;
    size_t max_text_chars;
    size_t max_file_bytes;
    uint32_t busy_timeout_ms;
    bool create_if_missing;
    bool keep_materialized;
    const char *materialize_dir;
};

/* policy_json, audit_path, audit_disabled and the version 1 layout. */
static void test_options(void) {
    char path[4200], log[4200];
    tbs_options options;
    tbs_store *store = NULL;
    tbs_buffer out = {NULL, 0};

    CHECK_OK(tbs_options_init(&options));
    CHECK(options.version == TBS_OPTIONS_VERSION && TBS_OPTIONS_VERSION == 3);
    CHECK(options.policy_json == NULL && options.audit_path == NULL && !options.audit_disabled &&
          options.audit_callback == NULL && options.audit_user_data == NULL);

    /* Invalid policies fail at open. */
    path_in(path, sizeof path, "policy.db");
    const char *invalid[] = {"not json", "{\"rules\":[{\"role\":\"ROOT\",\"operations\":[],"
                                         "\"tenants\":\"own\"}]}",
                             "{\"rules\":[],\"extra\":1}", BAD_UTF8};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        options.policy_json = invalid[i];
        CHECK_STATUS(tbs_store_open(path, KEY, 32, &options, &store), TBS_INVALID_ARGUMENT);
        CHECK(store == NULL);
    }
    CHECK(last_error_contains("policy_json"));

    /* A custom policy: tenant administrators may also resolve; SERVICE may do nothing. */
    options.policy_json = "{\"rules\":[{\"role\":\"TENANT_ADMIN\",\"operations\":[\"READ\","
                          "\"RESOLVE\"],\"tenants\":\"own\"}]}";
    path_in(log, sizeof log, "custom-audit.jsonl");
    options.audit_path = log;
    CHECK_OK(tbs_store_open(path, KEY, 32, &options, &store));
    if (store == NULL) {
        return;
    }
    CHECK(file_exists(log));
    CHECK_OK(tbs_store_audit_log_path(store, &out));
    CHECK(buffer_equals(&out, log));
    tbs_buffer_free(&out);
    CHECK_OK(put(store, TA, "k", VALUES[0]));
    tbs_store *admin = session(store, TA, TBS_ROLE_TENANT_ADMIN, NULL);
    tbs_store *svc = session(store, TA, TBS_ROLE_SERVICE, NULL);
    CHECK_OK(get_equals(admin, TA, "k", VALUES[0]));
    CHECK_STATUS(get_equals(admin, TB, "k", VALUES[0]), TBS_PERMISSION_DENIED);
    CHECK_STATUS(put(admin, TA, "k2", "v"), TBS_PERMISSION_DENIED); /* no WRITE any more */
    CHECK_STATUS(get_equals(svc, TA, "k", VALUES[0]), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_list(svc, TA, NULL, 0, 0, &out), TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_close(svc));
    CHECK_OK(tbs_store_close(admin));
    CHECK_OK(tbs_store_verify_audit_log(store, NULL, &out));
    CHECK(json_number(&out, "records") >= 4);
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_close(store));
    CHECK(!file_exists(strcat(path, ".audit.jsonl"))); /* the log went to audit_path */

    /* Auditing disabled: no file, nothing to verify. */
    CHECK_OK(tbs_options_init(&options));
    options.audit_disabled = true;
    options.audit_path = BAD_UTF8; /* still checked */
    path_in(path, sizeof path, "quiet.db");
    CHECK_STATUS(tbs_store_open(path, KEY, 32, &options, &store), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("audit_path"));
    options.audit_path = NULL;
    CHECK_OK(tbs_store_open(path, KEY, 32, &options, &store));
    if (store != NULL) {
        CHECK_OK(put(store, TA, "k", VALUES[0]));
        CHECK_STATUS(tbs_store_audit_log_path(store, &out), TBS_NOT_FOUND);
        CHECK_STATUS(tbs_store_verify_audit_log(store, NULL, &out), TBS_INVALID_ARGUMENT);
        CHECK(out.data == NULL);
        CHECK_OK(tbs_store_close(store));
    }
    CHECK(!file_exists(strcat(path, ".audit.jsonl")));

    /* A version 1 struct (smaller) is still accepted; it gets the default policy and audit. */
    struct options_v1 *old = malloc(sizeof *old); /* exactly its size: ASan sees over-reads */
    CHECK(old != NULL);
    if (old != NULL) {
        memset(old, 0, sizeof *old);
        old->version = 1;
        old->max_versions = 3;
        old->max_text_chars = 4;
        old->max_file_bytes = 1024;
        old->busy_timeout_ms = 1000;
        old->create_if_missing = true;
        path_in(path, sizeof path, "v1.db");
        store = NULL;
        CHECK_OK(tbs_store_open(path, KEY, 32, (const tbs_options *)(const void *)old, &store));
        free(old);
        if (store != NULL) {
            CHECK_STATUS(put(store, TA, "long", "12345"), TBS_INVALID_ARGUMENT);
            CHECK_OK(put(store, TA, "k", "1234"));
            tbs_store *svc = session(store, TA, TBS_ROLE_SERVICE, NULL);
            CHECK_OK(get_equals(svc, TA, "k", "1234"));
            CHECK_STATUS(put(svc, TA, "k2", "1"), TBS_PERMISSION_DENIED);
            CHECK_OK(tbs_store_close(svc));
            CHECK_OK(tbs_store_close(store));
            CHECK(file_exists(strcat(path, ".audit.jsonl")));
        }
    }
}

/* Copies a file, replacing the first occurrence of `from` (one byte) after `skip_lines`
 * lines with `to`. Returns 0 on success. */
static int copy_with_edit(const char *src, const char *dst, int skip_lines, char from, char to) {
    FILE *in = fopen(src, "rb");
    if (in == NULL) {
        return -1;
    }
    FILE *out = fopen(dst, "wb");
    if (out == NULL) {
        fclose(in);
        return -1;
    }
    int c, lines = 0, edited = 0;
    while ((c = fgetc(in)) != EOF) {
        if (!edited && lines >= skip_lines && c == from) {
            c = to;
            edited = 1;
        }
        if (c == '\n') {
            lines++;
        }
        fputc(c, out);
    }
    fclose(in);
    fclose(out);
    return edited ? 0 : -1;
}

/* The callback gets every record (denied attempts included, never a value); the file
 * verifies; an edited byte is found. */
static void test_audit(void) {
    tbs_options options;
    CHECK_OK(tbs_options_init(&options));
    options.audit_callback = on_audit;
    options.audit_user_data = &audit_user_data_tag;
    tbs_store *root = open_store("audited.db", KEY, &options);
    if (root == NULL) {
        return;
    }
    tbs_buffer out = {NULL, 0};
    CHECK_OK(put(root, TA, "api-key", VALUES[0]));
    CHECK_OK(put(root, TB, "b-key", VALUES[1]));
    tbs_store *svc = session(root, TA, TBS_ROLE_SERVICE, "rule-engine");
    tbs_store *admin = session(root, TA, TBS_ROLE_TENANT_ADMIN, "alice");
    for (int i = 0; i < 3; i++) {
        CHECK_OK(get_equals(svc, TA, "api-key", VALUES[0]));
    }
    CHECK_STATUS(get_equals(admin, TA, "api-key", VALUES[0]), TBS_PERMISSION_DENIED);
    CHECK_STATUS(get_equals(svc, TB, "b-key", VALUES[1]), TBS_PERMISSION_DENIED);
    CHECK_STATUS(put(svc, TA, "svc-made", VALUES[2]), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_delete(svc, TA, "api-key", true), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_store_info(svc, TB, "b-key", &out), TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_update_value(admin, TA, "api-key", (const uint8_t *)VALUES[2],
                                    strlen(VALUES[2]), TBS_ANY_VERSION, NULL));
    CHECK_OK(tbs_store_flush_usage(svc)); /* writes the batched GET records */

    pthread_mutex_lock(&audit.lock);
    unsigned long records = audit.records;
    /* 3 management records + 1 batched GET OK + 2 denied GETs + 3 denied management calls. */
    CHECK(records >= 9);
    CHECK(audit.denied >= 5);
    CHECK(audit.service_records >= 4);
    CHECK(audit.bad_lines == 0);
    CHECK(audit.with_value == 0);
    pthread_mutex_unlock(&audit.lock);

    /* Verifying: every record the callback got is in the file. */
    char log[4200], copy[4200];
    CHECK_OK(tbs_store_audit_log_path(root, &out));
    CHECK(out.data != NULL && out.len < sizeof log);
    snprintf(log, sizeof log, "%s", out.data == NULL ? "" : (const char *)out.data);
    tbs_buffer_free(&out);
    CHECK(strstr(log, "audited.db.audit.jsonl") != NULL);
    CHECK_OK(tbs_store_verify_audit_log(root, NULL, &out));
    CHECK(json_number(&out, "records") == records && json_number(&out, "last_seq") == records);
    CHECK(buffer_contains(&out, "\"problem\":null"));
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_verify_audit_log(root, log, NULL));

    /* One edited byte on line 3 (a tenant name) is found, and the report still comes back. */
    path_in(copy, sizeof copy, "edited.audit.jsonl");
    CHECK(copy_with_edit(log, copy, 2, 't', 'T') == 0);
    CHECK_STATUS(tbs_store_verify_audit_log(root, copy, &out), TBS_INTEGRITY);
    CHECK(last_error_contains("INTEGRITY: audit log line 3: "));
    CHECK(buffer_contains(&out, "\"problem\":{\"line\":3"));
    CHECK(json_number(&out, "records") == 2);
    tbs_buffer_free(&out);
    /* A missing log while the store has sealed records: deleted, and said so. */
    path_in(copy, sizeof copy, "missing.audit.jsonl");
    CHECK_STATUS(tbs_store_verify_audit_log(root, copy, &out), TBS_INTEGRITY);
    CHECK(last_error_contains("does not exist"));
    CHECK(buffer_contains(&out, "\"problem\":{\"line\":1"));
    tbs_buffer_free(&out);

    CHECK_OK(tbs_store_close(admin));
    CHECK_OK(tbs_store_close(svc));
    CHECK_OK(tbs_store_close(root));

    /* Editing the store's own log is found after reopening too. */
    path_in(copy, sizeof copy, "edited-again.audit.jsonl");
    CHECK(copy_with_edit(log, copy, 1, '"', '\'') == 0);
    CHECK(rename(copy, log) == 0);
    root = open_store("audited.db", KEY, NULL);
    if (root != NULL) {
        CHECK_STATUS(tbs_store_verify_audit_log(root, NULL, &out), TBS_INTEGRITY);
        CHECK(last_error_contains("audit log line 2: "));
        tbs_buffer_free(&out);
        CHECK_OK(tbs_store_close(root));
    }
    pthread_mutex_lock(&audit.lock);
    CHECK(audit.bad_lines == 0 && audit.with_value == 0);
    pthread_mutex_unlock(&audit.lock);
}

/* Master-key rotation by SYS_ADMIN: the old key can no longer open the store, the new one
 * can and every value reads back. */
static void test_master_key_rotation(void) {
    tbs_store *root = open_store("rotate.db", KEY, NULL);
    if (root == NULL) {
        return;
    }
    CHECK_OK(put(root, TA, "a", VALUES[0]));
    CHECK_OK(put(root, TB, "b", VALUES[1]));
    tbs_store *sys = session(root, "platform", TBS_ROLE_SYS_ADMIN, "ops");
    tbs_store *svc = session(root, TA, TBS_ROLE_SERVICE, NULL);
    tbs_buffer report = {NULL, 0};
    CHECK_STATUS(tbs_store_rotate_master_key(sys, KEY, 31, &report), TBS_INVALID_ARGUMENT);
    CHECK_OK(tbs_store_rotate_master_key(sys, NEW_KEY, sizeof NEW_KEY, &report));
    CHECK(json_number(&report, "keys") >= 2 && json_number(&report, "key_id") == 2);
    tbs_buffer_free(&report);
    /* Every handle of the store switched to the new key at once. */
    CHECK_OK(get_equals(svc, TA, "a", VALUES[0]));
    CHECK_OK(get_equals(root, TB, "b", VALUES[1]));
    CHECK_OK(put(root, "tenant-c", "c", VALUES[3])); /* a new data key, wrapped by NEW_KEY */
    CHECK_OK(tbs_store_close(svc));
    CHECK_OK(tbs_store_close(sys));
    CHECK_OK(tbs_store_close(root));

    char db[4200];
    path_in(db, sizeof db, "rotate.db");
    tbs_store *store = NULL;
    CHECK_STATUS(tbs_store_open(db, KEY, 32, NULL, &store), TBS_WRONG_MASTER_KEY);
    CHECK(store == NULL);
    CHECK_OK(tbs_store_open(db, NEW_KEY, 32, NULL, &store));
    if (store != NULL) {
        CHECK_OK(get_equals(store, TA, "a", VALUES[0]));
        CHECK_OK(get_equals(store, TB, "b", VALUES[1]));
        CHECK_OK(get_equals(store, "tenant-c", "c", VALUES[3]));
        /* The host (root handle) may rotate too; the audit log survives rotations. */
        CHECK_OK(tbs_store_rotate_master_key(store, KEY, 32, NULL));
        CHECK_OK(tbs_store_verify_audit_log(store, NULL, NULL));
        CHECK_OK(tbs_store_close(store));
    }
    CHECK_OK(tbs_store_open(db, KEY, 32, NULL, &store));
    CHECK_OK(tbs_store_close(store));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    for (int i = 0; i < 32; i++) {
        KEY[i] = (uint8_t)i;
        NEW_KEY[i] = (uint8_t)(0x40 + i);
    }
    CHECK(TBS_ROLE_SYS_ADMIN == 1 && TBS_ROLE_TENANT_ADMIN == 2 && TBS_ROLE_CUSTOMER_USER == 3 &&
          TBS_ROLE_SERVICE == 4);

    tbs_store *root = open_store("access.db", KEY, NULL);
    if (root == NULL) {
        return finish("test_access");
    }
    test_default_policy(root);
    test_arguments(root);
    CHECK_OK(tbs_store_close(root));

    test_session_after_root_close();
    test_options();
    test_audit();
    test_master_key_rotation();
    return finish("test_access");
}
