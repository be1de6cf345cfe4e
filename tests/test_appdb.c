/* The application database (appdb.c): place and pay with their outbox row
 * in one transaction, UUIDv7 event ids, the outbox's status, and the
 * relay's side (claim, lease, mark, backoff, DEAD) with retry and prune.
 * Each test gets a fresh temp file; a second connection checks with SQL. */
#include "testutil.h"

#include <time.h>

#include <sqlite3.h>

#include "orderflow/appdb.h"
#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/store.h"
#include "orderflow/timestamp.h"

typedef struct fixture {
        char *path;
        of_appdb *app;
        sqlite3 *db; /* a second connection, for checking */
        char errstr[512];
} fixture;

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->path = tu_tmp_path("app.db");
        assert_int_equal(of_appdb_open(&f->app, f->path, f->errstr,
                                       sizeof(f->errstr)), 0);
        assert_int_equal(sqlite3_open(f->path, &f->db), SQLITE_OK);
        sqlite3_busy_timeout(f->db, 5000);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fixture *f = *state;

        sqlite3_close(f->db);
        of_appdb_close(f->app);
        tu_tmp_free(f->path);
        free(f);
        *state = NULL;
        return 0;
}

/* ---- helpers ---- */

/* The first column of the first row of sql, as text ("NULL" for NULL,
 * "" for no row), in a static buffer. */
static const char *q(fixture *f, const char *sql)
{
        static char out[4096];
        sqlite3_stmt *stmt;
        int rc;

        assert_int_equal(sqlite3_prepare_v2(f->db, sql, -1, &stmt, NULL),
                         SQLITE_OK);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) == SQLITE_NULL)
                snprintf(out, sizeof(out), "NULL");
        else if (rc == SQLITE_ROW)
                snprintf(out, sizeof(out), "%s",
                         (const char *)sqlite3_column_text(stmt, 0));
        else
                out[0] = '\0';
        sqlite3_finalize(stmt);
        return out;
}

static int64_t qi(fixture *f, const char *sql)
{
        return strtoll(q(f, sql), NULL, 10);
}

