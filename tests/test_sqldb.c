/* sqldb.c, shared by the read model and the application database: the
 * classes of SQLite failures, the check that refuses a file of another
 * kind or program before writing to it, the writer's set-up with its
 * migrations, and the statement tables, here with a kind of two tables. */
#include "testutil.h"

#include <errno.h>
#include <sqlite3.h>

#include "orderflow/error.h"

#include "../src/sqldb.h"

static const char *const older[] = {"run_[0-9]*", NULL};
static const sqldb_kind kind = {
        .name = "a thing",
        .schema = "CREATE TABLE IF NOT EXISTS a (x);"
                  "CREATE TABLE IF NOT EXISTS b (y);",
        .older = older,
        .other_table = "c",
        .other_name = "another thing",
        .pragmas = "PRAGMA journal_mode = WAL;",
};

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

        db = tu_db_open(path, 0);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* sqldb_open() read-write on path: its result, the connection closed. */
static int open_rw(fixture *f, const char *path)
{
        sqlite3 *db = NULL;
        int err = sqldb_open(&db, path,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &kind,
                             1000, f->errstr, sizeof(f->errstr));

        assert_true(err ? db == NULL : db != NULL);
        sqlite3_close(db);
        return err;
}

static void test_sqldb_code_classes(void **state)
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
                if (sqldb_code(cases[i].rc, cases[i].sys_errno) !=
                    cases[i].want)
                        fail_msg("case %zu: rc %d errno %d: got %d, want %d",
                                 i, cases[i].rc, cases[i].sys_errno,
                                 sqldb_code(cases[i].rc, cases[i].sys_errno),
                                 cases[i].want);
        }
}

static void test_sqldb_empty_and_own_tables_are_accepted(void **state)
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

