/* One tbs_store shared by 8 reader threads (get + resolve JSON + per-thread last error)
 * while a writer thread updates a secret they read. Usage: test_threads WORK_DIR.
 * TBS_C_TEST_ITERATIONS sets the reads per thread (default 2000). */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

#define READERS 8

static const char *T = "default";
static tbs_store *store;
static int iterations = 2000;
static atomic_int failures;
static atomic_int writer_done;

struct reader {
    int id;
    pthread_t thread;
};

static void fail(const char *what, int id, tbs_status status) {
    fprintf(stderr, "reader %d: %s: %s (%s)\n", id, what, tbs_status_str((int)status),
            tbs_last_error_message());
    atomic_fetch_add(&failures, 1);
}

/* "rot-N" for a version written by the writer. */
static int valid_rotating(const tbs_buffer *value) {
    if (value->len < 5 || memcmp(value->data, "rot-", 4) != 0 || value->data[value->len] != 0) {
        return 0;
    }
    for (size_t i = 4; i < value->len; i++) {
        if (value->data[i] < '0' || value->data[i] > '9') {
            return 0;
        }
    }
    return 1;
}

static void *read_loop(void *arg) {
    struct reader *self = arg;
    char name[32], expected[64], doc[256], want_doc[256], missing[64];
    snprintf(name, sizeof name, "secret-%d", self->id);
    snprintf(expected, sizeof expected, "value-of-secret-%d", self->id);
    snprintf(doc, sizeof doc, "{\"mine\": \"${secret:%s}\", \"shared\": \"${secret:rotating}\"}",
             name);
    snprintf(want_doc, sizeof want_doc, "{\"mine\": \"%s\", \"shared\": \"rot-", expected);
    snprintf(missing, sizeof missing, "missing-for-thread-%d", self->id);

    for (int i = 0; i < iterations; i++) {
        tbs_buffer value = {NULL, 0};
        tbs_status status = tbs_store_get(store, T, name, &value);
        if (status != TBS_OK) {
            fail("get own", self->id, status);
        } else if (value.len != strlen(expected) || memcmp(value.data, expected, value.len) != 0) {
            fail("get own: wrong value", self->id, status);
        }
        tbs_buffer_free(&value);

        status = tbs_store_get(store, T, "rotating", &value);
        if (status != TBS_OK || !valid_rotating(&value)) {
            fail("get rotating", self->id, status);
        }
        tbs_buffer_free(&value);

        if (i % 4 == 0) {
            tbs_buffer out = {NULL, 0};
            status = tbs_store_resolve_json(store, T, (const uint8_t *)doc, strlen(doc), 0, &out);
            if (status != TBS_OK) {
                fail("resolve", self->id, status);
            } else if (out.len < strlen(want_doc) ||
                       memcmp(out.data, want_doc, strlen(want_doc)) != 0) {
                fail("resolve: wrong output", self->id, status);
            }
            tbs_buffer_free(&out);
        }

        if (i % 16 == 0) {
            /* The last error is per thread: this thread's failure names this thread's
             * secret, whatever the other threads fail with meanwhile. */
            status = tbs_store_get(store, T, missing, &value);
            if (status != TBS_NOT_FOUND || strstr(tbs_last_error_message(), missing) == NULL) {
                fail("per-thread last error", self->id, status);
            }
        }
    }
    return NULL;
}

static void *write_loop(void *arg) {
    (void)arg;
    uint64_t version = 1;
    int writes = iterations / 10 + 10;
    for (int i = 0; i < writes; i++) {
        char value[32];
        snprintf(value, sizeof value, "rot-%d", i + 1);
        uint64_t next = 0;
        /* Check-and-set: nobody else writes this secret, so it always matches. */
        tbs_status status = tbs_store_update_value(store, T, "rotating", (const uint8_t *)value,
                                                   strlen(value), version, &next);
        if (status != TBS_OK || next != version + 1) {
            fprintf(stderr, "writer: update %d: %s (%s)\n", i, tbs_status_str((int)status),
                    tbs_last_error_message());
            atomic_fetch_add(&failures, 1);
            break;
        }
        version = next;
    }
    atomic_store(&writer_done, 1);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    const char *env = getenv("TBS_C_TEST_ITERATIONS");
    if (env != NULL && atoi(env) > 0) {
        iterations = atoi(env);
    }
    uint8_t key[32];
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)(i * 3 + 1);
    }
    char db[4200];
    snprintf(db, sizeof db, "%s/threads.db", argv[1]);
    CHECK_OK(tbs_store_open(db, key, sizeof key, NULL, &store));
    if (store == NULL) {
        return finish("test_threads");
    }
    for (int i = 0; i < READERS; i++) {
        char name[32], value[64];
        snprintf(name, sizeof name, "secret-%d", i);
        snprintf(value, sizeof value, "value-of-secret-%d", i);
        CHECK_OK(tbs_store_create(store, T, name, TBS_TYPE_TEXT, (const uint8_t *)value,
                                  strlen(value), NULL, NULL));
    }
    CHECK_OK(tbs_store_create(store, T, "rotating", TBS_TYPE_TEXT, (const uint8_t *)"rot-0", 5,
                              NULL, NULL));

    struct reader readers[READERS];
    pthread_t writer;
    CHECK(pthread_create(&writer, NULL, write_loop, NULL) == 0);
    for (int i = 0; i < READERS; i++) {
        readers[i].id = i;
        CHECK(pthread_create(&readers[i].thread, NULL, read_loop, &readers[i]) == 0);
    }
    for (int i = 0; i < READERS; i++) {
        CHECK(pthread_join(readers[i].thread, NULL) == 0);
    }
    CHECK(pthread_join(writer, NULL) == 0);
    CHECK(atomic_load(&writer_done) == 1);
    CHECK(atomic_load(&failures) == 0);

    /* Every write landed: the final version is 1 + the number of writes. */
    tbs_buffer info = {NULL, 0};
    char want[64];
    snprintf(want, sizeof want, "\"version\":%d,", iterations / 10 + 10 + 1);
    CHECK_OK(tbs_store_info(store, T, "rotating", &info));
    CHECK(buffer_contains(&info, want));
    tbs_buffer_free(&info);
    CHECK_OK(tbs_store_close(store));
    return finish("test_threads");
}