static void exec(fixture *f, const char *sql)
{
        char *msg = NULL;

        if (sqlite3_exec(f->db, sql, NULL, NULL, &msg) != SQLITE_OK)
                fail_msg("%s: %s", sql, msg);
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ms since the epoch as "YYYY-MM-DDTHH:MM:SS.sssZ". */
static void fmt_ms(char out[OF_TS_LEN + 1], int64_t ms)
{
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;
        char day[32], all[48];

        gmtime_r(&sec, &tm);
        strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(all, sizeof(all), "%.19s.%03dZ", day, (int)(ms % 1000));
        memcpy(out, all, OF_TS_LEN + 1);
}

static void place(fixture *f, of_event *ev, const char *order, int64_t total)
{
        of_event tmp;

        if (of_appdb_place(f->app, ev ? ev : &tmp, order, total, f->errstr,
                           sizeof(f->errstr)))
                fail_msg("place %s: %s", order, f->errstr);
}

static void pay(fixture *f, of_event *ev, const char *order, int64_t amount)
{
        of_event tmp;

        if (of_appdb_pay(f->app, ev ? ev : &tmp, order, amount, f->errstr,
                         sizeof(f->errstr)))
                fail_msg("pay %s: %s", order, f->errstr);
}

/* Claim up to max rows at time now for owner, with in_flight as the
 * batch in flight (NULL: none); returns how many, and the rows'
 * "aggregate_id:type" joined by spaces in got. */
static size_t claim_behind(fixture *f, of_outbox_batch *b,
                           const of_outbox_batch *in_flight, int64_t now,
                           const char *owner, size_t max, char *got,
                           size_t got_size)
{
        size_t i, len = 0;

        if (of_appdb_claim(f->app, b, max, in_flight, now, 1000, owner,
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
        of_appdb_batch_free(&b);
        return got;
}

/* Record one result for the row with seq (error NULL: delivered) and
 * release lease (0: none). */
static size_t mark_lease(fixture *f, int64_t lease, int64_t seq,
                         int attempts, const char *error,
                         const of_backoff *bo, int64_t now)
{
        of_outbox_result res = {.seq = seq, .attempts = attempts,
                                .error = error};
        size_t dead = 99;

        if (of_appdb_mark(f->app, lease, &res, 1, bo, now, &dead, f->errstr,
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
                res[i] = (of_outbox_result){
                        .seq = b->rows[i].seq,
                        .attempts = b->rows[i].attempts,
                        .behind = b->rows[i].behind,
                        .error = outcome[i] == 'x' ? "boom" : NULL,
                        .held = 7};
        if (of_appdb_mark(f->app, b->lease, res, b->n, &bo, now, NULL,
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

static int is_hex(int c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* A UUIDv7 in its canonical text: 8-4-4-4-12 lowercase hex, version 7,
 * variant 10xx. */
static void assert_uuid7(const char *id)
{
        size_t i;

        assert_int_equal(strlen(id), 36);
        for (i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (id[i] != '-')
                                fail_msg("%s: no '-' at %zu", id, i);
                } else if (!is_hex(id[i])) {
                        fail_msg("%s: not lowercase hex at %zu", id, i);
                }
        }
        if (id[14] != '7')
                fail_msg("%s: version is not 7", id);
        if (!strchr("89ab", id[19]))
                fail_msg("%s: variant is not 10xx", id);
}

/* The 48-bit ms timestamp of a UUIDv7. */
static int64_t uuid7_ms(const char *id)
{
        char hex[13];

        memcpy(hex, id, 8);
        memcpy(hex + 8, id + 9, 4);
        hex[12] = '\0';
        return strtoll(hex, NULL, 16);
}

/* ---- place and pay ---- */

static void test_appdb_place_writes_order_and_one_outbox_row(void **state)
{
        fixture *f = *state;
        of_event ev;
        char sql[256];

        place(f, &ev, "o-1001", 1250);
        assert_int_equal(ev.type, OF_EVENT_PLACED);
        assert_string_equal(ev.aggregate_id, "o-1001");
        assert_int_equal(ev.amount, 1250);
        assert_string_equal(q(f, "SELECT order_id||','||status||','||total||"
                                 "','||ifnull(paid_amount,'NULL')||','||"
                                 "ifnull(paid_at,'NULL') FROM orders"),
                            "o-1001,ORDERED,1250,NULL,NULL");
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "1");
        assert_string_equal(q(f, "SELECT type||','||aggregate_id||','||"
                                 "status||','||attempts||','||"
                                 "ifnull(sent_at,'NULL') FROM "
                                 "outbox_messages"),
                            "OrderPlaced,o-1001,PENDING,0,NULL");
        assert_string_equal(q(f, "SELECT id FROM outbox_messages"), ev.id);
        /* Both rows carry the one commit time. */
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM orders o JOIN outbox_messages m ON "
                 "m.aggregate_id = o.order_id AND m.occurred_at = "
                 "o.placed_at WHERE o.placed_at = '%s'",
                 ev.occurred_at);
        assert_string_equal(q(f, sql), "1");
}

static void test_appdb_place_undoes_outbox_row_when_order_insert_fails(
        void **state)
{
        fixture *f = *state;
        of_event ev;

        /* The outbox row goes in first; a failure after it must take it
         * back out: the two are one transaction. */
        exec(f, "CREATE TRIGGER no_orders BEFORE INSERT ON orders "
                "BEGIN SELECT RAISE(ABORT, 'no orders today'); END");
        assert_int_equal(of_appdb_place(f->app, &ev, "o-1", 5, f->errstr,
                                        sizeof(f->errstr)),
                         OF_ERROR);
        assert_non_null(strstr(f->errstr, "no orders today"));
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "0");
        assert_string_equal(q(f, "SELECT count(*) FROM orders"), "0");
        exec(f, "DROP TRIGGER no_orders");
        place(f, &ev, "o-1", 5);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "1");
}

static void test_appdb_pay_rolls_back_outbox_row_when_update_fails(
        void **state)
{
        fixture *f = *state;
        of_event ev;

        place(f, NULL, "o-1", 5);
        exec(f, "CREATE TRIGGER no_pay BEFORE UPDATE ON orders "
                "BEGIN SELECT RAISE(ABORT, 'no payments today'); END");
        assert_int_equal(of_appdb_pay(f->app, &ev, "o-1", 5, f->errstr,
                                      sizeof(f->errstr)),
                         OF_ERROR);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "1");
        assert_string_equal(q(f, "SELECT status FROM orders"), "ORDERED");
}

static void test_appdb_place_payload_decodes_to_valid_order_placed(
        void **state)
{
        fixture *f = *state;
        of_event ev, back;
        char reason[OF_REASON_MAX], norm[OF_TS_LEN + 1];
        const char *payload;

        place(f, &ev, "o-é-1", 9007199254740991LL);
        payload = q(f, "SELECT payload FROM outbox_payloads p JOIN "
                       "outbox_messages m ON m.seq = p.seq");
        if (of_event_parse(&back, payload, strlen(payload), reason,
                           sizeof(reason)))
                fail_msg("%s: %s", payload, reason);
        assert_int_equal(back.type, OF_EVENT_PLACED);
        assert_string_equal(back.type_name, "OrderPlaced");
        assert_string_equal(back.id, ev.id);
        assert_string_equal(back.aggregate_id, "o-é-1");
        assert_int_equal(back.amount, 9007199254740991LL);
        assert_string_equal(back.occurred_at, ev.occurred_at);
        assert_true(of_event_agrees(&back, &ev));
        /* Stored as written: already the normalised 24-char UTC form. */
        assert_non_null(strstr(payload, ev.occurred_at));
        assert_int_equal(strlen(ev.occurred_at), OF_TS_LEN);
        assert_int_equal(of_timestamp_normalise(norm, ev.occurred_at,
                                                OF_TS_LEN, reason,
                                                sizeof(reason)), 0);
        assert_string_equal(norm, ev.occurred_at);
        assert_string_equal(q(f, "SELECT occurred_at FROM outbox_messages"),
                            ev.occurred_at);
        assert_uuid7(ev.id);
}

static void test_appdb_pay_payload_decodes_to_valid_order_paid(void **state)
{
        fixture *f = *state;
        of_event ev, back;
        char reason[OF_REASON_MAX];
        const char *payload;

        place(f, NULL, "o-1", 1250);
        pay(f, &ev, "o-1", 1200);
        payload = q(f, "SELECT payload FROM outbox_payloads p JOIN "
                       "outbox_messages m ON m.seq = p.seq WHERE "
                       "type = 'OrderPaid'");
        if (of_event_parse(&back, payload, strlen(payload), reason,
                           sizeof(reason)))
                fail_msg("%s: %s", payload, reason);
        assert_int_equal(back.type, OF_EVENT_PAID);
        assert_string_equal(back.id, ev.id);
        assert_string_equal(back.aggregate_id, "o-1");
        assert_int_equal(back.amount, 1200);
        assert_true(of_event_agrees(&back, &ev));
}

static void test_appdb_place_existing_order_is_eexists_writes_nothing(
        void **state)
{
        fixture *f = *state;
        of_event ev;

        place(f, NULL, "o-1", 5);
        assert_int_equal(of_appdb_place(f->app, &ev, "o-1", 7, f->errstr,
                                        sizeof(f->errstr)),
                         OF_EEXISTS);
        assert_non_null(strstr(f->errstr, "o-1"));
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "1");
        assert_string_equal(q(f, "SELECT count(*)||','||total FROM orders"),
                            "1,5");
        /* Paid, it is still there. */
        pay(f, NULL, "o-1", 5);
        assert_int_equal(of_appdb_place(f->app, &ev, "o-1", 7, f->errstr,
                                        sizeof(f->errstr)),
                         OF_EEXISTS);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "2");
}

static void test_appdb_place_bad_order_id_is_error_and_writes_nothing(
        void **state)
{
        fixture *f = *state;
        char id[OF_ID_MAX + 2];
        of_event ev;

        memset(id, 'x', OF_ID_MAX + 1);
        id[OF_ID_MAX + 1] = '\0';
        assert_int_equal(of_appdb_place(f->app, &ev, id, 1, f->errstr,
                                        sizeof(f->errstr)),
                         OF_ERROR);
        assert_int_equal(of_appdb_place(f->app, &ev, "o-\xff", 1, f->errstr,
                                        sizeof(f->errstr)),
                         OF_ERROR);
        assert_int_equal(of_appdb_place(f->app, &ev, "", 1, f->errstr,
                                        sizeof(f->errstr)),
                         OF_ERROR);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "0");
        assert_string_equal(q(f, "SELECT count(*) FROM orders"), "0");
        /* 128 bytes is still an id. */
        id[OF_ID_MAX] = '\0';
        place(f, NULL, id, 1);
}

