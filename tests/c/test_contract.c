/* The cross-surface contract (tests/contract/cases.tsv) run against the C ABI: one fresh store,
 * every case in order, each outcome compared by its status name (tbs_status_str) and, for OK
 * reads, byte for byte. The file's format is described at its top; the Rust API, Java and the
 * CLI run the same file.
 * Usage: test_contract WORK_DIR (an empty private directory). The data file is found beside
 * this source (tests/c/../contract/cases.tsv), or at $TBS_CONTRACT_CASES. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>

#include "check.h"

#define FIELDS 10
static const char HEADER[] = "op\ttenant\tname\ttype\tvalue\targ\texpect\tresult\tskip\tnote";
static const char SURFACE[] = "c";

/* A growable byte string, always NUL-terminated when data is not NULL. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} bytes;

static int reserve(bytes *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    uint8_t *data = realloc(b->data, cap);
    if (data == NULL) {
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int push(bytes *b, uint8_t byte, size_t count) {
    if (reserve(b, count) != 0) {
        return -1;
    }
    memset(b->data + b->len, byte, count);
    b->len += count;
    b->data[b->len] = 0;
    return 0;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes one escaped field into `out` (emptied first); -1 on a malformed escape. */
static int unescape(const char *field, bytes *out) {
    out->len = 0;
    if (push(out, 0, 0) != 0) {
        return -1;
    }
    for (const char *p = field; *p != 0; p++) {
        if (*p != '\\') {
            if (push(out, (uint8_t)*p, 1) != 0) {
                return -1;
            }
            continue;
        }
        p++;
        int rc;
        switch (*p) {
        case '\\': rc = push(out, '\\', 1); break;
        case 't': rc = push(out, '\t', 1); break;
        case 'n': rc = push(out, '\n', 1); break;
        case 'r': rc = push(out, '\r', 1); break;
        case 'x': {
            int hi = hex_digit(p[1]);
            int lo = hi < 0 ? -1 : hex_digit(p[2]);
            if (lo < 0) {
                return -1;
            }
            rc = push(out, (uint8_t)(hi * 16 + lo), 1);
            p += 2;
            break;
        }
        case '{': {
            char *end = NULL;
            errno = 0;
            unsigned long count = strtoul(p + 1, &end, 10);
            if (errno != 0 || end == p + 1 || *end != '}' || count == 0 || out->len == 0) {
                return -1;
            }
            rc = push(out, out->data[out->len - 1], (size_t)count - 1);
            p = end;
            break;
        }
        default:
            return -1;
        }
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

/* Whether the comma-separated `list` names `surface`. */
static int lists(const char *list, const char *surface) {
    size_t n = strlen(surface);
    const char *p = list;
    while (*p != 0) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, surface, n) == 0) {
            return 1;
        }
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    return 0;
}

/* Every field's decoded bytes, reused from case to case. */
static bytes tenant, name, value, result;
static int cases_run, cases_skipped;

