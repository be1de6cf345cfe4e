/* What the read model (store*.c) and the application database (appdb.c,
 * outbox.c) share about their SQLite files: the checked open, a writer's
 * set-up, statement tables, step/fail/rollback and the classes of
 * failures. Their schemas, migrations and statements are their own. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "orderflow/error.h"

#include "sqldb.h"

int sqldb_code(int rc, int sys_errno)
{
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_PROTOCOL: /* WAL locks raced for too long */
        case SQLITE_FULL:
                return OF_EBUSY;
        case SQLITE_IOERR:
                if (rc == SQLITE_IOERR_NOMEM)
                        return OF_ERROR;
                /* SQLite says SQLITE_FULL only for its own files' writes;
                 * growing the -shm on a full file system is an "I/O
                 * error" with ENOSPC. */
                if (sys_errno == ENOSPC || sys_errno == EDQUOT)
                        return OF_EBUSY;
                return OF_EIO;
        default:
                return OF_ERROR;
        }
}

int sqldb_code_of(sqlite3 *db, int rc)
{
        return sqldb_code(rc, sqlite3_system_errno(db));
}

int sqldb_fail(sqlite3 *db, int rc, const char *what, char *errstr,
               size_t errstr_size)
{
        of_errf(errstr, errstr_size, "%s: %s", what, sqlite3_errmsg(db));
        return sqldb_code_of(db, rc);
}

int sqldb_step(sqlite3 *db, sqlite3_stmt *stmt, char *errstr,
               size_t errstr_size)
{
        int rc = sqlite3_step(stmt), err = 0;

        /* The message before the reset, at the failing call. */
        if (rc != SQLITE_DONE)
                err = sqldb_fail(db, rc, sqlite3_sql(stmt), errstr,
                                 errstr_size);
        sqlite3_reset(stmt);
        return err;
}

void sqldb_rollback(sqlite3 *db, sqlite3_stmt *rollback)
{
        if (!sqlite3_get_autocommit(db))
                sqlite3_step(rollback), sqlite3_reset(rollback);
}

/* ---- statement tables ---- */

int sqldb_prepare_all(sqlite3 *db, sqlite3_stmt **stmt, const char *const *sql,
                      size_t n, char *errstr, size_t errstr_size)
{
        size_t i;
        int rc;

        for (i = 0; i < n; i++) {
                rc = sqlite3_prepare_v3(db, sql[i], -1,
                                        SQLITE_PREPARE_PERSISTENT, &stmt[i],
                                        NULL);
                if (rc != SQLITE_OK)
                        return sqldb_fail(db, rc, "preparing statements",
                                          errstr, errstr_size);
        }
        return 0;
}

void sqldb_finalize_all(sqlite3_stmt **stmt, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++) {
                sqlite3_finalize(stmt[i]);
                stmt[i] = NULL;
        }
}

/* ---- what a file holds ---- */

int sqldb_exists(int *out, sqlite3 *db, const char *sql, const char *a,
                 const char *b)
{
        sqlite3_stmt *stmt = NULL;
        int rc;

        *out = 0;
        rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
        if (rc == SQLITE_OK) {
                if (a)
                        sqlite3_bind_text(stmt, 1, a, -1, SQLITE_STATIC);
                if (b)
                        sqlite3_bind_text(stmt, 2, b, -1, SQLITE_STATIC);
                rc = sqlite3_step(stmt);
        }
        sqlite3_finalize(stmt);
        if (rc == SQLITE_ROW)
                *out = 1;
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int sqldb_has_table(int *out, sqlite3 *db, const char *name)
{
        return sqldb_exists(out, db,
                            "SELECT 1 FROM sqlite_master WHERE type ="
                            " 'table' AND name = ?1",
                            name, NULL);
}

int sqldb_has_column(int *out, sqlite3 *db, const char *table,
                     const char *column)
{
        return sqldb_exists(out, db,
                            "SELECT 1 FROM pragma_table_info(?1)"
                            " WHERE name = ?2",
                            table, column);
}

void sqldb_persist_wal(sqlite3 *db)
{
        int one = 1;

        /* Fails only on a VFS without the control; the files then go at
         * the last close, as before. */
        sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &one);
}

/* Why db (the file at path) could not be read (rc): SQLite's message,
 * and what is missing when it was opened read-only: by a reader (reader
 * 1), or by SQLite for a writer who may not write. */
