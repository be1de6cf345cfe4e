/* dbfile.c, shared by the read model and the application database: the
 * classes of SQLite failures (wait, a few retries, give up) and the check
 * that refuses a file of another kind or program before writing to it,
 * here with a kind of two tables. */
#include "testutil.h"

#include <errno.h>
#include <sqlite3.h>

#include "orderflow/error.h"

#include "../src/dbfile.h"

static const char *const older[] = {"run_[0-9]*", NULL};
static const dbfile_kind kind = {
        "a thing", "CREATE TABLE IF NOT EXISTS a (x);"
                   "CREATE TABLE IF NOT EXISTS b (y);",
        older, "c", "another thing"};

typedef struct fixture {
        char *path;
        char errstr[512];
} fixture;

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));

        f->path = tu_tmp_path("file.db");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fixture *f = *state;

        tu_tmp_free(f->path);
        free(f);
        *state = NULL;
        return 0;
}

/* Run sql on the file at path with a plain connection. */
static void make(const char *path, const char *sql)
{
        sqlite3 *db;

        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* dbfile_open() read-write on path: its result, the connection closed. */
static int open_rw(fixture *f, const char *path)
{
        sqlite3 *db = NULL;
        int err = dbfile_open(&db, path,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              &kind, 1000, f->errstr, sizeof(f->errstr));

        assert_true(err ? db == NULL : db != NULL);
        sqlite3_close(db);
        return err;
}

static void test_dbfile_code_classes(void **state)
{
        static const struct {
                int rc, sys_errno, want;
        } cases[] = {
                {SQLITE_BUSY, 0, OF_EBUSY},
                {SQLITE_BUSY_RECOVERY, 0, OF_EBUSY},
                {SQLITE_BUSY_SNAPSHOT, 0, OF_EBUSY},
                {SQLITE_LOCKED, 0, OF_EBUSY},
                {SQLITE_LOCKED_SHAREDCACHE, 0, OF_EBUSY},
                {SQLITE_PROTOCOL, 0, OF_EBUSY},
                {SQLITE_FULL, 0, OF_EBUSY},
                {SQLITE_FULL, ENOSPC, OF_EBUSY},
                /* growing the -shm on a full file system */
                {SQLITE_IOERR_SHMSIZE, ENOSPC, OF_EBUSY},
                {SQLITE_IOERR_WRITE, EDQUOT, OF_EBUSY},
                {SQLITE_IOERR, 0, OF_EIO},
                {SQLITE_IOERR_WRITE, EIO, OF_EIO},
                /* a file size limit (ulimit -f) */
                {SQLITE_IOERR_WRITE, EFBIG, OF_EIO},
                {SQLITE_IOERR_FSYNC, EIO, OF_EIO},
                {SQLITE_IOERR_READ, 0, OF_EIO},
                {SQLITE_IOERR_SHMSIZE, EIO, OF_EIO},
                {SQLITE_IOERR_NOMEM, ENOMEM, OF_ERROR},
                {SQLITE_NOMEM, 0, OF_ERROR},
                {SQLITE_CORRUPT, 0, OF_ERROR},
                {SQLITE_NOTADB, 0, OF_ERROR},
                {SQLITE_READONLY, 0, OF_ERROR},
                {SQLITE_CANTOPEN, ENOENT, OF_ERROR},
                {SQLITE_CONSTRAINT_UNIQUE, 0, OF_ERROR},
                {SQLITE_ERROR, 0, OF_ERROR},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (dbfile_code(cases[i].rc, cases[i].sys_errno) !=
                    cases[i].want)
                        fail_msg("case %zu: rc %d errno %d: got %d, want %d",
                                 i, cases[i].rc, cases[i].sys_errno,
                                 dbfile_code(cases[i].rc,
                                             cases[i].sys_errno),
                                 cases[i].want);
        }
}

static void test_dbfile_empty_and_own_tables_are_accepted(void **state)
{
        fixture *f = *state;
        FILE *fp = fopen(f->path, "w");

        /* An empty file: a new database. */
        assert_non_null(fp);
        fclose(fp);
        assert_int_equal(open_rw(f, f->path), 0);
        /* Its tables, a numbered one, and SQLite's own (sqlite_stat1,
         * sqlite_sequence). */
        make(f->path, "CREATE TABLE a (x INTEGER PRIMARY KEY AUTOINCREMENT);"
                      "CREATE TABLE b (y); CREATE TABLE run_12 (z);"
                      "CREATE INDEX b_y ON b (y);"
                      "INSERT INTO a VALUES (1); INSERT INTO b VALUES (2);"
                      "ANALYZE;");
        assert_int_equal(open_rw(f, f->path), 0);
}

static void test_dbfile_refuses_another_program_and_leaves_it(void **state)
{
        fixture *f = *state;
        char want[700], wal[600];
        char *before, *wal_before, *after, *wal_after;
        size_t n, wal_n, n2, wal_n2;
        sqlite3 *db;

        /* WAL mode, its last commit still in the -wal: our close must not
         * checkpoint it into the file. */
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        assert_int_equal(sqlite3_exec(db,
                                      "PRAGMA journal_mode = WAL;"
                                      "CREATE TABLE a (x);"
                                      "CREATE TABLE users (name);"
                                      "INSERT INTO users VALUES ('ann')",
                                      NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        snprintf(wal, sizeof(wal), "%s-wal", f->path);
        before = tu_read_file(f->path, &n);
        wal_before = tu_read_file(wal, &wal_n);
        assert_true(wal_n > 0);

        assert_int_equal(open_rw(f, f->path), OF_ERROR);
        snprintf(want, sizeof(want),
                 "%s: a database of another program (table users), not a "
                 "thing", f->path);
        assert_string_equal(f->errstr, want);
        after = tu_read_file(f->path, &n2);
        wal_after = tu_read_file(wal, &wal_n2);
        assert_true(n2 == n && !memcmp(before, after, n));
        assert_true(wal_n2 == wal_n && !memcmp(wal_before, wal_after, wal_n));
        free(before);
        free(after);
        free(wal_before);
        free(wal_after);
}

static void test_dbfile_names_the_other_kind(void **state)
{
        fixture *f = *state;
        char want[700];

        make(f->path, "CREATE TABLE a (x); CREATE TABLE c (x);"
                      "CREATE TABLE users (x)");
        assert_int_equal(open_rw(f, f->path), OF_ERROR);
        snprintf(want, sizeof(want), "%s: another thing, not a thing",
                 f->path);
        assert_string_equal(f->errstr, want);
}

static void test_dbfile_foreign_name_stays_on_one_line(void **state)
{
        fixture *f = *state;
        char want[700];

        make(f->path, "CREATE TABLE \"two\nlines\" (x)");
        assert_int_equal(open_rw(f, f->path), OF_ERROR);
        snprintf(want, sizeof(want),
                 "%s: a database of another program (table two?lines), not "
                 "a thing", f->path);
        assert_string_equal(f->errstr, want);
}

static void test_dbfile_not_a_database(void **state)
{
        fixture *f = *state;
        FILE *fp = fopen(f->path, "w");
        char want[700];

        assert_non_null(fp);
        fputs("not a database, just some text long enough to fill a "
              "header. .......................................\n", fp);
        fclose(fp);
        assert_int_equal(open_rw(f, f->path), OF_ERROR);
        snprintf(want, sizeof(want),
                 "%s is not a thing: file is not a database", f->path);
        assert_string_equal(f->errstr, want);
}

static void test_dbfile_open_without_create_says_not_found(void **state)
{
        fixture *f = *state;
        sqlite3 *db = NULL;

        assert_int_equal(dbfile_open(&db, f->path, SQLITE_OPEN_READONLY,
                                     &kind, 1000, f->errstr,
                                     sizeof(f->errstr)),
                         OF_ENOTFOUND);
        assert_null(db);
        assert_int_equal(access(f->path, F_OK), -1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dbfile_code_classes),
                T(test_dbfile_empty_and_own_tables_are_accepted),
                T(test_dbfile_refuses_another_program_and_leaves_it),
                T(test_dbfile_names_the_other_kind),
                T(test_dbfile_foreign_name_stays_on_one_line),
                T(test_dbfile_not_a_database),
                T(test_dbfile_open_without_create_says_not_found),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
