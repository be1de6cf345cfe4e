/* The outbox's relay side (outbox.c): claim under a lease in commit order,
 * one order's rows together and behind their earlier rows, mark with
 * backoff and DEAD, retry and prune. Each test gets a fresh temp file
 * (tu_appdb.h); a second connection checks with SQL. */
#include "testutil.h"
#include "tu_appdb.h"

#include <time.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/outbox.h"
#include "orderflow/timestamp.h"

/* ---- helpers ---- */

/* Claim up to max rows at time now for owner, with in_flight as the
 * batch in flight (NULL: none); returns how many, and the rows'
 * "aggregate_id:type" joined by spaces in got. */
static size_t claim_behind(fixture *f, of_outbox_batch *b,
                           const of_outbox_batch *in_flight, int64_t now,
                           const char *owner, size_t max, char *got,
                           size_t got_size)
{
        size_t i, len = 0;

        if (of_outbox_claim(f->app, b, max, in_flight, now, 1000, owner,
                            f->errstr, sizeof(f->errstr)))
                fail_msg("claim: %s", f->errstr);
        got[0] = '\0';
        for (i = 0; i < b->n; i++)
                len += (size_t)snprintf(got + len, got_size - len, "%s%s:%s",
                                        i ? " " : "", b->rows[i].aggregate_id,
                                        b->rows[i].type);
        return b->n;
}

static size_t claim(fixture *f, of_outbox_batch *b, int64_t now,
                    const char *owner, size_t max, char *got, size_t got_size)
{
        return claim_behind(f, b, NULL, now, owner, max, got, got_size);
}

/* Claim and free at once: only what was claimed matters. */
static const char *claim_names(fixture *f, int64_t now, const char *owner)
{
        static char got[1024];
        of_outbox_batch b = {0};

        claim(f, &b, now, owner, 100, got, sizeof(got));
        of_outbox_batch_free(&b);
        return got;
}

/* Record one result for the row with seq (error NULL: delivered) and
 * release lease (0: none). */
static size_t mark_lease(fixture *f, int64_t lease, int64_t seq, int attempts,
                         const char *error, const of_backoff *bo, int64_t now)
{
        of_outbox_result res = {
                .seq = seq, .attempts = attempts, .error = error};
        size_t dead = 99;

        if (of_outbox_mark(f->app, lease, &res, 1, bo, now, &dead, f->errstr,
                           sizeof(f->errstr)))
                fail_msg("mark: %s", f->errstr);
        return dead;
}

static size_t mark(fixture *f, int64_t seq, int attempts, const char *error,
                   const of_backoff *bo, int64_t now)
{
        return mark_lease(f, 0, seq, attempts, error, bo, now);
}

/* Mark the claimed batch b at now: row i delivered when outcome[i] is
 * '.', failed when 'x'. Returns which rows were held back, as the same
 * kind of string: 'h' held, '.' not. */
static const char *mark_batch(fixture *f, const of_outbox_batch *b,
                              const char *outcome, int64_t now)
{
        static char held[64];
        of_backoff bo = {.base_ms = 100, .cap_ms = 100, .max_attempts = 5};
        of_outbox_result res[64];
        size_t i;

        assert_int_equal(strlen(outcome), b->n);
        for (i = 0; i < b->n; i++)
                res[i] = (of_outbox_result){.seq = b->rows[i].seq,
                                            .attempts = b->rows[i].attempts,
                                            .behind = b->rows[i].behind,
                                            .error = outcome[i] == 'x' ? "boom"
                                                                       : NULL,
                                            .held = 7};
        if (of_outbox_mark(f->app, b->lease, res, b->n, &bo, now, NULL,
                           f->errstr, sizeof(f->errstr)))
                fail_msg("mark: %s", f->errstr);
        for (i = 0; i < b->n; i++)
                held[i] = res[i].held ? 'h' : '.';
        held[i] = '\0';
        return held;
}

/* Every outbox row as "aggregate_id:type:status:attempts" in seq order. */
static const char *rows_state(fixture *f)
{
        return q(f, "SELECT group_concat(s, ' ') FROM (SELECT aggregate_id"
                    "||':'||type||':'||status||':'||attempts AS s FROM "
                    "outbox_messages ORDER BY seq)");
}