/* Runs one case (fields already split); counts one CHECK per comparison. */
static void run_case(tbs_store *store, int line, char **f) {
    const char *op = f[0];
    const char *expect = f[6];
    if (unescape(f[1], &tenant) != 0 || unescape(f[2], &name) != 0 ||
        unescape(f[4], &value) != 0 || unescape(f[7], &result) != 0) {
        fprintf(stderr, "line %d: a malformed escape\n", line);
        CHECK(0);
        return;
    }
    if (strlen((const char *)tenant.data) != tenant.len ||
        strlen((const char *)name.data) != name.len) {
        fprintf(stderr, "line %d: a NUL byte in a tenant or name cannot reach the C ABI\n", line);
        CHECK(0);
        return;
    }
    const char *t = (const char *)tenant.data;
    const char *n = (const char *)name.data;
    uint64_t arg = f[5][0] ? strtoull(f[5], NULL, 10) : TBS_ANY_VERSION;
    uint64_t version = 0;
    int reads = 0;
    int writes = 0;
    tbs_buffer out = {NULL, 0};
    tbs_status status;
    if (strcmp(op, "create") == 0) {
        tbs_secret_type type = strcmp(f[3], "TEXT") == 0 ? TBS_TYPE_TEXT : TBS_TYPE_TEXT_FILE;
        status = tbs_store_create(store, t, n, type, value.data, value.len, NULL, &version);
        writes = 1;
    } else if (strcmp(op, "update") == 0) {
        status = tbs_store_update_value(store, t, n, value.data, value.len, arg, &version);
        writes = 1;
    } else if (strcmp(op, "rollback") == 0) {
        status = tbs_store_rollback(store, t, n, arg, &version);
        writes = 1;
    } else if (strcmp(op, "get") == 0) {
        status = tbs_store_get(store, t, n, &out);
        reads = 1;
    } else if (strcmp(op, "delete") == 0) {
        status = tbs_store_delete(store, t, n, false);
    } else if (strcmp(op, "undelete") == 0) {
        status = tbs_store_undelete(store, t, n);
    } else if (strcmp(op, "destroy") == 0) {
        status = tbs_store_destroy(store, t, n);
    } else if (strcmp(op, "resolve_text") == 0) {
        status = tbs_store_resolve_text(store, t, value.data, value.len, 0, &out);
        reads = 1;
    } else if (strcmp(op, "resolve_json") == 0) {
        status = tbs_store_resolve_json(store, t, value.data, value.len, 0, &out);
        reads = 1;
    } else {
        fprintf(stderr, "line %d: unknown op %s\n", line, op);
        CHECK(0);
        return;
    }
    cases_run++;
    const char *got = tbs_status_str((int)status);
    if (strcmp(got, expect) != 0) {
        fprintf(stderr, "line %d: %s returned %s, expected %s (%s; last error: %s)\n", line, op,
                got, expect, f[9], tbs_last_error_message());
        CHECK(0);
    } else {
        CHECK(1);
        if (status == TBS_OK && reads) {
            int same = out.len == result.len &&
                       (out.len == 0 || memcmp(out.data, result.data, out.len) == 0);
            if (!same) {
                fprintf(stderr, "line %d: %s returned %zu bytes, not the %zu expected (%s)\n",
                        line, op, out.len, result.len, f[9]);
            }
            CHECK(same);
        }
        if (status == TBS_OK && writes && f[7][0] != 0) {
            uint64_t want = strtoull(f[7], NULL, 10);
            if (version != want) {
                fprintf(stderr, "line %d: version %llu, expected %llu\n", line,
                        (unsigned long long)version, (unsigned long long)want);
            }
            CHECK(version == want);
        }
        if (status != TBS_OK && reads) {
            CHECK(out.data == NULL && out.len == 0); /* untouched on failure */
        }
    }
    tbs_buffer_free(&out);
}

/* The data file: $TBS_CONTRACT_CASES, else ../contract/cases.tsv beside this source. */
static void cases_path(char *out, size_t size) {
    const char *env = getenv("TBS_CONTRACT_CASES");
    if (env != NULL && env[0] != 0) {
        snprintf(out, size, "%s", env);
        return;
    }
    snprintf(out, size, "%s", __FILE__);
    char *slash = strrchr(out, '/');
    if (slash == NULL) {
        snprintf(out, size, "../contract/cases.tsv");
        return;
    }
    *slash = 0;
    size_t used = strlen(out);
    snprintf(out + used, size - used, "/../contract/cases.tsv");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    cases_path(path, sizeof path);
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        CHECK(0);
        return finish("test_contract");
    }

    uint8_t key[32];
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)(0x40 + i);
    }
    char db[4200];
    snprintf(db, sizeof db, "%s/contract.db", argv[1]);
    tbs_store *store = NULL;
    CHECK_OK(tbs_store_open(db, key, sizeof key, NULL, &store));
    if (store == NULL) {
        fclose(file);
        return finish("test_contract");
    }

    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int line_no = 0;
    int header_seen = 0;
    while ((got = getline(&line, &cap, file)) != -1) {
        line_no++;
        if (got > 0 && line[got - 1] == '\n') {
            line[--got] = 0;
        }
        if (got > 0 && line[got - 1] == '\r') {
            line[--got] = 0;
        }
        if (got == 0 || line[0] == '#') {
            continue;
        }
        if (!header_seen) {
            header_seen = 1;
            if (strcmp(line, HEADER) != 0) {
                fprintf(stderr, "line %d: not the expected header\n", line_no);
                CHECK(0);
                break;
            }
            continue;
        }
        char *f[FIELDS];
        int count = 0;
        char *p = line;
        while (count < FIELDS) {
            f[count++] = p;
            char *tab = strchr(p, '\t');
            if (tab == NULL) {
                break;
            }
            *tab = 0;
            p = tab + 1;
        }
        if (count != FIELDS || strchr(f[FIELDS - 1], '\t') != NULL) {
            fprintf(stderr, "line %d: %d fields, not %d\n", line_no, count, FIELDS);
            CHECK(0);
            continue;
        }
        if (lists(f[8], SURFACE)) {
            printf("skipped (the file says so): line %d: %s %s\n", line_no, f[0], f[9]);
            cases_skipped++;
            continue;
        }
        run_case(store, line_no, f);
    }
    free(line);
    fclose(file);
    CHECK(header_seen);
    CHECK(cases_run > 50);
    CHECK_OK(tbs_store_close(store));
    free(tenant.data);
    free(name.data);
    free(value.data);
    free(result.data);
    printf("contract: %d cases run, %d skipped\n", cases_run, cases_skipped);
    return finish("test_contract");
}
