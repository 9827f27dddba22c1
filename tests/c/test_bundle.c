/* Export bundles through the C ABI: export key, export to an age recipient, import into a
 * second store with another master key (trusted signer, dry run, conflict policies, a flipped
 * byte refused), manifest of two documents.
 * Usage: test_bundle WORK_DIR (an empty private directory). */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>

#include "check.h"

/* A test-only age key pair (age-keygen). */
static const char *IDENTITY =
    "AGE-SECRET-KEY-1KZYSREY325WLLZQLTD7C8H76KZDP7UZAPCXU6NSEFNPLC9WVSCWQTXQ0KY\n";
static const char *RECIPIENT = "age1hue872wg5sr4xjy7j8qtm4ds8s2ux9mlpe06t5fyumfhyxz53efsjcs5eq";
static const char *T = "tenant-a";

static tbs_store *open_store(const char *work, const char *file, uint8_t seed) {
    uint8_t key[32];
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)(seed + i);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", work, file);
    tbs_store *store = NULL;
    CHECK_OK(tbs_store_open(path, key, 32, NULL, &store));
    return store;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    tbs_store *from = open_store(argv[1], "from.db", 0x21);
    tbs_store *to = open_store(argv[1], "to.db", 0x42);
    if (from == NULL || to == NULL) {
        return finish("test_bundle");
    }
    const char *value = "bundle-c-value";
    CHECK_OK(tbs_store_create(from, T, "db", TBS_TYPE_TEXT, (const uint8_t *)value,
                              strlen(value), "the db", NULL));

    tbs_buffer key = {0}, bundle = {0}, report = {0};
    CHECK_OK(tbs_store_export_key(from, &key));
    CHECK(key.len > 8 && memcmp(key.data, "ed25519:", 8) == 0);
    CHECK_OK(tbs_store_export_bundle(from, T, RECIPIENT, 0, &bundle));
    CHECK(bundle.len > 0 && !buffer_contains(&bundle, value));
    CHECK_STATUS(tbs_store_export_bundle(from, T, "age1nope", 0, &report),
                 TBS_INVALID_ARGUMENT);

    /* Not trusted: refused; a dry run writes nothing; then imported. */
    CHECK_STATUS(tbs_store_import_bundle(to, T, bundle.data, bundle.len, IDENTITY, NULL,
                                         TBS_ON_CONFLICT_FAIL, 0, NULL),
                 TBS_INTEGRITY);
    const char *trusted = (const char *)key.data;
    CHECK_OK(tbs_store_import_bundle(to, T, bundle.data, bundle.len, IDENTITY, trusted,
                                     TBS_ON_CONFLICT_FAIL, TBS_IMPORT_DRY_RUN, &report));
    CHECK(buffer_contains(&report, "\"dry_run\": true") || buffer_contains(&report, "\"dry_run\":true"));
    CHECK(!buffer_contains(&report, value));
    tbs_buffer_free(&report);
    tbs_buffer got = {0};
    CHECK_STATUS(tbs_store_get(to, T, "db", &got), TBS_NOT_FOUND);
    CHECK_OK(tbs_store_import_bundle(to, T, bundle.data, bundle.len, IDENTITY, trusted,
                                     TBS_ON_CONFLICT_FAIL, 0, &report));
    tbs_buffer_free(&report);
    CHECK_OK(tbs_store_get(to, T, "db", &got));
    CHECK(buffer_equals(&got, value));
    tbs_buffer_free(&got);
    CHECK_STATUS(tbs_store_import_bundle(to, T, bundle.data, bundle.len, IDENTITY, trusted,
                                         TBS_ON_CONFLICT_FAIL, 0, NULL),
                 TBS_ALREADY_EXISTS);
    CHECK_OK(tbs_store_import_bundle(to, T, bundle.data, bundle.len, IDENTITY, trusted,
                                     TBS_ON_CONFLICT_OVERWRITE, 0, NULL));
    CHECK_STATUS(tbs_store_import_bundle(to, T, bundle.data, bundle.len, IDENTITY, trusted, 7, 0,
                                         NULL),
                 TBS_INVALID_ARGUMENT);
    uint8_t *flipped = malloc(bundle.len);
    CHECK(flipped != NULL);
    if (flipped != NULL) {
        memcpy(flipped, bundle.data, bundle.len);
        flipped[bundle.len - 1] ^= 1;
        CHECK_STATUS(tbs_store_import_bundle(to, T, flipped, bundle.len, IDENTITY, trusted,
                                             TBS_ON_CONFLICT_SKIP, 0, NULL),
                     TBS_INTEGRITY);
        free(flipped);
    }

    /* Manifest: db is present, smtp-password missing. */
    const char *labels[] = {"a.json", "b.txt"};
    const char *texts[] = {"{\"p\":\"${secret:db;type:TEXT}\"}", "x ${secret:smtp-password}"};
    tbs_buffer manifest = {0};
    size_t missing = 99;
    CHECK_OK(tbs_store_manifest(to, T, labels, texts, 2, &manifest, &missing));
    CHECK(missing == 1);
    CHECK(buffer_contains(&manifest, "MISSING") && buffer_contains(&manifest, "smtp-password"));
    tbs_buffer_free(&manifest);
    CHECK_STATUS(tbs_store_manifest(to, T, NULL, NULL, 1, &manifest, NULL), TBS_INVALID_ARGUMENT);

    tbs_buffer_free(&key);
    tbs_buffer_free(&bundle);
    CHECK_OK(tbs_store_close(from));
    CHECK_OK(tbs_store_close(to));
    return finish("test_bundle");
}