/* Make the row with seq DEAD in one failed attempt. */
static void kill_row(fixture *f, int64_t seq)
{
        of_backoff bo = {.base_ms = 10, .cap_ms = 10, .max_attempts = 1};

        assert_int_equal(mark(f, seq, 0, "broker down", &bo, now_ms()), 1);
}

/* ---- the relay's side: claim ---- */

static void test_outbox_claim_returns_due_rows_in_commit_order(void **state)
{
        fixture *f = *state;
        of_outbox_batch b = {0};
        of_outbox_row *rows;
        of_event ev[3];
        char got[512], sql[256];
        int64_t t = now_ms();
        size_t n, i;

        place(f, &ev[0], "o-b", 1);
        place(f, &ev[1], "o-a", 2);
        place(f, &ev[2], "o-c", 3);
        /* Commit order, not time order: clocks go back. */
        exec(f, "UPDATE outbox_messages SET occurred_at = "
                "'2000-01-01T00:00:00.000Z' WHERE aggregate_id = 'o-c'");
        n = claim(f, &b, t, "r1", 10, got, sizeof(got));
        rows = b.rows;
        assert_int_equal(n, 3);
        assert_string_equal(got,
                            "o-b:OrderPlaced o-a:OrderPlaced o-c:OrderPlaced");
        for (i = 0; i < n; i++) {
                assert_string_equal(rows[i].id, ev[i].id);
                assert_true(i == 0 || rows[i].seq > rows[i - 1].seq);
                assert_int_equal(rows[i].attempts, 0);
                assert_int_equal(rows[i].payload_len, strlen(rows[i].payload));
                assert_non_null(strstr(rows[i].payload, ev[i].id));
        }
        /* One lease for the range, to r1 for 1 s; no row written. */
        snprintf(sql, sizeof(sql), "%lld r1 %lld %lld %lld",
                 (long long)b.lease, (long long)rows[0].seq,
                 (long long)rows[2].seq, (long long)(t + 1000));
        assert_string_equal(q(f, "SELECT group_concat(id||' '||owner||' '||"
                                 "first_seq||' '||last_seq||' '||"
                                 "lease_until) FROM outbox_leases"),
                            sql);
        of_outbox_batch_free(&b);
}

static void test_outbox_claim_takes_at_most_max_rows(void **state)
{
        fixture *f = *state;
        of_outbox_batch b = {0};
        char got[512];
        size_t n;

        place(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 1);
        place(f, NULL, "o-3", 1);
        n = claim(f, &b, now_ms(), "r1", 2, got, sizeof(got));
        assert_int_equal(n, 2);
        assert_string_equal(got, "o-1:OrderPlaced o-2:OrderPlaced");
        of_outbox_batch_free(&b);
        assert_string_equal(claim_names(f, now_ms(), "r2"), "o-3:OrderPlaced");
}

static void test_outbox_claim_skips_rows_not_due_yet(void **state)
{
        fixture *f = *state;
        int64_t t = now_ms();
        char sql[256];

        place(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 1);
        snprintf(sql, sizeof(sql),
                 "UPDATE outbox_messages SET next_attempt_at = %lld "
                 "WHERE aggregate_id = 'o-1'",
                 (long long)(t + 5000));
        exec(f, sql);
        assert_string_equal(claim_names(f, t, "r1"), "o-2:OrderPlaced");
        exec(f, "UPDATE outbox_messages SET status = 'SENT' WHERE "
                "aggregate_id = 'o-2'");
        assert_string_equal(claim_names(f, t + 4999, "r1"), "");
        assert_string_equal(claim_names(f, t + 5000, "r1"), "o-1:OrderPlaced");
}

/* Regression (2026-11-27): a row waited a round for an earlier row of
 * its order in the same claim, so an order's OrderPaid went out after
 * later orders' OrderPlaced in its partition. */
