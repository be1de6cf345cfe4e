/* Private to the SQLite modules (store*.c, appdb.c, outbox.c): opening a
 * file of ours checks what it holds before writing, then sets it up in one
 * transaction; statements come in tables prepared in one loop; a failure
 * is worth waiting out, worth a few retries, or final. */
#ifndef ORDERFLOW_SQLDB_H
#define ORDERFLOW_SQLDB_H

#include <stddef.h>

#include <sqlite3.h>

#include "orderflow/cursor.h"

/* A kind of orderflow database. */
typedef struct sqldb_kind {
        const char *name;         /* "a read model" */
        const char *schema;       /* the SQL that makes one (re-runnable) */
        const char *const *older; /* GLOB patterns of more tables of ours
                                   * (older names, numbered ones), NULL
                                   * terminated; NULL: none */
        const char *other_table;  /* a table only the other kind has */
        const char *other_name;   /* "an application database" */
        const char *pragmas;      /* a writer's settings, run first */
        /* Bring a file of an older orderflow up to date, in the open's
         * transaction, before and after the schema runs (NULL: nothing
         * to do). An SQLite result code; *msg may get a message
         * (sqlite3_free()d by the caller). */
        int (*before)(sqlite3 *db, char **msg);
        int (*after)(sqlite3 *db, char **msg);
} sqldb_kind;

/* The OF_E* code of an SQLite result code rc, sys_errno being the
 * system's errno of the failing call (sqlite3_system_errno(), 0 when
 * unknown): OF_EBUSY for what waiting clears (locked, busy, the disk or
 * a quota full), OF_EIO for any other I/O error (worth a few retries,
 * not a wait), OF_ERROR for the rest. */
int sqldb_code(int rc, int sys_errno);

/* sqldb_code() of a call on db that failed with rc. */
int sqldb_code_of(sqlite3 *db, int rc);

/* The call on db that failed with rc: "WHAT: SQLite's message" into
 * errstr (may be NULL), and its sqldb_code_of(). */
int sqldb_fail(sqlite3 *db, int rc, const char *what, char *errstr,
               size_t errstr_size);

/* Open the file at path with flags (SQLITE_OPEN_*) as kind k: extended
 * result codes, a busy timeout of busy_ms, and the check of what it holds
 * before anything is written (for SQLITE_OPEN_READONLY, a reader's: a
 * missing -wal or -shm is named): it has no table, or only k's (those
 * k->schema makes, k->older's, SQLite's own). 0; OF_ENOTFOUND when flags
 * lack SQLITE_OPEN_CREATE and there is no file; or an OF_E* code with
 * "PATH: an application database, not a read model", "PATH: a database
 * of another program (table users), not a read model", or what keeps it
 * from being read. *db is NULL on failure. */
int sqldb_open(sqlite3 **db, const char *path, int flags, const sqldb_kind *k,
               int busy_ms, char *errstr, size_t errstr_size);

/* For a writer, after sqldb_open(): k->pragmas, then in one BEGIN
 * IMMEDIATE transaction the check again (another program may have made a
 * table since), k->before, k->schema, k->after. 0, or OF_ERROR with
 * "PATH: message" (or the check's message); the caller closes db. */
int sqldb_setup(sqlite3 *db, const char *path, const sqldb_kind *k,
                char *errstr, size_t errstr_size);

/* Whether the query sql, with the text parameters a (?1) and b (?2) when
 * not NULL, answers a row: *out 1 or 0. An SQLite result code. */
int sqldb_exists(int *out, sqlite3 *db, const char *sql, const char *a,
                 const char *b);
/* Whether db has the table name; the table has the column. Likewise. */
int sqldb_has_table(int *out, sqlite3 *db, const char *name);
int sqldb_has_column(int *out, sqlite3 *db, const char *table,
                     const char *column);

/* Prepare sql[0..n) into stmt[0..n) (persistent: kept until close), the
 * statement table of one owner, indexed by its enum. 0, or the code of
 * the failure, "preparing statements: message"; what was prepared stays
 * for sqldb_finalize_all(). */
int sqldb_prepare_all(sqlite3 *db, sqlite3_stmt **stmt, const char *const *sql,
                      size_t n, char *errstr, size_t errstr_size);
void sqldb_finalize_all(sqlite3_stmt **stmt, size_t n);

/* Step a statement that returns no row, then reset it: 0, or
 * sqldb_fail() with its SQL as what. */
int sqldb_step(sqlite3 *db, sqlite3_stmt *stmt, char *errstr,
               size_t errstr_size);

/* Step rollback (a prepared ROLLBACK) when a transaction is open. */
void sqldb_rollback(sqlite3 *db, sqlite3_stmt *rollback);

/* Wait up to ms for a lock another connection holds, looking again
 * within a millisecond (SQLite's sqlite3_busy_timeout() backs off to
 * 100 ms and starves against a busy writer); 0: do not wait. */
void sqldb_busy_timeout(sqlite3 *db, int ms);

/* Keep db's -wal and -shm when its last connection closes (SQLite's
 * persistent WAL): a reader who may not create them (no write access to
 * the folder) can still read the file. */
void sqldb_persist_wal(sqlite3 *db);

/* A cursor (cursor.h) over stmt, a prepared SELECT on db: takes stmt, and
 * db when own_db, also when it fails (out of memory). what names the
 * reading in a failure's message ("reading the read model"). */
int sqldb_cursor_new(of_cursor **out, sqlite3 *db, int own_db,
                     sqlite3_stmt *stmt, const char *what, char *errstr,
                     size_t errstr_size);

#endif
