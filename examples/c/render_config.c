/* A C integration's start-up: open the secret store, resolve the integration's JSON config
 * (TEXT_FILE secrets such as a CA certificate become private files whose paths go into the
 * config), and print a summary that shows no secret value.
 *
 *   render_config STORE CONFIG.json [TENANT]
 *
 * The master key comes from TBS_MASTER_KEY (base64) or TBS_MASTER_KEY_FILE. The config is
 * resolved through a SERVICE session of the tenant (what an integration is), so the store's
 * policy applies and the audit log (STORE.audit.jsonl) names "render_config". On failure it
 * prints "render_config: STATUS: detail" on stderr and exits with the status number.
 *
 * Build (see README.md, "C API"):
 *   cc -Iinclude examples/c/render_config.c -Ltarget/release -ltbsecrets \
 *      -Wl,-rpath,"$PWD/target/release" -o render_config               # shared
 *   cc -Iinclude examples/c/render_config.c target/release/libtbsecrets.a \
 *      -lssl -lcrypto -lpthread -ldl -lm -o render_config                 # static
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tbsecrets.h"

static int fail(const char *what, tbs_status status) {
    fprintf(stderr, "render_config: %s: %s\n", what, tbs_last_error_message());
    return status == TBS_OK ? 1 : (int)status;
}

/* Prints each materialised file (a path under `dir`) that the resolved config names. */
static int print_materialized(const tbs_buffer *config, const char *dir) {
    int count = 0;
    size_t dir_len = strlen(dir);
    const char *text = (const char *)config->data;
    for (const char *at = strstr(text, dir); at != NULL; at = strstr(at + dir_len, dir)) {
        char path[4096];
        size_t len = strcspn(at, "\"");
        if (len >= sizeof path) {
            continue;
        }
        memcpy(path, at, len);
        path[len] = 0;
        struct stat st;
        if (stat(path, &st) == 0) {
            printf("  materialised file: %s (mode %04o, %lld bytes)\n", path,
                   (unsigned)(st.st_mode & 07777), (long long)st.st_size);
            count++;
        }
    }
    return count;
}

/* The whole file in a malloc'd buffer (NULL on error). */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *data = NULL;
    size_t size = 0, cap = 0, n;
    do {
        if (size == cap) {
            cap = cap == 0 ? 4096 : cap * 2;
            char *bigger = realloc(data, cap);
            if (bigger == NULL) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = bigger;
        }
        n = fread(data + size, 1, cap - size, f);
        size += n;
    } while (n > 0);
    fclose(f);
    *len = size;
    return data;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s STORE CONFIG.json [TENANT]\n", argv[0]);
        return 1;
    }
    const char *store_path = argv[1];
    const char *config_path = argv[2];
    const char *tenant = argc == 4 ? argv[3] : TBS_DEFAULT_TENANT;

    /* Materialised files go to a private directory of our own (created 0700 by the library);
     * they are removed when the store handle closes. */
    char dir_template[] = "/tmp/render_config-XXXXXX";
    char *dir = mkdtemp(dir_template);
    if (dir == NULL) {
        perror("render_config: mkdtemp");
        return 1;
    }

    tbs_options options;
    tbs_options_init(&options);
    options.create_if_missing = false; /* an integration reads an existing store */
    options.materialize_dir = dir;

    tbs_store *store = NULL;
    tbs_status status = tbs_store_open(store_path, NULL, 0, &options, &store);
    if (status != TBS_OK) {
        rmdir(dir);
        return fail("cannot open the secret store", status);
    }

    /* Act as what we are: an integration (SERVICE) of the tenant. It may resolve its own
     * tenant's secrets and read their metadata, nothing else. */
    tbs_store *service = NULL;
    status = tbs_store_session(store, tenant, TBS_ROLE_SERVICE, "render_config", &service);
    if (status != TBS_OK) {
        int code = fail("cannot start a SERVICE session", status);
        tbs_store_close(store);
        rmdir(dir);
        return code;
    }

    tbs_buffer config = {NULL, 0};
    status = tbs_store_resolve_file(service, tenant, config_path, TBS_FORMAT_JSON,
                                    TBS_RESOLVE_MATERIALIZE_FILES, &config);
    if (status != TBS_OK) {
        int code = fail("cannot resolve the config", status);
        tbs_store_close(service);
        tbs_store_close(store);
        rmdir(dir);
        return code;
    }

    /* Which secrets the config uses (names and types only, never values). */
    tbs_buffer references = {NULL, 0};
    size_t raw_len = 0;
    char *raw = read_file(config_path, &raw_len);
    status = TBS_INVALID_ARGUMENT;
    if (raw != NULL) {
        status = tbs_references((const uint8_t *)raw, raw_len, &references);
        free(raw);
    }
    if (status != TBS_OK) {
        int code = fail("cannot list the config's secrets", status);
        tbs_buffer_free(&config);
        tbs_store_close(service);
        tbs_store_close(store);
        rmdir(dir);
        return code;
    }

    /* A real integration would now hand `config.data` (a JSON document of `config.len`
     * bytes) to its config parser and keep the store open while it uses the CA file. */
    printf("config %s resolved for tenant '%s': %zu bytes\n", config_path, tenant, config.len);
    printf("  secrets used: %s\n", (const char *)references.data);
    int files = print_materialized(&config, dir);
    printf("  %d TEXT_FILE secret(s) materialised under %s\n", files, dir);

    tbs_buffer_free(&references);
    tbs_buffer_free(&config);         /* wipes the resolved secrets */
    tbs_store_close(service);         /* frees the session only */
    status = tbs_store_close(store);  /* closes the store, removes the materialised files */
    rmdir(dir);
    if (status != TBS_OK) {
        return fail("cannot close the secret store", status);
    }
    return 0;
}