static int cannot_read(sqlite3 *db, const char *path, int rc, int reader,
                       const sqldb_kind *k, char *errstr, size_t errstr_size)
{
        static const char *const sides[] = {"-wal", "-shm"};
        char side[4200];
        size_t i;

        if ((rc & 0xff) == SQLITE_NOTADB)
                return of_errf(errstr, errstr_size, "%s: not %s: %s", path,
                               k->name, sqlite3_errmsg(db));
        if (sqlite3_db_readonly(db, "main") == 1 && !reader)
                return of_errf(errstr, errstr_size,
                               "%s: %s (writing needs write access to the "
                               "file and its folder)",
                               path, sqlite3_errmsg(db));
        /* A WAL file can be read without writing only when its -wal and
         * -shm exist (SQLite 3.22 and later): without them SQLite says
         * "attempt to write a readonly database" or "unable to open". */
        if (sqlite3_db_readonly(db, "main") == 1 &&
            ((rc & 0xff) == SQLITE_READONLY ||
             (rc & 0xff) == SQLITE_CANTOPEN)) {
                for (i = 0; i < 2; i++) {
                        snprintf(side, sizeof(side), "%s%s", path, sides[i]);
                        if (access(side, R_OK) == 0)
                                continue;
                        if (errno == ENOENT)
                                return of_errf(errstr, errstr_size,
                                               "%s: its -wal and -shm are "
                                               "missing, and only a user who "
                                               "may write the folder can "
                                               "create them (starting the "
                                               "projector does)",
                                               path);
                        return of_errf(errstr, errstr_size,
                                       "%s: %s (a reader needs read access "
                                       "to the file, its -wal and its -shm)",
                                       side, strerror(errno));
                }
        }
        of_errf(errstr, errstr_size, "%s: %s", path, sqlite3_errmsg(db));
        return sqldb_code_of(db, rc);
}

/* Whether table name is one of k's: matched by an older pattern or made
 * by k->schema (in *ref, a database holding nothing else, made at the
 * first need). 1 yes, 0 no, or an SQLite failure (in *ref) < 0. */
