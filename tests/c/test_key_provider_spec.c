/* Key providers by spec: tbs_options_set_key_provider_spec (a store opened on a key command),
 * key_cache_ttl_ms, tbs_store_forget_keys (the next use asks the command again),
 * tbs_store_rotate_key_provider_spec (raw -> command), refusals.
 * Usage: test_key_provider_spec WORK_DIR (an empty private directory). */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <sys/stat.h>

#include "check.h"

static const char *T = "tenant-a";
static char work[4096];

/* Writes an executable script at WORK/name. */
static void write_script(const char *name, const char *body) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", work, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    fputs(body, f);
    fclose(f);
    CHECK(chmod(path, 0700) == 0);
}

/* How many times the echoing command ran (lines in WORK/calls). */
static int calls(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/calls", work);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) {
        n += c == '\n';
    }
    fclose(f);
    return n;
}

static tbs_status open_on(const char *db, const char *spec, tbs_store **out) {
    tbs_options options;
    tbs_status status = tbs_options_init(&options);
    if (status != TBS_OK) {
        return status;
    }
    status = tbs_options_set_key_provider_spec(&options, spec);
    if (status != TBS_OK) {
        return status;
    }
    return tbs_store_open(db, NULL, 0, &options, out);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    /* A (toy) key command: "wraps" by echoing its input line back, counting its calls. */
    char body[8800];
    snprintf(body, sizeof body, "#!/bin/sh\necho x >> '%s/calls'\nhead -n 1\n", work);
    write_script("echo-kms", body);
    write_script("refusing-kms", "#!/bin/sh\necho 'kms: denied' >&2\nexit 1\n");
    char spec[4300], refusing[4300], db[4200], raw_db[4200];
    snprintf(spec, sizeof spec, "command:%s/echo-kms", work);
    snprintf(refusing, sizeof refusing, "command:%s/refusing-kms", work);
    snprintf(db, sizeof db, "%s/kp.db", work);
    snprintf(raw_db, sizeof raw_db, "%s/raw.db", work);

    tbs_options options;
    CHECK_OK(tbs_options_init(&options));
    CHECK(options.version == TBS_OPTIONS_VERSION && TBS_OPTIONS_VERSION == 3);
    CHECK(options.key_provider_spec == NULL && options.key_cache_ttl_ms == 0);
    CHECK_STATUS(tbs_options_set_key_provider_spec(&options, "kms:thing"), TBS_INVALID_ARGUMENT);
    CHECK(strstr(tbs_last_error_message(), "unknown key provider 'kms'") != NULL);
    CHECK(options.key_provider_spec == NULL);
    CHECK_STATUS(tbs_options_set_key_provider_spec(NULL, spec), TBS_INVALID_ARGUMENT);

    /* A store on the command: created, reopened, values read. */
    tbs_store *store = NULL;
    CHECK_OK(open_on(db, spec, &store));
    CHECK(calls() > 0);
    CHECK_OK(tbs_store_create(store, T, "api", TBS_TYPE_TEXT, (const uint8_t *)"s3cr3t", 6, NULL,
                              NULL));
    CHECK_OK(tbs_store_close(store));
    store = NULL;
    CHECK_OK(tbs_options_init(&options));
    CHECK_OK(tbs_options_set_key_provider_spec(&options, spec));
    options.key_cache_ttl_ms = 3600 * 1000;
    CHECK_OK(tbs_store_open(db, NULL, 0, &options, &store));
    tbs_buffer value = {NULL, 0};
    CHECK_OK(tbs_store_get(store, T, "api", &value));
    CHECK(buffer_equals(&value, "s3cr3t"));
    tbs_buffer_free(&value);

    /* Forgetting the keys: the next get asks the command again. */
    int before = calls();
    CHECK_OK(tbs_store_get(store, T, "api", &value));
    tbs_buffer_free(&value);
    CHECK(calls() == before);
    CHECK_OK(tbs_store_forget_keys(store));
    CHECK_OK(tbs_store_get(store, T, "api", &value));
    CHECK(buffer_equals(&value, "s3cr3t"));
    tbs_buffer_free(&value);
    CHECK(calls() > before);
    tbs_store *session = NULL;
    CHECK_OK(tbs_store_session(store, T, TBS_ROLE_TENANT_ADMIN, NULL, &session));
    CHECK_STATUS(tbs_store_forget_keys(session), TBS_PERMISSION_DENIED);
    CHECK_OK(tbs_store_close(session));
    CHECK_OK(tbs_store_close(store));
    store = NULL;

    /* A refusing command, a raw key as well: refused. */
    CHECK_STATUS(open_on(db, refusing, &store), TBS_KEY_UNAVAILABLE);
    CHECK(strstr(tbs_last_error_message(), "exit status 1): kms: denied") != NULL);
    CHECK(store == NULL);
    uint8_t key[32];
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)(0x21 + i);
    }
    CHECK_OK(tbs_options_init(&options));
    CHECK_OK(tbs_options_set_key_provider_spec(&options, spec));
    CHECK_STATUS(tbs_store_open(db, key, 32, &options, &store), TBS_INVALID_ARGUMENT);

    /* A version 2 struct ends before key_provider_spec: the field is not read. */
    options.version = 2;
    CHECK_STATUS(tbs_options_set_key_provider_spec(&options, spec), TBS_INVALID_ARGUMENT);
    CHECK(strstr(tbs_last_error_message(), "options.version is 2") != NULL);
    options.key_provider_spec = "kms:not-read";
    CHECK_OK(tbs_store_open(raw_db, key, 32, &options, &store));
    CHECK_OK(tbs_store_close(store));
    store = NULL;

    /* raw -> command. */
    CHECK_OK(tbs_store_open(raw_db, key, 32, NULL, &store));
    CHECK_OK(tbs_store_create(store, T, "api", TBS_TYPE_TEXT, (const uint8_t *)"raw", 3, NULL,
                              NULL));
    CHECK_STATUS(tbs_store_rotate_key_provider_spec(store, "command:", NULL),
                 TBS_INVALID_ARGUMENT);
    tbs_buffer report = {NULL, 0};
    CHECK_OK(tbs_store_rotate_key_provider_spec(store, spec, &report));
    CHECK(buffer_contains(&report, "\"key_id\":2"));
    tbs_buffer_free(&report);
    CHECK_OK(tbs_store_close(store));
    store = NULL;
    CHECK_STATUS(tbs_store_open(raw_db, key, 32, NULL, &store), TBS_WRONG_MASTER_KEY);
    CHECK_OK(open_on(raw_db, spec, &store));
    CHECK_OK(tbs_store_get(store, T, "api", &value));
    CHECK(buffer_equals(&value, "raw"));
    tbs_buffer_free(&value);
    CHECK_OK(tbs_store_close(store));
    return finish("test_key_provider_spec");
}
