/* Shared by the cmocka test programs: cmocka's required includes and the
 * fixtures of tests/testutil.c (temporary files, a second connection to a
 * database, one value out of it), linked into every program. */
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

#include <sqlite3.h>

/* A fresh path in a new temporary directory ("<dir>/<name>"); the caller
 * frees it with tu_tmp_free, which removes the directory and its files. */
char *tu_tmp_path(const char *name);
void tu_tmp_free(char *path);

/* The whole file at path, malloc'ed, its size in *len; NULL (and *len 0)
 * when there is no such file. */
char *tu_read_file(const char *path, size_t *len);

/* Writes past bytes of any file fail with EFBIG from now on (SIGXFSZ
 * ignored), the way SQLite meets a failing disk; 0 lifts the limit.
 * Print nothing while it holds: the test's log is a file too. */
void tu_file_size_limit(rlim_t bytes);

/* A connection of the test's own to the database at path (read-only, or
 * read-write and created if missing; no busy timeout, so a test sees a
 * lock as SQLITE_BUSY); close it with sqlite3_close. */
sqlite3 *tu_db_open(const char *path, int readonly);

/* The first column of the first row sql gives on db: as text ("NULL" for
 * NULL, "" for no row; in a buffer the next call overwrites), or as an
 * integer (-1 for no row). */
const char *tu_q(sqlite3 *db, const char *sql);
int64_t tu_qi(sqlite3 *db, const char *sql);

#endif
