/* The application database (appdb.c): place and pay with their outbox row
 * in one transaction, UUIDv7 event ids, the outbox's status, opening and
 * migrating old files. The relay's side of the outbox is test_outbox.c's.
 * Each test gets a fresh temp file; a second connection checks with SQL. */
#include "testutil.h"
#include "tu_appdb.h"

#include <time.h>

#include <sqlite3.h>

#include "orderflow/appdb.h"
#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/outbox.h"
#include "orderflow/store.h"
#include "orderflow/timestamp.h"
#include "orderflow/uuid.h"

/* ---- helpers ---- */

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
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "1");
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

static void
test_appdb_place_undoes_outbox_row_when_order_insert_fails(void **state)
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
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "0");
        assert_string_equal(q(f, "SELECT count(*) FROM orders"), "0");
        exec(f, "DROP TRIGGER no_orders");
        place(f, &ev, "o-1", 5);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "1");
}

static void
test_appdb_pay_rolls_back_outbox_row_when_update_fails(void **state)
{
        fixture *f = *state;
        of_event ev;

        place(f, NULL, "o-1", 5);
        exec(f, "CREATE TRIGGER no_pay BEFORE UPDATE ON orders "
                "BEGIN SELECT RAISE(ABORT, 'no payments today'); END");
        assert_int_equal(of_appdb_pay(f->app, &ev, "o-1", 5, f->errstr,
                                      sizeof(f->errstr)),
                         OF_ERROR);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "1");
        assert_string_equal(q(f, "SELECT status FROM orders"), "ORDERED");
}

static void
test_appdb_place_payload_decodes_to_valid_order_placed(void **state)
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
                                                sizeof(reason)),
                         0);
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

static void
test_appdb_place_existing_order_is_eexists_writes_nothing(void **state)
{
        fixture *f = *state;
        of_event ev;

        place(f, NULL, "o-1", 5);
        assert_int_equal(of_appdb_place(f->app, &ev, "o-1", 7, f->errstr,
                                        sizeof(f->errstr)),
                         OF_EEXISTS);
        assert_non_null(strstr(f->errstr, "o-1"));
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "1");
        assert_string_equal(q(f, "SELECT count(*)||','||total FROM orders"),
                            "1,5");
        /* Paid, it is still there. */
        pay(f, NULL, "o-1", 5);
        assert_int_equal(of_appdb_place(f->app, &ev, "o-1", 7, f->errstr,
                                        sizeof(f->errstr)),
                         OF_EEXISTS);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "2");
}

static void
test_appdb_place_bad_order_id_is_error_and_writes_nothing(void **state)
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
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "0");
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
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "0");
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
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "2");
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

static void
test_appdb_uuid7_is_version_7_and_never_goes_back_in_time(void **state)
{
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 5000};
        char ids[1000][37];
        int64_t first, last;
        size_t i;
        char errstr[256];

        (void)state;
        first = now_ms();
        for (i = 0; i < 1000; i++) {
                assert_int_equal(of_uuid7(ids[i], errstr, sizeof(errstr)), 0);
                nanosleep(&pause, NULL);
        }
        /* Make sure the ids span more than 2 ms. */
        while (now_ms() - first <= 3)
                nanosleep(&pause, NULL);
        assert_int_equal(of_uuid7(ids[999], errstr, sizeof(errstr)), 0);
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
                                                sizeof(f->errstr)),
                         0);
        assert_int_equal(s.pending, 0);
        assert_int_equal(s.sent, 0);
        assert_int_equal(s.dead, 0);
        assert_true(s.oldest_pending_age_s < 0);

        place(f, NULL, "o-1", 1);
        pay(f, NULL, "o-1", 1);
        place(f, NULL, "o-2", 2);
        place(f, NULL, "o-3", 3);
        assert_int_equal(of_appdb_outbox_status(f->app, &s, f->errstr,
                                                sizeof(f->errstr)),
                         0);
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
                                                sizeof(f->errstr)),
                         0);
        assert_int_equal(s.pending, 2);
        assert_int_equal(s.sent, 1);
        assert_int_equal(s.dead, 1);
        assert_true(s.oldest_pending_age_s >= 89.9);
        assert_true(s.oldest_pending_age_s < 150);

        exec(f, "UPDATE outbox_messages SET status = 'SENT'");
        assert_int_equal(of_appdb_outbox_status(f->app, &s, f->errstr,
                                                sizeof(f->errstr)),
                         0);
        assert_int_equal(s.pending, 0);
        assert_int_equal(s.sent, 4);
        assert_int_equal(s.dead, 0);
        assert_true(s.oldest_pending_age_s < 0);
}

/* Regression guard (2026-11-27): the envelope moved out of outbox_messages
 * into outbox_payloads; a database written before keeps working. */
