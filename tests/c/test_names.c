/* Sessions restricted to an allow-list of names (tbs_session_allow_names): allowed and denied
 * names, denials in the audit log, enumeration refused, invalid arguments; per-message names
 * filled from message variables (tbs_store_resolve_vars), hostile values refused.
 * Usage: test_names WORK_DIR (an empty private directory). */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>

#include "check.h"

static const char *T = "tenant-a";
static uint8_t KEY[32];
static char work[4096];
static char db[4200];

static const char *const VALUES[] = {"names-api-value-1", "names-device-a-2", "names-db-3",
                                     "names-sensor-4"};

static tbs_status put(tbs_store *store, const char *name, const char *value) {
    return tbs_store_create(store, T, name, TBS_TYPE_TEXT, (const uint8_t *)value, strlen(value),
                            NULL, NULL);
}

static int last_error_contains(const char *needle) {
    return strstr(tbs_last_error_message(), needle) != NULL;
}

/* The whole file at `path` (NUL-terminated; caller frees), or NULL. */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    size_t n;
    while (text != NULL && (n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *bigger = realloc(text, cap *= 2);
            if (bigger == NULL) {
                free(text);
                text = NULL;
            }
            text = bigger;
        }
    }
    fclose(f);
    if (text != NULL) {
        text[len] = 0;
    }
    return text;
}

/* Whether one line of `log` holds every one of the needles. */
static int log_has_line(const char *log, const char *a, const char *b, const char *c) {
    const char *line = log;
    while (line != NULL && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end == NULL ? strlen(line) : (size_t)(end - line);
        char buf[2048];
        if (len < sizeof buf) {
            memcpy(buf, line, len);
            buf[len] = 0;
            if (strstr(buf, a) && strstr(buf, b) && strstr(buf, c)) {
                return 1;
            }
        }
        line = end == NULL ? NULL : end + 1;
    }
    return 0;
}

