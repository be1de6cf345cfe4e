/* The outbox, the relay's side: claiming due rows in commit order under a
 * lease, marking them sent or failed (backoff, DEAD), and the operations
 * on it (retry, prune). A row is written with its change by appdb.c;
 * publishing is the relay's. */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/outbox.h"
#include "orderflow/timestamp.h"

#include "appdb_int.h"

/* One window of PRUNE_SEQS seq: prune walks the table window by window,
 * each its own short transaction. */
#define PRUNE_SEQS 1000

static const char *const outbox_sql[OB_COUNT] = {
        [OB_BEGIN] = "BEGIN IMMEDIATE",
        [OB_COMMIT] = "COMMIT",
        [OB_ROLLBACK] = "ROLLBACK",
        /* The ranges of the live leases of every relay, this one's
         * earlier claims included: the claim reads the gaps between
         * them. */
        [OB_LEASES] = "SELECT first_seq, last_seq FROM outbox_leases"
                      " WHERE lease_until > ?1 ORDER BY first_seq",
        /* The due rows of one gap, [?2, ?3], in commit order: read from
         * the pending index in seq order (so no sort, and a leased range
         * is never walked, nor a SENT row); CROSS JOIN keeps it the outer
         * loop. The last column lists the seq of the earlier rows of the
         * row's order that are not SENT, NULL when none (the common case;
         * an order has a row or two): the claim takes the row only when
         * those are all in this claim or in the relay's batch in flight.
         * No LIMIT: a row held back is stepped over, and the claim stops
         * stepping once it has its rows. */
        [OB_DUE] = "SELECT m.seq, m.id, m.type, m.aggregate_id, p.payload,"
                   " m.attempts,"
                   " (SELECT group_concat(e.seq) FROM outbox_messages e"
                   "  WHERE e.aggregate_id = m.aggregate_id AND e.seq < m.seq"
                   "  AND e.status != 'SENT'),"
                   " m.occurred_at"
                   " FROM outbox_messages m INDEXED BY outbox_pending"
                   " CROSS JOIN outbox_payloads p"
                   " ON p.seq = m.seq"
                   " WHERE m.status = 'PENDING' AND m.seq BETWEEN ?2 AND ?3"
                   " AND m.next_attempt_at <= ?1"
                   " ORDER BY m.seq",
        /* One row leases the whole claim: no row of it is written. */
        [OB_LEASE] = "INSERT INTO outbox_leases (owner, first_seq,"
                     " last_seq, lease_until) VALUES (?1, ?2, ?3, ?4)",
        /* A marked claim gives its range back; so does a lease run out
         * (its relay died, or took longer than the lease). */
        [OB_RELEASE] = "DELETE FROM outbox_leases"
                       " WHERE id = ?1 OR lease_until <= ?2",
        /* ?1 is a JSON array of the delivered rows' seq: one statement a
         * batch (stepping one a row costs more). */
        [OB_SENT] = "UPDATE outbox_messages SET status = 'SENT',"
                    " sent_at = ?2"
                    " WHERE seq IN (SELECT value FROM json_each(?1))",
        /* ?1: the seq of the rows claimed behind earlier unsent rows of
         * their order (row.behind > 0), delivered or not; ?2: every
         * delivered row's seq. Those of ?1 with an earlier row of their
         * order that stays unsent (neither SENT nor delivered now: it
         * failed, or is DEAD, or was itself held back) are held back. */
        [OB_HELD] =
                "SELECT c.value FROM json_each(?1) c"
                " WHERE EXISTS (SELECT 1 FROM outbox_messages m"
                "  JOIN outbox_messages e ON e.aggregate_id = m.aggregate_id"
                "  AND e.seq < m.seq"
                "  WHERE m.seq = c.value AND e.status != 'SENT'"
                "  AND e.seq NOT IN (SELECT value FROM json_each(?2)))",
        [OB_FAILED] = "UPDATE outbox_messages SET attempts = attempts + 1,"
                      " last_error = ?2, next_attempt_at = ?3,"
                      " status = CASE WHEN attempts + 1 >= ?4 THEN 'DEAD'"
                      " ELSE status END"
                      " WHERE seq = ?1"
                      " RETURNING status = 'DEAD'",
        [OB_RETRY_ONE] = "UPDATE outbox_messages SET status = 'PENDING',"
                         " attempts = 0, next_attempt_at = 0"
                         " WHERE status = 'DEAD' AND id = ?1",
        [OB_RETRY_ALL] = "UPDATE outbox_messages SET status = 'PENDING',"
                         " attempts = 0, next_attempt_at = 0"
                         " WHERE status = 'DEAD'",
        [OB_PRUNE] = "DELETE FROM outbox_messages WHERE seq >= ?1"
                     " AND seq < ?2 AND status = 'SENT' AND sent_at < ?3",
        [OB_SEQS] = "SELECT min(seq), max(seq) FROM outbox_messages",
};

