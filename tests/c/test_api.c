/* Every function of the C API, every status reachable from C, NULL for every pointer
 * argument, invalid UTF-8, a 600 KiB value, a wrong master key, materialisation and atomic
 * output files. Usage: test_api WORK_DIR (an empty private directory). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static const char *T = "tenant-a";
static const char BAD_UTF8[] = {'b', 'a', 'd', (char)0xff, 0};
static uint8_t KEY[32];
static uint8_t OTHER_KEY[32];
/* KEY (bytes 0..31) in base64. */
static const char KEY_BASE64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
static char work[4096];

static const char *path_in(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", work, name);
    return out;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static unsigned file_mode(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        return 0;
    }
    return (unsigned)(st.st_mode & 0777);
}

static int write_file(const char *path, const char *text, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) {
        return -1;
    }
    size_t len = strlen(text);
    ssize_t written = write(fd, text, len);
    close(fd);
    return written == (ssize_t)len ? 0 : -1;
}

/* Reads a whole file into a malloc'd NUL-terminated string (NULL on error). */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *text = NULL;
    size_t len = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        char *bigger = realloc(text, len + n + 1);
        if (bigger == NULL) {
            free(text);
            fclose(f);
            return NULL;
        }
        text = bigger;
        memcpy(text + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (text == NULL) {
        text = calloc(1, 1);
    } else {
        text[len] = 0;
    }
    return text;
}

static int last_error_contains(const char *needle) {
    return strstr(tbs_last_error_message(), needle) != NULL;
}

static void test_static_functions(void) {
    /* Nothing has failed on this thread yet. */
    CHECK(strcmp(tbs_last_error_message(), "") == 0);

    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", TBS_VERSION_MAJOR, TBS_VERSION_MINOR,
             TBS_VERSION_PATCH);
    CHECK(strcmp(tbs_version(), expected) == 0);
    CHECK(strcmp(TBS_DEFAULT_TENANT, "default") == 0);

    static const char *names[] = {"OK",
                                  "INVALID_ARGUMENT",
                                  "NOT_FOUND",
                                  "ALREADY_EXISTS",
                                  "TYPE_MISMATCH",
                                  "PERMISSION_DENIED",
                                  "IN_USE",
                                  "CONFLICT",
                                  "MALFORMED_PLACEHOLDER",
                                  "UNRESOLVED",
                                  "WRONG_MASTER_KEY",
                                  "INTEGRITY",
                                  "STORAGE",
                                  "CLOSED",
                                  "INTERNAL",
                                  "ROLLBACK_DETECTED"};
    for (int i = 0; i < 16; i++) {
        CHECK(strcmp(tbs_status_str(i), names[i]) == 0);
    }
    CHECK(TBS_OK == 0 && TBS_INVALID_ARGUMENT == 1 && TBS_NOT_FOUND == 2 &&
          TBS_ALREADY_EXISTS == 3 && TBS_TYPE_MISMATCH == 4 && TBS_PERMISSION_DENIED == 5 &&
          TBS_IN_USE == 6 && TBS_CONFLICT == 7 && TBS_MALFORMED_PLACEHOLDER == 8 &&
          TBS_UNRESOLVED == 9 && TBS_WRONG_MASTER_KEY == 10 && TBS_INTEGRITY == 11 &&
          TBS_STORAGE == 12 && TBS_CLOSED == 13 && TBS_INTERNAL == 14 &&
          TBS_ROLLBACK_DETECTED == 15 && TBS_KEY_UNAVAILABLE == 16);
    CHECK(strcmp(tbs_status_str(-1), "UNKNOWN") == 0);
    CHECK(strcmp(tbs_status_str(16), "KEY_UNAVAILABLE") == 0);
    CHECK(strcmp(tbs_status_str(17), "UNKNOWN") == 0);

    tbs_options options;
    CHECK_STATUS(tbs_options_init(NULL), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("options is NULL"));
    CHECK_OK(tbs_options_init(&options));
    CHECK(options.version == TBS_OPTIONS_VERSION);
    CHECK(options.max_versions == 10);
    CHECK(options.max_text_chars == 2048);
    CHECK(options.max_file_bytes == 512 * 1024);
    CHECK(options.busy_timeout_ms == 10000);
    CHECK(options.create_if_missing);
    CHECK(!options.keep_materialized);
    CHECK(options.materialize_dir == NULL);

    /* Every free accepts NULL, an empty buffer, and a buffer freed before. */
    tbs_buffer empty = {NULL, 0};
    tbs_buffer_free(NULL);
    tbs_buffer_free(&empty);
    CHECK(empty.data == NULL && empty.len == 0);
    CHECK_OK(tbs_store_close(NULL));
}