static int ours(sqlite3 **ref, sqlite3_stmt **probe, const sqldb_kind *k,
                const char *name)
{
        const char *const *g;
        int rc;

        for (g = k->older; g && *g; g++)
                if (sqlite3_strglob(*g, name) == 0)
                        return 1;
        if (!*probe) {
                rc = sqlite3_open(":memory:", ref);
                if (rc == SQLITE_OK)
                        rc = sqlite3_exec(*ref, k->schema, NULL, NULL, NULL);
                if (rc == SQLITE_OK)
                        rc = sqlite3_prepare_v2(*ref,
                                                "SELECT 1 FROM sqlite_master"
                                                " WHERE type = 'table' AND"
                                                " name = ?1",
                                                -1, probe, NULL);
                if (rc != SQLITE_OK)
                        return -1;
        }
        sqlite3_bind_text(*probe, 1, name, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(*probe);
        sqlite3_reset(*probe);
        return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Whether db (the file at path) may be used as kind k, for a reader
 * (reader 1) or a writer (see sqldb_open()). Reads only. */
static int check(sqlite3 *db, const char *path, int reader,
                 const sqldb_kind *k, char *errstr, size_t errstr_size)
{
        sqlite3 *ref = NULL;
        sqlite3_stmt *stmt = NULL, *probe = NULL;
        char foreign[65] = "";
        int rc, mine, other = 0, err = 0;
        size_t i;

        rc = sqlite3_prepare_v2(db,
                                "SELECT name FROM sqlite_master WHERE type ="
                                " 'table' AND name NOT LIKE 'sqlite\\_%'"
                                " ESCAPE '\\' ORDER BY name",
                                -1, &stmt, NULL);
        while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                const char *name = (const char *)sqlite3_column_text(stmt, 0);

                if (!name) {
                        rc = SQLITE_NOMEM;
                        break;
                }
                rc = SQLITE_OK;
                if (!strcmp(name, k->other_table)) {
                        other = 1;
                        continue;
                }
                if (foreign[0])
                        continue;
                if ((mine = ours(&ref, &probe, k, name)) < 0) {
                        err = of_errf(errstr, errstr_size,
                                      "%s: checking its tables: %s", path,
                                      ref ? sqlite3_errmsg(ref)
                                          : "out of memory");
                        goto out;
                }
                if (mine)
                        continue;
                /* Named in a one-line message: no control characters. */
                snprintf(foreign, sizeof(foreign), "%s", name);
                for (i = 0; foreign[i]; i++)
                        if ((unsigned char)foreign[i] < 0x20)
                                foreign[i] = '?';
        }
        if (rc != SQLITE_DONE)
                err = cannot_read(db, path, rc, reader, k, errstr,
                                  errstr_size);
        else if (other)
                err = of_errf(errstr, errstr_size, "%s: %s, not %s", path,
                              k->other_name, k->name);
        else if (foreign[0])
                err = of_errf(errstr, errstr_size,
                              "%s: a database of another program (table %s),"
                              " not %s",
                              path, foreign, k->name);
out:
        sqlite3_finalize(stmt);
        sqlite3_finalize(probe);
        sqlite3_close(ref);
        return err;
}

/* SQLite's own busy handler sleeps 1, 2, 5, 10 ... up to 100 ms between
 * attempts: a connection that waits for the write lock while another
 * commits a thousand times a second (the writer, the relay) loses most
 * attempts and was measured waiting 750 ms for a lock free 70% of the
 * time. Here it looks again after 0.1 to 0.6 ms, at random so as not to
 * fall in step with a writer that commits at a steady rate, for the first
 * 200 ms, then every 10 ms, until ms (the handler's argument) has gone.
 * The handler runs on the thread that waits: its start is kept there. */
static _Thread_local int64_t busy_since_us;

static int64_t busy_now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int busy_handler(void *arg, int count)
{
        static _Thread_local unsigned seed;
        int64_t ms = (int64_t)(intptr_t)arg, waited, step_us;
        struct timespec ts;

        if (count == 0) {
                busy_since_us = busy_now_us();
                if (!seed)
                        seed = (unsigned)busy_since_us | 1;
        }
        waited = (busy_now_us() - busy_since_us) / 1000;
        if (waited >= ms)
                return 0;
        step_us = waited < 200 ? 100 + rand_r(&seed) % 500 : 10000;
        ts = (struct timespec){0, (long)step_us * 1000};
        nanosleep(&ts, NULL);
        return 1;
}

void sqldb_busy_timeout(sqlite3 *db, int ms)
{
        if (ms > 0)
                sqlite3_busy_handler(db, busy_handler, (void *)(intptr_t)ms);
        else
                sqlite3_busy_handler(db, NULL, NULL);
}

int sqldb_open(sqlite3 **db, const char *path, int flags, const sqldb_kind *k,
               int busy_ms, char *errstr, size_t errstr_size)
{
        struct stat sb;
        int rc, err;

        *db = NULL;
        /* SQLite would say only "unable to open database file". */
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
                return of_errf(errstr, errstr_size, "%s: a directory, not %s",
                               path, k->name);
        rc = sqlite3_open_v2(path, db, flags, NULL);
        if (rc != SQLITE_OK) {
                err = OF_ERROR;
                if (!(flags & SQLITE_OPEN_CREATE) && access(path, F_OK) &&
                    errno == ENOENT)
                        err = OF_ENOTFOUND;
                of_errf(errstr, errstr_size, "%s: %s", path,
                        *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
                goto fail;
        }
        sqlite3_extended_result_codes(*db, 1);
        sqldb_busy_timeout(*db, busy_ms);
        /* Until the file is known to be ours, closing leaves it as it was,
         * without the checkpoint a last connection makes. */
        sqlite3_db_config(*db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        if ((err = check(*db, path, !(flags & SQLITE_OPEN_READWRITE), k,
                         errstr, errstr_size)))
                goto fail;
        sqlite3_db_config(*db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
        return 0;
fail:
        sqlite3_close(*db);
        *db = NULL;
        return err;
}

int sqldb_setup(sqlite3 *db, const char *path, const sqldb_kind *k,
                char *errstr, size_t errstr_size)
{
        char *msg = NULL;
        int rc;

        rc = sqlite3_exec(db, k->pragmas, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
        /* Again under the write lock: another program may have made a
         * table since the check of sqldb_open(). */
        if (rc == SQLITE_OK && check(db, path, 0, k, errstr, errstr_size)) {
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                return OF_ERROR;
        }
        if (rc == SQLITE_OK && k->before)
                rc = k->before(db, &msg);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, k->schema, NULL, NULL, &msg);
        if (rc == SQLITE_OK && k->after)
                rc = k->after(db, &msg);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                of_errf(errstr, errstr_size, "%s: %s", path,
                        msg ? msg : sqlite3_errmsg(db));
                sqlite3_free(msg);
                return OF_ERROR;
        }
        return 0;
}