static void test_outbox_claim_takes_an_orders_rows_in_seq_order(void **state)
{
        fixture *f = *state;
        of_outbox_batch b = {0};
        char got[512];
        size_t i;
        static const int behind[] = {0, 0, 1, 0, 1};

        place(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 2);
        pay(f, NULL, "o-1", 1);
        place(f, NULL, "o-3", 3);
        pay(f, NULL, "o-2", 2);
        assert_int_equal(claim(f, &b, now_ms(), "r1", 10, got, sizeof(got)),
                         5);
        assert_string_equal(got, "o-1:OrderPlaced o-2:OrderPlaced "
                                 "o-1:OrderPaid o-3:OrderPlaced "
                                 "o-2:OrderPaid");
        for (i = 0; i < 5; i++)
                assert_int_equal(b.rows[i].behind, behind[i]);
        of_outbox_batch_free(&b);
}

/* Regression (2026-11-27): the relay's batch in flight held back the later
 * rows of its orders from the next claim. */
static void
test_outbox_claim_takes_rows_behind_the_batch_in_flight(void **state)
{
        fixture *f = *state;
        of_outbox_batch b1 = {0}, b2 = {0}, b3 = {0};
        char got[512];
        int64_t t = now_ms();

        place(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 2);
        pay(f, NULL, "o-1", 1);
        pay(f, NULL, "o-2", 2);
        claim(f, &b1, t, "r1", 2, got, sizeof(got));
        assert_string_equal(got, "o-1:OrderPlaced o-2:OrderPlaced");
        /* Not in flight for another relay: behind r1's lease. */
        assert_string_equal(claim_names(f, t, "r2"), "");
        claim_behind(f, &b2, &b1, t, "r1", 10, got, sizeof(got));
        assert_string_equal(got, "o-1:OrderPaid o-2:OrderPaid");
        assert_int_equal(b2.rows[0].behind, 1);
        assert_int_equal(b2.rows[1].behind, 1);
        /* Both batches leased: nothing left to claim. */
        claim_behind(f, &b3, &b2, t, "r1", 10, got, sizeof(got));
        assert_string_equal(got, "");
        of_outbox_batch_free(&b1);
        of_outbox_batch_free(&b2);
        of_outbox_batch_free(&b3);
}

static void test_outbox_claim_holds_row_behind_a_backing_off_row(void **state)
{
        fixture *f = *state;
        of_outbox_batch b = {0};
        char got[512], sql[256];
        int64_t t = now_ms();

        place(f, NULL, "o-1", 1);
        pay(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 2);
        place(f, NULL, "o-3", 3);
        snprintf(sql, sizeof(sql),
                 "UPDATE outbox_messages SET attempts = 1, "
                 "next_attempt_at = %lld WHERE aggregate_id = 'o-1' AND "
                 "type = 'OrderPlaced'",
                 (long long)(t + 5000));
        exec(f, sql);
        /* The held row does not take a place of the two. */
        claim(f, &b, t, "r1", 2, got, sizeof(got));
        assert_string_equal(got, "o-2:OrderPlaced o-3:OrderPlaced");
        assert_string_equal(mark_batch(f, &b, "..", t), "..");
        of_outbox_batch_free(&b);
        assert_string_equal(claim_names(f, t + 5000, "r2"),
                            "o-1:OrderPlaced o-1:OrderPaid");
}

static void
test_outbox_claim_holds_row_behind_another_relays_lease(void **state)
{
        fixture *f = *state;
        of_outbox_batch b = {0};
        char got[512];
        int64_t t = now_ms();

        place(f, NULL, "o-1", 1);
        pay(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 2);
        claim(f, &b, t, "r1", 1, got, sizeof(got));
        assert_string_equal(got, "o-1:OrderPlaced");
        assert_string_equal(claim_names(f, t, "r2"), "o-2:OrderPlaced");
        /* r1's row SENT and its lease gone: the pay is free. */
        assert_string_equal(mark_batch(f, &b, ".", t), ".");
        assert_string_equal(claim_names(f, t, "r2"), "o-1:OrderPaid");
        of_outbox_batch_free(&b);
}

/* The rule counts: one earlier row in flight is not enough when another
 * earlier row of the order is neither SENT nor on its way. */
