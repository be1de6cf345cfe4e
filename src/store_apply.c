/* Applying the messages of a batch inside its transaction (docs/reference.md
 * 2): record each id, project, or write the dead letter; the batch's totals
 * are summed in memory and written once at its end. The transaction is
 * store.c's; where known ids are found, store_runs.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/timestamp.h"

#include "store_int.h"

static const char *const apply_sql[AP_COUNT] = {
        [AP_TOTALS_GET] = "SELECT orders_placed, orders_paid, placed_amount,"
                          " paid_amount FROM order_totals",
        [AP_TOTALS_ADD] =
                "UPDATE order_totals SET orders_placed = orders_placed + ?1,"
                " orders_paid = orders_paid + ?2,"
                " placed_amount = placed_amount + ?3,"
                " paid_amount = paid_amount + ?4",
        [AP_DAY_ADD] =
                "INSERT INTO daily_totals (day, orders_placed, orders_paid,"
                " placed_amount, paid_amount) VALUES (?1, ?2, ?3, ?4, ?5)"
                " ON CONFLICT (day) DO UPDATE SET"
                " orders_placed = orders_placed + excluded.orders_placed,"
                " orders_paid = orders_paid + excluded.orders_paid,"
                " placed_amount = placed_amount + excluded.placed_amount,"
                " paid_amount = paid_amount + excluded.paid_amount",
        /* Records a new id; a known one changes nothing (sqlite3_changes()
         * == 0), so one statement both probes and inserts. */
        [AP_EVENT_PUT] = "INSERT INTO processed_recent (event_id, event_type,"
                         " aggregate_id, occurred_at, amount)"
                         " VALUES (?1, ?2, ?3, ?4, ?5)"
                         " ON CONFLICT (event_id) DO NOTHING",
        [AP_EVENT_DEL] = "DELETE FROM processed_recent WHERE event_id = ?1",
        /* The WHERE turns a second OrderPlaced of an order into "no
         * change", so one statement both detects the duplicate and
         * applies the event. */
        [AP_PLACE] =
                "INSERT INTO order_list (order_id, status, total, placed_at)"
                " VALUES (?1, 'ORDERED', ?2, ?3) ON CONFLICT (order_id)"
                " DO UPDATE SET total = excluded.total,"
                " placed_at = excluded.placed_at WHERE placed_at IS NULL",
        [AP_PAY] = "INSERT INTO order_list (order_id, status, paid_amount,"
                   " paid_at) VALUES (?1, 'PAID', ?2, ?3)"
                   " ON CONFLICT (order_id) DO UPDATE SET status = 'PAID',"
                   " paid_amount = excluded.paid_amount,"
                   " paid_at = excluded.paid_at WHERE paid_at IS NULL",
        [AP_ORDER_GET] = "SELECT placed_at IS NOT NULL, paid_at IS NOT NULL"
                         " FROM order_list WHERE order_id = ?1",
        [AP_DEAD_PUT] =
                "INSERT INTO dead_letters (topic, partition, offset, key,"
                " value, reason, received_at)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
};

int store_apply_open(of_store *st, char *errstr, size_t errstr_size)
{
        return sqldb_prepare_all(st->db, st->apply, apply_sql, AP_COUNT,
                                 errstr, errstr_size);
}

void store_apply_close(of_store *st)
{
        sqldb_finalize_all(st->apply, AP_COUNT);
        free(st->days);
        free(st->ids);
        free(st->aggs);
        free(st->dead_said);
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
        st->recorded = 0;
        st->dead_said_len = 0;
        st->dead_unsaid = 0;
        if (st->days)
                memset(st->days, 0, st->days_cap * sizeof(*st->days));
        st->days_used = 0;
}

static int load_totals(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->apply[AP_TOTALS_GET];
        int rc = sqlite3_step(stmt), err = 0;

        if (rc == SQLITE_ROW) {
                st->base.orders_placed = sqlite3_column_int64(stmt, 0);
                st->base.orders_paid = sqlite3_column_int64(stmt, 1);
                st->base.placed_amount = sqlite3_column_int64(stmt, 2);
                st->base.paid_amount = sqlite3_column_int64(stmt, 3);
        } else {
                err = sqldb_fail(st->db, rc, "reading order_totals", errstr,
                                 errstr_size);
        }
        sqlite3_reset(stmt);
        return err;
}

