/* The outbox of the application database, the relay's side: claim due
 * rows in commit order under a lease, mark them sent or failed (backoff,
 * DEAD), and the operations on it (retry, prune). Each works on an open
 * of_appdb; a row is written with its change by of_appdb_place/pay. */
#ifndef ORDERFLOW_OUTBOX_H
#define ORDERFLOW_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "orderflow/appdb.h"

/* A claimed outbox row; its strings live in its batch's text. */
typedef struct of_outbox_row {
        int64_t seq;        /* commit order */
        char *id;           /* event id: header event_id */
        char *type;         /* header event_type */
        char *aggregate_id; /* the order id: the message key */
        char *payload;      /* the envelope: the message value */
        size_t payload_len;
        int attempts;        /* failed attempts so far */
        int behind;          /* earlier rows of its order not SENT at the
                              * claim: all in the claim or in flight */
        int64_t occurred_ms; /* occurred_at, ms since 1970 (the writer's
                              * commit); -1: not a timestamp */
} of_outbox_row;

/* The rows of one claim. Start from {0}; a claim reuses the buffers of the
 * one before (no allocation per row, and none at all once they are big
 * enough); of_outbox_batch_free() releases them. The rows and their strings
 * stay valid until the next claim into the batch or its free. */
typedef struct of_outbox_batch {
        of_outbox_row *rows; /* rows[0..n-1], in seq order */
        size_t n;
        size_t cap; /* rows allocated */
        char *text; /* the rows' strings, each NUL-terminated */
        size_t text_len;
        size_t text_cap;
        int64_t lease; /* the claim's outbox_leases row; 0: none */
} of_outbox_batch;

/* Claim up to max due rows in commit order into out, in one BEGIN
 * IMMEDIATE transaction: PENDING, next_attempt_at <= now_ms, outside the
 * range of every lease that runs past now_ms (this relay's own earlier
 * claims included), and with every earlier row of the same order either
 * SENT, or claimed into out, or in in_flight: the relay's batch claimed
 * before and not marked yet (NULL: none). So one order's rows go out in
 * seq order in one round, and only a row behind an earlier row of its
 * order that failed (backing off), is DEAD or lies in another relay's
 * lease waits. One outbox_leases row leases the range from the first to
 * the last claimed seq to owner until now_ms + lease_ms (out->lease).
 * out->n is 0 on failure. */
int of_outbox_claim(of_appdb *app, of_outbox_batch *out, size_t max,
                    const of_outbox_batch *in_flight, int64_t now_ms,
                    int lease_ms, const char *owner, char *errstr,
                    size_t errstr_size);
void of_outbox_batch_free(of_outbox_batch *b); /* b may be NULL */

/* The outcome of publishing one claimed row. */
typedef struct of_outbox_result {
        int64_t seq;
        int attempts;      /* the row's attempts before this one */
        int behind;        /* the row's of_outbox_row.behind */
        const char *error; /* NULL: delivered; else why not (borrowed) */
        int held;          /* set by of_outbox_mark(): left PENDING behind
                            * an earlier row of its order that stays
                            * unsent */
} of_outbox_result;

/* Retry policy: next_attempt_at = now + min(cap, base * 2^attempts), with
 * up to 20% random jitter; at max_attempts failed attempts a row is DEAD. */
typedef struct of_backoff {
        int base_ms;
        int cap_ms;
        int max_attempts;
} of_backoff;

#define OF_BACKOFF_CAP_MS 60000 /* the delay's cap, unless base_ms is more */
#define OF_BACKOFF_INIT                                                       \
        {                                                                     \
                .base_ms = 500, .cap_ms = OF_BACKOFF_CAP_MS,                  \
                .max_attempts = 10                                            \
        }

/* Record the results res[0..n-1] (in seq order) in ONE transaction:
 * delivered rows SENT (sent_at now), failed ones attempts+1 with the next
 * attempt backed off, or DEAD; but a row claimed behind earlier unsent
 * rows of its order (behind > 0), delivered or not, whose earlier row
 * stays unsent (it failed now or in the batch before, or is DEAD) is left
 * as it is, PENDING with its attempts, and gets held set: it was
 * published, and goes again after that row. So a row is SENT only once
 * every earlier row of its order is. The claim's lease (0: none) and
 * every lease run out by now_ms are released. *dead, when not NULL, is
 * set to the rows that went DEAD. */
int of_outbox_mark(of_appdb *app, int64_t lease, of_outbox_result *res,
                   size_t n, const of_backoff *bo, int64_t now_ms,
                   size_t *dead, char *errstr, size_t errstr_size);

/* ---- operations ---- */

/* DEAD rows back to PENDING with attempts reset: the row with event id
 * (OF_ENOTFOUND when there is no such DEAD row), or every DEAD row when
 * id is NULL. *changed gets the number of rows. */
int of_outbox_retry(of_appdb *app, const char *id, int64_t *changed,
                    char *errstr, size_t errstr_size);

/* Delete SENT rows sent more than older_than_ms ago, walking the outbox
 * 1000 seq a transaction so a running relay never waits long. *deleted
 * gets the number of rows. */
int of_outbox_prune(of_appdb *app, int64_t older_than_ms, int64_t *deleted,
                    char *errstr, size_t errstr_size);

#endif
