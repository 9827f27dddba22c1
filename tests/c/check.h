/* Tiny check helpers shared by the C tests (tests/c_abi.rs compiles and runs them).
 * Each program prints "NAME: N passed, M failed" last and exits non-zero if any failed. */
#ifndef TBS_TEST_CHECK_H
#define TBS_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tbsecrets.h"

static int checks_passed;
static int checks_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            checks_passed++;                                                         \
        } else {                                                                     \
            checks_failed++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_STATUS(expr, want)                                                       \
    do {                                                                               \
        tbs_status got_ = (expr);                                                      \
        if (got_ == (want)) {                                                          \
            checks_passed++;                                                           \
        } else {                                                                       \
            checks_failed++;                                                           \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s (last error: %s)\n",  \
                    __FILE__, __LINE__, #expr, tbs_status_str((int)got_),              \
                    tbs_status_str((int)(want)), tbs_last_error_message());            \
        }                                                                              \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, TBS_OK)

/* Whether the buffer holds `needle` anywhere. */
static inline int buffer_contains(const tbs_buffer *buffer, const char *needle) {
    size_t n = strlen(needle);
    if (buffer->data == NULL || n > buffer->len) {
        return 0;
    }
    for (size_t i = 0; i + n <= buffer->len; i++) {
        if (memcmp(buffer->data + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Whether the buffer holds exactly `text` (and the NUL after it). */
static inline int buffer_equals(const tbs_buffer *buffer, const char *text) {
    size_t n = strlen(text);
    return buffer->data != NULL && buffer->len == n && memcmp(buffer->data, text, n) == 0 &&
           buffer->data[n] == 0;
}

static inline int finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

#endif