static void
test_outbox_claim_holds_row_behind_any_unsent_earlier_row(void **state)
{
        fixture *f = *state;
        of_outbox_batch b1 = {0}, b2 = {0};
        char got[512], sql[512];
        int64_t t = now_ms();

        place(f, NULL, "o-1", 1);
        pay(f, NULL, "o-1", 1);
        /* A third event of the order (of a type the projector ignores). */
        exec(f, "INSERT INTO outbox_messages (id, type, aggregate_id, "
                "occurred_at) VALUES ('e-3', 'OrderShipped', 'o-1', "
                "'2026-01-01T00:00:00.000Z'); INSERT INTO outbox_payloads "
                "VALUES (last_insert_rowid(), '{}')");
        place(f, NULL, "o-2", 2);
        snprintf(sql, sizeof(sql),
                 "UPDATE outbox_messages SET attempts = 1, "
                 "next_attempt_at = %lld WHERE type = 'OrderPaid'",
                 (long long)(t + 5000));
        exec(f, sql);
        claim(f, &b1, t, "r1", 1, got, sizeof(got));
        assert_string_equal(got, "o-1:OrderPlaced");
        /* OrderShipped: its OrderPlaced in flight, its OrderPaid backing
         * off. */
        claim_behind(f, &b2, &b1, t, "r1", 10, got, sizeof(got));
        assert_string_equal(got, "o-2:OrderPlaced");
        of_outbox_batch_free(&b1);
        of_outbox_batch_free(&b2);
}

static void
test_outbox_leased_row_not_claimed_again_until_lease_ends(void **state)
{
        fixture *f = *state;
        int64_t t = now_ms();

        place(f, NULL, "o-1", 1);
        assert_string_equal(claim_names(f, t, "r1"), "o-1:OrderPlaced");
        assert_string_equal(claim_names(f, t, "r2"), "");
        assert_string_equal(claim_names(f, t + 999, "r2"), "");
        assert_string_equal(claim_names(f, t + 999, "r1"), "");
        /* claim_names() leases for 1000 ms. */
        assert_string_equal(claim_names(f, t + 1000, "r2"), "o-1:OrderPlaced");
        assert_string_equal(q(f, "SELECT owner FROM outbox_leases ORDER BY "
                                 "id DESC LIMIT 1"),
                            "r2");
}

static void
test_outbox_lease_covers_rows_skipped_inside_its_range(void **state)
{
        fixture *f = *state;
        of_outbox_batch b = {0};
        char got[512], sql[256];
        int64_t t = now_ms();

        place(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 1);
        place(f, NULL, "o-3", 1);
        snprintf(sql, sizeof(sql),
                 "UPDATE outbox_messages SET next_attempt_at = %lld "
                 "WHERE aggregate_id = 'o-2'",
                 (long long)(t + 10));
        exec(f, sql);
        claim(f, &b, t, "r1", 10, got, sizeof(got));
        assert_string_equal(got, "o-1:OrderPlaced o-3:OrderPlaced");
        /* o-2 is due now but inside r1's range: it waits for r1's mark. */
        assert_string_equal(claim_names(f, t + 10, "r2"), "");
        assert_int_equal(mark(f, b.rows[0].seq, 0, NULL, NULL, t + 20), 0);
        assert_string_equal(claim_names(f, t + 30, "r2"), "");
        assert_int_equal(of_outbox_mark(f->app, b.lease, NULL, 0, NULL, t + 40,
                                        NULL, f->errstr, sizeof(f->errstr)),
                         0);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_leases"), "0");
        /* Released unmarked, as by a relay that gave up: o-3 again too. */
        assert_string_equal(claim_names(f, t + 50, "r2"),
                            "o-2:OrderPlaced o-3:OrderPlaced");
        of_outbox_batch_free(&b);
}

/* ---- the relay's side: mark ---- */

