/* The read-model store: opens and migrates the SQLite file, and applies a
 * batch of messages in one transaction (processed_events, projections, dead
 * letters, partition offsets). Decoding is event.c's; reading the relations
 * for people is store_query.c's; when to apply a batch is the projector's. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/store.h"

#include "readmodel_sql.h"

static uint64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define DECODE_SAMPLE 16 /* decode time is measured on 1 event in this */

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
        sums base;       /* order_totals when the batch began */
        sums batch;      /* what the batch adds to order_totals */
        day_sums *days;  /* open addressing on day, days_cap slots */
        size_t days_cap; /* a power of two */
        size_t days_used;
        of_store_stats pending; /* counters of the uncommitted batch */
        uint64_t decoded;       /* messages decoded, for timing samples */
};

static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_totals_get[] =
        "SELECT orders_placed, orders_paid, placed_amount, paid_amount"
        " FROM order_totals";
static const char sql_totals_add[] =
        "UPDATE order_totals SET orders_placed = orders_placed + ?1,"
        " orders_paid = orders_paid + ?2,"
        " placed_amount = placed_amount + ?3, paid_amount = paid_amount + ?4";
static const char sql_day_add[] =
        "INSERT INTO daily_totals (day, orders_placed, orders_paid,"
        " placed_amount, paid_amount) VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (day) DO UPDATE SET"
        " orders_placed = orders_placed + excluded.orders_placed,"
        " orders_paid = orders_paid + excluded.orders_paid,"
        " placed_amount = placed_amount + excluded.placed_amount,"
        " paid_amount = paid_amount + excluded.paid_amount";
static const char sql_event_get[] =
        "SELECT event_type, aggregate_id, occurred_at, amount"
        " FROM processed_events WHERE event_id = ?1";
/* Records a new id; a known one changes nothing (sqlite3_changes() == 0),
 * so one statement both probes and inserts. */
static const char sql_event_put[] =
        "INSERT INTO processed_events (event_id, event_type, aggregate_id,"
        " occurred_at, amount) VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (event_id) DO NOTHING";
static const char sql_event_del[] =
        "DELETE FROM processed_events WHERE event_id = ?1";
/* The WHERE turns a second OrderPlaced of an order into "no change", so one
 * statement both detects the duplicate and applies the event. */
static const char sql_place[] =
        "INSERT INTO order_list (order_id, status, total, placed_at)"
        " VALUES (?1, 'ORDERED', ?2, ?3) ON CONFLICT (order_id) DO UPDATE"
        " SET total = excluded.total, placed_at = excluded.placed_at"
        " WHERE placed_at IS NULL";
static const char sql_pay[] =
        "INSERT INTO order_list (order_id, status, paid_amount, paid_at)"
        " VALUES (?1, 'PAID', ?2, ?3) ON CONFLICT (order_id) DO UPDATE"
        " SET status = 'PAID', paid_amount = excluded.paid_amount,"
        " paid_at = excluded.paid_at WHERE paid_at IS NULL";
static const char sql_order_get[] =
        "SELECT placed_at IS NOT NULL, paid_at IS NOT NULL FROM order_list"
        " WHERE order_id = ?1";
static const char sql_dead_put[] =
        "INSERT INTO dead_letters (topic, partition, offset, key, value,"
        " reason, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        " ON CONFLICT DO NOTHING";
static const char sql_offset_get[] =
        "SELECT next_offset FROM partition_offsets"
        " WHERE topic = ?1 AND partition = ?2";
static const char sql_offset_put[] =
        "INSERT INTO partition_offsets (topic, partition, next_offset)"
        " VALUES (?1, ?2, ?3) ON CONFLICT (topic, partition) DO UPDATE"
        " SET next_offset = max(next_offset, excluded.next_offset)";

/* SQLite result codes that a later retry may clear. */
static int is_transient(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_FULL:
        case SQLITE_IOERR:
                return 1;
        default:
                return 0;
        }
}

static int sql_fail(of_store *st, int rc, const char *what, char *errstr,
                    size_t errstr_size)
{
        of_errf(errstr, errstr_size, "%s: %s", what, sqlite3_errmsg(st->db));
        return is_transient(rc) ? OF_EBUSY : OF_ERROR;
}