int outbox_open(of_appdb *app, char *errstr, size_t errstr_size)
{
        return sqldb_prepare_all(app->db, app->ob, outbox_sql, OB_COUNT,
                                 errstr, errstr_size);
}

void outbox_close(of_appdb *app)
{
        sqldb_finalize_all(app->ob, OB_COUNT);
        free(app->json);
        free(app->behind_json);
}

/* ---- the rows of a claim ---- */

void of_outbox_batch_free(of_outbox_batch *b)
{
        if (!b)
                return;
        free(b->rows);
        free(b->text);
        memset(b, 0, sizeof(*b));
}

/* Room for need more bytes of text. A move rebases the rows' strings
 * (malloc, copy, free: their offsets are taken while the old buffer is
 * still there). */
static int text_reserve(of_outbox_batch *b, size_t need)
{
        size_t cap = b->text_cap ? b->text_cap : 64 * 1024, i;
        char *text;

        if (b->text_len + need <= b->text_cap)
                return 0;
        while (cap < b->text_len + need)
                cap *= 2;
        if (!(text = malloc(cap)))
                return OF_ERROR;
        if (b->text_len)
                memcpy(text, b->text, b->text_len);
        for (i = 0; i < b->n; i++) {
                of_outbox_row *r = &b->rows[i];

                r->id = text + (r->id - b->text);
                r->type = text + (r->type - b->text);
                r->aggregate_id = text + (r->aggregate_id - b->text);
                r->payload = text + (r->payload - b->text);
        }
        free(b->text);
        b->text = text;
        b->text_cap = cap;
        return 0;
}

/* Column col of the current row, copied into b's text with a NUL. */
static char *text_put(of_outbox_batch *b, sqlite3_stmt *stmt, int col)
{
        const void *p = sqlite3_column_blob(stmt, col);
        size_t n = (size_t)sqlite3_column_bytes(stmt, col);
        char *s = b->text + b->text_len;

        if (n)
                memcpy(s, p, n);
        s[n] = '\0';
        b->text_len += n + 1;
        return s;
}

/* The seq of each result as a JSON array, for json_each(), in *buf
 * (reused: a fresh 200 KiB a batch costs more than its writing): of the
 * delivered rows not held back, or with behind of the rows claimed behind
 * earlier unsent rows of their order. NULL when out of memory. */
static char *seqs_json(char **buf, size_t *cap, const of_outbox_result *res,
                       size_t n, int behind)
{
        char *p;
        size_t i;

        if (*cap < n * 21 + 3) {
                free(*buf);
                *cap = n * 21 + 3;
                if (!(*buf = malloc(*cap))) {
                        *cap = 0;
                        return NULL;
                }
        }
        p = *buf;
        *p++ = '[';
        for (i = 0; i < n; i++) {
                if (behind ? res[i].behind <= 0 : res[i].error || res[i].held)
                        continue;
                if (p[-1] != '[')
                        *p++ = ',';
                p += sprintf(p, "%lld", (long long)res[i].seq);
        }
        *p++ = ']';
        *p = '\0';
        return *buf;
}

/* The index of the first of the n elements of size bytes at base (rows
 * or results, in seq order: seq is their first member) whose seq is at
 * least seq; n when none is. */