static void test_appdb_open_moves_payloads_of_an_older_database(void **state)
{
        fixture *f = *state;
        of_appdb *app2 = NULL;
        of_outbox_batch b = {0};
        char path[600], got[512];
        sqlite3 *db;

        snprintf(path, sizeof(path), "%s.old", f->path);
        db = tu_db_open(path, 0);
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
        assert_int_equal(
                of_appdb_open(&app2, path, f->errstr, sizeof(f->errstr)), 0);
        assert_int_equal(of_outbox_claim(app2, &b, 10, NULL, now_ms(), 1000,
                                         "r1", f->errstr, sizeof(f->errstr)),
                         0);
        assert_int_equal(b.n, 1);
        assert_string_equal(b.rows[0].payload, "{\"x\":1}");
        snprintf(got, sizeof(got), "%s", b.rows[0].id);
        assert_string_equal(got, "e-1");
        of_outbox_batch_free(&b);
        of_appdb_close(app2);
        db = tu_db_open(path, 0);
        assert_int_equal(sqlite3_exec(db,
                                      "SELECT payload FROM "
                                      "outbox_messages",
                                      NULL, NULL, NULL),
                         SQLITE_ERROR);
        sqlite3_close(db);
        unlink(path);
}

/* Regression (2026-11-27): orders.status said PLACED where the read model
 * and the events say ORDERED; a file written before has PLACED in its
 * rows and in the table's CHECK (the old schema text, verbatim), and must
 * open, say ORDERED, and keep taking places and pays. */
static void
test_appdb_open_turns_placed_orders_of_old_file_ordered(void **state)
{
        fixture *f = *state;
        of_appdb *app2 = NULL;
        of_event ev;
        char path[600];
        sqlite3 *db;
        int pass;

        snprintf(path, sizeof(path), "%s.placed", f->path);
        db = tu_db_open(path, 0);
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
                                               sizeof(f->errstr)),
                                 0);
                of_appdb_close(app2);
        }
        db = tu_db_open(path, 0);
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
        assert_int_equal(sqlite3_exec(db,
                                      "INSERT INTO orders VALUES ('o-9',"
                                      " 'PLACED', 1, NULL, 'x', NULL)",
                                      NULL, NULL, NULL),
                         SQLITE_CONSTRAINT);
        assert_int_equal(
                of_appdb_open(&app2, path, f->errstr, sizeof(f->errstr)), 0);
        assert_int_equal(of_appdb_pay(app2, &ev, "o-1", 10, f->errstr,
                                      sizeof(f->errstr)),
                         0);
        assert_int_equal(of_appdb_pay(app2, &ev, "o-2", 20, f->errstr,
                                      sizeof(f->errstr)),
                         OF_EEXISTS);
        assert_int_equal(of_appdb_place(app2, &ev, "o-4", 40, f->errstr,
                                        sizeof(f->errstr)),
                         0);
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
        assert_int_equal(
                of_store_open(&st, path, f->errstr, sizeof(f->errstr)), 0);
        of_store_close(st);
        assert_int_equal(
                of_appdb_open(&app2, path, f->errstr, sizeof(f->errstr)),
                OF_ERROR);
        assert_non_null(strstr(f->errstr, "a read model, not an application "
                                          "database"));
        assert_null(app2);
        /* Nothing of the outbox was added to it. */
        db = tu_db_open(path, 0);
        assert_int_equal(sqlite3_exec(db, "SELECT * FROM outbox_messages",
                                      NULL, NULL, NULL),
                         SQLITE_ERROR);
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
        db = tu_db_open(path, 0);
        assert_int_equal(sqlite3_exec(db,
                                      "CREATE TABLE users (name);"
                                      "INSERT INTO users VALUES ('ann')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        before = tu_read_file(path, &n);
        snprintf(want, sizeof(want),
                 "%s: a database of another program (table users), not an "
                 "application database",
                 path);
        assert_int_equal(
                of_appdb_open(&app2, path, f->errstr, sizeof(f->errstr)),
                OF_ERROR);
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
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "0");
        assert_int_equal(of_appdb_place(f->app, NULL, "o-1", 5, f->errstr,
                                        sizeof(f->errstr)),
                         0);
        assert_string_equal(q(f, "SELECT count(*) FROM outbox_messages"), "1");
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
                T(test_appdb_open_moves_payloads_of_an_older_database),
                T(test_appdb_open_turns_placed_orders_of_old_file_ordered),
                T(test_appdb_refuses_a_read_model),
                T(test_appdb_open_existing_creates_no_file),
                T(test_appdb_refuses_a_database_of_another_program),
                T(test_appdb_io_error_is_eio_and_writes_nothing),
        };

        return cmocka_run_group_tests_name("appdb", tests, NULL, NULL);
}