/* Step a statement that returns no row, then reset it. */
static int run(of_store *st, sqlite3_stmt *stmt, char *errstr,
               size_t errstr_size)
{
        int rc = sqlite3_step(stmt);

        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE)
                return sql_fail(st, rc, sqlite3_sql(stmt), errstr,
                                errstr_size);
        return 0;
}

/* ---- open and close ---- */

static int prepare(of_store *st, sqlite3_stmt **out, const char *sql,
                   char *errstr, size_t errstr_size)
{
        int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    out, NULL);

        if (rc != SQLITE_OK)
                return sql_fail(st, rc, "preparing statements", errstr,
                                errstr_size);
        return 0;
}

static int prepare_all(of_store *st, char *errstr, size_t errstr_size)
{
        const struct {
                sqlite3_stmt **stmt;
                const char *sql;
        } all[] = {
                {&st->begin, sql_begin},
                {&st->commit, sql_commit},
                {&st->rollback, sql_rollback},
                {&st->totals_get, sql_totals_get},
                {&st->totals_add, sql_totals_add},
                {&st->day_add, sql_day_add},
                {&st->event_get, sql_event_get},
                {&st->event_put, sql_event_put},
                {&st->event_del, sql_event_del},
                {&st->place, sql_place},
                {&st->pay, sql_pay},
                {&st->order_get, sql_order_get},
                {&st->dead_put, sql_dead_put},
                {&st->offset_get, sql_offset_get},
                {&st->offset_put, sql_offset_put},
        };
        size_t i;

        for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                if (prepare(st, all[i].stmt, all[i].sql, errstr, errstr_size))
                        return OF_ERROR;
        return 0;
}

static int check_version(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        int rc, err = 0;

        rc = sqlite3_prepare_v2(st->db,
                                "SELECT max(schema_version) FROM schema_info",
                                -1, &stmt, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
                err = sql_fail(st, rc, "reading schema_info", errstr,
                               errstr_size);
        else if (sqlite3_column_int64(stmt, 0) > OF_SCHEMA_VERSION)
                err = of_errf(errstr, errstr_size,
                              "schema version %lld is newer than this "
                              "orderflow understands (%d)",
                              (long long)sqlite3_column_int64(stmt, 0),
                              OF_SCHEMA_VERSION);
        sqlite3_finalize(stmt);
        return err;
}

/* Whether the file holds table name already: 1 yes, 0 no, <0 failure.
 * Used to refuse the other kind of orderflow database. */
static int has_table(sqlite3 *db, const char *name)
{
        sqlite3_stmt *stmt = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db,
                                "SELECT 1 FROM sqlite_master WHERE type ="
                                " 'table' AND name = ?1",
                                -1, &stmt, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
                rc = sqlite3_step(stmt);
        }
        sqlite3_finalize(stmt);
        return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : OF_ERROR;
}

int of_store_open(of_store **out, const char *path, char *errstr,
                  size_t errstr_size)
{
        of_store *st;
        char *msg = NULL;
        int rc;

        *out = NULL;
        st = calloc(1, sizeof(*st));
        if (!st)
                return of_errf(errstr, errstr_size, "out of memory");
        rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                     SQLITE_OPEN_NOMUTEX,
                             NULL);
        if (rc != SQLITE_OK) {
                of_errf(errstr, errstr_size, "%s: %s", path,
                        st->db ? sqlite3_errmsg(st->db)
                               : sqlite3_errstr(rc));
                goto fail;
        }
        /* Each of_store is used by one thread at a time (see store.h), so
         * SQLite's per-call mutexes are pure cost. */
        sqlite3_extended_result_codes(st->db, 1);
        sqlite3_busy_timeout(st->db, 5000);
        /* WAL lets readers query while we write; NORMAL sync may lose the
         * last batches on power loss, which Kafka then delivers again. */
        rc = sqlite3_exec(st->db,
                          "PRAGMA journal_mode = WAL;"
                          "PRAGMA synchronous = NORMAL;"
                          /* Measured (README, Performance): checkpoints
                           * every 50,000 pages instead of 1,000 write a
                           * page dirtied by many batches once; 24 MiB of
                           * cache keeps peak RSS under 96 MiB. */
                          "PRAGMA wal_autocheckpoint = 50000;"
                          "PRAGMA journal_size_limit = 67108864;"
                          "PRAGMA cache_size = -24576;"
                          "BEGIN IMMEDIATE;",
                          NULL, NULL, &msg);
        if (rc == SQLITE_OK && has_table(st->db, "outbox_messages") == 1) {
                sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
                of_errf(errstr, errstr_size,
                        "%s: an application database, not a read model",
                        path);
                goto fail;
        }
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(st->db, readmodel_sql, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                of_errf(errstr, errstr_size, "%s: %s", path,
                        msg ? msg : sqlite3_errmsg(st->db));
                sqlite3_free(msg);
                goto fail;
        }
        if (check_version(st, errstr, errstr_size) ||
            prepare_all(st, errstr, errstr_size))
                goto fail;
        sqlite3_busy_timeout(st->db, 1000);
        *out = st;
        return 0;