static size_t seq_index(const void *base, size_t n, size_t size, int64_t seq)
{
        size_t lo = 0, hi = n, mid;
        int64_t at;

        _Static_assert(offsetof(of_outbox_row, seq) == 0, "seq first");
        _Static_assert(offsetof(of_outbox_result, seq) == 0, "seq first");
        while (lo < hi) {
                mid = lo + (hi - lo) / 2;
                memcpy(&at, (const char *)base + mid * size, sizeof(at));
                if (at < seq)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* ---- the claim ---- */

/* Whether b (NULL: none) holds the row with seq. */
static int has_seq(const of_outbox_batch *b, int64_t seq)
{
        size_t i;

        if (!b)
                return 0;
        i = seq_index(b->rows, b->n, sizeof(b->rows[0]), seq);
        return i < b->n && b->rows[i].seq == seq;
}

/* How many seqs the list ("12,15") names when every one is on its way:
 * in b (the claim so far) or in in_flight; -1 when one is not. */
static int on_their_way(const char *list, const of_outbox_batch *b,
                        const of_outbox_batch *in_flight)
{
        int n = 0;
        char *end;

        for (; *list; list = *end ? end + 1 : end, n++) {
                int64_t seq = strtoll(list, &end, 10);

                if (!has_seq(b, seq) && !has_seq(in_flight, seq))
                        return -1;
        }
        return n;
}

/* The row's occurredAt (its commit, as the writer stamps it) in ms since
 * 1970; -1 when it is not a timestamp. */
static int64_t occurred_ms(sqlite3_stmt *stmt, int col)
{
        const char *s = (const char *)sqlite3_column_text(stmt, col);
        char ts[OF_TS_LEN + 1], why[8];

        if (!s || of_timestamp_normalise(ts, s, strlen(s), why, sizeof(why)))
                return -1;
        return of_timestamp_pack(ts);
}

/* Append the due rows with seq in [lo, hi] to b, up to max rows in all,
 * taking a row only when the earlier rows of its order that are not SENT
 * are all on their way: in in_flight, or taken into b already. */
static int read_due(of_appdb *app, of_outbox_batch *b,
                    const of_outbox_batch *in_flight, int64_t lo, int64_t hi,
                    size_t max, int64_t now_ms, char *errstr,
                    size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_DUE];
        int rc = SQLITE_DONE;

        sqlite3_bind_int64(stmt, 1, now_ms);
        sqlite3_bind_int64(stmt, 2, lo);
        sqlite3_bind_int64(stmt, 3, hi);
        while (b->n < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                of_outbox_row *r = &b->rows[b->n];
                const char *before =
                        (const char *)sqlite3_column_text(stmt, 6);
                size_t need = 4;
                int col, behind = 0;

                /* An earlier row failed, is DEAD, waits out a backoff or
                 * lies in another relay's lease: the row waits too. */
                if (before &&
                    (behind = on_their_way(before, b, in_flight)) < 0)
                        continue;
                for (col = 1; col <= 4; col++)
                        need += (size_t)sqlite3_column_bytes(stmt, col);
                if (text_reserve(b, need)) {
                        rc = SQLITE_NOMEM;
                        break;
                }
                r->seq = sqlite3_column_int64(stmt, 0);
                r->id = text_put(b, stmt, 1);
                r->type = text_put(b, stmt, 2);
                r->aggregate_id = text_put(b, stmt, 3);
                r->payload = text_put(b, stmt, 4);
                r->payload_len = (size_t)sqlite3_column_bytes(stmt, 4);
                r->attempts = sqlite3_column_int(stmt, 5);
                r->behind = behind;
                r->occurred_ms = occurred_ms(stmt, 7);
                b->n++;
        }
        sqlite3_reset(stmt);
        if (rc == SQLITE_NOMEM)
                return of_errf(errstr, errstr_size, "out of memory");
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                return sqldb_fail(app->db, rc, "claiming outbox rows", errstr,
                                  errstr_size);
        return 0;
}

/* Read the due rows outside every live lease into b, in seq order. */
static int read_gaps(of_appdb *app, of_outbox_batch *b,
                     const of_outbox_batch *in_flight, size_t max,
                     int64_t now_ms, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_LEASES];
        int64_t lo = 0, first, last;
        int rc = SQLITE_DONE, err = 0;

        sqlite3_bind_int64(stmt, 1, now_ms);
        while (b->n < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                first = sqlite3_column_int64(stmt, 0);
                last = sqlite3_column_int64(stmt, 1);
                if (first > lo &&
                    (err = read_due(app, b, in_flight, lo, first - 1, max,
                                    now_ms, errstr, errstr_size)))
                        break;
                if (last >= lo) /* ranges may overlap */
                        lo = last + 1;
        }
        sqlite3_reset(stmt);
        if (err)
                return err;
        if (b->n < max && rc != SQLITE_DONE)
                return sqldb_fail(app->db, rc, "reading outbox leases", errstr,
                                  errstr_size);
        if (b->n < max)
                err = read_due(app, b, in_flight, lo, INT64_MAX, max, now_ms,
                               errstr, errstr_size);
        return err;
}

