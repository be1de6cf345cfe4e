/* Shared by the cmocka test programs: cmocka's required includes and a
 * few helpers for temporary files. */
#ifndef ORDERFLOW_TESTUTIL_H
#define ORDERFLOW_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh path in a new temporary directory ("<dir>/<name>"); the caller
 * frees it with tu_tmp_free, which removes the directory and its files. */
static inline char *tu_tmp_path(const char *name)
{
        char tmpl[] = "/tmp/orderflow-test-XXXXXX";
        char *dir = mkdtemp(tmpl);
        char *path;

        assert_non_null(dir);
        path = malloc(strlen(dir) + strlen(name) + 2);
        assert_non_null(path);
        sprintf(path, "%s/%s", dir, name);
        return path;
}

static inline void tu_tmp_free(char *path)
{
        char cmd[600];
        char *slash;

        if (!path)
                return;
        slash = strrchr(path, '/');
        *slash = '\0';
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", path);
        free(path);
}

#endif