fail:
        of_store_close(st);
        return OF_ERROR;
}

void of_store_set_busy_timeout(of_store *st, int ms)
{
        sqlite3_busy_timeout(st->db, ms);
}

void of_store_close(of_store *st)
{
        sqlite3_stmt *stmt;

        if (!st)
                return;
        if (st->db) {
                while ((stmt = sqlite3_next_stmt(st->db, NULL)))
                        sqlite3_finalize(stmt);
                sqlite3_close(st->db);
        }
        free(st->days);
        free(st);
}

int of_store_offset(int64_t *out, of_store *st, const char *topic,
                    int32_t partition, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->offset_get;
        int rc, err = 0;

        sqlite3_bind_text(stmt, 1, topic, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 2, partition);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                *out = sqlite3_column_int64(stmt, 0);
        else if (rc == SQLITE_DONE)
                err = OF_ENOTFOUND;
        else
                err = sql_fail(st, rc, "reading partition_offsets", errstr,
                               errstr_size);
        sqlite3_reset(stmt);
        return err;
}

/* ---- per-batch day sums ---- */

static uint32_t day_hash(const char *day)
{
        uint32_t h = 2166136261u;
        int i;

        for (i = 0; i < 10; i++)
                h = (h ^ (unsigned char)day[i]) * 16777619u;
        return h;
}

/* The batch's sums for the UTC day of ts (an occurred_at), or NULL when
 * memory runs out. */
static sums *day_slot(of_store *st, const char *ts)
{
        size_t i, mask;

        if (2 * (st->days_used + 1) > st->days_cap) {
                size_t cap = st->days_cap ? 2 * st->days_cap : 64;
                day_sums *old = st->days, *nd = calloc(cap, sizeof(*nd));
                size_t j, oldcap = st->days_cap;

                if (!nd)
                        return NULL;
                st->days = nd;
                st->days_cap = cap;
                st->days_used = 0;
                for (j = 0; j < oldcap; j++) {
                        if (old[j].day[0])
                                *day_slot(st, old[j].day) = old[j].s;
                }
                free(old);
        }
        mask = st->days_cap - 1;
        for (i = day_hash(ts) & mask;; i = (i + 1) & mask) {
                if (!st->days[i].day[0]) {
                        memcpy(st->days[i].day, ts, 10);
                        st->days[i].day[10] = '\0';
                        st->days_used++;
                        return &st->days[i].s;
                }
                if (!memcmp(st->days[i].day, ts, 10))
                        return &st->days[i].s;
        }
}

static void batch_reset(of_store *st)
{
        memset(&st->batch, 0, sizeof(st->batch));
        memset(&st->pending, 0, sizeof(st->pending));
        if (st->days)
                memset(st->days, 0, st->days_cap * sizeof(*st->days));
        st->days_used = 0;
}

/* ---- applying one message ---- */

static void bind_blob_or_null(sqlite3_stmt *stmt, int i, const void *p,
                              size_t len)
{
        if (p)
                sqlite3_bind_blob64(stmt, i, len ? p : "", len, SQLITE_STATIC);
        else
                sqlite3_bind_null(stmt, i);
}