static void test_outbox_mark_delivered_sets_sent_with_sent_at(void **state)
{
        fixture *f = *state;
        of_outbox_batch b = {0};
        of_backoff bo = OF_BACKOFF_INIT;
        of_outbox_result res;
        char got[512], ts[OF_TS_LEN + 1];
        int64_t t = now_ms();
        size_t n, dead = 99;

        place(f, NULL, "o-1", 1);
        n = claim(f, &b, t, "r1", 10, got, sizeof(got));
        assert_int_equal(n, 1);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_leases"), "1");
        res = (of_outbox_result){.seq = b.rows[0].seq, .attempts = 0};
        assert_int_equal(of_outbox_mark(f->app, b.lease, &res, 1, &bo, t + 5,
                                        &dead, f->errstr, sizeof(f->errstr)),
                         0);
        assert_int_equal(dead, 0);
        of_outbox_batch_free(&b);
        fmt_ms(ts, t + 5);
        assert_string_equal(q(f, "SELECT status||' '||attempts FROM "
                                 "outbox_messages"),
                            "SENT 0");
        /* The lease went with the mark. */
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_leases"), "0");
        assert_string_equal(q(f, "SELECT sent_at FROM outbox_messages"), ts);
        assert_string_equal(claim_names(f, t + 10000, "r1"), "");
}

static void test_outbox_mark_failed_backs_off_within_bounds(void **state)
{
        fixture *f = *state;
        of_backoff bo = {.base_ms = 100, .cap_ms = 1000, .max_attempts = 10};
        of_outbox_batch b = {0};
        char got[512];
        int64_t t = now_ms(), next, wait, d;
        int attempt;
        size_t n;

        place(f, NULL, "o-1", 1);
        for (attempt = 0; attempt < 7; attempt++) {
                n = claim(f, &b, t, "r1", 10, got, sizeof(got));
                assert_int_equal(n, 1);
                assert_int_equal(b.rows[0].attempts, attempt);
                assert_int_equal(mark_lease(f, b.lease, b.rows[0].seq,
                                            b.rows[0].attempts, "timed out",
                                            &bo, t),
                                 0);
                assert_int_equal(qi(f, "SELECT attempts FROM "
                                       "outbox_messages"),
                                 attempt + 1);
                assert_string_equal(q(f, "SELECT status||','||last_error||"
                                         "','||(SELECT count(*) FROM "
                                         "outbox_leases) FROM "
                                         "outbox_messages"),
                                    "PENDING,timed out,0");
                /* base * 2^attempts, capped, minus up to 20%. */
                d = (int64_t)bo.base_ms << attempt;
                if (d > bo.cap_ms)
                        d = bo.cap_ms;
                next = qi(f, "SELECT next_attempt_at FROM outbox_messages");
                wait = next - t;
                if (wait > d || wait < d - d / 5)
                        fail_msg("attempt %d: waits %lld ms, expected %lld "
                                 "minus up to 20%%",
                                 attempt + 1, (long long)wait, (long long)d);
                /* Not due before next_attempt_at, due at it. */
                assert_string_equal(claim_names(f, next - 1, "r1"), "");
                t = next;
        }
        of_outbox_batch_free(&b);
}

static void test_outbox_mark_failed_at_max_attempts_goes_dead(void **state)
{
        fixture *f = *state;
        of_backoff bo = {.base_ms = 1, .cap_ms = 1, .max_attempts = 3};
        int64_t t = now_ms(), seq;

        place(f, NULL, "o-1", 1);
        seq = qi(f, "SELECT seq FROM outbox_messages");
        assert_int_equal(mark(f, seq, 0, "e1", &bo, t), 0);
        assert_int_equal(mark(f, seq, 1, "e2", &bo, t + 10), 0);
        assert_string_equal(q(f, "SELECT status FROM outbox_messages"),
                            "PENDING");
        assert_int_equal(mark(f, seq, 2, "e3", &bo, t + 20), 1);
        assert_string_equal(q(f, "SELECT status||','||attempts||','||"
                                 "last_error FROM outbox_messages"),
                            "DEAD,3,e3");
        assert_string_equal(claim_names(f, t + 100000, "r1"), "");
}