static void test_appdb_pay_unknown_order_is_enotfound(void **state)
{
        fixture *f = *state;
        of_event ev;

        assert_int_equal(of_appdb_pay(f->app, &ev, "o-404", 5, f->errstr,
                                      sizeof(f->errstr)),
                         OF_ENOTFOUND);
        assert_non_null(strstr(f->errstr, "o-404"));
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "0");
        assert_string_equal(q(f, "SELECT count(*) FROM orders"), "0");
}

static void test_appdb_pay_twice_is_eexists_and_writes_nothing(void **state)
{
        fixture *f = *state;
        of_event first, ev;

        place(f, NULL, "o-1", 5);
        pay(f, &first, "o-1", 5);
        assert_int_equal(of_appdb_pay(f->app, &ev, "o-1", 6, f->errstr,
                                      sizeof(f->errstr)),
                         OF_EEXISTS);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "2");
        assert_string_equal(q(f, "SELECT paid_amount FROM orders"), "5");
        assert_string_equal(q(f, "SELECT paid_at FROM orders"),
                            first.occurred_at);
}

static void test_appdb_pay_sets_status_paid(void **state)
{
        fixture *f = *state;
        of_event ev;

        place(f, NULL, "o-1", 1250);
        pay(f, &ev, "o-1", 1250);
        assert_int_equal(ev.type, OF_EVENT_PAID);
        assert_string_equal(q(f, "SELECT status||' '||total||' '||"
                                 "paid_amount FROM orders"),
                            "PAID 1250 1250");
        assert_string_equal(q(f, "SELECT paid_at FROM orders"),
                            ev.occurred_at);
        assert_string_equal(q(f, "SELECT group_concat(type, ' ') FROM "
                                 "(SELECT type FROM outbox_messages "
                                 "ORDER BY seq)"),
                            "OrderPlaced OrderPaid");
        assert_string_equal(q(f, "SELECT id FROM outbox_messages WHERE "
                                 "type = 'OrderPaid'"),
                            ev.id);
}

/* ---- event ids ---- */

static void test_appdb_uuid7_is_version_7_and_never_goes_back_in_time(
        void **state)
{
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 5000};
        char ids[1000][37];
        int64_t first, last;
        size_t i;
        char errstr[256];

        (void)state;
        first = now_ms();
        for (i = 0; i < 1000; i++) {
                assert_int_equal(of_appdb_uuid7(ids[i], errstr,
                                                sizeof(errstr)), 0);
                nanosleep(&pause, NULL);
        }
        /* Make sure the ids span more than 2 ms. */
        while (now_ms() - first <= 3)
                nanosleep(&pause, NULL);
        assert_int_equal(of_appdb_uuid7(ids[999], errstr, sizeof(errstr)),
                         0);
        last = now_ms();
        for (i = 0; i < 1000; i++) {
                assert_uuid7(ids[i]);
                assert_true(uuid7_ms(ids[i]) >= first - 1);
                assert_true(uuid7_ms(ids[i]) <= last + 1);
                if (i > 0 && uuid7_ms(ids[i]) < uuid7_ms(ids[i - 1]))
                        fail_msg("%s after %s: the time went back", ids[i],
                                 ids[i - 1]);
                if (i > 0 && !strcmp(ids[i], ids[i - 1]))
                        fail_msg("%s twice", ids[i]);
        }
        assert_true(uuid7_ms(ids[999]) - uuid7_ms(ids[0]) >= 2);
}