static int dead_letter(of_store *st, const of_msg *m, const char *reason,
                       char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->dead_put;
        char now[OF_TS_LEN + 1];
        int err;

        of_timestamp_from_ms(now, of_timestamp_now_ms());
        sqlite3_bind_text(stmt, 1, m->topic, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 2, m->partition);
        sqlite3_bind_int64(stmt, 3, m->offset);
        bind_blob_or_null(stmt, 4, m->key, m->key_len);
        bind_blob_or_null(stmt, 5, m->value, m->value_len);
        sqlite3_bind_text(stmt, 6, reason, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 7, now, -1, SQLITE_STATIC);
        err = run(st, stmt, errstr, errstr_size);
        if (!err && sqlite3_changes(st->db) > 0)
                st->pending.dead++;
        return err;
}

/* Look the id up in processed_events. Returns 1 and fills *out when it is
 * known, 0 when not, <0 on failure. */
static int known_event(of_store *st, of_event *out, const char *id,
                       char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->event_get;
        int rc, found = 0;

        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
                found = 1;
                memset(out, 0, sizeof(*out));
                snprintf(out->type_name, sizeof(out->type_name), "%s",
                         (const char *)sqlite3_column_text(stmt, 0));
                snprintf(out->aggregate_id, sizeof(out->aggregate_id), "%s",
                         (const char *)sqlite3_column_text(stmt, 1));
                snprintf(out->occurred_at, sizeof(out->occurred_at), "%s",
                         (const char *)sqlite3_column_text(stmt, 2));
                out->amount = sqlite3_column_type(stmt, 3) == SQLITE_NULL
                                      ? -1
                                      : sqlite3_column_int64(stmt, 3);
        } else if (rc != SQLITE_DONE) {
                found = sql_fail(st, rc, "reading processed_events", errstr,
                                 errstr_size);
        }
        sqlite3_reset(stmt);
        return found;
}

/* Record ev's id in processed_events unless it is known: 1 recorded, 0
 * known already, <0 failure. */
static int record_event(of_store *st, const of_event *ev, char *errstr,
                        size_t errstr_size)
{
        sqlite3_stmt *stmt = st->event_put;
        int err;

        sqlite3_bind_text(stmt, 1, ev->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, ev->type_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, ev->aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, ev->occurred_at, -1, SQLITE_STATIC);
        if (ev->amount < 0)
                sqlite3_bind_null(stmt, 5);
        else
                sqlite3_bind_int64(stmt, 5, ev->amount);
        if ((err = run(st, stmt, errstr, errstr_size)))
                return err;
        return sqlite3_changes(st->db) > 0;
}

/* Take back a record_event() (the event turned out to be a dead letter). */
static int unrecord_event(of_store *st, const of_event *ev, char *errstr,
                          size_t errstr_size)
{
        sqlite3_bind_text(st->event_del, 1, ev->id, -1, SQLITE_STATIC);
        return run(st, st->event_del, errstr, errstr_size);
}

/* Name the first field on which two deliveries of one id disagree. */
static const char *disagreement(const of_event *a, const of_event *b)
{
        if (strcmp(a->type_name, b->type_name))
                return "type";
        if (strcmp(a->aggregate_id, b->aggregate_id))
                return "aggregateId";
        if (strcmp(a->occurred_at, b->occurred_at))
                return "occurredAt";
        return a->type == OF_EVENT_PLACED ? "payload.total" : "payload.amount";
}

/* Whether the order already has an event of ev's type: 1 yes, 0 no, <0
 * failure. */
