/* Host key providers (tbs_key_provider): a store opened, written, read and reopened through C
 * callbacks; argument checks; a refusing callback (TBS_KEY_UNAVAILABLE, its status named);
 * another provider (TBS_WRONG_MASTER_KEY); release calls; the version 2 options layout;
 * rotation raw key -> callback provider -> raw key; callbacks from several threads at once.
 * Usage: test_key_provider WORK_DIR (an empty private directory). */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

static uint8_t KEY[32];
static uint8_t NEW_KEY[32];
static char work[4096];

/* ---------------------------------------------------------------------------------------
 * TEST DOUBLE OF A KMS -- NOT CRYPTOGRAPHY. It stands for a key management service that
 * holds a secret and wraps data keys with it. Wrapped bytes are `nonce (8) | input XOR
 * keystream(secret, nonce)`, the keystream from splitmix64: enough to show that the store
 * holds only what the callbacks return, that another "KMS secret" cannot unwrap (the library
 * checks the unwrapped key's context digest), and the call/refuse/release contract. A real
 * provider calls a KMS, an HSM or an AEAD such as AES-GCM, binding `aad`.
 * --------------------------------------------------------------------------------------- */
typedef struct test_kms {
    uint64_t secret;
    uint64_t next_nonce;
    int refuse_status; /* non-zero: every call returns it */
    bool forget_output; /* return TBS_OK without tbs_key_output_set */
    int wraps, unwraps, releases;
    pthread_mutex_t lock; /* the callbacks run on any thread using the store, concurrently */
} test_kms;

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void keystream_xor(uint64_t secret, uint64_t nonce, const uint8_t *in, uint8_t *out,
                          size_t len) {
    uint64_t state = secret ^ (nonce * 0xD1B54A32D192ED03ULL);
    uint64_t block = 0;
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            block = splitmix64(&state);
        }
        out[i] = in[i] ^ (uint8_t)(block >> (8 * (i % 8)));
    }
}

static int kms_wrap(void *context, const uint8_t *aad, size_t aad_len, const uint8_t *input,
                    size_t input_len, tbs_key_output *out) {
    test_kms *kms = context;
    if (aad == NULL || aad_len == 0) {
        return TBS_INVALID_ARGUMENT; /* the context is always given: fails the test's call */
    }
    if (kms->refuse_status != 0) {
        return kms->refuse_status;
    }
    if (kms->forget_output) {
        return TBS_OK;
    }
    uint8_t wrapped[8 + 256];
    if (input_len > 256) {
        return TBS_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&kms->lock);
    kms->wraps++;
    uint64_t nonce = kms->next_nonce++;
    pthread_mutex_unlock(&kms->lock);
    for (int i = 0; i < 8; i++) {
        wrapped[i] = (uint8_t)(nonce >> (8 * i));
    }
    keystream_xor(kms->secret, nonce, input, wrapped + 8, input_len);
    int status = tbs_key_output_set(out, wrapped, 8 + input_len);
    memset(wrapped, 0, sizeof wrapped);
    return status;
}

static int kms_unwrap(void *context, const uint8_t *aad, size_t aad_len, const uint8_t *input,
                      size_t input_len, tbs_key_output *out) {
    test_kms *kms = context;
    (void)aad;
    (void)aad_len;
    if (kms->refuse_status != 0) {
        return kms->refuse_status;
    }
    pthread_mutex_lock(&kms->lock);
    kms->unwraps++;
    pthread_mutex_unlock(&kms->lock);
    if (kms->forget_output) {
        return TBS_OK;
    }
    if (input_len < 8 || input_len > 8 + 256) {
        return TBS_INTEGRITY;
    }
    uint64_t nonce = 0;
    for (int i = 0; i < 8; i++) {
        nonce |= (uint64_t)input[i] << (8 * i);
    }
    uint8_t plain[256];
    keystream_xor(kms->secret, nonce, input + 8, plain, input_len - 8);
    int status = tbs_key_output_set(out, plain, input_len - 8);
    memset(plain, 0, sizeof plain);
    return status;
}

static void kms_release(void *context) {
    test_kms *kms = context;
    pthread_mutex_lock(&kms->lock);
    kms->releases++;
    pthread_mutex_unlock(&kms->lock);
}

static tbs_key_provider provider_of(test_kms *kms) {
    tbs_key_provider provider = {kms, kms_wrap, kms_unwrap, kms_release, "test-kms"};
    return provider;
}

