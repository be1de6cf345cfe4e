/* Waking on a write to a SQLite database in WAL mode: every commit writes
 * the file's -wal, so inotify on its directory (the -wal comes and goes
 * with the connections) says that some connection wrote. Whether one
 * committed a change is the caller's to confirm (SQLite's data_version):
 * the caller's own writes wake it too, and the commit itself is published
 * in the -wal's index, shared memory, just after the last write. Linux
 * only; elsewhere, or on a file system inotify does not watch (NFS),
 * of_dbwatch_open() fails and the caller polls. */
#ifndef ORDERFLOW_DBWATCH_H
#define ORDERFLOW_DBWATCH_H

#include <stddef.h>

typedef struct of_dbwatch of_dbwatch;

/* Watch writes to db_path's -wal. OF_ERROR with a message when inotify is
 * not available (no watch, or no directory). */
int of_dbwatch_open(of_dbwatch **out, const char *db_path, char *errstr,
                    size_t errstr_size);

/* The descriptor that becomes readable on an event (for a poll() over it
 * and others), and the taking of the events queued: 1 when one was a write
 * to the -wal. */
int of_dbwatch_fd(const of_dbwatch *w);
int of_dbwatch_take(of_dbwatch *w);

void of_dbwatch_close(of_dbwatch *w); /* w may be NULL */

#endif