static int already_has(of_store *st, const of_event *ev, char *errstr,
                       size_t errstr_size)
{
        sqlite3_stmt *stmt = st->order_get;
        int rc, has = 0;

        sqlite3_bind_text(stmt, 1, ev->aggregate_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                has = sqlite3_column_int(stmt,
                                         ev->type == OF_EVENT_PLACED ? 0 : 1);
        else if (rc != SQLITE_DONE)
                has = sql_fail(st, rc, "reading order_list", errstr,
                               errstr_size);
        sqlite3_reset(stmt);
        return has;
}

/* Whether adding ev's amount would carry its sum past 2^63-1. */
static int would_overflow(const of_store *st, const of_event *ev)
{
        int64_t sum;

        if (ev->type == OF_EVENT_OTHER)
                return 0;
        sum = ev->type == OF_EVENT_PLACED
                      ? st->base.placed_amount + st->batch.placed_amount
                      : st->base.paid_amount + st->batch.paid_amount;
        return ev->amount > INT64_MAX - sum;
}

static void reason_duplicate(char *reason, size_t reason_size,
                             const of_event *ev)
{
        snprintf(reason, reason_size, "%s: %s",
                 ev->type == OF_EVENT_PLACED ? OF_REASON_DUP_PLACED
                                             : OF_REASON_DUP_PAID,
                 ev->aggregate_id);
}

/* Apply a valid OrderPlaced/OrderPaid whose id was just recorded. Returns
 * 1 (the id taken back, the reason written) when the order has its event
 * of this type already: a dead letter. */
static int apply_order_event(of_store *st, const of_event *ev, char *reason,
                             size_t reason_size, char *errstr,
                             size_t errstr_size)
{
        int placed = ev->type == OF_EVENT_PLACED;
        sqlite3_stmt *stmt = placed ? st->place : st->pay;
        sums *day;
        int err;

        sqlite3_bind_text(stmt, 1, ev->aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, ev->amount);
        sqlite3_bind_text(stmt, 3, ev->occurred_at, -1, SQLITE_STATIC);
        if ((err = run(st, stmt, errstr, errstr_size)))
                return err;
        if (sqlite3_changes(st->db) == 0) {
                /* Rare: a second event of this type for the order. */
                if ((err = unrecord_event(st, ev, errstr, errstr_size)))
                        return err;
                reason_duplicate(reason, reason_size, ev);
                return 1;
        }
        if (!(day = day_slot(st, ev->occurred_at)))
                return of_errf(errstr, errstr_size, "out of memory");
        if (placed) {
                st->batch.orders_placed++;
                st->batch.placed_amount += ev->amount;
                day->orders_placed++;
                day->placed_amount += ev->amount;
        } else {
                st->batch.orders_paid++;
                st->batch.paid_amount += ev->amount;
                day->orders_paid++;
                day->paid_amount += ev->amount;
        }
        st->pending.applied++;
        return 0;
}

/* A known id delivered again: no effect when it agrees, else a conflict
 * (1, reason written). */
static int known_again(of_store *st, const of_event *ev,
                       const of_event *seen, char *reason,
                       size_t reason_size)
{
        if (of_event_agrees(ev, seen)) {
                st->pending.duplicates++;
                return 0;
        }
        snprintf(reason, reason_size,
                 "%s: event %s was applied with another %s",
                 OF_REASON_CONFLICT, ev->id, disagreement(ev, seen));
        return 1;
}

static int apply_msg(of_store *st, const of_msg *m, char *errstr,
                     size_t errstr_size)
{
        /* Two clock reads per event would weigh on the hot path: time
         * one event in DECODE_SAMPLE and scale. */
        int timed = st->decoded++ % DECODE_SAMPLE == 0;
        uint64_t t0 = timed ? mono_ns() : 0;
        char reason[OF_REASON_MAX];
        of_event ev, seen;
        int rc;

        rc = of_event_parse(&ev, m->value, m->value_len, reason,
                            sizeof(reason));
        if (timed)
                st->pending.decode_ns += (mono_ns() - t0) * DECODE_SAMPLE;
        if (rc)
                goto dead;
        if (!would_overflow(st, &ev)) {
                /* The common path: one statement records a new id. */
                if ((rc = record_event(st, &ev, errstr, errstr_size)) < 0)
                        return rc;
                if (rc == 1 && ev.type == OF_EVENT_OTHER) {
                        st->pending.ignored++;
                        return 0;
                }
                if (rc == 1) {
                        rc = apply_order_event(st, &ev, reason,
                                               sizeof(reason), errstr,
                                               errstr_size);
                        return rc == 1 ? dead_letter(st, m, reason, errstr,
                                                     errstr_size)
                                       : rc;
                }
        }
        /* A known id, or an amount that would overflow (rare). */
        if ((rc = known_event(st, &seen, ev.id, errstr, errstr_size)) < 0)
                return rc;
        if (rc == 1) {
                seen.type = ev.type;
                if (!known_again(st, &ev, &seen, reason, sizeof(reason)))
                        return 0;
                goto dead;
        }
        /* A new id that would overflow: a duplicate is reported first. */
        if ((rc = already_has(st, &ev, errstr, errstr_size)) < 0)
                return rc;
        if (rc == 1)
                reason_duplicate(reason, sizeof(reason), &ev);
        else
                snprintf(reason, sizeof(reason), "%s: %s would pass 2^63-1",
                         OF_REASON_OVERFLOW,
                         ev.type == OF_EVENT_PLACED ? "placed_amount"
                                                    : "paid_amount");
dead:
        return dead_letter(st, m, reason, errstr, errstr_size);
}

/* ---- the batch transaction ---- */

static int load_totals(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->totals_get;
        int rc = sqlite3_step(stmt);

        if (rc == SQLITE_ROW) {
                st->base.orders_placed = sqlite3_column_int64(stmt, 0);
                st->base.orders_paid = sqlite3_column_int64(stmt, 1);
                st->base.placed_amount = sqlite3_column_int64(stmt, 2);
                st->base.paid_amount = sqlite3_column_int64(stmt, 3);
        }
        sqlite3_reset(stmt);
        if (rc != SQLITE_ROW)
                return sql_fail(st, rc, "reading order_totals", errstr,
                                errstr_size);
        return 0;
}

static int write_sums(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->totals_add;
        size_t i;
        int err;

        sqlite3_bind_int64(stmt, 1, st->batch.orders_placed);
        sqlite3_bind_int64(stmt, 2, st->batch.orders_paid);
        sqlite3_bind_int64(stmt, 3, st->batch.placed_amount);
        sqlite3_bind_int64(stmt, 4, st->batch.paid_amount);
        if ((err = run(st, stmt, errstr, errstr_size)))
                return err;
        stmt = st->day_add;
        for (i = 0; i < st->days_cap; i++) {
                const day_sums *d = &st->days[i];

                if (!d->day[0])
                        continue;
                sqlite3_bind_text(stmt, 1, d->day, 10, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, 2, d->s.orders_placed);
                sqlite3_bind_int64(stmt, 3, d->s.orders_paid);
                sqlite3_bind_int64(stmt, 4, d->s.placed_amount);
                sqlite3_bind_int64(stmt, 5, d->s.paid_amount);
                if ((err = run(st, stmt, errstr, errstr_size)))
                        return err;
        }
        return 0;
}

static int write_offsets(of_store *st, const of_store_pos *pos, size_t npos,
                         char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->offset_put;
        size_t i;
        int err;

        for (i = 0; i < npos; i++) {
                sqlite3_bind_text(stmt, 1, pos[i].topic, -1, SQLITE_STATIC);
                sqlite3_bind_int(stmt, 2, pos[i].partition);
                sqlite3_bind_int64(stmt, 3, pos[i].next_offset);
                if ((err = run(st, stmt, errstr, errstr_size)))
                        return err;
        }
        return 0;
}

int of_store_apply_batch(of_store *st, const of_msg *msgs, size_t n,
                         const of_store_pos *pos, size_t npos,
                         of_store_stats *stats, char *errstr,
                         size_t errstr_size)
{
        uint64_t t0 = mono_ns(), t_commit = 0;
        size_t i;
        int err;

        batch_reset(st);
        if ((err = run(st, st->begin, errstr, errstr_size)))
                return err;
        if ((err = load_totals(st, errstr, errstr_size)))
                goto out;
        for (i = 0; i < n; i++)
                if ((err = apply_msg(st, &msgs[i], errstr, errstr_size)))
                        goto out;
        if ((err = write_sums(st, errstr, errstr_size)) ||
            (err = write_offsets(st, pos, npos, errstr, errstr_size)))
                goto out;
        t_commit = mono_ns();
        if ((err = run(st, st->commit, errstr, errstr_size)))
                goto out;
        stats->commit_ns += mono_ns() - t_commit;
        stats->apply_ns += mono_ns() - t0;
        stats->decode_ns += st->pending.decode_ns;
        stats->applied += st->pending.applied;
        stats->ignored += st->pending.ignored;
        stats->duplicates += st->pending.duplicates;
        stats->dead += st->pending.dead;
        stats->batches++;
out:
        if (err && !sqlite3_get_autocommit(st->db))
                sqlite3_step(st->rollback), sqlite3_reset(st->rollback);
        return err;
}
