/* The C ABI timed from C (CONTRIBUTING.md, "Benchmarks"): a warm handle's tbs_store_get of a
 * 32-byte secret (ns/op, median of 7 runs of 1,000,000 calls, with a loop that calls
 * nothing as baseline), and tbs_store_resolve_json of a ~1 MiB config (MB/s, median of 7
 * runs of 20 calls).
 *
 *   cargo build --release
 *   cc -O2 -Iinclude benches/c/bench_ffi.c -Ltarget/release -ltbsecrets \
 *      -Wl,-rpath,"$PWD/target/release" -o target/bench_ffi && target/bench_ffi
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tbsecrets.h"

#define RUNS 7

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v) {
    qsort(v, RUNS, sizeof *v, by_value);
    return v[RUNS / 2];
}

static void check(tbs_status status, const char *what) {
    if (status != TBS_OK) {
        fprintf(stderr, "bench_ffi: %s: %s\n", what, tbs_last_error_message());
        exit(1);
    }
}

/* Defeats dead-code elimination of the baseline loop. */
static volatile size_t sink;

int main(void) {
    char dir[] = "/tmp/bench_ffi-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char db[256];
    snprintf(db, sizeof db, "%s/bench.db", dir);
    uint8_t key[32];
    memset(key, 0x42, sizeof key);
    tbs_store *store = NULL;
    check(tbs_store_open(db, key, sizeof key, NULL, &store), "open");

    uint8_t value[32];
    memset(value, 'k', sizeof value);
    check(tbs_store_create(store, "default", "api-key", TBS_TYPE_TEXT, value, sizeof value, NULL,
                           NULL),
          "create");
    for (int i = 0; i < 50; i++) {
        char name[32], text[96];
        snprintf(name, sizeof name, "secret-%02d", i);
        snprintf(text, sizeof text, "value-%02d-%.*s", i, 15 + i,
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        check(tbs_store_create(store, "default", name, TBS_TYPE_TEXT, (const uint8_t *)text,
                               strlen(text), NULL, NULL),
              "create");
    }

    /* get: warm the handle first. */
    const long calls = 1000000;
    double get_ns[RUNS], base_ns[RUNS];
    for (int i = 0; i < 1000; i++) {
        tbs_buffer v = {NULL, 0};
        check(tbs_store_get(store, "default", "api-key", &v), "get");
        tbs_buffer_free(&v);
    }
    for (int r = 0; r < RUNS; r++) {
        double start = now_ns();
        for (long i = 0; i < calls; i++) {
            tbs_buffer v = {NULL, 0};
            tbs_store_get(store, "default", "api-key", &v);
            sink += v.len;
            tbs_buffer_free(&v);
        }
        get_ns[r] = (now_ns() - start) / (double)calls;
        start = now_ns();
        for (long i = 0; i < calls; i++) {
            sink += (size_t)i;
        }
        base_ns[r] = (now_ns() - start) / (double)calls;
    }
    printf("tbs_store_get (32 B, warm): %.1f ns/op (median of %d x %ld; empty loop %.2f ns/op)\n",
           median(get_ns), RUNS, calls, median(base_ns));

    /* resolve: ~1 MiB of JSON objects, each with two placeholders among filler. */
    size_t cap = 1200 * 1024, len = 0;
    char *doc = malloc(cap);
    if (doc == NULL) {
        return 1;
    }
    len += (size_t)snprintf(doc + len, cap - len, "[");
    for (int i = 0; len < 1024 * 1024; i++) {
        len += (size_t)snprintf(doc + len, cap - len,
                                "%s{\"id\": %d, \"host\": \"device-%d.plant.example.com\", "
                                "\"user\": \"${secret:secret-%02d}\", \"password\": "
                                "\"${secret:secret-%02d;type:TEXT}\", \"filler\": \"%s\"}",
                                i == 0 ? "" : ",\n", i, i, i % 50, (i + 7) % 50,
                                "ThingsBoard rule node configuration text without secrets, "
                                "repeated to make a realistic document size");
    }
    len += (size_t)snprintf(doc + len, cap - len, "]");
    double mbs[RUNS];
    const int resolves = 20;
    for (int r = 0; r < RUNS; r++) {
        double start = now_ns();
        for (int i = 0; i < resolves; i++) {
            tbs_buffer out = {NULL, 0};
            check(tbs_store_resolve_json(store, "default", (const uint8_t *)doc, len, 0, &out),
                  "resolve");
            sink += out.len;
            tbs_buffer_free(&out);
        }
        double seconds = (now_ns() - start) / 1e9;
        mbs[r] = (double)len * resolves / seconds / 1e6;
    }
    printf("tbs_store_resolve_json (%zu bytes): %.0f MB/s (median of %d x %d)\n", len,
           median(mbs), RUNS, resolves);

    free(doc);
    check(tbs_store_close(store), "close");
    unlink(db);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", db);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db);
    unlink(wal);
    rmdir(dir);
    return 0;
}
