/* Sessions restricted to an allow-list of names (tbs_session_allow_names): allowed and denied
 * names, denials in the audit log, enumeration refused, invalid arguments.
 * Usage: test_names WORK_DIR (an empty private directory). */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>

#include "check.h"

static const char *T = "tenant-a";
static uint8_t KEY[32];
static char work[4096];
static char db[4200];

static const char *const VALUES[] = {"names-api-value-1", "names-device-a-2", "names-db-3"};

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
    CHECK_OK(tbs_store_close(root));

    char log_path[4300];
    snprintf(log_path, sizeof log_path, "%s.audit.jsonl", db);
    char *log = read_file(log_path);
    CHECK(log != NULL);
    if (log != NULL) {
        CHECK(log_has_line(log, "\"GET\"", "\"db-password\"", "\"PERMISSION_DENIED\""));
        CHECK(log_has_line(log, "\"RESOLVE\"", "\"db-password\"", "\"PERMISSION_DENIED\""));
        CHECK(log_has_line(log, "\"node-7\"", "\"READ\"", "\"PERMISSION_DENIED\""));
        for (size_t i = 0; i < sizeof VALUES / sizeof VALUES[0]; i++) {
            CHECK(strstr(log, VALUES[i]) == NULL);
        }
        free(log);
    }
    return finish("test_names");
}
