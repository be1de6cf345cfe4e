/* Private to the store module: of_store, its fields grouped by owning
 * file, and what the files call of one another, one way only: store.c ->
 * store_apply.c -> store_runs.c -> sqldb.c; store_batch.c under the first
 * two, store_prune.c over store_runs.c, store_query/swap.c on store.c. */
#ifndef ORDERFLOW_STORE_INT_H
#define ORDERFLOW_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "orderflow/event.h"
#include "orderflow/idfilter.h"
#include "orderflow/store.h"

#include "sqldb.h"

/* processed_recent is sealed into a run at this many rows: about 15 MiB of
 * table, the most whose random inserts stay in or near the page cache
 * (measured: docs/performance.md). */
#define SEAL_EVENTS 131072
/* SQLite's limit on the arms of one compound SELECT (the view). */
#define MAX_RUNS 480

/* store_apply_msg() in key order: this event may not go before one already
 * applied (store.c only, never returned). */
#define OUT_OF_ORDER (-1000)

/* ---- store_batch.c: a batch decoded before its transaction ---- */

/* One message of a batch as of_store_batch_decode() left it: compact,
 * since a batch holds tens of thousands (store_batch_event() makes the
 * of_event again). */
typedef struct decoded {
        int64_t amount;
        int64_t time;   /* occurredAt: AT_VALUE | its offset in the value
                         * when there as it is, else of_timestamp_pack()ed
                         * (years 1-9999: -2^46 to 2^49); NO_TIME: "" */
        uint32_t at[3]; /* where its strings are: id, type, aggregateId;
                         * with IN_TEXT, offset in the batch's text
                         * (NUL-terminated), else in the message's value
                         * (where of_event_parse_at() found them); a dead
                         * letter's reason in at[0] */
        uint8_t len[3]; /* their lengths (each at most OF_ID_MAX) */
        int8_t type;    /* of_event_type, or DEAD: not a valid event */
} decoded;

#define IN_TEXT  0x80000000u
#define DEAD     (-1)
#define NO_TIME  INT64_MIN
#define AT_VALUE (INT64_C(1) << 62)

struct of_store_batch {
        const of_msg *msgs; /* borrowed: d[i] is msgs[i] decoded */
        decoded *d;
        size_t n, cap;
        char *text; /* the decoded strings, back to back */
        size_t text_len, text_cap;
        uint32_t *order; /* the batch in key order (indexes), when keyed */
        size_t order_cap;
        int keyed; /* order is set (n > 1, memory found) */
};

/* Message at of b as an of_event (valid ones only), its reason (dead
 * ones only). */
void store_batch_event(of_event *out, const of_store_batch *b, size_t at);
const char *store_batch_reason(const of_store_batch *b, size_t at);

/* ---- the store ---- */

/* store.c's statements (store.c's table); store_apply.c's; store_runs.c's. */
enum {
        ST_BEGIN,
        ST_COMMIT,
        ST_ROLLBACK,
        ST_GEN_GET,
        ST_INFO_ADD,
        ST_OFFSET_GET,
        ST_OFFSET_PUT,
        ST_COUNT
};
enum {
        AP_TOTALS_GET,
        AP_TOTALS_ADD,
        AP_DAY_ADD,
        AP_EVENT_PUT,
        AP_EVENT_DEL,
        AP_PLACE,
        AP_PAY,
        AP_ORDER_GET,
        AP_DEAD_PUT,
        AP_COUNT
};
enum {
        RU_BEGIN,
        RU_COMMIT,
        RU_ROLLBACK,
        RU_EVENT_GET,
        RU_SINCE_PUT,
        RU_COUNT
};

typedef struct slot {
        uint64_t hash; /* 0: free */
        size_t at;
} slot;

/* A sealed run of processed_events: table processed_run_<id>. */
typedef struct sealed_run {
        int64_t id;
        int64_t events;     /* ids in it */
        int64_t sealed_at;  /* ms since 1970; -1: unknown, never dropped */
        of_idfilter filter; /* empty when in_set */
        int in_set;         /* its filter is in of_store.set */
        sqlite3_stmt *get;  /* its row of an id */
} sealed_run;

/* In-memory sums of one batch. */
typedef struct sums {
        int64_t orders_placed;
        int64_t orders_paid;
        int64_t placed_amount;
        int64_t paid_amount;
} sums;

typedef struct day_sums {
        char day[11]; /* YYYY-MM-DD; "" marks a free slot */
        sums s;
} day_sums;

struct of_store {
        /* store.c: the connection, the batch transaction, the file */
        sqlite3 *db;
        sqlite3_stmt *stmt[ST_COUNT];
        char *path;          /* the file, for reopening */
        int64_t generation;  /* store_info's when the file was opened */
        int busy_ms;         /* of_store_set_busy_timeout's */
        of_store_batch *own; /* of_store_apply_batch()'s; NULL: none yet */