static void test_appdb_event_ids_increase_with_commit_time(void **state)
{
        fixture *f = *state;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 2000000};
        of_event a, b;

        place(f, &a, "o-1", 1);
        nanosleep(&pause, NULL);
        pay(f, &b, "o-1", 1);
        assert_uuid7(a.id);
        assert_uuid7(b.id);
        assert_true(uuid7_ms(a.id) < uuid7_ms(b.id));
        assert_true(strcmp(a.id, b.id) < 0);
}

/* ---- status ---- */

static void test_appdb_outbox_status_counts_and_oldest_age(void **state)
{
        fixture *f = *state;
        of_outbox_status s;
        char sql[256], ts[OF_TS_LEN + 1];

        assert_int_equal(of_appdb_outbox_status(f->app, &s, f->errstr,
                                                sizeof(f->errstr)), 0);
        assert_int_equal(s.pending, 0);
        assert_int_equal(s.sent, 0);
        assert_int_equal(s.dead, 0);
        assert_true(s.oldest_pending_age_s < 0);

        place(f, NULL, "o-1", 1);
        pay(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 2);
        place(f, NULL, "o-3", 3);
        assert_int_equal(of_appdb_outbox_status(f->app, &s, f->errstr,
                                                sizeof(f->errstr)), 0);
        assert_int_equal(s.pending, 4);
        assert_int_equal(s.sent + s.dead, 0);
        assert_true(s.oldest_pending_age_s >= 0);
        assert_true(s.oldest_pending_age_s < 60);

        /* The oldest pending row is the first committed one: 90 s ago. */
        fmt_ms(ts, now_ms() - 90000);
        snprintf(sql, sizeof(sql),
                 "UPDATE outbox_messages SET occurred_at = '%s' WHERE "
                 "seq = (SELECT min(seq) FROM outbox_messages)",
                 ts);
        exec(f, sql);
        exec(f, "UPDATE outbox_messages SET status = 'SENT' WHERE "
                "aggregate_id = 'o-2'");
        exec(f, "UPDATE outbox_messages SET status = 'DEAD' WHERE "
                "aggregate_id = 'o-3'");
        assert_int_equal(of_appdb_outbox_status(f->app, &s, f->errstr,
                                                sizeof(f->errstr)), 0);
        assert_int_equal(s.pending, 2);
        assert_int_equal(s.sent, 1);
        assert_int_equal(s.dead, 1);
        assert_true(s.oldest_pending_age_s >= 89.9);
        assert_true(s.oldest_pending_age_s < 150);

        exec(f, "UPDATE outbox_messages SET status = 'SENT'");
        assert_int_equal(of_appdb_outbox_status(f->app, &s, f->errstr,
                                                sizeof(f->errstr)), 0);
        assert_int_equal(s.pending, 0);
        assert_int_equal(s.sent, 4);
        assert_int_equal(s.dead, 0);
        assert_true(s.oldest_pending_age_s < 0);
}

/* ---- the relay's side: claim ---- */

static void test_appdb_claim_returns_due_rows_in_commit_order(void **state)
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
                assert_int_equal(rows[i].payload_len,
                                 strlen(rows[i].payload));
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
        of_appdb_batch_free(&b);
}

static void test_appdb_claim_takes_at_most_max_rows(void **state)
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
        of_appdb_batch_free(&b);
        assert_string_equal(claim_names(f, now_ms(), "r2"),
                            "o-3:OrderPlaced");
}

static void test_appdb_claim_skips_rows_not_due_yet(void **state)
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
        assert_string_equal(claim_names(f, t + 5000, "r1"),
                            "o-1:OrderPlaced");
}

/* Regression (2026-11-27): a row waited a round for an earlier row of
 * its order in the same claim, so an order's OrderPaid went out after
 * later orders' OrderPlaced in its partition. */
static void test_appdb_claim_takes_an_orders_rows_together_in_seq_order(
        void **state)
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
        of_appdb_batch_free(&b);
}

/* Regression (2026-11-27): the relay's batch in flight held back the later
 * rows of its orders from the next claim. */
static void test_appdb_claim_takes_rows_behind_the_batch_in_flight(
        void **state)
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
        of_appdb_batch_free(&b1);
        of_appdb_batch_free(&b2);
        of_appdb_batch_free(&b3);
}

static void test_appdb_claim_holds_row_behind_a_backing_off_row(
        void **state)
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
        of_appdb_batch_free(&b);
        assert_string_equal(claim_names(f, t + 5000, "r2"),
                            "o-1:OrderPlaced o-1:OrderPaid");
}

static void test_appdb_claim_holds_row_behind_another_relays_lease(
        void **state)
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
        of_appdb_batch_free(&b);
}

/* The rule counts: one earlier row in flight is not enough when another
 * earlier row of the order is neither SENT nor on its way. */
static void test_appdb_claim_holds_row_behind_any_unsent_earlier_row(
        void **state)
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
        of_appdb_batch_free(&b1);
        of_appdb_batch_free(&b2);
}