static void test_outbox_mark_records_a_batch_in_one_call(void **state)
{
        fixture *f = *state;
        of_backoff bo = {.base_ms = 10, .cap_ms = 10, .max_attempts = 2};
        of_outbox_result res[3];
        int64_t t = now_ms();
        size_t dead = 99;

        place(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 1);
        place(f, NULL, "o-3", 1);
        exec(f, "UPDATE outbox_messages SET attempts = 1 WHERE "
                "aggregate_id = 'o-3'");
        res[0] = (of_outbox_result){.seq = 1, .attempts = 0, .error = NULL};
        res[1] = (of_outbox_result){.seq = 2, .attempts = 0, .error = "x"};
        res[2] = (of_outbox_result){.seq = 3, .attempts = 1, .error = "y"};
        assert_int_equal(of_outbox_mark(f->app, 0, res, 3, &bo, t, &dead,
                                        f->errstr, sizeof(f->errstr)),
                         0);
        assert_int_equal(dead, 1);
        assert_string_equal(q(f, "SELECT group_concat(s, ' ') FROM (SELECT "
                                 "aggregate_id||':'||status AS s FROM "
                                 "outbox_messages ORDER BY seq)"),
                            "o-1:SENT o-2:PENDING o-3:DEAD");
}

static void
test_outbox_mark_holds_rows_behind_failed_row_of_order(void **state)
{
        fixture *f = *state;
        of_outbox_batch b = {0};
        char got[512];
        int64_t t = now_ms();

        place(f, NULL, "o-1", 1);
        pay(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 2);
        pay(f, NULL, "o-2", 2);
        place(f, NULL, "o-3", 3);
        claim(f, &b, t, "r1", 10, got, sizeof(got));
        assert_int_equal(b.n, 5);
        /* o-1's pay was delivered behind its failed place: left PENDING,
         * attempts unchanged. o-2's pay failed on its own. */
        assert_string_equal(mark_batch(f, &b, "x..x.", t), ".h...");
        assert_string_equal(rows_state(f), "o-1:OrderPlaced:PENDING:1 "
                                           "o-1:OrderPaid:PENDING:0 "
                                           "o-2:OrderPlaced:SENT:0 "
                                           "o-2:OrderPaid:PENDING:1 "
                                           "o-3:OrderPlaced:SENT:0");
        assert_string_equal(q(f, "SELECT ifnull(last_error, 'none') FROM "
                                 "outbox_messages WHERE aggregate_id = "
                                 "'o-1' AND type = 'OrderPaid'"),
                            "none");
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_leases"), "0");
        /* It waits for its place, then goes with it. */
        assert_string_equal(claim_names(f, t + 10, "r1"), "");
        assert_string_equal(claim_names(f, t + 1000, "r1"),
                            "o-1:OrderPlaced o-1:OrderPaid o-2:OrderPaid");
        of_outbox_batch_free(&b);
}

static void
test_outbox_mark_holds_rows_behind_failed_row_of_last_batch(void **state)
{
        fixture *f = *state;
        of_outbox_batch b1 = {0}, b2 = {0};
        char got[512], order[8];
        int64_t t = now_ms();
        int i;

        for (i = 1; i <= 4; i++) {
                snprintf(order, sizeof(order), "o-%d", i);
                place(f, NULL, order, i);
        }
        for (i = 1; i <= 4; i++) {
                snprintf(order, sizeof(order), "o-%d", i);
                pay(f, NULL, order, i);
        }
        claim(f, &b1, t, "r1", 4, got, sizeof(got));
        claim_behind(f, &b2, &b1, t, "r1", 4, got, sizeof(got));
        assert_string_equal(got, "o-1:OrderPaid o-2:OrderPaid "
                                 "o-3:OrderPaid o-4:OrderPaid");
        assert_string_equal(mark_batch(f, &b1, "x..x", t), "....");
        /* o-1 and o-4: behind their failed place, delivered or not. */
        assert_string_equal(mark_batch(f, &b2, ".x.x", t), "h..h");
        assert_string_equal(rows_state(f), "o-1:OrderPlaced:PENDING:1 "
                                           "o-2:OrderPlaced:SENT:0 "
                                           "o-3:OrderPlaced:SENT:0 "
                                           "o-4:OrderPlaced:PENDING:1 "
                                           "o-1:OrderPaid:PENDING:0 "
                                           "o-2:OrderPaid:PENDING:1 "
                                           "o-3:OrderPaid:SENT:0 "
                                           "o-4:OrderPaid:PENDING:0");
        of_outbox_batch_free(&b1);
        of_outbox_batch_free(&b2);
}

