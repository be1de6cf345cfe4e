/* The writer's application database (schema/appdb.sql): place and pay an
 * order together with its outbox row in ONE transaction, and read the
 * outbox's state. The relay's side of the outbox is outbox.h's. */
#ifndef ORDERFLOW_APPDB_H
#define ORDERFLOW_APPDB_H

#include <stddef.h>
#include <stdint.h>

#include "orderflow/cursor.h"
#include "orderflow/event.h"

/* One connection: use it from one thread at a time. */
typedef struct of_appdb of_appdb;

typedef struct of_outbox_status {
        int64_t pending;
        int64_t sent;
        int64_t dead;
        double oldest_pending_age_s; /* < 0 when nothing is pending */
} of_outbox_status;

/* Open (creating if needed) the application database at path. */
int of_appdb_open(of_appdb **out, const char *path, char *errstr,
                  size_t errstr_size);
/* The same for a database that must exist already (relay, outbox
 * operations): a mistyped path is "no application database at PATH" and
 * leaves no new file behind. */
int of_appdb_open_existing(of_appdb **out, const char *path, char *errstr,
                           size_t errstr_size);
void of_appdb_close(of_appdb *app); /* app may be NULL */

/* Insert order_id with total and its OrderPlaced outbox row in one
 * transaction; fills *out with the event when out is not NULL. Returns
 * OF_EEXISTS when the order exists already (nothing written). */
int of_appdb_place(of_appdb *app, of_event *out, const char *order_id,
                   int64_t total, char *errstr, size_t errstr_size);

/* Mark order_id paid with amount and insert its OrderPaid outbox row in
 * one transaction. OF_ENOTFOUND for an unknown order, OF_EEXISTS for one
 * already paid (nothing written). */
int of_appdb_pay(of_appdb *app, of_event *out, const char *order_id,
                 int64_t amount, char *errstr, size_t errstr_size);

/* For the relay's connection: its commits (leases, marks) are not synced
 * to disk one by one (WAL with synchronous NORMAL: the file stays
 * consistent, and the writer's next synced commit takes them along). A
 * mark lost to a power cut publishes its rows again, which delivery at
 * least once allows; the rows themselves are the writer's, synced. */
int of_appdb_relay_durability(of_appdb *app, char *errstr, size_t errstr_size);

/* The database file's path (for watching it). */
const char *of_appdb_filename(of_appdb *app);

/* SQLite's data_version of the connection: it changes when another
 * connection commits a change to the file, never for app's own; -1 when it
 * could not be read. */
int64_t of_appdb_data_version(of_appdb *app);

int of_appdb_outbox_status(of_appdb *app, of_outbox_status *out, char *errstr,
                           size_t errstr_size);

/* ---- What a person looks at (outbox_view.c) ---- */

/* Which rows of_appdb_outbox_list() reads. */
typedef enum of_outbox_which {
        OF_OUTBOX_ALL = 0,
        OF_OUTBOX_PENDING = 1,
        OF_OUTBOX_DEAD = 2,
} of_outbox_which;

/* The outbox rows (which of them), in commit order, the first limit (0:
 * all), with the columns seq, id (the event id), type, order_id, status,
 * attempts, next_attempt_at (UTC YYYY-MM-DDTHH:MM:SS.sssZ when a PENDING
 * row waits out a backoff, else NULL) and last_error (NULL when none).
 * The cursor uses app's connection: close it before app. */
int of_appdb_outbox_list(of_cursor **out, of_appdb *app, of_outbox_which which,
                         int64_t limit, char *errstr, size_t errstr_size);

/* The DEAD rows, and the PENDING rows that wait behind a DEAD row of their
 * order (the relay never publishes them before it). */
int of_appdb_outbox_behind_dead(of_appdb *app, int64_t *dead, int64_t *behind,
                                char *errstr, size_t errstr_size);

#endif