static void test_appdb_leased_row_is_not_claimed_again_until_lease_ends(
        void **state)
{
        fixture *f = *state;
        int64_t t = now_ms();

        place(f, NULL, "o-1", 1);
        assert_string_equal(claim_names(f, t, "r1"), "o-1:OrderPlaced");
        assert_string_equal(claim_names(f, t, "r2"), "");
        assert_string_equal(claim_names(f, t + 999, "r2"), "");
        assert_string_equal(claim_names(f, t + 999, "r1"), "");
        /* claim_names() leases for 1000 ms. */
        assert_string_equal(claim_names(f, t + 1000, "r2"),
                            "o-1:OrderPlaced");
        assert_string_equal(q(f, "SELECT owner FROM outbox_leases ORDER BY "
                                 "id DESC LIMIT 1"),
                            "r2");
}

static void test_appdb_lease_covers_rows_skipped_inside_its_range(
        void **state)
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
        assert_int_equal(of_appdb_mark(f->app, b.lease, NULL, 0, NULL, t + 40,
                                       NULL, f->errstr, sizeof(f->errstr)),
                         0);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_leases"), "0");
        /* Released unmarked, as by a relay that gave up: o-3 again too. */
        assert_string_equal(claim_names(f, t + 50, "r2"),
                            "o-2:OrderPlaced o-3:OrderPlaced");
        of_appdb_batch_free(&b);
}

/* ---- the relay's side: mark ---- */

static void test_appdb_mark_delivered_sets_sent_with_sent_at(void **state)
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
        assert_int_equal(of_appdb_mark(f->app, b.lease, &res, 1, &bo, t + 5,
                                       &dead, f->errstr, sizeof(f->errstr)),
                         0);
        assert_int_equal(dead, 0);
        of_appdb_batch_free(&b);
        fmt_ms(ts, t + 5);
        assert_string_equal(q(f, "SELECT status||' '||attempts FROM "
                                 "outbox_messages"),
                            "SENT 0");
        /* The lease went with the mark. */
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_leases"), "0");
        assert_string_equal(q(f, "SELECT sent_at FROM outbox_messages"), ts);
        assert_string_equal(claim_names(f, t + 10000, "r1"), "");
}

static void test_appdb_mark_failed_backs_off_within_bounds(void **state)
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
        of_appdb_batch_free(&b);
}

static void test_appdb_mark_failed_at_max_attempts_goes_dead(void **state)
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

static void test_appdb_mark_records_a_batch_in_one_call(void **state)
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
        assert_int_equal(of_appdb_mark(f->app, 0, res, 3, &bo, t, &dead,
                                       f->errstr, sizeof(f->errstr)), 0);
        assert_int_equal(dead, 1);
        assert_string_equal(q(f, "SELECT group_concat(s, ' ') FROM (SELECT "
                                 "aggregate_id||':'||status AS s FROM "
                                 "outbox_messages ORDER BY seq)"),
                            "o-1:SENT o-2:PENDING o-3:DEAD");
}

static void test_appdb_mark_holds_rows_behind_failed_row_of_their_order(
        void **state)
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
        assert_string_equal(rows_state(f),
                            "o-1:OrderPlaced:PENDING:1 "
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
        of_appdb_batch_free(&b);
}

static void test_appdb_mark_holds_rows_behind_failed_row_of_last_batch(
        void **state)
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
        assert_string_equal(rows_state(f),
                            "o-1:OrderPlaced:PENDING:1 "
                            "o-2:OrderPlaced:SENT:0 "
                            "o-3:OrderPlaced:SENT:0 "
                            "o-4:OrderPlaced:PENDING:1 "
                            "o-1:OrderPaid:PENDING:0 "
                            "o-2:OrderPaid:PENDING:1 "
                            "o-3:OrderPaid:SENT:0 "
                            "o-4:OrderPaid:PENDING:0");
        of_appdb_batch_free(&b1);
        of_appdb_batch_free(&b2);
}

static void test_appdb_dead_row_blocks_later_rows_of_its_order(void **state)
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

static void test_appdb_retry_id_brings_one_dead_row_back(void **state)
{
        fixture *f = *state;
        of_event a, b;
        int64_t changed = -1, t = now_ms();

        place(f, &a, "o-1", 1);
        pay(f, NULL, "o-1", 1);
        place(f, &b, "o-2", 1);
        kill_row(f, 1);
        kill_row(f, 3);
        assert_int_equal(of_appdb_retry(f->app, a.id, &changed, f->errstr,
                                        sizeof(f->errstr)), 0);
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
        assert_int_equal(of_appdb_retry(f->app, a.id, &changed, f->errstr,
                                        sizeof(f->errstr)),
                         OF_ENOTFOUND);
        assert_int_equal(changed, 0);
        assert_int_equal(of_appdb_retry(f->app, "no-such-id", &changed,
                                        f->errstr, sizeof(f->errstr)),
                         OF_ENOTFOUND);
}

