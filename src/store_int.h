/* Private to the store module (store.c, store_apply.c, store_runs.c): the
 * of_store structure and the helpers its files share. */
#ifndef ORDERFLOW_STORE_INT_H
#define ORDERFLOW_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "orderflow/event.h"
#include "orderflow/idfilter.h"
#include "orderflow/store.h"

#include "dbfile.h"

#define DECODE_SAMPLE 16 /* decode time is measured on 1 event in this */

/* processed_recent is sealed into a run at this many rows: about 15 MiB of
 * table, the most whose random inserts stay in or near the page cache
 * (measured: README, Performance). */
#define SEAL_EVENTS 131072
/* SQLite's limit on the arms of one compound SELECT (the view). */
#define MAX_RUNS 480

/* store_apply_msg() in key order: this event may not go before one already
 * applied (store.c only, never returned). */
#define OUT_OF_ORDER (-1000)

/* A batch is applied in message-key order when that gives the log order's
 * result (see apply_keyed()); these are its bookkeeping. */
typedef struct keyed_msg {
        const char *key;
        size_t key_len;
        size_t at; /* index in the batch: log order */
} keyed_msg;

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

/* ---- in-memory sums of one batch ---- */

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
        sqlite3 *db;
        sqlite3_stmt *begin, *commit, *rollback;
        sqlite3_stmt *totals_get, *totals_add, *day_add;
        sqlite3_stmt *event_get, *event_put, *event_del;
        sqlite3_stmt *place, *pay, *order_get;
        sqlite3_stmt *dead_put;
        sqlite3_stmt *offset_get, *offset_put;
        sqlite3_stmt *gen_get, *info_add;
        char *path;            /* the file, for reopening */
        int64_t generation;    /* store_info's when the file was opened */
        int busy_ms;           /* of_store_set_busy_timeout's */
        sealed_run *runs;      /* oldest first */
        size_t nruns;
        of_idfilter_set set;   /* the filters of the runs of one size */
        size_t *set_run;       /* runs index of each filter in set */
        int64_t recent_events; /* rows in processed_recent */
        int64_t seal_events;   /* seal processed_recent at this many */
        int64_t recorded;      /* ids the open batch added to it */
        int schema_seen;       /* PRAGMA schema_version runs were read at */
        keyed_msg *order;      /* the batch in key order */
        slot *ids, *aggs;      /* ids and aggregates applied, keyed mode */
        size_t order_cap, slots_cap;
        int keyed;             /* applying in key order */
        sums base;       /* order_totals when the batch began */
        sums batch;      /* what the batch adds to order_totals */
        day_sums *days;  /* open addressing on day, days_cap slots */
        size_t days_cap; /* a power of two */
        size_t days_used;
        of_store_stats pending; /* counters of the uncommitted batch */
        uint64_t decoded;       /* messages decoded, for timing samples */
        sqlite3_stmt *since_put; /* processed_recent_since, once needed */
        int64_t (*clock)(void *opaque); /* ms since 1970; NULL: real */
        void *clock_opaque;
};

/* store.c */
/* The read model as a kind of file (dbfile_open(), dbfile_check()). */
extern const dbfile_kind store_kind;
uint64_t store_mono_ns(void);
/* The OF_E* code of a failed SQLite call rc, its message in errstr. */
int store_fail(of_store *st, int rc, const char *what, char *errstr,
               size_t errstr_size);
/* Step a statement that returns no row, then reset it. */
int store_step(of_store *st, sqlite3_stmt *stmt, char *errstr,
               size_t errstr_size);
int store_prepare(of_store *st, sqlite3_stmt **out, const char *sql,
                  char *errstr, size_t errstr_size);
void store_rollback(of_store *st); /* when a transaction is open */

/* store_apply.c: one message of the open batch transaction */
void store_batch_reset(of_store *st);
int store_apply_msg(of_store *st, const of_msg *m, size_t at, char *errstr,
                    size_t errstr_size);
int store_read_event(of_store *st, sqlite3_stmt *stmt, of_event *out,
                     const char *id, char *errstr, size_t errstr_size);

/* store_query.c: a read-only connection to the read model at path (never
 * created: a missing file is OF_ENOTFOUND, "no read model at PATH (...)"),
 * waiting for a writer's lock like any reader should. A file of another
 * kind is refused as by of_store_open(). */
int store_open_ro(sqlite3 **db, const char *path, char *errstr,
                  size_t errstr_size);

/* store_runs.c: the sealed runs of processed_events */
/* The wall clock (ms since 1970) of recording times and retention. */
int64_t store_now(const of_store *st);
/* In the open transaction: the migration of files from before dedupe
 * retention (processed_runs.sealed_at). Returns an SQLite result code. */
int store_runs_migrate(sqlite3 *db, int64_t now_ms);
/* In the batch transaction, after its ids are recorded: note when
 * processed_recent got its first row, if it was empty. */
int store_runs_note_recent(of_store *st, char *errstr, size_t errstr_size);
int store_runs_load(of_store *st, char *errstr, size_t errstr_size);
/* In a write transaction: read the runs again if another connection sealed
 * one since (two projectors on one file). */
int store_runs_refresh(of_store *st, char *errstr, size_t errstr_size);
void store_runs_free(of_store *st);
int store_seal(of_store *st, char *errstr, size_t errstr_size);
int store_sealed_event(of_store *st, of_event *out, const char *id,
                       uint64_t hash, char *errstr, size_t errstr_size);

#endif