int store_apply_keyed(of_store *st, const of_store_batch *b)
{
        size_t cap = 16;

        if (!b->keyed)
                return 0;
        while (cap < b->n + b->n / 2)
                cap <<= 1;
        if (cap > st->slots_cap) {
                free(st->ids);
                free(st->aggs);
                st->ids = malloc(cap * sizeof(*st->ids));
                st->aggs = malloc(cap * sizeof(*st->aggs));
                st->slots_cap = st->ids && st->aggs ? cap : 0;
                if (!st->slots_cap)
                        return 0;
        }
        memset(st->ids, 0, st->slots_cap * sizeof(*st->ids));
        memset(st->aggs, 0, st->slots_cap * sizeof(*st->aggs));
        return 1;
}

int store_apply_begin(of_store *st, int keyed, char *errstr,
                      size_t errstr_size)
{
        batch_reset(st);
        st->keyed = keyed;
        return load_totals(st, errstr, errstr_size);
}

static int write_sums(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->apply[AP_TOTALS_ADD];
        size_t i;
        int err;

        sqlite3_bind_int64(stmt, 1, st->batch.orders_placed);
        sqlite3_bind_int64(stmt, 2, st->batch.orders_paid);
        sqlite3_bind_int64(stmt, 3, st->batch.placed_amount);
        sqlite3_bind_int64(stmt, 4, st->batch.paid_amount);
        if ((err = sqldb_step(st->db, stmt, errstr, errstr_size)))
                return err;
        stmt = st->apply[AP_DAY_ADD];
        for (i = 0; i < st->days_cap; i++) {
                const day_sums *d = &st->days[i];

                if (!d->day[0])
                        continue;
                sqlite3_bind_text(stmt, 1, d->day, 10, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, 2, d->s.orders_placed);
                sqlite3_bind_int64(stmt, 3, d->s.orders_paid);
                sqlite3_bind_int64(stmt, 4, d->s.placed_amount);
                sqlite3_bind_int64(stmt, 5, d->s.paid_amount);
                if ((err = sqldb_step(st->db, stmt, errstr, errstr_size)))
                        return err;
        }
        return 0;
}