static void test_appdb_retry_all_dead_brings_every_dead_row_back(
        void **state)
{
        fixture *f = *state;
        int64_t changed = -1;

        place(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 1);
        place(f, NULL, "o-3", 1);
        kill_row(f, 1);
        kill_row(f, 3);
        assert_int_equal(of_appdb_retry(f->app, NULL, &changed, f->errstr,
                                        sizeof(f->errstr)), 0);
        assert_int_equal(changed, 2);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages "
                                 "WHERE status = 'PENDING' AND "
                                 "attempts = 0"),
                            "3");
        assert_string_equal(claim_names(f, now_ms(), "r1"),
                            "o-1:OrderPlaced o-2:OrderPlaced "
                            "o-3:OrderPlaced");
        /* Nothing DEAD: zero rows, not an error. */
        assert_int_equal(of_appdb_retry(f->app, NULL, &changed, f->errstr,
                                        sizeof(f->errstr)), 0);
        assert_int_equal(changed, 0);
}

static void test_appdb_prune_deletes_only_old_sent_rows(void **state)
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
        assert_int_equal(of_appdb_prune(f->app, 2LL * 3600 * 1000, &deleted,
                                        f->errstr, sizeof(f->errstr)), 0);
        assert_int_equal(deleted, 1);
        assert_string_equal(q(f, "SELECT group_concat(aggregate_id, ' ') "
                                 "FROM (SELECT aggregate_id FROM "
                                 "outbox_messages ORDER BY seq)"),
                            "o-recent o-pending o-dead");
        assert_int_equal(of_appdb_prune(f->app, 30LL * 60 * 1000, &deleted,
                                        f->errstr, sizeof(f->errstr)), 0);
        assert_int_equal(deleted, 1);
        assert_string_equal(q(f, "SELECT group_concat(aggregate_id, ' ') "
                                 "FROM (SELECT aggregate_id FROM "
                                 "outbox_messages ORDER BY seq)"),
                            "o-pending o-dead");
        assert_string_equal(q(f, "SELECT count(*) FROM orders"), "4");
}

static void test_appdb_prune_of_2500_rows_takes_several_transactions(
        void **state)
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
        assert_int_equal(of_appdb_prune(f->app, 1000, &deleted, f->errstr,
                                        sizeof(f->errstr)), 0);
        assert_int_equal(deleted, 2500);
        assert_string_equal(q(f, "SELECT group_concat(aggregate_id) FROM "
                                 "outbox_messages"),
                            "o-keep");
        /* The envelopes went with their rows. */
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_payloads p "
                                 "JOIN outbox_messages m ON m.seq = p.seq"),
                            "1");
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_payloads"),
                            "1");
}

/* Regression guard (2026-11-27): the envelope moved out of outbox_messages
 * into outbox_payloads; a database written before keeps working. */
static void test_appdb_open_moves_payloads_of_an_older_database(
        void **state)
{
        fixture *f = *state;
        of_appdb *app2 = NULL;
        of_outbox_batch b = {0};
        char path[600], got[512];
        sqlite3 *db;

        snprintf(path, sizeof(path), "%s.old", f->path);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(
                sqlite3_exec(db,
                             "CREATE TABLE outbox_messages (seq INTEGER "
                             "PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL "
                             "UNIQUE, type TEXT NOT NULL, aggregate_id TEXT "
                             "NOT NULL, payload TEXT NOT NULL, occurred_at "
                             "TEXT NOT NULL, status TEXT NOT NULL DEFAULT "
                             "'PENDING' CHECK (status IN ('PENDING', 'SENT',"
                             " 'DEAD')), attempts INTEGER NOT NULL DEFAULT "
                             "0, next_attempt_at INTEGER NOT NULL DEFAULT 0,"
                             " last_error TEXT, sent_at TEXT, lease_until "
                             "INTEGER NOT NULL DEFAULT 0, lease_owner TEXT);"
                             "CREATE INDEX outbox_open ON outbox_messages "
                             "(aggregate_id, seq) WHERE status IN "
                             "('PENDING', 'DEAD');"
                             "INSERT INTO outbox_messages (id, type, "
                             "aggregate_id, payload, occurred_at) VALUES "
                             "('e-1', 'OrderPlaced', 'o-1', '{\"x\":1}', "
                             "'2026-01-01T00:00:00.000Z')",
                             NULL, NULL, NULL),
                SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(of_appdb_open(&app2, path, f->errstr,
                                       sizeof(f->errstr)), 0);
        assert_int_equal(of_appdb_claim(app2, &b, 10, NULL, now_ms(), 1000,
                                        "r1", f->errstr, sizeof(f->errstr)),
                         0);
        assert_int_equal(b.n, 1);
        assert_string_equal(b.rows[0].payload, "{\"x\":1}");
        snprintf(got, sizeof(got), "%s", b.rows[0].id);
        assert_string_equal(got, "e-1");
        of_appdb_batch_free(&b);
        of_appdb_close(app2);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "SELECT payload FROM "
                                          "outbox_messages",
                                      NULL, NULL, NULL), SQLITE_ERROR);
        sqlite3_close(db);
        unlink(path);
}

/* Regression (2026-11-27): orders.status said PLACED where the read model
 * and the events say ORDERED; a file written before has PLACED in its
 * rows and in the table's CHECK (the old schema text, verbatim), and must
 * open, say ORDERED, and keep taking places and pays. */