/* ------------------------------------------------------------------------------------- */

static const char *path_in(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", work, name);
    return out;
}

static int last_error_contains(const char *needle) {
    return strstr(tbs_last_error_message(), needle) != NULL;
}

static tbs_status put(tbs_store *store, const char *tenant, const char *name, const char *value) {
    return tbs_store_create(store, tenant, name, TBS_TYPE_TEXT, (const uint8_t *)value,
                            strlen(value), NULL, NULL);
}

static tbs_status get_equals(tbs_store *store, const char *tenant, const char *name,
                             const char *want) {
    tbs_buffer value = {NULL, 0};
    tbs_status status = tbs_store_get(store, tenant, name, &value);
    if (status == TBS_OK) {
        CHECK(buffer_equals(&value, want));
    }
    tbs_buffer_free(&value);
    return status;
}

/* Opens `name` in the work directory through `kms` (no raw key). */
static tbs_status open_with(const char *name, test_kms *kms, tbs_store **store) {
    char path[4200];
    tbs_options options;
    tbs_key_provider provider = provider_of(kms);
    CHECK_OK(tbs_options_init(&options));
    CHECK_OK(tbs_options_set_key_provider(&options, &provider));
    *store = NULL;
    /* `provider` is a local: tbs_store_open copies it. */
    return tbs_store_open(path_in(path, sizeof path, name), NULL, 0, &options, store);
}

static void test_arguments(void) {
    char path[4200];
    tbs_options options;
    test_kms kms = {.secret = 1, .lock = PTHREAD_MUTEX_INITIALIZER};
    tbs_key_provider provider = provider_of(&kms);
    tbs_store *store = NULL;

    CHECK_OK(tbs_options_init(&options));
    CHECK(options.version == TBS_OPTIONS_VERSION && TBS_OPTIONS_VERSION == 3);
    CHECK(options.key_provider == NULL);
    CHECK_STATUS(tbs_options_set_key_provider(NULL, &provider), TBS_INVALID_ARGUMENT);
    tbs_key_provider no_unwrap = provider;
    no_unwrap.unwrap = NULL;
    CHECK_STATUS(tbs_options_set_key_provider(&options, &no_unwrap), TBS_INVALID_ARGUMENT);
    CHECK(last_error_contains("unwrap"));
    tbs_key_provider bad_name = provider;
    bad_name.description = "bad\xff";
    CHECK_STATUS(tbs_options_set_key_provider(&options, &bad_name), TBS_INVALID_ARGUMENT);
    CHECK(options.key_provider == NULL); /* failures change nothing */
    tbs_options stale = options;
    stale.version = 2;
    CHECK_STATUS(tbs_options_set_key_provider(&stale, &provider), TBS_INVALID_ARGUMENT);
    CHECK_OK(tbs_options_set_key_provider(&options, &provider));
    CHECK(options.key_provider == &provider);
    CHECK_OK(tbs_options_set_key_provider(&options, NULL));
    CHECK(options.key_provider == NULL);

    /* A raw key and a provider: refused, and the library's copy is released. */
    CHECK_OK(tbs_options_set_key_provider(&options, &provider));
    CHECK_STATUS(tbs_store_open(path_in(path, sizeof path, "both.db"), KEY, 32, &options, &store),
                 TBS_INVALID_ARGUMENT);
    CHECK(store == NULL && kms.releases == 1 && kms.wraps == 0);

    /* Output arguments. */
    uint8_t byte = 1;
    CHECK_STATUS(tbs_key_output_set(NULL, &byte, 1), TBS_INVALID_ARGUMENT);
    CHECK(TBS_MAX_KEY_OUTPUT_BYTES == 65536);

    /* A NULL provider to rotate to. */
    CHECK_OK(tbs_store_open(path_in(path, sizeof path, "args.db"), KEY, 32, NULL, &store));
    if (store != NULL) {
        CHECK_STATUS(tbs_store_rotate_key_provider(store, NULL, NULL), TBS_INVALID_ARGUMENT);
        CHECK_STATUS(tbs_store_rotate_key_provider(store, &no_unwrap, NULL),
                     TBS_INVALID_ARGUMENT);
        CHECK_OK(tbs_store_close(store));
    }
}