static void test_sqldb_refuses_another_program_and_leaves_it(void **state)
{
        fixture *f = *state;
        char want[700], wal[600];
        char *before, *wal_before, *after, *wal_after;
        size_t n, wal_n, n2, wal_n2;
        sqlite3 *db;

        /* WAL mode, its last commit still in the -wal: our close must not
         * checkpoint it into the file. */
        db = tu_db_open(f->path, 0);
        sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        assert_int_equal(sqlite3_exec(db,
                                      "PRAGMA journal_mode = WAL;"
                                      "CREATE TABLE a (x);"
                                      "CREATE TABLE users (name);"
                                      "INSERT INTO users VALUES ('ann')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        snprintf(wal, sizeof(wal), "%s-wal", f->path);
        before = tu_read_file(f->path, &n);
        wal_before = tu_read_file(wal, &wal_n);
        assert_true(wal_n > 0);

        assert_int_equal(open_rw(f, f->path), OF_ERROR);
        snprintf(want, sizeof(want),
                 "%s: a database of another program (table users), not a "
                 "thing",
                 f->path);
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

static void test_sqldb_names_the_other_kind(void **state)
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

static void test_sqldb_foreign_name_stays_on_one_line(void **state)
{
        fixture *f = *state;
        char want[700];

        make(f->path, "CREATE TABLE \"two\nlines\" (x)");
        assert_int_equal(open_rw(f, f->path), OF_ERROR);
        snprintf(want, sizeof(want),
                 "%s: a database of another program (table two?lines), not "
                 "a thing",
                 f->path);
        assert_string_equal(f->errstr, want);
}

static void test_sqldb_not_a_database(void **state)
{
        fixture *f = *state;
        FILE *fp = fopen(f->path, "w");
        char want[700];

        assert_non_null(fp);
        fputs("not a database, just some text long enough to fill a "
              "header. .......................................\n",
              fp);
        fclose(fp);
        assert_int_equal(open_rw(f, f->path), OF_ERROR);
        snprintf(want, sizeof(want), "%s: not a thing: file is not a database",
                 f->path);
        assert_string_equal(f->errstr, want);
}

static void test_sqldb_open_without_create_says_not_found(void **state)
{
        fixture *f = *state;
        sqlite3 *db = NULL;

        assert_int_equal(sqldb_open(&db, f->path, SQLITE_OPEN_READONLY, &kind,
                                    1000, f->errstr, sizeof(f->errstr)),
                         OF_ENOTFOUND);
        assert_null(db);
        assert_int_equal(access(f->path, F_OK), -1);
}

/* What the migration hooks saw, in the order they ran. */
static char seen[256];

static void see(sqlite3 *db, const char *when)
{
        int a = -1, x = -1, nope = -1;
        size_t len = strlen(seen);

        assert_int_equal(sqldb_has_table(&a, db, "a"), SQLITE_OK);
        assert_int_equal(sqldb_has_column(&x, db, "a", "x"), SQLITE_OK);
        assert_int_equal(sqldb_has_column(&nope, db, "a", "nope"), SQLITE_OK);
        snprintf(seen + len, sizeof(seen) - len, "%s%s: a %d x %d nope %d",
                 len ? "; " : "", when, a, x, nope);
        /* Both run inside the open's write transaction. */
        assert_int_equal(sqlite3_get_autocommit(db), 0);
}

static int before(sqlite3 *db, char **msg)
{
        (void)msg;
        see(db, "before");
        return SQLITE_OK;
}

static int after(sqlite3 *db, char **msg)
{
        see(db, "after");
        return sqlite3_exec(db, "INSERT INTO b VALUES ('migrated')", NULL,
                            NULL, msg);
}

/* sqldb_open() and sqldb_setup() of a writer; the connection in *db. */
static int open_setup(fixture *f, const sqldb_kind *k, sqlite3 **db)
{
        int err = sqldb_open(db, f->path,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, k,
                             1000, f->errstr, sizeof(f->errstr));

        return err ? err
                   : sqldb_setup(*db, f->path, k, f->errstr,
                                 sizeof(f->errstr));
}

static void test_sqldb_setup_migrates_around_the_schema(void **state)
{
        fixture *f = *state;
        sqldb_kind k = kind;
        sqlite3 *db = NULL;
        int has;

        k.before = before;
        k.after = after;
        seen[0] = '\0';
        assert_int_equal(open_setup(f, &k, &db), 0);
        assert_string_equal(seen, "before: a 0 x 0 nope 0; "
                                  "after: a 1 x 1 nope 0");
        assert_int_equal(sqlite3_get_autocommit(db), 1);
        assert_int_equal(sqldb_exists(&has, db, "SELECT 1 FROM b WHERE y = ?1",
                                      "migrated", NULL),
                         SQLITE_OK);
        assert_int_equal(has, 1);
        sqlite3_close(db);
}

static void test_sqldb_setup_failure_names_the_file(void **state)
{
        fixture *f = *state;
        sqldb_kind k = kind;
        sqlite3 *db = NULL;
        char want[700];

        k.after = after;
        k.schema = "CREATE TABLE IF NOT EXISTS a (x);";
        assert_int_equal(open_setup(f, &k, &db), OF_ERROR);
        snprintf(want, sizeof(want), "%s: no such table: b", f->path);
        assert_string_equal(f->errstr, want);
        sqlite3_close(db);
}

static void test_sqldb_statement_table_steps_and_fails(void **state)
{
        fixture *f = *state;
        static const char *const good[] = {
                "BEGIN IMMEDIATE", "INSERT INTO a VALUES (?1)", "ROLLBACK"};
        static const char *const bad[] = {"SELECT x FROM a",
                                          "SELECT nope FROM a"};
        sqlite3_stmt *stmt[3] = {NULL, NULL, NULL};
        sqlite3 *db = NULL, *other;
        int has;

        assert_int_equal(open_setup(f, &kind, &db), 0);
        assert_int_equal(sqldb_prepare_all(db, stmt, bad, 2, f->errstr,
                                           sizeof(f->errstr)),
                         OF_ERROR);
        assert_string_equal(f->errstr,
                            "preparing statements: no such column: nope");
        assert_non_null(stmt[0]);
        sqldb_finalize_all(stmt, 2);
        assert_null(stmt[0]);
        assert_int_equal(sqldb_prepare_all(db, stmt, good, 3, f->errstr,
                                           sizeof(f->errstr)),
                         0);
        /* In a transaction rolled back: nothing stays. */
        assert_int_equal(sqldb_step(db, stmt[0], f->errstr, sizeof(f->errstr)),
                         0);
        sqlite3_bind_int(stmt[1], 1, 7);
        assert_int_equal(sqldb_step(db, stmt[1], f->errstr, sizeof(f->errstr)),
                         0);
        sqldb_rollback(db, stmt[2]);
        sqldb_rollback(db, stmt[2]); /* none open: nothing to do */
        assert_int_equal(sqldb_exists(&has, db, "SELECT 1 FROM a", NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(has, 0);
        /* Another connection holds the write lock: worth waiting out. */
        other = tu_db_open(f->path, 0);
        assert_int_equal(
                sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                SQLITE_OK);
        sqlite3_busy_timeout(db, 10);
        assert_int_equal(sqldb_step(db, stmt[0], f->errstr, sizeof(f->errstr)),
                         OF_EBUSY);
        assert_string_equal(f->errstr, "BEGIN IMMEDIATE: database is locked");
        sqlite3_close(other);
        sqldb_finalize_all(stmt, 3);
        sqlite3_close(db);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sqldb_code_classes),
                T(test_sqldb_empty_and_own_tables_are_accepted),
                T(test_sqldb_refuses_another_program_and_leaves_it),
                T(test_sqldb_names_the_other_kind),
                T(test_sqldb_foreign_name_stays_on_one_line),
                T(test_sqldb_not_a_database),
                T(test_sqldb_open_without_create_says_not_found),
                T(test_sqldb_setup_migrates_around_the_schema),
                T(test_sqldb_setup_failure_names_the_file),
                T(test_sqldb_statement_table_steps_and_fails),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
