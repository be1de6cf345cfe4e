/* Private to the two SQLite modules (store*.c and appdb.c): what they
 * share about an SQLite file of ours. Opening one checks what it holds
 * before anything is written to it; a failed SQLite call is classed as
 * worth waiting out, worth a few retries, or final; a read model keeps
 * its -wal and -shm for readers who may not create them. */
#ifndef ORDERFLOW_DBFILE_H
#define ORDERFLOW_DBFILE_H

#include <stddef.h>

#include <sqlite3.h>

/* A kind of orderflow database. */
typedef struct dbfile_kind {
        const char *name;         /* "a read model" */
        const char *schema;       /* the SQL that makes one (re-runnable) */
        const char *const *older; /* GLOB patterns of more tables of ours
                                   * (older names, numbered ones), NULL
                                   * terminated; NULL: none */
        const char *other_table;  /* a table only the other kind has */
        const char *other_name;   /* "an application database" */
} dbfile_kind;

/* The OF_E* code of an SQLite result code rc, sys_errno being the
 * system's errno of the failing call (sqlite3_system_errno(), 0 when
 * unknown): OF_EBUSY for what waiting clears (locked, busy, the disk or
 * a quota full), OF_EIO for any other I/O error (worth a few retries,
 * not a wait), OF_ERROR for the rest. */
int dbfile_code(int rc, int sys_errno);

/* dbfile_code() of a call on db that failed with rc. */
int dbfile_code_of(sqlite3 *db, int rc);

/* Open the file at path with flags (SQLITE_OPEN_*) as kind k: extended
 * result codes, a busy timeout of busy_ms, and dbfile_check() before
 * anything is written (for SQLITE_OPEN_READONLY, a reader's: a missing
 * -wal or -shm is named). 0; OF_ENOTFOUND when flags lack
 * SQLITE_OPEN_CREATE and there is no file; or an OF_E* code. *db is NULL
 * on failure. */
int dbfile_open(sqlite3 **db, const char *path, int flags,
                const dbfile_kind *k, int busy_ms, char *errstr,
                size_t errstr_size);

/* Whether db (the file at path, opened to be written) may be used as
 * kind k: it has no table, or only k's (those k->schema makes,
 * k->older's, SQLite's own). Reads only. 0, or an OF_E* code with "PATH:
 * an application database, not a read model", "PATH: a database of
 * another program (table users), not a read model", or what keeps it
 * from being read. */
int dbfile_check(sqlite3 *db, const char *path, const dbfile_kind *k,
                 char *errstr, size_t errstr_size);

/* Keep db's -wal and -shm when its last connection closes (SQLite's
 * persistent WAL): a reader who may not create them (no write access to
 * the folder) can still read the file. */
void dbfile_persist_wal(sqlite3 *db);

#endif