static void test_open_errors(void) {
    char db[4200], other[4200];
    path_in(db, sizeof db, "open.db");
    tbs_store *sentinel = (tbs_store *)&sentinel;
    tbs_store *store = sentinel;
    tbs_options options;
    tbs_options_init(&options);

    CHECK_STATUS(tbs_store_open(NULL, KEY, 32, NULL, &store), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("path is NULL"));
    CHECK_STATUS(tbs_store_open(db, KEY, 32, NULL, NULL), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("out_store is NULL"));
    CHECK_STATUS(tbs_store_open(BAD_UTF8, KEY, 32, NULL, &store), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("UTF-8"));
    CHECK_STATUS(tbs_store_open(db, KEY, 16, NULL, &store), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("32 bytes"));
    CHECK_STATUS(tbs_store_open(db, NULL, 32, NULL, &store), TBS_INVALID_ARGUMENT);
    options.version = 99;
    CHECK_STATUS(tbs_store_open(db, KEY, 32, &options, &store), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("tbs_options_init"));
    tbs_options_init(&options);
    options.materialize_dir = BAD_UTF8;
    CHECK_STATUS(tbs_store_open(db, KEY, 32, &options, &store), TBS_INVALID_ARGUMENT);
    tbs_options_init(&options);
    options.create_if_missing = false;
    CHECK_STATUS(tbs_store_open(db, KEY, 32, &options, &store), TBS_NOT_FOUND);
    CHECK(!file_exists(db));
    /* No key at all: neither argument nor environment. */
    unsetenv("TBS_MASTER_KEY");
    unsetenv("TBS_MASTER_KEY_FILE");
    CHECK_STATUS(tbs_store_open(db, NULL, 0, NULL, &store), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("no master key"));
    /* A directory that does not exist. */
    path_in(other, sizeof other, "missing-dir/x.db");
    CHECK_STATUS(tbs_store_open(other, KEY, 32, NULL, &store), TBS_STORAGE);
    /* A file that is not a store. */
    path_in(other, sizeof other, "not-a-store.db");
    char junk[8192];
    memset(junk, 'j', sizeof junk - 1);
    junk[sizeof junk - 1] = 0;
    CHECK(write_file(other, junk, 0600) == 0);
    CHECK_STATUS(tbs_store_open(other, KEY, 32, NULL, &store), TBS_INTEGRITY);
    /* Failed opens never wrote the out-parameter. */
    CHECK(store == sentinel);

    /* Create, then a wrong key fails at open and changes nothing. */
    CHECK_OK(tbs_store_open(db, KEY, 32, NULL, &store));
    CHECK(store != sentinel && store != NULL);
    CHECK_OK(tbs_store_create(store, T, "k", TBS_TYPE_TEXT, (const uint8_t *)"v", 1, NULL, NULL));
    CHECK_OK(tbs_store_close(store));
    store = sentinel;
    CHECK_STATUS(tbs_store_open(db, OTHER_KEY, 32, NULL, &store), TBS_WRONG_MASTER_KEY);
    CHECK(last_error_contains("WRONG_MASTER_KEY"));
    CHECK(store == sentinel);
    CHECK(file_mode(db) == 0600);

    /* The key from TBS_MASTER_KEY, then from TBS_MASTER_KEY_FILE. */
    setenv("TBS_MASTER_KEY", KEY_BASE64, 1);
    CHECK_OK(tbs_store_open(db, NULL, 0, NULL, &store));
    tbs_buffer value = {NULL, 0};
    CHECK_OK(tbs_store_get(store, T, "k", &value));
    CHECK(buffer_equals(&value, "v"));
    tbs_buffer_free(&value);
    CHECK_OK(tbs_store_close(store));
    unsetenv("TBS_MASTER_KEY");
    char key_file[4200];
    path_in(key_file, sizeof key_file, "master.key");
    CHECK(write_file(key_file, KEY_BASE64, 0600) == 0);
    setenv("TBS_MASTER_KEY_FILE", key_file, 1);
    CHECK_OK(tbs_store_open(db, NULL, 0, NULL, &store));
    CHECK_OK(tbs_store_close(store));
    CHECK(chmod(key_file, 0644) == 0);
    CHECK_STATUS(tbs_store_open(db, NULL, 0, NULL, &store), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("group or others"));
    unsetenv("TBS_MASTER_KEY_FILE");
    /* An explicit key wins over the environment. */
    setenv("TBS_MASTER_KEY", "not base64", 1);
    CHECK_OK(tbs_store_open(db, KEY, 32, NULL, &store));
    CHECK_OK(tbs_store_close(store));
    unsetenv("TBS_MASTER_KEY");
}

