/* Shared by the cmocka test programs: cmocka's required includes and a
 * few helpers for temporary files. */
#ifndef ORDERFLOW_TESTUTIL_H
#define ORDERFLOW_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

/* The whole file at path, malloc'ed, its size in *len; NULL (and *len 0)
 * when there is no such file. */
static inline char *tu_read_file(const char *path, size_t *len)
{
        FILE *fp = fopen(path, "rb");
        struct stat sb;
        char *p;

        *len = 0;
        if (!fp)
                return NULL;
        assert_int_equal(fstat(fileno(fp), &sb), 0);
        *len = (size_t)sb.st_size;
        p = malloc(*len + 1);
        assert_non_null(p);
        assert_int_equal(fread(p, 1, *len, fp), *len);
        fclose(fp);
        return p;
}

/* Writes past bytes of any file fail with EFBIG from now on (SIGXFSZ
 * ignored), the way SQLite meets a failing disk; 0 lifts the limit.
 * Print nothing while it holds: the test's log is a file too. */
static inline void tu_file_size_limit(rlim_t bytes)
{
        struct rlimit rl;

        assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
        rl.rlim_cur = bytes ? bytes : rl.rlim_max;
        signal(SIGXFSZ, bytes ? SIG_IGN : SIG_DFL);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

#endif