static void test_allow_list(tbs_store *root) {
    CHECK_OK(put(root, "MyApiKey", VALUES[0]));
    CHECK_OK(put(root, "device-a-token", VALUES[1]));
    CHECK_OK(put(root, "db-password", VALUES[2]));

    tbs_store *svc = NULL;
    CHECK_OK(tbs_store_session(root, T, TBS_ROLE_SERVICE, "node-7", &svc));
    const char *const allowed[] = {"MyApiKey", "device-*"};
    tbs_store *node = NULL;
    CHECK_OK(tbs_session_allow_names(svc, allowed, 2, &node));
    CHECK(node != NULL && node != svc);

    tbs_buffer value = {NULL, 0};
    CHECK_OK(tbs_store_get(node, T, "device-a-token", &value));
    CHECK(buffer_equals(&value, VALUES[1]));
    tbs_buffer_free(&value);
    CHECK_STATUS(tbs_store_get(node, T, "db-password", &value), TBS_PERMISSION_DENIED);
    CHECK(value.data == NULL);
    CHECK(last_error_contains("'db-password'"));
    CHECK(!last_error_contains(VALUES[2]));
    /* The unrestricted session it came from is unchanged. */
    CHECK_OK(tbs_store_get(svc, T, "db-password", &value));
    tbs_buffer_free(&value);

    const char *doc = "a=${secret:MyApiKey} b=${secret:db-password}";
    CHECK_STATUS(tbs_store_resolve_text(node, T, (const uint8_t *)doc, strlen(doc), 0, &value),
                 TBS_UNRESOLVED);
    CHECK(last_error_contains("db-password") && last_error_contains("allow-list"));
    CHECK(!last_error_contains(VALUES[0]));

    /* No enumeration. */
    tbs_buffer page = {NULL, 0};
    CHECK_STATUS(tbs_store_list(node, T, NULL, 0, 100, &page), TBS_PERMISSION_DENIED);
    CHECK(last_error_contains("allow-list"));

    /* An empty list allows nothing; a restricted session cannot be restricted again; the root
     * handle cannot be restricted. */
    tbs_store *none = NULL;
    CHECK_OK(tbs_session_allow_names(svc, NULL, 0, &none));
    CHECK_STATUS(tbs_store_get(none, T, "MyApiKey", &value), TBS_PERMISSION_DENIED);
    tbs_store *again = NULL;
    const char *const wide[] = {"*"};
    CHECK_STATUS(tbs_session_allow_names(node, wide, 1, &again), TBS_PERMISSION_DENIED);
    CHECK_STATUS(tbs_session_allow_names(root, wide, 1, &again), TBS_PERMISSION_DENIED);
    CHECK(again == NULL);

    /* Invalid arguments. */
    const char *const bad_entries[][1] = {{""}, {"a;b"}, {"${secret:x}"}, {"a\nb"}, {NULL}};
    for (size_t i = 0; i < sizeof bad_entries / sizeof bad_entries[0]; i++) {
        CHECK_STATUS(tbs_session_allow_names(svc, bad_entries[i], 1, &again),
                     TBS_INVALID_ARGUMENT);
    }
    CHECK(last_error_contains("allowed_names[0]"));
    CHECK_STATUS(tbs_session_allow_names(svc, NULL, 1, &again), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_session_allow_names(svc, wide, 1, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_session_allow_names(NULL, wide, 1, &again), TBS_INVALID_ARGUMENT);
    CHECK(again == NULL);

    CHECK_OK(tbs_store_close(none));
    CHECK_OK(tbs_store_close(node));
    CHECK_OK(tbs_store_close(svc));
}

static tbs_status resolve_vars(tbs_store *store, tbs_format format, const char *doc,
                               const char *device, tbs_buffer *out) {
    const char *const keys[] = {"deviceName", "unused"};
    const char *const values[] = {device, "../../anything;*"};
    return tbs_store_resolve_vars(store, T, format, (const uint8_t *)doc, strlen(doc), 0, keys,
                                  values, 2, out);
}

static void test_per_message_names(tbs_store *root) {
    CHECK_OK(put(root, "device-sensor-1-token", VALUES[3]));
    tbs_store *svc = NULL, *node = NULL;
    CHECK_OK(tbs_store_session(root, T, TBS_ROLE_SERVICE, "node-7", &svc));
    const char *const allowed[] = {"device-*-token"};
    CHECK_OK(tbs_session_allow_names(svc, allowed, 1, &node));

    const char *text = "Bearer ${secret:device-{{metadata.deviceName}}-token;type:TEXT}";
    tbs_buffer out = {NULL, 0};
    CHECK_OK(resolve_vars(node, TBS_FORMAT_TEXT, text, "sensor-1", &out));
    CHECK(buffer_equals(&out, "Bearer names-sensor-4"));
    tbs_buffer_free(&out);
    const char *json = "{\"h\":\"${secret:device-{{metadata.deviceName}}-token}\",\"n\":1}";
    CHECK_OK(resolve_vars(node, TBS_FORMAT_JSON, json, "sensor-1", &out));
    CHECK(buffer_equals(&out, "{\"h\":\"names-sensor-4\",\"n\":1}"));
    tbs_buffer_free(&out);
    const char *data_keys[] = {"data.device"};
    const char *data_values[] = {"sensor-1"};
    const char *by_data = "${secret:device-{{data.device}}-token}";
    CHECK_OK(tbs_store_resolve_vars(node, T, TBS_FORMAT_TEXT, (const uint8_t *)by_data,
                                    strlen(by_data), 0, (const char *const *)data_keys,
                                    (const char *const *)data_values, 1, &out));
    CHECK(buffer_equals(&out, "names-sensor-4"));
    tbs_buffer_free(&out);

    /* Hostile metadata: refused, named, nothing written. */
    const char *hostile[] = {"../x", "*", "a;b", "}", "a\nb", "sensor-1/..", ""};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        CHECK_STATUS(resolve_vars(node, TBS_FORMAT_TEXT, text, hostile[i], &out), TBS_UNRESOLVED);
        CHECK(out.data == NULL);
        CHECK(last_error_contains("device-{{metadata.deviceName}}-token"));
    }
    char long_value[301];
    memset(long_value, 'a', 300);
    long_value[300] = 0;
    CHECK_STATUS(resolve_vars(node, TBS_FORMAT_TEXT, text, long_value, &out), TBS_UNRESOLVED);
    /* A filled name outside the allow-list, and a session without one. */
    const char *escape = "${secret:{{metadata.deviceName}}}";
    CHECK_STATUS(resolve_vars(node, TBS_FORMAT_TEXT, escape, "db-password", &out), TBS_UNRESOLVED);
    CHECK(last_error_contains("allow-list") && !last_error_contains(VALUES[2]));
    CHECK_STATUS(resolve_vars(svc, TBS_FORMAT_TEXT, text, "sensor-1", &out), TBS_UNRESOLVED);
    CHECK(last_error_contains("allow-list"));
    CHECK_STATUS(resolve_vars(root, TBS_FORMAT_TEXT, text, "sensor-1", &out), TBS_UNRESOLVED);
    /* A missing variable. */
    CHECK_STATUS(tbs_store_resolve_vars(node, T, TBS_FORMAT_TEXT, (const uint8_t *)text,
                                        strlen(text), 0, NULL, NULL, 0, &out),
                 TBS_UNRESOLVED);
    CHECK(last_error_contains("{{metadata.deviceName}}"));
    /* Invalid arguments. */
    CHECK_STATUS(resolve_vars(node, TBS_FORMAT_AUTO, text, "sensor-1", &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_vars(node, T, TBS_FORMAT_TEXT, (const uint8_t *)text,
                                        strlen(text), 0, NULL, NULL, 1, &out),
                 TBS_INVALID_ARGUMENT);
    const char *null_key[] = {NULL};
    CHECK_STATUS(tbs_store_resolve_vars(node, T, TBS_FORMAT_TEXT, (const uint8_t *)text,
                                        strlen(text), 0, (const char *const *)null_key,
                                        (const char *const *)data_values, 1, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(resolve_vars(node, TBS_FORMAT_TEXT, text, "sensor-1", NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(out.data == NULL);

    /* where-used of a concrete name lists the source whose pattern matches it. */
    CHECK_OK(tbs_store_track_references(root, T, "rule-node-9", (const uint8_t *)json,
                                        strlen(json), NULL));
    tbs_buffer used = {NULL, 0};
    CHECK_OK(tbs_store_where_used(root, T, "device-sensor-1-token", &used));
    CHECK(buffer_contains(&used, "rule-node-9"));
    CHECK(buffer_contains(&used, "device-{{metadata.deviceName}}-token"));
    tbs_buffer_free(&used);

    CHECK_OK(tbs_store_close(node));
    CHECK_OK(tbs_store_close(svc));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    for (int i = 0; i < 32; i++) {
        KEY[i] = (uint8_t)(0x11 + i);
    }
    snprintf(db, sizeof db, "%s/names.db", work);
    tbs_store *root = NULL;
    CHECK_OK(tbs_store_open(db, KEY, 32, NULL, &root));
    if (root == NULL) {
        return finish("test_names");
    }
    test_allow_list(root);
    test_per_message_names(root);
    CHECK_OK(tbs_store_close(root));

    char log_path[4300];
    snprintf(log_path, sizeof log_path, "%s.audit.jsonl", db);
    char *log = read_file(log_path);
    CHECK(log != NULL);
    if (log != NULL) {
        CHECK(log_has_line(log, "\"GET\"", "\"db-password\"", "\"PERMISSION_DENIED\""));
        CHECK(log_has_line(log, "\"RESOLVE\"", "\"db-password\"", "\"PERMISSION_DENIED\""));
        CHECK(log_has_line(log, "\"node-7\"", "\"READ\"", "\"PERMISSION_DENIED\""));
        /* The filled name outside the allow-list, audited as a denial. */
        CHECK(log_has_line(log, "\"RESOLVE\"", "\"names\":[\"db-password\"]", "\"PERMISSION_DENIED\""));
        for (size_t i = 0; i < sizeof VALUES / sizeof VALUES[0]; i++) {
            CHECK(strstr(log, VALUES[i]) == NULL);
        }
        free(log);
    }
    return finish("test_names");
}