static void test_open_get_reopen(void) {
    test_kms kms = {.secret = 0x5EC12E7, .lock = PTHREAD_MUTEX_INITIALIZER};
    tbs_store *store = NULL;

    CHECK_OK(open_with("kms.db", &kms, &store));
    if (store == NULL) {
        return;
    }
    CHECK(kms.wraps >= 1); /* the key check value */
    CHECK_OK(put(store, "tenant-a", "db", "pa55-word"));
    CHECK_OK(get_equals(store, "tenant-a", "db", "pa55-word"));
    int wraps = kms.wraps;
    CHECK_OK(put(store, "tenant-b", "db", "other-value")); /* a new data key is wrapped */
    CHECK(kms.wraps == wraps + 1);
    CHECK(kms.releases == 0);
    CHECK_OK(tbs_store_close(store));
    CHECK(kms.releases == 1); /* released when the store closed */

    /* Reopened through the same KMS: the data keys are unwrapped by the callback. */
    int unwraps = kms.unwraps;
    CHECK_OK(open_with("kms.db", &kms, &store));
    if (store != NULL) {
        CHECK_OK(get_equals(store, "tenant-a", "db", "pa55-word"));
        CHECK_OK(get_equals(store, "tenant-b", "db", "other-value"));
        CHECK(kms.unwraps >= unwraps + 3); /* key check + two data keys */

        /* The KMS goes down: a new tenant's data key cannot be wrapped; nothing is written. */
        kms.refuse_status = 42;
        CHECK_STATUS(put(store, "tenant-c", "db", "v"), TBS_KEY_UNAVAILABLE);
        CHECK(last_error_contains("test-kms") && last_error_contains("42"));
        kms.forget_output = true;
        kms.refuse_status = 0;
        CHECK_STATUS(put(store, "tenant-c", "db", "v"), TBS_KEY_UNAVAILABLE);
        CHECK(last_error_contains("tbs_key_output_set"));
        kms.forget_output = false;
        CHECK_OK(put(store, "tenant-c", "db", "v"));
        CHECK_OK(tbs_store_close(store));
    }
    CHECK(kms.releases == 2);

    /* A refusing callback: the store does not open; its status is named. */
    kms.refuse_status = TBS_STORAGE;
    CHECK_STATUS(open_with("kms.db", &kms, &store), TBS_KEY_UNAVAILABLE);
    CHECK(store == NULL && last_error_contains("STORAGE"));
    CHECK(kms.releases == 3);
    kms.refuse_status = 0;

    /* Another KMS secret cannot open it; neither can a raw key. */
    test_kms other = {.secret = 0xBAD, .lock = PTHREAD_MUTEX_INITIALIZER};
    CHECK_STATUS(open_with("kms.db", &other, &store), TBS_WRONG_MASTER_KEY);
    CHECK(store == NULL && other.releases == 1);
    char path[4200];
    CHECK_STATUS(tbs_store_open(path_in(path, sizeof path, "kms.db"), KEY, 32, NULL, &store),
                 TBS_WRONG_MASTER_KEY);
    CHECK(store == NULL);
}

/* The version 2 layout of tbs_options (before key_provider), as old programs pass it. */
struct options_v2 {
    uint32_t version;
    uint32_t max_versions;
    size_t max_text_chars;
    size_t max_file_bytes;
    uint32_t busy_timeout_ms;
    bool create_if_missing;
    bool keep_materialized;
    const char *materialize_dir;
    const char *policy_json;
    const char *audit_path;
    bool audit_disabled;
    tbs_audit_callback audit_callback;
    void *audit_user_data;
};

static void test_version_2_layout(void) {
    char path[4200];
    tbs_store *store = NULL;
    struct options_v2 *old = malloc(sizeof *old); /* exactly its size: ASan sees over-reads */
    CHECK(old != NULL);
    if (old == NULL) {
        return;
    }
    memset(old, 0, sizeof *old);
    old->version = 2;
    old->max_versions = 3;
    old->max_text_chars = 4;
    old->max_file_bytes = 1024;
    old->busy_timeout_ms = 1000;
    old->create_if_missing = true;
    old->audit_disabled = true;
    CHECK_OK(tbs_store_open(path_in(path, sizeof path, "v2.db"), KEY, 32,
                            (const tbs_options *)(const void *)old, &store));
    free(old);
    if (store != NULL) {
        CHECK_STATUS(put(store, "t", "long", "12345"), TBS_INVALID_ARGUMENT);
        CHECK_OK(put(store, "t", "k", "1234"));
        CHECK_OK(tbs_store_close(store));
    }
}