int store_apply_end(of_store *st, char *errstr, size_t errstr_size)
{
        int err = write_sums(st, errstr, errstr_size);

        return err ? err
                   : store_runs_note_recent(st, st->recorded, errstr,
                                            errstr_size);
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

/* A batch's dead-letter lines kept for the log: beyond this many bytes
 * they are only counted (the rows hold everything). */
#define DEAD_SAID_MAX 65536

/* Keep m's line for store_apply_committed(). */
static void say_dead(of_store *st, const of_msg *m, const char *reason)
{
        char line[1024];
        int n = snprintf(line, sizeof(line), "%s [%d] offset %lld: %s\n",
                         m->topic, (int)m->partition, (long long)m->offset,
                         reason);
        size_t len = n < 0                       ? 0
                     : (size_t)n >= sizeof(line) ? sizeof(line) - 1
                                                 : (size_t)n;
        char *p;
        size_t i;

        if (len == 0)
                return;
        /* One log line each: an order id in a reason may hold anything. */
        for (i = 0; i < len; i++)
                if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
                        line[i] = '?';
        if (st->dead_said_len + len > DEAD_SAID_MAX) {
                st->dead_unsaid++;
                return;
        }
        if (st->dead_said_len + len + 1 > st->dead_said_cap) {
                size_t cap = st->dead_said_cap ? st->dead_said_cap * 2 : 4096;

                while (cap < st->dead_said_len + len + 1)
                        cap *= 2;
                if (!(p = realloc(st->dead_said, cap))) {
                        st->dead_unsaid++;
                        return;
                }
                st->dead_said = p;
                st->dead_said_cap = cap;
        }
        line[len - 1] = '\n'; /* also where snprintf cut it short */
        memcpy(st->dead_said + st->dead_said_len, line, len);
        st->dead_said_len += len;
}

void store_apply_committed(of_store *st)
{
        size_t at = 0;

        while (at < st->dead_said_len) {
                const char *nl = memchr(st->dead_said + at, '\n',
                                        st->dead_said_len - at);
                int len = (int)(nl - (st->dead_said + at));

                of_log(OF_LOG_INFO, "dead letter: %.*s", len,
                       st->dead_said + at);
                at += (size_t)len + 1;
        }
        if (st->dead_unsaid)
                of_log(OF_LOG_INFO,
                       "dead letter: %llu more in this batch (orderflow "
                       "query dead-letters)",
                       (unsigned long long)st->dead_unsaid);
        st->dead_said_len = 0;
        st->dead_unsaid = 0;
}

static int dead_letter(of_store *st, const of_msg *m, const char *reason,
                       char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->apply[AP_DEAD_PUT];
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
        err = sqldb_step(st->db, stmt, errstr, errstr_size);
        if (!err && sqlite3_changes(st->db) > 0) {
                int i = of_event_reason_index(reason);

                st->pending.dead++;
                if (i >= 0)
                        st->pending.dead_by_reason[i]++;
                say_dead(st, m, reason);
        }
        return err;
}

/* Look the id up in processed_events: 1 and *out filled, 0 not there, <0
 * failure. */
static int known_event(of_store *st, of_event *out, const char *id,
                       uint64_t hash, char *errstr, size_t errstr_size)
{
        int rc = store_runs_find_recent(st, out, id, errstr, errstr_size);

        return rc ? rc
                  : store_runs_find_sealed(st, out, id, hash, errstr,
                                           errstr_size);
}

/* Record ev's id in processed_events unless it is known: 1 recorded, 0
 * known already, <0 failure. */
static int record_event(of_store *st, const of_event *ev, char *errstr,
                        size_t errstr_size)
{
        sqlite3_stmt *stmt = st->apply[AP_EVENT_PUT];
        int err;

        sqlite3_bind_text(stmt, 1, ev->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, ev->type_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, ev->aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, ev->occurred_at, -1, SQLITE_STATIC);
        if (ev->amount < 0)
                sqlite3_bind_null(stmt, 5);
        else
                sqlite3_bind_int64(stmt, 5, ev->amount);
        if ((err = sqldb_step(st->db, stmt, errstr, errstr_size)))
                return err;
        if (sqlite3_changes(st->db) == 0)
                return 0;
        st->recorded++;
        return 1;
}

/* Take back a record_event() (the event turned out to be a dead letter). */
static int unrecord_event(of_store *st, const of_event *ev, char *errstr,
                          size_t errstr_size)
{
        sqlite3_stmt *stmt = st->apply[AP_EVENT_DEL];

        sqlite3_bind_text(stmt, 1, ev->id, -1, SQLITE_STATIC);
        st->recorded--;
        return sqldb_step(st->db, stmt, errstr, errstr_size);
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
        sqlite3_stmt *stmt = st->apply[AP_ORDER_GET];
        int rc, has = 0;

        sqlite3_bind_text(stmt, 1, ev->aggregate_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                has = sqlite3_column_int(stmt,
                                         ev->type == OF_EVENT_PLACED ? 0 : 1);
        else if (rc != SQLITE_DONE)
                has = sqldb_fail(st->db, rc, "reading order_list", errstr,
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
        sqlite3_stmt *stmt = st->apply[placed ? AP_PLACE : AP_PAY];
        sums *day;
        int err;

        sqlite3_bind_text(stmt, 1, ev->aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, ev->amount);
        sqlite3_bind_text(stmt, 3, ev->occurred_at, -1, SQLITE_STATIC);
        if ((err = sqldb_step(st->db, stmt, errstr, errstr_size)))
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
static int known_again(of_store *st, const of_event *ev, const of_event *seen,
                       char *reason, size_t reason_size)
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

static slot *slot_find(slot *tab, size_t cap, uint64_t hash)
{
        size_t i = (size_t)hash & (cap - 1);

        while (tab[i].hash && tab[i].hash != hash)
                i = (i + 1) & (cap - 1);
        return &tab[i];
}

/* In key order, whether the event d (at index at of the batch) has the
 * effect it has in log order: yes when no other event of the batch has
 * its id and no later event of its order was applied already. Hash
 * collisions can only make it say no. */
static int as_in_log_order(of_store *st, const decoded *d, size_t at,
                           uint64_t id_hash, uint64_t agg_hash)
{
        slot *s;
        uint64_t hash = id_hash | 1;

        s = slot_find(st->ids, st->slots_cap, hash);
        if (s->hash)
                return 0;
        s->hash = hash;
        if (d->type == OF_EVENT_OTHER)
                return 1;
        hash = agg_hash | 1;
        s = slot_find(st->aggs, st->slots_cap, hash);
        if (s->hash && s->at > at)
                return 0;
        s->hash = hash;
        s->at = at;
        return 1;
}

/* A valid event that would carry its sum past 2^63-1: reported as a
 * duplicate when it is one, else as the overflow (0 and the reason
 * written; 1 when its id is known, seen filled; <0 failure). */
static int overflow(of_store *st, const of_event *ev, uint64_t id_hash,
                    of_event *seen, char *reason, size_t reason_size,
                    char *errstr, size_t errstr_size)
{
        int rc;

        if ((rc = known_event(st, seen, ev->id, id_hash, errstr,
                              errstr_size)) != 0)
                return rc;
        /* A duplicate is reported before an overflow. */
        if ((rc = already_has(st, ev, errstr, errstr_size)) < 0)
                return rc;
        if (rc == 1)
                reason_duplicate(reason, reason_size, ev);
        else
                snprintf(reason, reason_size, "%s: %s would pass 2^63-1",
                         OF_REASON_OVERFLOW,
                         ev->type == OF_EVENT_PLACED ? "placed_amount"
                                                     : "paid_amount");
        return 0;
}

int store_apply_msg(of_store *st, const of_store_batch *b, size_t at,
                    char *errstr, size_t errstr_size)
{
        const decoded *d = &b->d[at];
        char reason[OF_REASON_MAX];
        of_event ev, seen;
        uint64_t id_hash;
        int rc;

        if (d->type == DEAD)
                return dead_letter(st, &b->msgs[at], store_batch_reason(b, at),
                                   errstr, errstr_size);
        store_batch_event(&ev, b, at);
        id_hash = of_id_hash(ev.id, d->len[0]);
        if (st->keyed &&
            (!as_in_log_order(st, d, at, id_hash,
                              of_id_hash(ev.aggregate_id, d->len[2])) ||
             would_overflow(st, &ev)))
                return OUT_OF_ORDER;
        if (would_overflow(st, &ev)) {
                /* Rare: is it known, or a new id to reject? */
                rc = overflow(st, &ev, id_hash, &seen, reason, sizeof(reason),
                              errstr, errstr_size);
                if (rc != 0)
                        goto known;
                goto dead;
        }
        /* The common path: the runs' filters rule the id out and one
         * statement records it in processed_recent. */
        if ((rc = store_runs_find_sealed(st, &seen, ev.id, id_hash, errstr,
                                         errstr_size)) != 0)
                goto known;
        if ((rc = record_event(st, &ev, errstr, errstr_size)) < 0)
                return rc;
        if (rc == 0) {
                rc = store_runs_find_recent(st, &seen, ev.id, errstr,
                                            errstr_size);
                if (rc != 1)
                        return rc < 0 ? rc
                                      : of_errf(errstr, errstr_size,
                                                "event %s vanished", ev.id);
                goto known;
        }
        if (ev.type == OF_EVENT_OTHER) {
                st->pending.ignored++;
                return 0;
        }
        rc = apply_order_event(st, &ev, reason, sizeof(reason), errstr,
                               errstr_size);
        if (rc != 1)
                return rc;
        goto dead;
known:
        /* rc: 1 found (seen filled), <0 failure */
        if (rc < 0)
                return rc;
        seen.type = ev.type;
        if (!known_again(st, &ev, &seen, reason, sizeof(reason)))
                return 0;
dead:
        return dead_letter(st, &b->msgs[at], reason, errstr, errstr_size);
}