        /* store_apply.c: one message, and the batch's sums in memory */
        sqlite3_stmt *apply[AP_COUNT];
        slot *ids, *aggs; /* ids and aggregates applied, keyed mode */
        size_t slots_cap;
        int keyed;       /* applying in key order */
        sums base;       /* order_totals when the batch began */
        sums batch;      /* what the batch adds to order_totals */
        day_sums *days;  /* open addressing on day, days_cap slots */
        size_t days_cap; /* a power of two */
        size_t days_used;
        of_store_stats pending; /* counters of the uncommitted batch */
        int64_t recorded;       /* ids the open batch added to
                                 * processed_recent */
        char *dead_said;        /* "TOPIC [P] offset O: REASON\n" of the
                                 * batch's dead letters, logged once it
                                 * commits (store_apply_committed) */
        size_t dead_said_len, dead_said_cap;
        uint64_t dead_unsaid; /* beyond DEAD_SAID_MAX bytes: counted */

        /* store_runs.c (and store_prune.c): processed_recent, the runs */
        sqlite3_stmt *runs_stmt[RU_COUNT];
        sealed_run *runs; /* oldest first */
        size_t nruns;
        of_idfilter_set set;   /* the filters of the runs of one size */
        size_t *set_run;       /* runs index of each filter in set */
        int64_t recent_events; /* rows in processed_recent */
        int64_t seal_events;   /* seal processed_recent at this many */
        int schema_seen;       /* PRAGMA schema_version runs were read at */
        int64_t (*clock)(void *opaque); /* ms since 1970; NULL: real */
        void *clock_opaque;
};

/* store.c */
/* The read model as a kind of file (sqldb_open()). */
extern const sqldb_kind store_kind;
/* A read-only connection to the read model at path (never created: a
 * missing file is OF_ENOTFOUND, "no read model at PATH (...)"), waiting
 * for a writer's lock like any reader should. A file of another kind is
 * refused as by of_store_open(). */
int store_open_ro(sqlite3 **db, const char *path, char *errstr,
                  size_t errstr_size);

/* store_apply.c: the messages of the open batch transaction */
int store_apply_open(of_store *st, char *errstr, size_t errstr_size);
void store_apply_close(of_store *st);
/* Before the batch transaction: whether b can go in key order (decoded
 * with one, and memory found for the checks of store_apply_msg()). */
int store_apply_keyed(of_store *st, const of_store_batch *b);
/* In the batch transaction, first: the sums start from order_totals;
 * keyed: the messages come in b's key order. */
int store_apply_begin(of_store *st, int keyed, char *errstr,
                      size_t errstr_size);
/* Message at of b; OUT_OF_ORDER when keyed and it may not go now. */
int store_apply_msg(of_store *st, const of_store_batch *b, size_t at,
                    char *errstr, size_t errstr_size);
/* Last: the batch's sums into order_totals and daily_totals, and the
 * note of processed_recent's first row. */
int store_apply_end(of_store *st, char *errstr, size_t errstr_size);

/* The batch committed: log each of its dead letters (info). */
void store_apply_committed(of_store *st);

/* store_runs.c: processed_recent and the sealed runs of processed_events */
/* The wall clock (ms since 1970) of recording times and retention. */
int64_t store_now(const of_store *st);
/* Prepare the runs' statements and read the runs (open); close. */
int store_runs_open(of_store *st, char *errstr, size_t errstr_size);
void store_runs_close(of_store *st);
/* In a write transaction: read the runs again if another connection sealed
 * one since (two projectors on one file). */
int store_runs_refresh(of_store *st, char *errstr, size_t errstr_size);
/* In the batch transaction, after its ids are recorded (recorded of them
 * new): note when processed_recent got its first row, if it was empty. */
int store_runs_note_recent(of_store *st, int64_t recorded, char *errstr,
                           size_t errstr_size);
/* After the batch's COMMIT: recorded more ids are in processed_recent. */
void store_runs_committed(of_store *st, int64_t recorded);
/* Seal processed_recent into run N+1 in a transaction of its own; *sealed
 * says whether there was anything to seal. store_runs_seal_for(): when
 * n more ids could take it past seal_events. */
int store_runs_seal(of_store *st, int *sealed, char *errstr,
                    size_t errstr_size);
int store_runs_seal_for(of_store *st, size_t n, char *errstr,
                        size_t errstr_size);
/* Look the id up in processed_recent; in the sealed runs whose filters
 * may hold it (hash: of_id_hash() of it). 1 and *out filled, 0 not
 * there, <0 failure. */
int store_runs_find_recent(of_store *st, of_event *out, const char *id,
                           char *errstr, size_t errstr_size);
int store_runs_find_sealed(of_store *st, of_event *out, const char *id,
                           uint64_t hash, char *errstr, size_t errstr_size);
/* For store_prune.c, in a write transaction: run SQL that changes
 * processed_events; the view over processed_recent and every run but
 * skip, plus run add (0: none, for both; sqlite3_free() it); note the
 * schema version after a change of the runs. */
int store_runs_exec(of_store *st, const char *sql, char *errstr,
                    size_t errstr_size);
char *store_runs_view_sql(const of_store *st, int64_t add, int64_t skip);
int store_runs_schema_seen(of_store *st, char *errstr, size_t errstr_size);

#endif