static void test_crud(tbs_store *store) {
    uint64_t version = 0;
    const char *db_pw = "hunter2";

    /* create */
    CHECK_OK(tbs_store_create(store, T, "db-password", TBS_TYPE_TEXT, (const uint8_t *)db_pw,
                              strlen(db_pw), "plant DB", &version));
    CHECK(version == 1);
    CHECK_STATUS(tbs_store_create(store, T, "db-password", TBS_TYPE_TEXT,
                                  (const uint8_t *)"x", 1, NULL, NULL),
                 TBS_ALREADY_EXISTS);
    CHECK(last_error_contains("db-password"));
    CHECK_STATUS(tbs_store_create(NULL, T, "n", TBS_TYPE_TEXT, (const uint8_t *)"x", 1, NULL,
                                  NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("store is NULL"));
    CHECK_STATUS(tbs_store_create(store, NULL, "n", TBS_TYPE_TEXT, (const uint8_t *)"x", 1,
                                  NULL, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("tenant is NULL"));
    CHECK_STATUS(tbs_store_create(store, T, NULL, TBS_TYPE_TEXT, (const uint8_t *)"x", 1, NULL,
                                  NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("name is NULL"));
    CHECK_STATUS(tbs_store_create(store, T, "n", TBS_TYPE_TEXT, NULL, 1, NULL, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("value is NULL"));
    CHECK_STATUS(tbs_store_create(store, BAD_UTF8, "n", TBS_TYPE_TEXT, (const uint8_t *)"x", 1,
                                  NULL, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("tenant is not valid UTF-8"));
    CHECK_STATUS(tbs_store_create(store, T, BAD_UTF8, TBS_TYPE_TEXT, (const uint8_t *)"x", 1,
                                  NULL, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_create(store, T, "n", TBS_TYPE_TEXT, (const uint8_t *)"x", 1,
                                  BAD_UTF8, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_create(store, T, "n", TBS_TYPE_TEXT, (const uint8_t *)BAD_UTF8, 4,
                                  NULL, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("UTF-8"));
    CHECK_STATUS(tbs_store_create(store, T, "n", 7, (const uint8_t *)"x", 1, NULL, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("unknown secret type 7"));
    CHECK_STATUS(tbs_store_create(store, T, "a;b", TBS_TYPE_TEXT, (const uint8_t *)"x", 1, NULL,
                                  NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("reserved"));
    /* A 600 KiB TEXT_FILE is over the default 512 KiB limit. */
    size_t big_len = 600 * 1024;
    uint8_t *big = malloc(big_len);
    CHECK(big != NULL);
    memset(big, 'P', big_len);
    CHECK_STATUS(tbs_store_create(store, T, "big", TBS_TYPE_TEXT_FILE, big, big_len, NULL, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("614400 bytes"));
    free(big);
    /* NULL with length 0 is an empty value; NULL description and out_version are allowed. */
    CHECK_OK(tbs_store_create(store, T, "empty", TBS_TYPE_TEXT, NULL, 0, NULL, NULL));
    /* A binary TEXT_FILE value with NUL bytes. */
    static const uint8_t binary[] = {0, 1, 2, 0, 255, 'x'};
    CHECK_OK(tbs_store_create(store, T, "blob", TBS_TYPE_TEXT_FILE, binary, sizeof binary, "",
                              &version));

    /* get */
    tbs_buffer value = {NULL, 0};
    CHECK_OK(tbs_store_get(store, T, "db-password", &value));
    CHECK(buffer_equals(&value, db_pw));
    tbs_buffer_free(&value);
    CHECK(value.data == NULL && value.len == 0);
    tbs_buffer_free(&value); /* twice is harmless */
    CHECK_OK(tbs_store_get(store, T, "empty", &value));
    CHECK(value.len == 0 && value.data != NULL && value.data[0] == 0);
    tbs_buffer_free(&value);
    CHECK_OK(tbs_store_get(store, T, "blob", &value));
    CHECK(value.len == sizeof binary && memcmp(value.data, binary, sizeof binary) == 0 &&
          value.data[value.len] == 0);
    tbs_buffer_free(&value);
    tbs_buffer untouched = {(uint8_t *)&untouched, 12345};
    CHECK_STATUS(tbs_store_get(store, T, "nope", &untouched), TBS_NOT_FOUND);
    CHECK(last_error_contains("'nope' not found in tenant 'tenant-a'"));
    CHECK(untouched.data == (uint8_t *)&untouched && untouched.len == 12345);
    CHECK_STATUS(tbs_store_get(store, "other-tenant", "db-password", &value), TBS_NOT_FOUND);
    CHECK_STATUS(tbs_store_get(NULL, T, "db-password", &value), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_get(store, NULL, "db-password", &value), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_get(store, T, NULL, &value), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_get(store, T, "db-password", NULL), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("out_value is NULL"));
    CHECK_STATUS(tbs_store_get(store, BAD_UTF8, "db-password", &value), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_get(store, T, BAD_UTF8, &value), TBS_INVALID_ARGUMENT);
    CHECK(value.data == NULL);

    /* update_value with check-and-set */
    CHECK_OK(tbs_store_update_value(store, T, "db-password", (const uint8_t *)"v2", 2, 1,
                                    &version));
    CHECK(version == 2);
    CHECK_STATUS(tbs_store_update_value(store, T, "db-password", (const uint8_t *)"v3", 2, 1,
                                        &version),
                 TBS_CONFLICT);
    CHECK(last_error_contains("version 2"));
    CHECK(version == 2);
    CHECK_OK(tbs_store_update_value(store, T, "db-password", (const uint8_t *)"v3", 2,
                                    TBS_ANY_VERSION, NULL));
    CHECK_STATUS(tbs_store_update_value(store, T, "nope", (const uint8_t *)"x", 1, 0, NULL),
                 TBS_NOT_FOUND);
    CHECK_STATUS(tbs_store_update_value(NULL, T, "db-password", (const uint8_t *)"x", 1, 0,
                                        NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_update_value(store, NULL, "db-password", (const uint8_t *)"x", 1, 0,
                                        NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_update_value(store, T, NULL, (const uint8_t *)"x", 1, 0, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_update_value(store, T, "db-password", NULL, 1, 0, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_update_value(store, T, "db-password", (const uint8_t *)BAD_UTF8, 4,
                                        0, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_OK(tbs_store_get(store, T, "db-password", &value));
    CHECK(buffer_equals(&value, "v3"));
    tbs_buffer_free(&value);

    /* update_description */
    CHECK_OK(tbs_store_update_description(store, T, "db-password", "the plant DB"));
    CHECK_STATUS(tbs_store_update_description(store, T, "nope", "d"), TBS_NOT_FOUND);
    CHECK_STATUS(tbs_store_update_description(NULL, T, "db-password", "d"),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_update_description(store, NULL, "db-password", "d"),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_update_description(store, T, NULL, "d"), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_update_description(store, T, "db-password", NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_update_description(store, T, "db-password", BAD_UTF8),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_update_description(store, T, "db-password", "line\nbreak"),
                 TBS_INVALID_ARGUMENT);

    /* info */
    tbs_buffer json = {NULL, 0};
    CHECK_OK(tbs_store_info(store, T, "db-password", &json));
    CHECK(buffer_contains(&json, "\"name\":\"db-password\""));
    CHECK(buffer_contains(&json, "\"type\":\"TEXT\""));
    CHECK(buffer_contains(&json, "\"version\":3"));
    CHECK(buffer_contains(&json, "\"description\":\"the plant DB\""));
    CHECK(!buffer_contains(&json, "v3\""));
    CHECK(json.data[json.len] == 0 && strlen((const char *)json.data) == json.len);
    tbs_buffer_free(&json);
    CHECK_STATUS(tbs_store_info(store, T, "nope", &json), TBS_NOT_FOUND);
    CHECK_STATUS(tbs_store_info(NULL, T, "db-password", &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_info(store, NULL, "db-password", &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_info(store, T, NULL, &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_info(store, T, "db-password", NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_info(store, T, BAD_UTF8, &json), TBS_INVALID_ARGUMENT);

    /* flush_usage: the gets above are counted */
    CHECK_OK(tbs_store_flush_usage(store));
    CHECK_STATUS(tbs_store_flush_usage(NULL), TBS_INVALID_ARGUMENT);
    CHECK_OK(tbs_store_info(store, T, "db-password", &json));
    CHECK(!buffer_contains(&json, "\"use_count\":0"));
    CHECK(!buffer_contains(&json, "\"last_used_at\":null"));
    tbs_buffer_free(&json);

    /* list */
    CHECK_OK(tbs_store_list(store, T, NULL, 0, 0, &json));
    CHECK(buffer_contains(&json, "\"total\":3"));
    CHECK(buffer_contains(&json, "\"has_more\":false"));
    CHECK(buffer_contains(&json, "\"name\":\"blob\""));
    tbs_buffer_free(&json);
    CHECK_OK(tbs_store_list(store, T, "pass", 0, 0, &json));
    CHECK(buffer_contains(&json, "\"total\":1") && buffer_contains(&json, "db-password"));
    tbs_buffer_free(&json);
    CHECK_OK(tbs_store_list(store, T, NULL, 1, 1, &json));
    CHECK(buffer_contains(&json, "\"has_more\":true") &&
          buffer_contains(&json, "\"name\":\"db-password\"") &&
          !buffer_contains(&json, "\"name\":\"blob\""));
    tbs_buffer_free(&json);
    CHECK_OK(tbs_store_list(store, "nobody", NULL, 0, 0, &json));
    CHECK(buffer_equals(&json, "{\"items\":[],\"total\":0,\"has_more\":false,\"next_after\":null}"));
    tbs_buffer_free(&json);
    CHECK_STATUS(tbs_store_list(NULL, T, NULL, 0, 0, &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_list(store, NULL, NULL, 0, 0, &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_list(store, T, NULL, 0, 0, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_list(store, T, BAD_UTF8, 0, 0, &json), TBS_INVALID_ARGUMENT);
    /* list_after: pages by cursor, the next cursor in the JSON */
    CHECK_OK(tbs_store_list_after(store, T, NULL, NULL, 1, &json));
    CHECK(buffer_contains(&json, "\"name\":\"blob\"") &&
          buffer_contains(&json, "\"next_after\":\"blob\"") &&
          buffer_contains(&json, "\"total\":3"));
    tbs_buffer_free(&json);
    CHECK_OK(tbs_store_list_after(store, T, NULL, "blob", 1, &json));
    CHECK(buffer_contains(&json, "\"name\":\"db-password\"") &&
          buffer_contains(&json, "\"next_after\":\"db-password\"") &&
          !buffer_contains(&json, "\"name\":\"blob\""));
    tbs_buffer_free(&json);
    CHECK_OK(tbs_store_list_after(store, T, NULL, "db-password", 0, &json));
    CHECK(buffer_contains(&json, "\"has_more\":false,\"next_after\":null") &&
          !buffer_contains(&json, "\"name\":\"db-password\""));
    tbs_buffer_free(&json);
    CHECK_STATUS(tbs_store_list_after(store, T, NULL, BAD_UTF8, 1, &json), TBS_INVALID_ARGUMENT);

    /* history */
    CHECK_OK(tbs_store_history(store, T, "db-password", &json));
    CHECK(buffer_contains(&json, "{\"version\":3,"));
    CHECK(buffer_contains(&json, "\"current\":true"));
    CHECK(buffer_contains(&json, "{\"version\":1,"));
    tbs_buffer_free(&json);
    CHECK_STATUS(tbs_store_history(store, T, "nope", &json), TBS_NOT_FOUND);
    CHECK_STATUS(tbs_store_history(NULL, T, "db-password", &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_history(store, NULL, "db-password", &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_history(store, T, NULL, &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_history(store, T, "db-password", NULL), TBS_INVALID_ARGUMENT);

    /* rollback */
    CHECK_OK(tbs_store_rollback(store, T, "db-password", 1, &version));
    CHECK(version == 4);
    CHECK_OK(tbs_store_get(store, T, "db-password", &value));
    CHECK(buffer_equals(&value, db_pw));
    tbs_buffer_free(&value);
    CHECK_STATUS(tbs_store_rollback(store, T, "db-password", 99, NULL), TBS_NOT_FOUND);
    CHECK(last_error_contains("version 99"));
    CHECK_STATUS(tbs_store_rollback(store, T, "nope", 1, NULL), TBS_NOT_FOUND);
    CHECK_STATUS(tbs_store_rollback(NULL, T, "db-password", 1, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_rollback(store, NULL, "db-password", 1, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_rollback(store, T, NULL, 1, NULL), TBS_INVALID_ARGUMENT);

    /* delete */
    CHECK_OK(tbs_store_delete(store, T, "empty", false));
    CHECK_STATUS(tbs_store_delete(store, T, "empty", false), TBS_NOT_FOUND);
    CHECK_STATUS(tbs_store_delete(NULL, T, "blob", false), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_delete(store, NULL, "blob", false), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_delete(store, T, NULL, false), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_delete(store, T, BAD_UTF8, false), TBS_INVALID_ARGUMENT);

    /* soft delete: listed only as deleted, undelete brings it back, destroy erases it */
    CHECK_OK(tbs_store_list_deleted(store, T, NULL, 0, 0, &json));
    CHECK(strstr((const char *)json.data, "\"name\":\"empty\"") != NULL);
    CHECK(strstr((const char *)json.data, "\"deleted_at\":") != NULL);
    tbs_buffer_free(&json);
    CHECK_OK(tbs_store_list(store, T, NULL, 0, 0, &json));
    CHECK(strstr((const char *)json.data, "\"empty\"") == NULL);
    tbs_buffer_free(&json);
    CHECK_STATUS(tbs_store_create(store, T, "empty", TBS_TYPE_TEXT, (const uint8_t *)"x", 1, NULL,
                                  NULL),
                 TBS_ALREADY_EXISTS);
    CHECK(last_error_contains("undelete"));
    CHECK_OK(tbs_store_undelete(store, T, "empty"));
    CHECK_STATUS(tbs_store_undelete(store, T, "empty"), TBS_NOT_FOUND);
    CHECK_OK(tbs_store_info(store, T, "empty", &json));
    tbs_buffer_free(&json);
    CHECK_OK(tbs_store_destroy(store, T, "empty"));
    CHECK_STATUS(tbs_store_destroy(store, T, "empty"), TBS_NOT_FOUND);
    CHECK_STATUS(tbs_store_undelete(store, T, "empty"), TBS_NOT_FOUND);
    CHECK_OK(tbs_store_list_deleted(store, T, NULL, 0, 0, &json));
    CHECK(strstr((const char *)json.data, "\"total\":0") != NULL);
    tbs_buffer_free(&json);
    CHECK_STATUS(tbs_store_undelete(NULL, T, "blob"), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_undelete(store, NULL, "blob"), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_undelete(store, T, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_undelete(store, T, BAD_UTF8), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_destroy(NULL, T, "blob"), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_destroy(store, NULL, "blob"), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_destroy(store, T, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_destroy(store, T, BAD_UTF8), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_list_deleted(NULL, T, NULL, 0, 0, &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_list_deleted(store, T, NULL, 0, 0, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_list_deleted(store, T, BAD_UTF8, 0, 0, &json), TBS_INVALID_ARGUMENT);
}

static const char PEM[] = "-----BEGIN CERTIFICATE-----\nMIIB\"quoted\"\n-----END CERTIFICATE-----\n";

static void test_resolve(tbs_store *store) {
    tbs_buffer out = {NULL, 0};
    CHECK_OK(tbs_store_create(store, T, "user", TBS_TYPE_TEXT, (const uint8_t *)"alice", 5, NULL,
                              NULL));
    CHECK_OK(tbs_store_create(store, T, "ca", TBS_TYPE_TEXT_FILE, (const uint8_t *)PEM,
                              strlen(PEM), NULL, NULL));

    /* text */
    const char *text = "u=${secret:user} p=${secret:db-password;type:TEXT} lit=$${secret:x}";
    CHECK_OK(tbs_store_resolve_text(store, T, (const uint8_t *)text, strlen(text), 0, &out));
    CHECK(buffer_equals(&out, "u=alice p=hunter2 lit=${secret:x}"));
    tbs_buffer_free(&out);
    const char *plain = "nothing to do ${deviceName}";
    CHECK_OK(tbs_store_resolve_text(store, T, (const uint8_t *)plain, strlen(plain), 0, &out));
    CHECK(buffer_equals(&out, plain));
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_resolve_text(store, T, NULL, 0, 0, &out));
    CHECK(buffer_equals(&out, ""));
    tbs_buffer_free(&out);
    const char *missing = "a ${secret:user} b ${secret:gone} c ${secret:also-gone}";
    tbs_buffer untouched = {(uint8_t *)&untouched, 7};
    CHECK_STATUS(tbs_store_resolve_text(store, T, (const uint8_t *)missing, strlen(missing), 0,
                                        &untouched),
                 TBS_UNRESOLVED);
    CHECK(last_error_contains("'gone' at byte 19") && last_error_contains("'also-gone'"));
    CHECK(!last_error_contains("alice"));
    CHECK(untouched.data == (uint8_t *)&untouched && untouched.len == 7);
    const char *malformed = "x ${secret:user";
    CHECK_STATUS(tbs_store_resolve_text(store, T, (const uint8_t *)malformed, strlen(malformed),
                                        0, &out),
                 TBS_MALFORMED_PLACEHOLDER);
    const char *mismatch = "${secret:user;type:TEXT_FILE}";
    CHECK_STATUS(tbs_store_resolve_text(store, T, (const uint8_t *)mismatch, strlen(mismatch), 0,
                                        &out),
                 TBS_TYPE_MISMATCH);
    CHECK(!last_error_contains("alice"));
    CHECK_STATUS(tbs_store_resolve_text(store, T, (const uint8_t *)BAD_UTF8, 4, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("text is not valid UTF-8"));
    CHECK_STATUS(tbs_store_resolve_text(store, T, (const uint8_t *)text, strlen(text), 2, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("unknown resolve flags"));
    CHECK_STATUS(tbs_store_resolve_text(NULL, T, (const uint8_t *)text, 1, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_text(store, NULL, (const uint8_t *)text, 1, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_text(store, T, NULL, 1, 0, &out), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_text(store, T, (const uint8_t *)text, 1, 0, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_text(store, BAD_UTF8, (const uint8_t *)text, 1, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(out.data == NULL);

    /* JSON: PEM newlines and quotes are escaped; keys are not resolved */
    const char *doc = "{\"${secret:user}\": {\"ca\": \"${secret:ca;type:TEXT_FILE}\", \"n\": 1}}";
    CHECK_OK(tbs_store_resolve_json(store, T, (const uint8_t *)doc, strlen(doc), 0, &out));
    CHECK(buffer_contains(&out, "{\"${secret:user}\": {\"ca\": \"-----BEGIN CERTIFICATE-----\\nMIIB\\\"quoted\\\"\\n"));
    CHECK(buffer_contains(&out, "\"n\": 1}}"));
    tbs_buffer_free(&out);
    CHECK_STATUS(tbs_store_resolve_json(store, T, (const uint8_t *)"{\"a\":", 5, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("not valid JSON"));
    const char *json_missing = "[\"${secret:gone}\"]";
    CHECK_STATUS(tbs_store_resolve_json(store, T, (const uint8_t *)json_missing,
                                        strlen(json_missing), 0, &out),
                 TBS_UNRESOLVED);
    CHECK_STATUS(tbs_store_resolve_json(NULL, T, (const uint8_t *)doc, strlen(doc), 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_json(store, NULL, (const uint8_t *)doc, strlen(doc), 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_json(store, T, NULL, 3, 0, &out), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_json(store, T, (const uint8_t *)doc, strlen(doc), 0, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_json(store, T, (const uint8_t *)BAD_UTF8, 4, 0, &out),
                 TBS_INVALID_ARGUMENT);

    /* Materialisation: the TEXT_FILE placeholder becomes a private file's path. */
    const char *cfg = "{\"caFile\": \"${secret:ca;type:TEXT_FILE}\", \"user\": \"${secret:user}\"}";
    CHECK_OK(tbs_store_resolve_json(store, T, (const uint8_t *)cfg, strlen(cfg),
                                    TBS_RESOLVE_MATERIALIZE_FILES, &out));
    CHECK(buffer_contains(&out, "\"user\": \"alice\""));
    CHECK(!buffer_contains(&out, "BEGIN CERTIFICATE"));
    char ca_path[4096] = {0};
    const char *start = strstr((const char *)out.data, "\"caFile\": \"");
    CHECK(start != NULL);
    if (start != NULL) {
        start += strlen("\"caFile\": \"");
        const char *end = strchr(start, '"');
        if (end != NULL && (size_t)(end - start) < sizeof ca_path) {
            memcpy(ca_path, start, (size_t)(end - start));
        }
    }
    tbs_buffer_free(&out);
    CHECK(ca_path[0] == '/');
    CHECK(file_mode(ca_path) == 0600);
    char *ca_text = read_file(ca_path);
    CHECK(ca_text != NULL && strcmp(ca_text, PEM) == 0);
    free(ca_text);
    /* The same version is materialised once per handle. */
    const char *again = "${secret:ca}";
    CHECK_OK(tbs_store_resolve_text(store, T, (const uint8_t *)again, strlen(again),
                                    TBS_RESOLVE_MATERIALIZE_FILES, &out));
    CHECK(buffer_equals(&out, ca_path));
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_clear_materialized(store));
    CHECK(!file_exists(ca_path));
    CHECK_STATUS(tbs_store_clear_materialized(NULL), TBS_INVALID_ARGUMENT);

    /* Files: to a buffer and atomically to a 0600 file. */
    char cfg_path[4200], txt_path[4200], out_path[4200], bad_out[4200];
    path_in(cfg_path, sizeof cfg_path, "config.json");
    path_in(txt_path, sizeof txt_path, "config.txt");
    path_in(out_path, sizeof out_path, "rendered.json");
    path_in(bad_out, sizeof bad_out, "missing-dir/rendered.json");
    CHECK(write_file(cfg_path, "{\"password\": \"${secret:db-password}\"}\n", 0644) == 0);
    CHECK(write_file(txt_path, "user=${secret:user}\n", 0644) == 0);
    CHECK_OK(tbs_store_resolve_file(store, T, cfg_path, TBS_FORMAT_AUTO, 0, &out));
    CHECK(buffer_equals(&out, "{\"password\": \"hunter2\"}\n"));
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_resolve_file(store, T, txt_path, TBS_FORMAT_AUTO, 0, &out));
    CHECK(buffer_equals(&out, "user=alice\n"));
    tbs_buffer_free(&out);
    CHECK_OK(tbs_store_resolve_file(store, T, txt_path, TBS_FORMAT_TEXT, 0, &out));
    tbs_buffer_free(&out);
    CHECK_STATUS(tbs_store_resolve_file(store, T, txt_path, TBS_FORMAT_JSON, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file(store, T, txt_path, 9, 0, &out), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("unknown format 9"));
    CHECK_STATUS(tbs_store_resolve_file(store, T, bad_out, TBS_FORMAT_AUTO, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("cannot read"));
    CHECK_STATUS(tbs_store_resolve_file(NULL, T, cfg_path, 0, 0, &out), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file(store, NULL, cfg_path, 0, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file(store, T, NULL, 0, 0, &out), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file(store, T, cfg_path, 0, 0, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file(store, T, BAD_UTF8, 0, 0, &out), TBS_INVALID_ARGUMENT);

    CHECK_OK(tbs_store_resolve_file_to(store, T, cfg_path, out_path, TBS_FORMAT_AUTO, 0));
    CHECK(file_mode(out_path) == 0600);
    char *rendered = read_file(out_path);
    CHECK(rendered != NULL && strcmp(rendered, "{\"password\": \"hunter2\"}\n") == 0);
    free(rendered);
    /* Overwrites atomically; a failed resolve leaves the previous file alone. */
    CHECK(write_file(cfg_path, "{\"password\": \"${secret:gone}\"}\n", 0644) == 0);
    CHECK_STATUS(tbs_store_resolve_file_to(store, T, cfg_path, out_path, TBS_FORMAT_AUTO, 0),
                 TBS_UNRESOLVED);
    rendered = read_file(out_path);
    CHECK(rendered != NULL && strcmp(rendered, "{\"password\": \"hunter2\"}\n") == 0);
    free(rendered);
    CHECK_STATUS(tbs_store_resolve_file_to(store, T, txt_path, bad_out, TBS_FORMAT_AUTO, 0),
                 TBS_STORAGE);
    CHECK(!file_exists(bad_out));
    CHECK_STATUS(tbs_store_resolve_file_to(NULL, T, txt_path, out_path, 0, 0),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file_to(store, NULL, txt_path, out_path, 0, 0),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file_to(store, T, NULL, out_path, 0, 0),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file_to(store, T, txt_path, NULL, 0, 0),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file_to(store, T, txt_path, BAD_UTF8, 0, 0),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file_to(store, T, txt_path, out_path, 5, 0),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_file_to(store, T, txt_path, out_path, 0, 4),
                 TBS_INVALID_ARGUMENT);
}

static void test_references(tbs_store *store) {
    tbs_buffer json = {NULL, 0};
    const char *doc = "{\"a\": \"${secret:user}\", \"b\": [\"${secret:ca;type:FILE}\", "
                      "\"${secret:user}\"], \"${secret:key-only}\": 1}";

    CHECK_OK(tbs_references((const uint8_t *)doc, strlen(doc), &json));
    CHECK(buffer_equals(&json,
                        "[{\"name\":\"user\",\"type\":null},{\"name\":\"ca\",\"type\":\"TEXT_FILE\"}]"));
    tbs_buffer_free(&json);
    CHECK_OK(tbs_references(NULL, 0, &json));
    CHECK(buffer_equals(&json, "[]"));
    tbs_buffer_free(&json);
    CHECK_STATUS(tbs_references((const uint8_t *)"${secret:", 9, &json),
                 TBS_MALFORMED_PLACEHOLDER);
    CHECK_STATUS(tbs_references(NULL, 3, &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_references((const uint8_t *)doc, strlen(doc), NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_references((const uint8_t *)BAD_UTF8, 4, &json), TBS_INVALID_ARGUMENT);

    /* track: delete is blocked while a source references the secret */
    CHECK_OK(tbs_store_track_references(store, T, "rule-node-1", (const uint8_t *)doc,
                                        strlen(doc), &json));
    CHECK(buffer_contains(&json, "\"name\":\"user\""));
    tbs_buffer_free(&json);
    const char *other = "pw=${secret:db-password}";
    CHECK_OK(tbs_store_track_references(store, T, "integration-2", (const uint8_t *)other,
                                        strlen(other), NULL));
    CHECK_STATUS(tbs_store_track_references(store, T, "bad", (const uint8_t *)"${secret:", 9,
                                            NULL),
                 TBS_MALFORMED_PLACEHOLDER);
    CHECK_STATUS(tbs_store_track_references(store, T, "", (const uint8_t *)other,
                                            strlen(other), NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_track_references(NULL, T, "s", (const uint8_t *)other, 1, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_track_references(store, NULL, "s", (const uint8_t *)other, 1, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_track_references(store, T, NULL, (const uint8_t *)other, 1, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_track_references(store, T, "s", NULL, 1, NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_track_references(store, T, BAD_UTF8, (const uint8_t *)other, 1, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_track_references(store, T, "s", (const uint8_t *)BAD_UTF8, 4, NULL),
                 TBS_INVALID_ARGUMENT);

    CHECK_OK(tbs_store_where_used(store, T, "user", &json));
    CHECK(buffer_equals(&json, "[{\"source_id\":\"rule-node-1\",\"name\":\"user\",\"type\":null}]"));
    tbs_buffer_free(&json);
    CHECK_OK(tbs_store_where_used(store, T, "unused-name", &json));
    CHECK(buffer_equals(&json, "[]"));
    tbs_buffer_free(&json);
    CHECK_STATUS(tbs_store_where_used(NULL, T, "user", &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_where_used(store, NULL, "user", &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_where_used(store, T, NULL, &json), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_where_used(store, T, "user", NULL), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_where_used(store, T, BAD_UTF8, &json), TBS_INVALID_ARGUMENT);

    CHECK_STATUS(tbs_store_delete(store, T, "user", false), TBS_IN_USE);
    CHECK(last_error_contains("rule-node-1"));
    size_t removed = 99;
    CHECK_OK(tbs_store_untrack(store, T, "rule-node-1", &removed));
    CHECK(removed == 2);
    CHECK_OK(tbs_store_untrack(store, T, "rule-node-1", NULL));
    CHECK_OK(tbs_store_untrack(store, T, "never-tracked", &removed));
    CHECK(removed == 0);
    CHECK_STATUS(tbs_store_untrack(NULL, T, "s", &removed), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_untrack(store, NULL, "s", &removed), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_untrack(store, T, NULL, &removed), TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_untrack(store, T, BAD_UTF8, &removed),
                 TBS_INVALID_ARGUMENT);
    CHECK_OK(tbs_store_delete(store, T, "user", false));

    /* force deletes a referenced secret; its references remain visible */
    CHECK_STATUS(tbs_store_delete(store, T, "db-password", false), TBS_IN_USE);
    CHECK_OK(tbs_store_delete(store, T, "db-password", true));
    CHECK_OK(tbs_store_where_used(store, T, "db-password", &json));
    CHECK(buffer_contains(&json, "integration-2"));
    tbs_buffer_free(&json);
}

/* Limits from the options: a 600 KiB TEXT_FILE fits when max_file_bytes allows it; the
 * materialised files of a handle disappear when it closes. */
static void test_options_and_close(void) {
    char db[4200], dir[4200];
    path_in(db, sizeof db, "options.db");
    path_in(dir, sizeof dir, "materialized");
    tbs_options options;
    tbs_options_init(&options);
    options.max_file_bytes = 1024 * 1024;
    options.max_text_chars = 4;
    options.max_versions = 2;
    options.busy_timeout_ms = 2000;
    options.materialize_dir = dir;
    tbs_store *store = NULL;
    CHECK_OK(tbs_store_open(db, KEY, sizeof KEY, &options, &store));

    size_t big_len = 600 * 1024;
    uint8_t *big = malloc(big_len);
    CHECK(big != NULL);
    for (size_t i = 0; i < big_len; i++) {
        big[i] = (uint8_t)(i * 7);
    }
    CHECK_OK(tbs_store_create(store, T, "big", TBS_TYPE_TEXT_FILE, big, big_len, NULL, NULL));
    tbs_buffer value = {NULL, 0};
    CHECK_OK(tbs_store_get(store, T, "big", &value));
    CHECK(value.len == big_len && memcmp(value.data, big, big_len) == 0);
    tbs_buffer_free(&value);
    free(big);
    CHECK_STATUS(tbs_store_create(store, T, "long", TBS_TYPE_TEXT, (const uint8_t *)"12345", 5,
                                  NULL, NULL),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("limit is 4"));

    /* max_versions = 2: version 1 is gone after two updates. */
    CHECK_OK(tbs_store_create(store, T, "v", TBS_TYPE_TEXT, (const uint8_t *)"1", 1, NULL, NULL));
    CHECK_OK(tbs_store_update_value(store, T, "v", (const uint8_t *)"2", 1, 0, NULL));
    CHECK_OK(tbs_store_update_value(store, T, "v", (const uint8_t *)"3", 1, 0, NULL));
    CHECK_STATUS(tbs_store_rollback(store, T, "v", 1, NULL), TBS_NOT_FOUND);

    CHECK_OK(tbs_store_create(store, T, "pem", TBS_TYPE_TEXT_FILE, (const uint8_t *)PEM,
                              strlen(PEM), NULL, NULL));
    const char *ref = "${secret:pem}";
    tbs_buffer path = {NULL, 0};
    CHECK_OK(tbs_store_resolve_text(store, T, (const uint8_t *)ref, strlen(ref),
                                    TBS_RESOLVE_MATERIALIZE_FILES, &path));
    CHECK(path.data != NULL && strncmp((const char *)path.data, dir, strlen(dir)) == 0);
    CHECK(file_mode(dir) == 0700);
    char materialized[4200] = {0};
    if (path.data != NULL && path.len < sizeof materialized) {
        memcpy(materialized, path.data, path.len);
    }
    tbs_buffer_free(&path);
    CHECK(file_mode(materialized) == 0600);
    CHECK_OK(tbs_store_close(store));
    CHECK(!file_exists(materialized));
}

/* Lengths over the limits, over memory that nobody may read (PROT_NONE): the library must
 * refuse them before reading a byte, or the test dies of SIGSEGV. */
static void test_oversized_lengths(tbs_store *store) {
    size_t doc_len = TBS_MAX_DOCUMENT_BYTES + 1;
    int zero = open("/dev/zero", O_RDONLY);
    CHECK(zero >= 0);
    void *mapped = mmap(NULL, doc_len, PROT_NONE, MAP_PRIVATE, zero, 0);
    CHECK(mapped != MAP_FAILED);
    if (zero >= 0) {
        close(zero);
    }
    if (mapped == MAP_FAILED) {
        return;
    }
    const uint8_t *unreadable = mapped;
    tbs_buffer out = {NULL, 0};
    uint64_t version = 0;

    /* Values: TEXT_FILE over max_file_bytes, TEXT over 4 bytes per character. */
    CHECK_STATUS(tbs_store_create(store, T, "huge", TBS_TYPE_TEXT_FILE, unreadable,
                                  512 * 1024 + 1, NULL, &version),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("524289 bytes long") && last_error_contains("at most 524288"));
    CHECK_STATUS(tbs_store_create(store, T, "huge", TBS_TYPE_TEXT, unreadable, 2048 * 4 + 1,
                                  NULL, &version),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("8193 bytes long") && last_error_contains("2048 characters"));
    CHECK_STATUS(tbs_store_create(store, T, "huge", TBS_TYPE_TEXT_FILE, unreadable, SIZE_MAX,
                                  NULL, &version),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_get(store, T, "huge", &out), TBS_NOT_FOUND);
    CHECK(version == 0);
    CHECK_OK(tbs_store_create(store, T, "small", TBS_TYPE_TEXT, (const uint8_t *)"v", 1, NULL,
                              NULL));
    CHECK_STATUS(tbs_store_update_value(store, T, "small", unreadable, 512 * 1024 + 1,
                                        TBS_ANY_VERSION, &version),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("524289 bytes long"));
    CHECK(version == 0);

    /* Documents over TBS_MAX_DOCUMENT_BYTES (64 MiB). */
    CHECK_STATUS(tbs_store_resolve_text(store, T, unreadable, doc_len, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("67108865 bytes long") && last_error_contains("67108864"));
    CHECK_STATUS(tbs_store_resolve_json(store, T, unreadable, doc_len, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_store_resolve_text(store, T, unreadable, SIZE_MAX, 0, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK_STATUS(tbs_references(unreadable, doc_len, &out), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("67108865 bytes long"));
    CHECK_STATUS(tbs_store_track_references(store, T, "source", unreadable, doc_len, &out),
                 TBS_INVALID_ARGUMENT);
    CHECK(out.data == NULL && out.len == 0);
    CHECK_OK(tbs_store_delete(store, T, "small", false));
    munmap(mapped, doc_len);
}

/* An all-zero master key is refused from every source: the argument, TBS_MASTER_KEY and
 * TBS_MASTER_KEY_FILE (issue 19). Nothing is created. */
static void test_zero_key(void) {
    static const uint8_t ZERO_KEY[32] = {0};
    const char *zero_base64 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    char db[4200], key_file[4200];
    path_in(db, sizeof db, "zero.db");
    tbs_store *sentinel = (tbs_store *)&sentinel;
    tbs_store *store = sentinel;
    CHECK_STATUS(tbs_store_open(db, ZERO_KEY, 32, NULL, &store), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("all zero"));
    unsetenv("TBS_MASTER_KEY_FILE");
    setenv("TBS_MASTER_KEY", zero_base64, 1);
    CHECK_STATUS(tbs_store_open(db, NULL, 0, NULL, &store), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("all zero"));
    unsetenv("TBS_MASTER_KEY");
    path_in(key_file, sizeof key_file, "zero.key");
    CHECK(write_file(key_file, zero_base64, 0600) == 0);
    setenv("TBS_MASTER_KEY_FILE", key_file, 1);
    CHECK_STATUS(tbs_store_open(db, NULL, 0, NULL, &store), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("all zero"));
    unsetenv("TBS_MASTER_KEY_FILE");
    CHECK(store == sentinel);
    CHECK(!file_exists(db));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    for (int i = 0; i < 32; i++) {
        KEY[i] = (uint8_t)i;
        OTHER_KEY[i] = 0xAA;
    }

    test_static_functions();
    test_open_errors();
    test_zero_key();

    char db[4200];
    path_in(db, sizeof db, "api.db");
    tbs_store *store = NULL;
    CHECK_OK(tbs_store_open(db, KEY, sizeof KEY, NULL, &store));
    if (store == NULL) {
        return finish("test_api");
    }
    test_crud(store);
    test_resolve(store);
    test_references(store);
    test_oversized_lengths(store);
    CHECK_OK(tbs_store_close(store));

    test_options_and_close();
    /* Hardening the process (no core dumps) succeeds and may be repeated. */
    CHECK_OK(tbs_harden_process());
    CHECK_OK(tbs_harden_process());
    return finish("test_api");
}
