/* The fixtures every cmocka program shares (testutil.h): temporary
 * database paths, a second connection to a database, and one value out
 * of it by SQL. */
#include "testutil.h"

#include <sqlite3.h>

char *tu_tmp_path(const char *name)
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

void tu_tmp_free(char *path)
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

char *tu_read_file(const char *path, size_t *len)
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

void tu_file_size_limit(rlim_t bytes)
{
        struct rlimit rl;

        assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
        rl.rlim_cur = bytes ? bytes : rl.rlim_max;
        signal(SIGXFSZ, bytes ? SIG_IGN : SIG_DFL);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

sqlite3 *tu_db_open(const char *path, int readonly)
{
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open_v2(path, &db,
                                         readonly ? SQLITE_OPEN_READONLY
                                                  : SQLITE_OPEN_READWRITE |
                                                            SQLITE_OPEN_CREATE,
                                         NULL),
                         SQLITE_OK);
        return db;
}

const char *tu_q(sqlite3 *db, const char *sql)
{
        static char out[4096];
        sqlite3_stmt *stmt;
        int rc;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
                         SQLITE_OK);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) == SQLITE_NULL)
                snprintf(out, sizeof(out), "NULL");
        else if (rc == SQLITE_ROW)
                snprintf(out, sizeof(out), "%s",
                         (const char *)sqlite3_column_text(stmt, 0));
        else
                out[0] = '\0';
        sqlite3_finalize(stmt);
        return out;
}

int64_t tu_qi(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *stmt;
        int64_t v = -1;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
                         SQLITE_OK);
        if (sqlite3_step(stmt) == SQLITE_ROW)
                v = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        return v;
}