static void test_appdb_open_turns_placed_orders_of_old_file_ordered(
        void **state)
{
        fixture *f = *state;
        of_appdb *app2 = NULL;
        of_event ev;
        char path[600];
        sqlite3 *db;
        int pass;

        snprintf(path, sizeof(path), "%s.placed", f->path);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(
                sqlite3_exec(db,
                             "CREATE TABLE IF NOT EXISTS orders (\n"
                             "    order_id    TEXT PRIMARY KEY NOT NULL,\n"
                             "    status      TEXT NOT NULL CHECK (status IN "
                             "('PLACED', 'PAID')),\n"
                             "    total       INTEGER NOT NULL,  -- minor "
                             "unit\n"
                             "    paid_amount INTEGER,           -- minor "
                             "unit, once paid\n"
                             "    placed_at   TEXT NOT NULL,     -- UTC "
                             "YYYY-MM-DDTHH:MM:SS.sssZ\n"
                             "    paid_at     TEXT\n"
                             ") WITHOUT ROWID;"
                             "INSERT INTO orders VALUES ('o-1', 'PLACED', "
                             "10, NULL, '2026-01-01T00:00:00.000Z', NULL),"
                             "('o-2', 'PAID', 20, 20, "
                             "'2026-01-01T00:00:01.000Z', "
                             "'2026-01-01T00:00:02.000Z'),"
                             "('o-3', 'PLACED', 30, NULL, "
                             "'2026-01-01T00:00:03.000Z', NULL)",
                             NULL, NULL, NULL),
                SQLITE_OK);
        sqlite3_close(db);
        /* Twice: the second open finds nothing to do. */
        for (pass = 0; pass < 2; pass++) {
                assert_int_equal(of_appdb_open(&app2, path, f->errstr,
                                               sizeof(f->errstr)), 0);
                of_appdb_close(app2);
        }
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_close(f->db);
        f->db = db; /* q() reads the old file now; teardown closes it */
        assert_string_equal(q(f, "SELECT group_concat(o, ' ') FROM (SELECT "
                                 "order_id||':'||status||':'||total||':'||"
                                 "ifnull(paid_amount, '-')||':'||placed_at"
                                 "||':'||ifnull(paid_at, '-') AS o FROM "
                                 "orders ORDER BY order_id)"),
                            "o-1:ORDERED:10:-:2026-01-01T00:00:00.000Z:- "
                            "o-2:PAID:20:20:2026-01-01T00:00:01.000Z:"
                            "2026-01-01T00:00:02.000Z "
                            "o-3:ORDERED:30:-:2026-01-01T00:00:03.000Z:-");
        assert_string_equal(q(f, "SELECT count(*) FROM sqlite_master WHERE "
                                 "name = 'orders_placed' OR sql LIKE "
                                 "'%PLACED''%'"),
                            "0");
        assert_int_equal(sqlite3_exec(db, "INSERT INTO orders VALUES ('o-9',"
                                          " 'PLACED', 1, NULL, 'x', NULL)",
                                      NULL, NULL, NULL),
                         SQLITE_CONSTRAINT);
        assert_int_equal(of_appdb_open(&app2, path, f->errstr,
                                       sizeof(f->errstr)), 0);
        assert_int_equal(of_appdb_pay(app2, &ev, "o-1", 10, f->errstr,
                                      sizeof(f->errstr)), 0);
        assert_int_equal(of_appdb_pay(app2, &ev, "o-2", 20, f->errstr,
                                      sizeof(f->errstr)), OF_EEXISTS);
        assert_int_equal(of_appdb_place(app2, &ev, "o-4", 40, f->errstr,
                                        sizeof(f->errstr)), 0);
        of_appdb_close(app2);
        assert_string_equal(q(f, "SELECT group_concat(o, ' ') FROM (SELECT "
                                 "order_id||':'||status AS o FROM orders "
                                 "ORDER BY order_id)"),
                            "o-1:PAID o-2:PAID o-3:ORDERED o-4:ORDERED");
        unlink(path);
}

static void test_appdb_open_existing_creates_no_file(void **state)
{
        fixture *f = *state;
        of_appdb *app2 = NULL;
        char path[600];

        snprintf(path, sizeof(path), "%s.missing", f->path);
        assert_int_equal(of_appdb_open_existing(&app2, path, f->errstr,
                                                sizeof(f->errstr)),
                         OF_ERROR);
        assert_null(app2);
        assert_non_null(strstr(f->errstr, "no application database at"));
        assert_int_equal(access(path, F_OK), -1);
        /* An existing one opens. */
        assert_int_equal(of_appdb_open_existing(&app2, f->path, f->errstr,
                                                sizeof(f->errstr)),
                         0);
        of_appdb_close(app2);
}

static void test_appdb_refuses_a_read_model(void **state)
{
        fixture *f = *state;
        of_appdb *app2 = NULL;
        of_store *st = NULL;
        char path[600];
        sqlite3 *db;

        /* a read model as the projector makes it */
        snprintf(path, sizeof(path), "%s.rm", f->path);
        assert_int_equal(of_store_open(&st, path, f->errstr,
                                       sizeof(f->errstr)), 0);
        of_store_close(st);
        assert_int_equal(of_appdb_open(&app2, path, f->errstr,
                                       sizeof(f->errstr)), OF_ERROR);
        assert_non_null(strstr(f->errstr, "a read model, not an application "
                                          "database"));
        assert_null(app2);
        /* Nothing of the outbox was added to it. */
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "SELECT * FROM outbox_messages",
                                      NULL, NULL, NULL), SQLITE_ERROR);
        sqlite3_close(db);
        unlink(path);
        snprintf(path, sizeof(path), "%s.rm-wal", f->path);
        unlink(path);
        snprintf(path, sizeof(path), "%s.rm-shm", f->path);
        unlink(path);
}