/* raw key -> callback provider -> raw key. */
static void test_rotation(void) {
    char path[4200];
    test_kms kms = {.secret = 0xC0FFEE, .lock = PTHREAD_MUTEX_INITIALIZER};
    tbs_key_provider provider = provider_of(&kms);
    tbs_store *store = NULL;
    tbs_buffer report = {NULL, 0};

    path_in(path, sizeof path, "rotate.db");
    CHECK_OK(tbs_store_open(path, KEY, 32, NULL, &store));
    if (store == NULL) {
        return;
    }
    CHECK_OK(put(store, "tenant-a", "db", "rotated-secret"));
    CHECK_OK(put(store, "tenant-b", "db", "second-secret"));

    /* A refusing provider: nothing changes, its copy is released. */
    kms.refuse_status = 7;
    CHECK_STATUS(tbs_store_rotate_key_provider(store, &provider, &report), TBS_KEY_UNAVAILABLE);
    CHECK(report.data == NULL && kms.releases == 1);
    kms.refuse_status = 0;

    CHECK_OK(tbs_store_rotate_key_provider(store, &provider, &report));
    CHECK(buffer_contains(&report, "\"keys\":2"));
    tbs_buffer_free(&report);
    CHECK(kms.wraps >= 3); /* two data keys and the key check value */
    CHECK_OK(get_equals(store, "tenant-a", "db", "rotated-secret"));
    CHECK(kms.releases == 1); /* the store holds its copy */
    CHECK_OK(tbs_store_close(store));
    CHECK(kms.releases == 2);

    CHECK_STATUS(tbs_store_open(path, KEY, 32, NULL, &store), TBS_WRONG_MASTER_KEY);
    CHECK_OK(open_with("rotate.db", &kms, &store));
    if (store == NULL) {
        return;
    }
    CHECK_OK(get_equals(store, "tenant-b", "db", "second-secret"));
    /* Back to a raw key: the provider unwraps, the new raw key wraps; the provider's copy is
     * released once the store no longer uses it (at the latest when it closes). */
    CHECK_OK(tbs_store_rotate_master_key(store, NEW_KEY, 32, NULL));
    CHECK_OK(tbs_store_close(store));
    CHECK(kms.releases == 3);
    CHECK_OK(tbs_store_open(path, NEW_KEY, 32, NULL, &store));
    if (store != NULL) {
        CHECK_OK(get_equals(store, "tenant-a", "db", "rotated-secret"));
        CHECK_OK(get_equals(store, "tenant-b", "db", "second-secret"));
        CHECK_OK(tbs_store_close(store));
    }
    CHECK_STATUS(open_with("rotate.db", &kms, &store), TBS_WRONG_MASTER_KEY);
}

struct worker {
    tbs_store *store;
    char tenant[32];
    tbs_status put_status, get_status;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    w->put_status = put(w->store, w->tenant, "db", w->tenant);
    tbs_buffer value = {NULL, 0};
    w->get_status = tbs_store_get(w->store, w->tenant, "db", &value);
    if (w->get_status == TBS_OK && !buffer_equals(&value, w->tenant)) {
        w->get_status = TBS_INTERNAL; /* reported by the main thread */
    }
    tbs_buffer_free(&value);
    return NULL;
}

/* The callbacks are called from the threads using the store, at the same time. */
static void test_threads(void) {
    enum { THREADS = 4 };
    test_kms kms = {.secret = 0x7777, .lock = PTHREAD_MUTEX_INITIALIZER};
    tbs_store *store = NULL;
    CHECK_OK(open_with("threads.db", &kms, &store));
    if (store == NULL) {
        return;
    }
    int wraps = kms.wraps;
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i].store = store;
        snprintf(workers[i].tenant, sizeof workers[i].tenant, "tenant-%d", i);
        CHECK(pthread_create(&threads[i], NULL, worker_main, &workers[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        CHECK_OK(workers[i].put_status);
        CHECK_OK(workers[i].get_status);
    }
    CHECK(kms.wraps == wraps + THREADS); /* one new data key per tenant */
    CHECK_OK(tbs_store_close(store));
    CHECK(kms.releases == 1);
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
    test_arguments();
    test_open_get_reopen();
    test_version_2_layout();
    test_rotation();
    test_threads();
    return finish("test_key_provider");
}