static void test_outbox_dead_row_blocks_later_rows_of_its_order(void **state)
{
        fixture *f = *state;
        int64_t t = now_ms();

        place(f, NULL, "o-1", 1);
        pay(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 2);
        kill_row(f, qi(f, "SELECT min(seq) FROM outbox_messages"));
        assert_string_equal(claim_names(f, t + 60000, "r1"),
                            "o-2:OrderPlaced");
        exec(f, "UPDATE outbox_messages SET status = 'SENT' WHERE "
                "aggregate_id = 'o-2'");
        assert_string_equal(claim_names(f, t + 120000, "r1"), "");
        assert_string_equal(q(f, "SELECT status FROM outbox_messages "
                                 "WHERE type = 'OrderPaid'"),
                            "PENDING");
}

/* ---- operations ---- */

static void test_outbox_retry_id_brings_one_dead_row_back(void **state)
{
        fixture *f = *state;
        of_event a, b;
        int64_t changed = -1, t = now_ms();

        place(f, &a, "o-1", 1);
        pay(f, NULL, "o-1", 1);
        place(f, &b, "o-2", 1);
        kill_row(f, 1);
        kill_row(f, 3);
        assert_int_equal(of_outbox_retry(f->app, a.id, &changed, f->errstr,
                                         sizeof(f->errstr)),
                         0);
        assert_int_equal(changed, 1);
        assert_string_equal(q(f, "SELECT status||','||attempts||','||"
                                 "next_attempt_at FROM outbox_messages "
                                 "WHERE seq = 1"),
                            "PENDING,0,0");
        assert_string_equal(q(f, "SELECT status FROM outbox_messages WHERE "
                                 "seq = 3"),
                            "DEAD");
        /* The place is due at once, and the pay goes right after it. */
        assert_string_equal(claim_names(f, t, "r1"),
                            "o-1:OrderPlaced o-1:OrderPaid");
        /* A row that is not DEAD, or no row at all: not found. */
        assert_int_equal(of_outbox_retry(f->app, a.id, &changed, f->errstr,
                                         sizeof(f->errstr)),
                         OF_ENOTFOUND);
        assert_int_equal(changed, 0);
        assert_int_equal(of_outbox_retry(f->app, "no-such-id", &changed,
                                         f->errstr, sizeof(f->errstr)),
                         OF_ENOTFOUND);
}

static void test_outbox_retry_all_dead_brings_every_dead_row_back(void **state)
{
        fixture *f = *state;
        int64_t changed = -1;

        place(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 1);
        place(f, NULL, "o-3", 1);
        kill_row(f, 1);
        kill_row(f, 3);
        assert_int_equal(of_outbox_retry(f->app, NULL, &changed, f->errstr,
                                         sizeof(f->errstr)),
                         0);
        assert_int_equal(changed, 2);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages "
                                 "WHERE status = 'PENDING' AND "
                                 "attempts = 0"),
                            "3");
        assert_string_equal(claim_names(f, now_ms(), "r1"),
                            "o-1:OrderPlaced o-2:OrderPlaced "
                            "o-3:OrderPlaced");
        /* Nothing DEAD: zero rows, not an error. */
        assert_int_equal(of_outbox_retry(f->app, NULL, &changed, f->errstr,
                                         sizeof(f->errstr)),
                         0);
        assert_int_equal(changed, 0);
}