int of_outbox_claim(of_appdb *app, of_outbox_batch *out, size_t max,
                    const of_outbox_batch *in_flight, int64_t now_ms,
                    int lease_ms, const char *owner, char *errstr,
                    size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_LEASE];
        int err;

        out->n = 0;
        out->text_len = 0;
        out->lease = 0;
        if (out->cap < max) {
                of_outbox_row *rows = realloc(out->rows, max * sizeof(*rows));

                if (!rows)
                        return of_errf(errstr, errstr_size, "out of memory");
                out->rows = rows;
                out->cap = max;
        }
        assert(in_flight != out);
        if ((err = sqldb_step(app->db, app->ob[OB_BEGIN], errstr,
                              errstr_size)))
                return err;
        if ((err = read_gaps(app, out, in_flight, max, now_ms, errstr,
                             errstr_size)))
                goto out;
        if (out->n) {
                sqlite3_bind_text(stmt, 1, owner, -1, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, 2, out->rows[0].seq);
                sqlite3_bind_int64(stmt, 3, out->rows[out->n - 1].seq);
                sqlite3_bind_int64(stmt, 4, now_ms + lease_ms);
                if (!(err = sqldb_step(app->db, stmt, errstr, errstr_size)))
                        out->lease = sqlite3_last_insert_rowid(app->db);
        }
        if (!err)
                err = sqldb_step(app->db, app->ob[OB_COMMIT], errstr,
                                 errstr_size);
out:
        if (err) {
                sqldb_rollback(app->db, app->ob[OB_ROLLBACK]);
                out->n = 0;
                out->lease = 0;
        }
        return err;
}

/* ---- the mark ---- */

/* The wait before attempt number attempts+1, in ms. */
static int64_t backoff_ms(const of_backoff *bo, int attempts)
{
        int64_t d = bo->base_ms;
        uint32_t r = 0;

        while (attempts-- > 0 && d < bo->cap_ms)
                d *= 2;
        if (d > bo->cap_ms)
                d = bo->cap_ms;
        /* Up to 20% less, so relays that failed together spread out. */
        if (getrandom(&r, sizeof(r), 0) == sizeof(r) && d >= 5)
                d -= (int64_t)(r % (uint32_t)(d / 5 + 1));
        return d;
}

/* Set held on the results that must stay PENDING behind an earlier row
 * of their order that stays unsent. Only rows claimed behind unsent rows
 * can be: for the others every earlier row was SENT at the claim. res is
 * in seq order. */
static int find_held(of_appdb *app, of_outbox_result *res, size_t n,
                     char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_HELD];
        char *behind, *delivered;
        size_t i;
        int rc;

        for (i = 0; i < n && res[i].behind <= 0; i++)
                ;
        if (i == n)
                return 0;
        behind = seqs_json(&app->behind_json, &app->behind_cap, res, n, 1);
        delivered = seqs_json(&app->json, &app->json_cap, res, n, 0);
        if (!behind || !delivered)
                return of_errf(errstr, errstr_size, "out of memory");
        sqlite3_bind_text(stmt, 1, behind, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, delivered, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                i = seq_index(res, n, sizeof(res[0]),
                              sqlite3_column_int64(stmt, 0));
                assert(i < n);
                res[i].held = 1;
        }
        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE)
                return sqldb_fail(app->db, rc, "reading held rows", errstr,
                                  errstr_size);
        return 0;
}

/* Mark the failed rows of res[0..n) not held back: attempts + 1, the next
 * attempt backed off, or DEAD; *went_dead counts those. */
