/* Applying one message inside the batch transaction (CONTRACT 2): decode,
 * record the id, project, or write the dead letter; the batch's totals are
 * summed in memory for store.c to write once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/error.h"
#include "orderflow/timestamp.h"

#include "store_int.h"

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

void store_batch_reset(of_store *st)
{
        memset(&st->batch, 0, sizeof(st->batch));
        memset(&st->pending, 0, sizeof(st->pending));
        st->recorded = 0;
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
        err = store_step(st, stmt, errstr, errstr_size);
        if (!err && sqlite3_changes(st->db) > 0) {
                int i = of_event_reason_index(reason);

                st->pending.dead++;
                if (i >= 0)
                        st->pending.dead_by_reason[i]++;
        }
        return err;
}

/* Look the id up with stmt (processed_recent's or a run's). Returns 1 and
 * fills *out when it is there, 0 when not, <0 on failure. */
int store_read_event(of_store *st, sqlite3_stmt *stmt, of_event *out,
                     const char *id, char *errstr, size_t errstr_size)
{
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
                found = store_fail(st, rc, "reading processed_events", errstr,
                                   errstr_size);
        }
        sqlite3_reset(stmt);
        return found;
}


/* Look the id up in processed_events: 1 and *out filled, 0 not there, <0
 * failure. */
static int known_event(of_store *st, of_event *out, const char *id,
                       char *errstr, size_t errstr_size)
{
        int rc = store_read_event(st, st->event_get, out, id, errstr,
                                  errstr_size);

        return rc ? rc : store_sealed_event(st, out, id,
                                            of_id_hash(id, strlen(id)), errstr,
                                            errstr_size);
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
        if ((err = store_step(st, stmt, errstr, errstr_size)))
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
        sqlite3_bind_text(st->event_del, 1, ev->id, -1, SQLITE_STATIC);
        st->recorded--;
        return store_step(st, st->event_del, errstr, errstr_size);
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
                has = store_fail(st, rc, "reading order_list", errstr,
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
        if ((err = store_step(st, stmt, errstr, errstr_size)))
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

static slot *slot_find(slot *tab, size_t cap, uint64_t hash)
{
        size_t i = (size_t)hash & (cap - 1);

        while (tab[i].hash && tab[i].hash != hash)
                i = (i + 1) & (cap - 1);
        return &tab[i];
}

/* In key order, whether ev (at index at of the batch) has the effect it
 * has in log order: yes when no other event of the batch has its id and
 * no later event of its order was applied already. Hash collisions can
 * only make it say no. */
static int as_in_log_order(of_store *st, const of_event *ev,
                           uint64_t id_hash, size_t at)
{
        slot *s;
        uint64_t hash = id_hash | 1;

        s = slot_find(st->ids, st->slots_cap, hash);
        if (s->hash)
                return 0;
        s->hash = hash;
        if (ev->type == OF_EVENT_OTHER)
                return 1;
        hash = of_id_hash(ev->aggregate_id, strlen(ev->aggregate_id)) | 1;
        s = slot_find(st->aggs, st->slots_cap, hash);
        if (s->hash && s->at > at)
                return 0;
        s->hash = hash;
        s->at = at;
        return 1;
}

int store_apply_msg(of_store *st, const of_msg *m, size_t at, char *errstr,
                    size_t errstr_size)
{
        /* Two clock reads per event would weigh on the hot path: time
         * one event in DECODE_SAMPLE and scale. */
        int timed = st->decoded++ % DECODE_SAMPLE == 0;
        uint64_t t0 = timed ? store_mono_ns() : 0;
        char reason[OF_REASON_MAX];
        of_event ev, seen;
        uint64_t id_hash;
        int rc;

        rc = of_event_parse(&ev, m->value, m->value_len, reason,
                            sizeof(reason));
        if (timed)
                st->pending.decode_ns += (store_mono_ns() - t0) * DECODE_SAMPLE;
        if (rc < 0)
                return of_errf(errstr, errstr_size, "decoding: %s", reason);
        if (rc)
                goto dead;
        id_hash = of_id_hash(ev.id, strlen(ev.id));
        if (st->keyed && (!as_in_log_order(st, &ev, id_hash, at) ||
                          would_overflow(st, &ev)))
                return OUT_OF_ORDER;
        if (would_overflow(st, &ev)) {
                /* Rare: is it known, or a new id to reject? */
                if ((rc = known_event(st, &seen, ev.id, errstr,
                                      errstr_size)) != 0)
                        goto known;
                /* A duplicate is reported before an overflow. */
                if ((rc = already_has(st, &ev, errstr, errstr_size)) < 0)
                        return rc;
                if (rc == 1)
                        reason_duplicate(reason, sizeof(reason), &ev);
                else
                        snprintf(reason, sizeof(reason),
                                 "%s: %s would pass 2^63-1",
                                 OF_REASON_OVERFLOW,
                                 ev.type == OF_EVENT_PLACED
                                         ? "placed_amount"
                                         : "paid_amount");
                goto dead;
        }
        /* The common path: the runs' filters rule the id out and one
         * statement records it in processed_recent. */
        if ((rc = store_sealed_event(st, &seen, ev.id, id_hash, errstr,
                                     errstr_size)) != 0)
                goto known;
        if ((rc = record_event(st, &ev, errstr, errstr_size)) < 0)
                return rc;
        if (rc == 0) {
                rc = store_read_event(st, st->event_get, &seen, ev.id,
                                      errstr, errstr_size);
                if (rc != 1)
                        return rc < 0 ? rc : of_errf(errstr, errstr_size,
                                                     "event %s vanished",
                                                     ev.id);
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
        return dead_letter(st, m, reason, errstr, errstr_size);
}