static void test_outbox_prune_deletes_only_old_sent_rows(void **state)
{
        fixture *f = *state;
        char sql[256], recent[OF_TS_LEN + 1];
        int64_t deleted = -1;

        place(f, NULL, "o-old", 1);
        place(f, NULL, "o-recent", 1);
        place(f, NULL, "o-pending", 1);
        place(f, NULL, "o-dead", 1);
        fmt_ms(recent, now_ms() - 3600 * 1000);
        exec(f, "UPDATE outbox_messages SET status = 'SENT', sent_at = "
                "'2000-01-01T00:00:00.000Z' WHERE aggregate_id = 'o-old'");
        snprintf(sql, sizeof(sql),
                 "UPDATE outbox_messages SET status = 'SENT', sent_at = "
                 "'%s' WHERE aggregate_id = 'o-recent'",
                 recent);
        exec(f, sql);
        /* Old sent_at on rows that are not SENT: kept all the same. */
        exec(f, "UPDATE outbox_messages SET status = 'DEAD', sent_at = "
                "'2000-01-01T00:00:00.000Z' WHERE aggregate_id = 'o-dead'");
        exec(f, "UPDATE outbox_messages SET sent_at = "
                "'2000-01-01T00:00:00.000Z' WHERE "
                "aggregate_id = 'o-pending'");
        assert_int_equal(of_outbox_prune(f->app, 2LL * 3600 * 1000, &deleted,
                                         f->errstr, sizeof(f->errstr)),
                         0);
        assert_int_equal(deleted, 1);
        assert_string_equal(q(f, "SELECT group_concat(aggregate_id, ' ') "
                                 "FROM (SELECT aggregate_id FROM "
                                 "outbox_messages ORDER BY seq)"),
                            "o-recent o-pending o-dead");
        assert_int_equal(of_outbox_prune(f->app, 30LL * 60 * 1000, &deleted,
                                         f->errstr, sizeof(f->errstr)),
                         0);
        assert_int_equal(deleted, 1);
        assert_string_equal(q(f, "SELECT group_concat(aggregate_id, ' ') "
                                 "FROM (SELECT aggregate_id FROM "
                                 "outbox_messages ORDER BY seq)"),
                            "o-pending o-dead");
        assert_string_equal(q(f, "SELECT count(*) FROM orders"), "4");
}

static void
test_outbox_prune_of_2500_rows_takes_several_transactions(void **state)
{
        fixture *f = *state;
        int64_t deleted = -1;

        exec(f, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                "FROM n WHERE i < 2500) INSERT INTO outbox_messages (id, "
                "type, aggregate_id, occurred_at, status, sent_at)"
                " SELECT 'e-'||i, 'OrderPlaced', 'o-'||i, "
                "'2000-01-01T00:00:00.000Z', 'SENT', "
                "'2000-01-01T00:00:01.000Z' FROM n;"
                "INSERT INTO outbox_payloads SELECT seq, '{}' FROM "
                "outbox_messages");
        place(f, NULL, "o-keep", 1);
        assert_int_equal(of_outbox_prune(f->app, 1000, &deleted, f->errstr,
                                         sizeof(f->errstr)),
                         0);
        assert_int_equal(deleted, 2500);
        assert_string_equal(q(f, "SELECT group_concat(aggregate_id) FROM "
                                 "outbox_messages"),
                            "o-keep");
        /* The envelopes went with their rows. */
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_payloads p "
                                 "JOIN outbox_messages m ON m.seq = p.seq"),
                            "1");
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_payloads"), "1");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_outbox_claim_returns_due_rows_in_commit_order),
                T(test_outbox_claim_takes_at_most_max_rows),
                T(test_outbox_claim_skips_rows_not_due_yet),
                T(test_outbox_claim_takes_an_orders_rows_in_seq_order),
                T(test_outbox_claim_takes_rows_behind_the_batch_in_flight),
                T(test_outbox_claim_holds_row_behind_a_backing_off_row),
                T(test_outbox_claim_holds_row_behind_another_relays_lease),
                T(test_outbox_claim_holds_row_behind_any_unsent_earlier_row),
                T(test_outbox_leased_row_not_claimed_again_until_lease_ends),
                T(test_outbox_lease_covers_rows_skipped_inside_its_range),
                T(test_outbox_mark_delivered_sets_sent_with_sent_at),
                T(test_outbox_mark_failed_backs_off_within_bounds),
                T(test_outbox_mark_failed_at_max_attempts_goes_dead),
                T(test_outbox_mark_records_a_batch_in_one_call),
                T(test_outbox_mark_holds_rows_behind_failed_row_of_order),
                T(test_outbox_mark_holds_rows_behind_failed_row_of_last_batch),
                T(test_outbox_dead_row_blocks_later_rows_of_its_order),
                T(test_outbox_retry_id_brings_one_dead_row_back),
                T(test_outbox_retry_all_dead_brings_every_dead_row_back),
                T(test_outbox_prune_deletes_only_old_sent_rows),
                T(test_outbox_prune_of_2500_rows_takes_several_transactions),
        };

        return cmocka_run_group_tests_name("outbox", tests, NULL, NULL);
}