static int mark_failed(of_appdb *app, const of_outbox_result *res, size_t n,
                       const of_backoff *bo, int64_t now_ms, size_t *went_dead,
                       char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_FAILED];
        size_t i;
        int rc;

        for (i = 0; i < n; i++) {
                if (!res[i].error || res[i].held)
                        continue;
                sqlite3_bind_int64(stmt, 1, res[i].seq);
                sqlite3_bind_text(stmt, 2, res[i].error, -1, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, 3,
                                   now_ms + backoff_ms(bo, res[i].attempts));
                sqlite3_bind_int(stmt, 4, bo->max_attempts);
                rc = sqlite3_step(stmt);
                if (rc == SQLITE_ROW) {
                        *went_dead += sqlite3_column_int(stmt, 0) != 0;
                        rc = sqlite3_step(stmt);
                }
                sqlite3_reset(stmt);
                if (rc != SQLITE_DONE)
                        return sqldb_fail(app->db, rc, "marking a failed row",
                                          errstr, errstr_size);
        }
        return 0;
}

int of_outbox_mark(of_appdb *app, int64_t lease, of_outbox_result *res,
                   size_t n, const of_backoff *bo, int64_t now_ms,
                   size_t *dead, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_SENT];
        char now[OF_TS_LEN + 1], *json;
        size_t i, went_dead = 0;
        int err;

        of_timestamp_from_ms(now, now_ms);
        for (i = 0; i < n; i++)
                res[i].held = 0;
        if ((err = sqldb_step(app->db, app->ob[OB_BEGIN], errstr,
                              errstr_size)))
                return err;
        if ((err = find_held(app, res, n, errstr, errstr_size)))
                goto out;
        if (!(json = seqs_json(&app->json, &app->json_cap, res, n, 0))) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        sqlite3_bind_text(stmt, 1, json, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, now, -1, SQLITE_STATIC);
        if ((err = sqldb_step(app->db, stmt, errstr, errstr_size)) ||
            (err = mark_failed(app, res, n, bo, now_ms, &went_dead, errstr,
                               errstr_size)))
                goto out;
        stmt = app->ob[OB_RELEASE];
        sqlite3_bind_int64(stmt, 1, lease);
        sqlite3_bind_int64(stmt, 2, now_ms);
        if (!(err = sqldb_step(app->db, stmt, errstr, errstr_size)))
                err = sqldb_step(app->db, app->ob[OB_COMMIT], errstr,
                                 errstr_size);
out:
        if (err)
                sqldb_rollback(app->db, app->ob[OB_ROLLBACK]);
        if (!err && dead)
                *dead = went_dead;
        return err;
}

/* ---- operations ---- */

int of_outbox_retry(of_appdb *app, const char *id, int64_t *changed,
                    char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[id ? OB_RETRY_ONE : OB_RETRY_ALL];
        int err;

        if (id)
                sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        if ((err = sqldb_step(app->db, stmt, errstr, errstr_size)))
                return err;
        *changed = sqlite3_changes(app->db);
        if (id && !*changed) {
                of_errf(errstr, errstr_size, "no DEAD outbox row with id %s",
                        id);
                return OF_ENOTFOUND;
        }
        return 0;
}

int of_outbox_prune(of_appdb *app, int64_t older_than_ms, int64_t *deleted,
                    char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_SEQS];
        char cutoff[OF_TS_LEN + 1];
        int64_t lo = 0, last = -1;
        int err, rc;

        of_timestamp_from_ms(cutoff, of_timestamp_now_ms() - older_than_ms);
        *deleted = 0;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
                lo = sqlite3_column_int64(stmt, 0);
                last = sqlite3_column_int64(stmt, 1);
        }
        sqlite3_reset(stmt);
        if (rc != SQLITE_ROW)
                return sqldb_fail(app->db, rc, "reading the outbox", errstr,
                                  errstr_size);
        /* Each DELETE is its own short transaction: a relay waiting for the
         * write lock gets it between two of them. Rows committed after
         * last are younger than the cutoff anyway. */
        stmt = app->ob[OB_PRUNE];
        for (; lo <= last; lo += PRUNE_SEQS) {
                sqlite3_bind_int64(stmt, 1, lo);
                sqlite3_bind_int64(stmt, 2, lo + PRUNE_SEQS);
                sqlite3_bind_text(stmt, 3, cutoff, -1, SQLITE_STATIC);
                if ((err = sqldb_step(app->db, stmt, errstr, errstr_size)))
                        return err;
                *deleted += sqlite3_changes(app->db);
        }
        return 0;
}