/* Until 2026-12-02 a SQLite file of another program got the outbox's
 * tables and WAL mode added. Now it is refused before anything is
 * written, by both opens. */
static void test_appdb_refuses_a_database_of_another_program(void **state)
{
        fixture *f = *state;
        of_appdb *app2 = NULL;
        char path[600], want[800], *before, *after;
        size_t n, n2;
        sqlite3 *db;

        snprintf(path, sizeof(path), "%s.other", f->path);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "CREATE TABLE users (name);"
                                          "INSERT INTO users VALUES ('ann')",
                                      NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        before = tu_read_file(path, &n);
        snprintf(want, sizeof(want),
                 "%s: a database of another program (table users), not an "
                 "application database", path);
        assert_int_equal(of_appdb_open(&app2, path, f->errstr,
                                       sizeof(f->errstr)), OF_ERROR);
        assert_null(app2);
        assert_string_equal(f->errstr, want);
        assert_int_equal(of_appdb_open_existing(&app2, path, f->errstr,
                                                sizeof(f->errstr)),
                         OF_ERROR);
        assert_string_equal(f->errstr, want);
        /* Byte for byte as it was: no table, no WAL mode (header). */
        after = tu_read_file(path, &n2);
        assert_true(n2 == n && !memcmp(before, after, n));
        free(before);
        free(after);
}

/* Until 2026-12-02 an I/O error was OF_ERROR here and OF_EBUSY in the
 * read model; now both say OF_EIO, which the relay retries a few times
 * (busy, locked and a full disk are OF_EBUSY, waited out). */
static void test_appdb_io_error_is_eio_and_writes_nothing(void **state)
{
        fixture *f = *state;
        char wal[600];
        struct stat sb;
        int err;

        snprintf(wal, sizeof(wal), "%s-wal", f->path);
        assert_int_equal(stat(wal, &sb), 0);
        tu_file_size_limit((rlim_t)sb.st_size);
        err = of_appdb_place(f->app, NULL, "o-1", 5, f->errstr,
                             sizeof(f->errstr));
        tu_file_size_limit(0);
        assert_int_equal(err, OF_EIO);
        assert_non_null(strstr(f->errstr, "disk I/O error"));
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "0");
        assert_int_equal(of_appdb_place(f->app, NULL, "o-1", 5, f->errstr,
                                        sizeof(f->errstr)), 0);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"),
                            "1");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_appdb_place_writes_order_and_one_outbox_row),
                T(test_appdb_place_undoes_outbox_row_when_order_insert_fails),
                T(test_appdb_pay_rolls_back_outbox_row_when_update_fails),
                T(test_appdb_place_payload_decodes_to_valid_order_placed),
                T(test_appdb_pay_payload_decodes_to_valid_order_paid),
                T(test_appdb_place_existing_order_is_eexists_writes_nothing),
                T(test_appdb_place_bad_order_id_is_error_and_writes_nothing),
                T(test_appdb_pay_unknown_order_is_enotfound),
                T(test_appdb_pay_twice_is_eexists_and_writes_nothing),
                T(test_appdb_pay_sets_status_paid),
                T(test_appdb_uuid7_is_version_7_and_never_goes_back_in_time),
                T(test_appdb_event_ids_increase_with_commit_time),
                T(test_appdb_outbox_status_counts_and_oldest_age),
                T(test_appdb_claim_returns_due_rows_in_commit_order),
                T(test_appdb_claim_takes_at_most_max_rows),
                T(test_appdb_claim_skips_rows_not_due_yet),
                T(test_appdb_claim_takes_an_orders_rows_together_in_seq_order),
                T(test_appdb_claim_takes_rows_behind_the_batch_in_flight),
                T(test_appdb_claim_holds_row_behind_a_backing_off_row),
                T(test_appdb_claim_holds_row_behind_another_relays_lease),
                T(test_appdb_claim_holds_row_behind_any_unsent_earlier_row),
                T(test_appdb_leased_row_is_not_claimed_again_until_lease_ends),
                T(test_appdb_lease_covers_rows_skipped_inside_its_range),
                T(test_appdb_mark_delivered_sets_sent_with_sent_at),
                T(test_appdb_mark_failed_backs_off_within_bounds),
                T(test_appdb_mark_failed_at_max_attempts_goes_dead),
                T(test_appdb_mark_records_a_batch_in_one_call),
                T(test_appdb_mark_holds_rows_behind_failed_row_of_their_order),
                T(test_appdb_mark_holds_rows_behind_failed_row_of_last_batch),
                T(test_appdb_dead_row_blocks_later_rows_of_its_order),
                T(test_appdb_retry_id_brings_one_dead_row_back),
                T(test_appdb_retry_all_dead_brings_every_dead_row_back),
                T(test_appdb_prune_deletes_only_old_sent_rows),
                T(test_appdb_prune_of_2500_rows_takes_several_transactions),
                T(test_appdb_open_moves_payloads_of_an_older_database),
                T(test_appdb_open_turns_placed_orders_of_old_file_ordered),
                T(test_appdb_refuses_a_read_model),
                T(test_appdb_open_existing_creates_no_file),
                T(test_appdb_refuses_a_database_of_another_program),
                T(test_appdb_io_error_is_eio_and_writes_nothing),
        };

        return cmocka_run_group_tests_name("appdb", tests, NULL, NULL);
}
