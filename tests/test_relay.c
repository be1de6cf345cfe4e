/* The relay against the embedded mock cluster over TCP: what lands on the
 * topic (key, headers, envelope, each partition in seq order), Produce
 * errors with backoff, DEAD and retry, a failed row holding back the
 * later rows of its order only, a crash between produce and mark
 * (published twice, projector still exact), and two relays on one
 * outbox. */
#include "testutil.h"
#include "tu_broker.h"

#include <pthread.h>
#include <sqlite3.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "orderflow/outbox.h"
#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/projector.h"
#include "orderflow/relay.h"
#include "orderflow/store.h"

#define PARTITIONS 4

typedef struct fixture {
        char dir[64]; /* in /dev/shm when there: fsyncs are free */
        char app_path[96];
        of_appdb *app;
        sqlite3 *db; /* a second connection, for checking */
        tu_broker broker;
} fixture;

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));
        char errstr[512];

        snprintf(f->dir, sizeof(f->dir), "%s/orderflow-relay-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->app_path, sizeof(f->app_path), "%s/app.db", f->dir);
        assert_int_equal(
                of_appdb_open(&f->app, f->app_path, errstr, sizeof(errstr)),
                0);
        f->db = tu_db_open(f->app_path, 0);
        tu_broker_start(&f->broker, "orders", PARTITIONS);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fixture *f = *state;
        char cmd[128];

        sqlite3_close(f->db);
        of_appdb_close(f->app);
        tu_broker_stop(&f->broker);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        *state = NULL;
        return 0;
}

static int64_t q(fixture *f, const char *sql)
{
        return tu_qi(f->db, sql);
}

/* Order o-i with total 100+i; its payment of it in full. */
static void place_order(fixture *f, int i)
{
        char id[32], errstr[512];

        snprintf(id, sizeof(id), "o-%d", i);
        assert_int_equal(of_appdb_place(f->app, NULL, id, 100 + i, errstr,
                                        sizeof(errstr)),
                         0);
}

static void pay_order(fixture *f, int i)
{
        char id[32], errstr[512];

        snprintf(id, sizeof(id), "o-%d", i);
        assert_int_equal(of_appdb_pay(f->app, NULL, id, 100 + i, errstr,
                                      sizeof(errstr)),
                         0);
}

/* Orders o-0..o-(n-1); o-i paid right after its place when i % every ==
 * 0, and with later, ten orders later when i % every == 1. */
static void place_orders_paying(fixture *f, int n, int every, int later)
{
        int i;

        for (i = 0; i < n; i++) {
                place_order(f, i);
                if (i % every == 0)
                        pay_order(f, i);
                if (later && i >= 10 && (i - 10) % every == 1)
                        pay_order(f, i - 10);
        }
}

/* Every second order paid. */
static void place_orders(fixture *f, int n)
{
        place_orders_paying(f, n, 2, 0);
}

/* A third paid at once, a third ten orders later: many orders have both
 * rows pending at once, close together or far apart. */
static void place_mixed(fixture *f, int n)
{
        place_orders_paying(f, n, 3, 1);
}

static of_relay_opts relay_opts(fixture *f)
{
        of_relay_opts o = OF_RELAY_OPTS_INIT;

        o.ko.brokers = tu_broker_bootstraps(&f->broker);
        o.once = 1;
        o.backoff.base_ms = 1;
        o.backoff.cap_ms = 5;
        return o;
}

/* ---- reading the topic back ---- */

typedef struct seen {
        int count;      /* messages read */
        int dups;       /* event ids read more than once */
        int bad;        /* key/header/envelope mismatches */
        int reordered;  /* an OrderPaid before its order's OrderPlaced */
        int disordered; /* first copies, in their partition, after a row
                         * of a later seq (orders in TEMP table skip
                         * left out) */
        int late;       /* last copies of an order's rows not in seq
                         * order */
} seen;

static const char *header(rd_kafka_message_t *rkm, const char *name, char *buf,
                          size_t size)
{
        rd_kafka_headers_t *hdrs = NULL;
        const void *v;
        size_t len;

        if (rd_kafka_message_headers(rkm, &hdrs) ||
            rd_kafka_header_get_last(hdrs, name, &v, &len) || len >= size)
                return "";
        memcpy(buf, v, len);
        buf[len] = '\0';
        return buf;
}

static int count_of(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *stmt;
        int n;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        n = sqlite3_column_int(stmt, 0);
        sqlite3_finalize(stmt);
        return n;
}

/* Copy every partition from its start to its end into the temporary table
 * msg of db (the outbox's database), checking each message's key and
 * headers against its envelope; s->bad counts mismatches. */
static void copy_topic(fixture *f, sqlite3 *db, seen *s)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts =
                rd_kafka_topic_partition_list_new(PARTITIONS);
        char errstr[512], hid[160], htype[64];
        sqlite3_stmt *ins;
        rd_kafka_t *rk;
        int p, eof = 0;

        rd_kafka_conf_set(conf, "bootstrap.servers",
                          tu_broker_bootstraps(&f->broker), errstr,
                          sizeof(errstr));
        rd_kafka_conf_set(conf, "group.id", "reader", errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                          sizeof(errstr));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        for (p = 0; p < PARTITIONS; p++)
                rd_kafka_topic_partition_list_add(parts, "orders", p)->offset =
                        RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, parts), 0);
        assert_int_equal(sqlite3_exec(db,
                                      "CREATE TEMP TABLE msg (part "
                                      "INTEGER, off INTEGER, id TEXT, "
                                      "type TEXT, order_id TEXT)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "INSERT INTO msg VALUES "
                                            "(?1, ?2, ?3, ?4, ?5)",
                                            -1, &ins, NULL),
                         SQLITE_OK);
        while (eof < PARTITIONS) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 5000);
                of_event ev;
                char reason[OF_REASON_MAX];

                assert_non_null(rkm); /* the end comes within 5 s */
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eof++;
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                assert_int_equal(rkm->err, 0);
                assert_int_equal(of_event_parse(&ev, rkm->payload, rkm->len,
                                                reason, sizeof(reason)),
                                 0);
                if (rkm->key_len != strlen(ev.aggregate_id) ||
                    memcmp(rkm->key, ev.aggregate_id, rkm->key_len) ||
                    strcmp(header(rkm, "event_id", hid, sizeof(hid)), ev.id) ||
                    strcmp(header(rkm, "event_type", htype, sizeof(htype)),
                           ev.type_name))
                        s->bad++;
                sqlite3_bind_int(ins, 1, rkm->partition);
                sqlite3_bind_int64(ins, 2, rkm->offset);
                sqlite3_bind_text(ins, 3, ev.id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(ins, 4, ev.type_name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(ins, 5, ev.aggregate_id, -1,
                                  SQLITE_TRANSIENT);
                assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
                sqlite3_reset(ins);
                rd_kafka_message_destroy(rkm);
        }
        sqlite3_finalize(ins);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

/* Read the topic back and check it against the outbox (db): counts,
 * duplicates by id, each OrderPaid after its OrderPlaced, and the order
 * of the messages in each partition by the outbox's seq: the first copy
 * of each event (a crash or a failure publishes some again), leaving out
 * the orders in the temporary table skip (db's, when it has one), and
 * the last copies of each order's events. */
static seen read_topic(fixture *f, sqlite3 *db)
{
        seen s = {0};

        copy_topic(f, db, &s);
        s.count = count_of(db, "SELECT count(*) FROM msg");
        s.dups = count_of(db, "SELECT count(*) FROM (SELECT id FROM msg "
                              "GROUP BY id HAVING count(*) > 1)");
        s.reordered =
                count_of(db, "SELECT count(*) FROM msg p WHERE p.type = "
                             "'OrderPaid' AND NOT EXISTS (SELECT 1 FROM "
                             "msg x WHERE x.order_id = p.order_id AND "
                             "x.type = 'OrderPlaced' AND x.part = p.part "
                             "AND x.off < p.off)");
        sqlite3_exec(db,
                     "CREATE TEMP TABLE IF NOT EXISTS skip (order_id "
                     "TEXT PRIMARY KEY)",
                     NULL, NULL, NULL);
        /* An event's copies share its key, so its partition. */
        s.disordered = count_of(
                db, "WITH first AS (SELECT m.part, min(m.off) AS off, o.seq"
                    " FROM msg m JOIN outbox_messages o ON o.id = m.id"
                    " WHERE m.order_id NOT IN (SELECT order_id FROM skip)"
                    " GROUP BY m.id)"
                    " SELECT count(*) FROM (SELECT seq, lag(seq) OVER"
                    " (PARTITION BY part ORDER BY off) AS prev FROM first)"
                    " WHERE seq <= prev");
        s.late = count_of(
                db, "WITH last AS (SELECT m.order_id, max(m.off) AS off,"
                    " o.seq FROM msg m JOIN outbox_messages o ON o.id = m.id"
                    " GROUP BY m.id)"
                    " SELECT count(*) FROM (SELECT seq, lag(seq) OVER"
                    " (PARTITION BY order_id ORDER BY off) AS prev FROM"
                    " last) WHERE seq <= prev");
        /* Every event on the topic is an outbox row. */
        assert_int_equal(count_of(db, "SELECT count(*) FROM msg WHERE id "
                                      "NOT IN (SELECT id FROM "
                                      "outbox_messages)"),
                         0);
        sqlite3_exec(db, "DROP TABLE msg", NULL, NULL, NULL);
        return s;
}

/* ---- the tests ---- */

static void
test_relay_publishes_every_row_with_key_headers_in_order(void **state)
{
        fixture *f = *state;
        of_relay_opts o = relay_opts(f);
        of_relay_stats st = {0};
        char errstr[512];
        seen s;

        place_orders(f, 200);
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(st.published, 300);
        assert_int_equal(st.failed, 0);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'SENT' AND sent_at IS NOT NULL"),
                         300);
        s = read_topic(f, f->db);
        assert_int_equal(s.count, 300);
        assert_int_equal(s.dups, 0);
        assert_int_equal(s.bad, 0);
        assert_int_equal(s.reordered, 0);
        assert_int_equal(s.disordered + s.late, 0);
}

static void test_relay_produce_errors_back_off_go_dead_then_retry(void **state)
{
        fixture *f = *state;
        rd_kafka_mock_cluster_t *mc = tu_broker_mock(&f->broker);
        of_relay_opts o = relay_opts(f);
        of_relay_stats st = {0};
        char errstr[512];
        static rd_kafka_resp_err_t errs[1000];
        int64_t changed;
        int run;
        seen s;

        place_orders(f, 20);
        o.backoff.max_attempts = 3;
        /* Every Produce fails with a permanent error until cleared (the
         * va-arg form wants one code per error: use the array form). */
        for (run = 0; run < 1000; run++)
                errs[run] = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
        rd_kafka_mock_push_request_errors_array(mc, 0 /* Produce */, 1000,
                                                errs);
        for (run = 0; run < 3; run++) {
                usleep(20 * 1000); /* past the 1-5 ms backoff */
                assert_int_equal(
                        of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                        0);
                assert_int_equal(st.published, 0);
                assert_int_equal(st.failed, 20); /* the 20 OrderPlaced */
                assert_int_equal(st.held, 10);   /* their OrderPaid */
        }
        /* The OrderPlaced rows are DEAD after 3 attempts; the OrderPaid
         * rows behind them went with them and were held back, attempts
         * untouched. */
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'DEAD' AND attempts = 3 AND "
                              "type = 'OrderPlaced' AND last_error IS NOT "
                              "NULL"),
                         20);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'PENDING' AND attempts = 0"),
                         10);
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(st.published + st.failed, 0);

        rd_kafka_mock_clear_request_errors(mc, 0);
        assert_int_equal(of_outbox_retry(f->app, NULL, &changed, errstr,
                                         sizeof(errstr)),
                         0);
        assert_int_equal(changed, 20);
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(st.published, 30);
        s = read_topic(f, f->db);
        assert_int_equal(s.count, 30);
        assert_int_equal(s.dups, 0);
        assert_int_equal(s.bad, 0);
        assert_int_equal(s.reordered, 0);
}

static int crash_once(void *opaque)
{
        int *left = opaque;

        return --*left == 0;
}

static void
test_relay_crash_before_mark_publishes_twice_model_exact(void **state)
{
        fixture *f = *state;
        of_relay_opts o = relay_opts(f);
        of_projector_opts po = OF_PROJECTOR_OPTS_INIT;
        static const char *props[] = {"session.timeout.ms=6000",
                                      "heartbeat.interval.ms=500"};
        of_relay_stats st = {0};
        of_store_stats ps = {0};
        of_store *store = NULL;
        char errstr[512], rm_path[128];
        int left = 1, i, first;
        seen s;

        place_orders(f, 100);
        o.batch_max = 40;
        o.lease_ms = 300;
        o.after_produce = crash_once;
        o.hook_opaque = &left;
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                         OF_EABORT);
        /* Published but not marked: still PENDING, leased a while. The
         * first batch was delivered; the second, produced while the first
         * was being delivered, may have been in part. */
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'PENDING'"),
                         150);
        s = read_topic(f, f->db);
        first = s.count;
        assert_true(first >= 40 && first <= 80);
        assert_int_equal(s.dups, 0);
        o.after_produce = NULL;
        for (i = 0; i < 100 && q(f, "SELECT count(*) FROM outbox_messages "
                                    "WHERE status = 'PENDING'");
             i++) {
                usleep(50 * 1000); /* until the lease runs out */
                assert_int_equal(
                        of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                        0);
        }
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'SENT'"),
                         150);
        s = read_topic(f, f->db);
        /* Whatever the crashed run delivered, twice; nothing lost. (A
         * real broker may still append what the crashed run had in
         * flight after the first look: more copies, never fewer.) */
        assert_int_equal(s.count - s.dups, 150);
        assert_true(s.dups >= first);
        assert_int_equal(s.reordered, 0);

        snprintf(rm_path, sizeof(rm_path), "%s/readmodel.db", f->dir);
        assert_int_equal(
                of_store_open(&store, rm_path, errstr, sizeof(errstr)), 0);
        po.ko.brokers = tu_broker_bootstraps(&f->broker);
        po.ko.props = props;
        po.ko.props_cnt = 2;
        po.exit_at_end = 1;
        assert_int_equal(
                of_projector_run(store, &po, &ps, errstr, sizeof(errstr)), 0);
        of_store_close(store);
        assert_int_equal(ps.applied, 150);
        assert_int_equal(ps.duplicates, (uint64_t)(s.count - 150));
        assert_int_equal(ps.dead, 0);
}

static void test_relay_pipelined_batches_keep_each_order_in_order(void **state)
{
        fixture *f = *state;
        of_relay_opts o = relay_opts(f);
        of_relay_stats st = {0};
        char errstr[512];
        seen s;

        /* 300 OrderPlaced, 150 OrderPaid, 25 rows a batch: the next batch
         * is claimed and produced while the one before is delivered, and
         * an OrderPaid right behind its OrderPlaced goes with it, or in
         * the next batch. */
        place_orders(f, 300);
        o.batch_max = 25;
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(st.published, 450);
        assert_int_equal(st.failed, 0);
        assert_true(st.batches >= 18);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'SENT'"),
                         450);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_leases"), 0);
        s = read_topic(f, f->db);
        assert_int_equal(s.count, 450);
        assert_int_equal(s.dups, 0);
        assert_int_equal(s.bad, 0);
        assert_int_equal(s.reordered, 0);
        assert_int_equal(s.disordered + s.late, 0);
}

static void exec(fixture *f, const char *sql)
{
        char *msg = NULL;

        if (sqlite3_exec(f->db, sql, NULL, NULL, &msg) != SQLITE_OK)
                fail_msg("%s: %s", sql, msg);
}

/* place_mixed(), then one relay --once in batches of batch: every row
 * SENT, and in each partition every message in seq order. */
static void publish_mixed_in_seq_order(fixture *f, size_t batch)
{
        of_relay_opts o = relay_opts(f);
        of_relay_stats st = {0};
        char errstr[512];
        int64_t rows;
        seen s;

        place_mixed(f, 300);
        rows = q(f, "SELECT count(*) FROM outbox_messages");
        o.batch_max = batch;
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(st.published, rows);
        assert_int_equal(st.failed + st.held, 0);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'SENT'"),
                         rows);
        s = read_topic(f, f->db);
        assert_int_equal(s.count, rows);
        assert_int_equal(s.dups + s.bad + s.reordered + s.late, 0);
        assert_int_equal(s.disordered, 0);
}

/* Regression (2026-11-27): an order's OrderPaid waited a round behind its
 * OrderPlaced of the same claim, so in its partition it stood after the
 * events of later orders (OrderPaid of o-31, write #76, after OrderPlaced
 * of o-300, write #487). */
static void test_relay_partitions_keep_seq_order_in_one_batch(void **state)
{
        publish_mixed_in_seq_order(*state, OF_DEFAULT_RELAY_BATCH);
}

/* Batches that cut orders in two: the later row goes in the batch claimed
 * while its earlier row's batch is in flight. */
static void test_relay_partitions_keep_seq_order_in_batches_of_7(void **state)
{
        publish_mixed_in_seq_order(*state, 7);
}

static void test_relay_partitions_keep_seq_order_in_batches_of_50(void **state)
{
        publish_mixed_in_seq_order(*state, 50);
}

/* The OrderPlaced of every fourth order is made too big for the producer
 * (message.max.bytes), so it fails at once, every time, wherever it stands
 * in its batch: the OrderPaid behind it, in the same batch or the next,
 * is published but held back; no other row is. */
static void
test_relay_failed_row_holds_back_only_its_orders_later_rows(void **state)
{
        fixture *f = *state;
        of_relay_opts o = relay_opts(f);
        static const char *props[] = {"message.max.bytes=2000"};
        of_relay_stats st = {0};
        char errstr[512];
        int64_t rows, failing, held;
        seen s;

        place_mixed(f, 200);
        exec(f, "CREATE TEMP TABLE skip AS SELECT DISTINCT aggregate_id AS "
                "order_id FROM outbox_messages WHERE "
                "CAST(substr(aggregate_id, 3) AS INTEGER) % 4 = 0;"
                "UPDATE outbox_payloads SET payload = json_set(payload, "
                "'$.pad', hex(zeroblob(1500))) WHERE seq IN (SELECT seq "
                "FROM outbox_messages WHERE type = 'OrderPlaced' AND "
                "aggregate_id IN (SELECT order_id FROM skip))");
        rows = q(f, "SELECT count(*) FROM outbox_messages");
        failing = q(f, "SELECT count(*) FROM outbox_messages WHERE "
                       "aggregate_id IN (SELECT order_id FROM skip)");
        o.batch_max = 7;
        o.ko.props = props;
        o.ko.props_cnt = 1;
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(st.failed, 50);
        assert_true(st.held > 0);
        /* Each failed place once; the pays behind them untouched. */
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "aggregate_id IN (SELECT order_id FROM skip) "
                              "AND status = 'PENDING' AND (type = "
                              "'OrderPlaced' AND attempts = 1 OR type = "
                              "'OrderPaid' AND attempts = 0 AND last_error "
                              "IS NULL)"),
                         failing);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'SENT'"),
                         rows - failing);
        assert_int_equal(st.published, rows - failing);
        s = read_topic(f, f->db);
        assert_int_equal(s.dups + s.bad, 0);
        assert_int_equal(s.disordered, 0);
        /* What went out of the failing orders: the held pays only. */
        held = (int64_t)st.held;
        assert_int_equal(s.count, rows - failing + held);
        assert_int_equal(s.reordered, held);

        /* The places fit again: all of them go, and each pay after its
         * place once more. */
        exec(f, "UPDATE outbox_payloads SET payload = json_remove(payload, "
                "'$.pad')");
        usleep(20 * 1000); /* past the 1-5 ms backoff */
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(st.published, failing);
        assert_int_equal(st.failed + st.held, 0);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'SENT'"),
                         rows);
        s = read_topic(f, f->db);
        assert_int_equal(s.count, rows + held);
        assert_int_equal(s.dups, held);
        assert_int_equal(s.bad + s.late + s.disordered, 0);
}

/* Produce requests refused by the broker: which rows fail is up to the
 * producer's batching, so the outbox says which orders failed; in each,
 * the first unsent row failed once and the rows behind it wait untouched,
 * and every other order went out whole, in seq order. */
static void
test_relay_broker_errors_hold_back_only_the_failed_orders(void **state)
{
        fixture *f = *state;
        rd_kafka_mock_cluster_t *mc = tu_broker_mock(&f->broker);
        of_relay_opts o = relay_opts(f);
        of_relay_stats st = {0};
        char errstr[512];
        int64_t rows;
        seen s;

        place_mixed(f, 300);
        rows = q(f, "SELECT count(*) FROM outbox_messages");
        o.batch_max = 20;
        rd_kafka_mock_push_request_errors(
                mc, 0 /* Produce */, 3, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
                RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
                RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                         0);
        assert_true(st.failed > 0);
        printf("# broker errors: %llu rows failed, %llu held back\n",
               (unsigned long long)st.failed, (unsigned long long)st.held);
        exec(f, "CREATE TEMP TABLE skip AS SELECT DISTINCT aggregate_id AS "
                "order_id FROM outbox_messages WHERE attempts > 0;"
                "CREATE TEMP VIEW unsent AS SELECT m.*, (SELECT count(*) "
                "FROM outbox_messages e WHERE e.aggregate_id = "
                "m.aggregate_id AND e.seq < m.seq AND e.status != 'SENT') "
                "AS before FROM outbox_messages m WHERE status != 'SENT'");
        assert_int_equal(q(f, "SELECT count(*) FROM skip"), st.failed);
        assert_int_equal(q(f, "SELECT count(*) FROM unsent WHERE "
                              "aggregate_id NOT IN (SELECT order_id FROM "
                              "skip) OR status != 'PENDING' OR attempts != "
                              "(before = 0)"),
                         0);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages m WHERE "
                              "status = 'SENT' AND EXISTS (SELECT 1 FROM "
                              "unsent u WHERE u.aggregate_id = "
                              "m.aggregate_id AND u.seq < m.seq)"),
                         0);
        s = read_topic(f, f->db);
        assert_int_equal(s.dups + s.bad, 0);
        assert_int_equal(s.disordered, 0);

        usleep(20 * 1000); /* past the 1-5 ms backoff */
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(st.failed + st.held, 0);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'SENT'"),
                         rows);
        s = read_topic(f, f->db);
        assert_int_equal(s.bad + s.late + s.disordered, 0);
}

typedef struct relay_thread {
        fixture *f;
        of_appdb *app;
        of_relay_opts o;
        volatile sig_atomic_t stop;
        of_relay_stats st;
        int rc;
        char errstr[512];
} relay_thread;

static void *run_relay(void *arg)
{
        relay_thread *t = arg;

        t->rc = of_relay_run(t->app, &t->o, &t->st, t->errstr,
                             sizeof(t->errstr));
        return NULL;
}

static void test_two_relays_publish_10000_rows_once_each_in_order(void **state)
{
        fixture *f = *state;
        static relay_thread t[2];
        pthread_t th[2];
        char errstr[512];
        int i, k;
        seen s;

        place_orders(f, 6667); /* 6667 placed + 3334 paid = 10001 rows */
        for (k = 0; k < 2; k++) {
                memset(&t[k], 0, sizeof(t[k]));
                t[k].f = f;
                assert_int_equal(of_appdb_open(&t[k].app, f->app_path, errstr,
                                               sizeof(errstr)),
                                 0);
                t[k].o = relay_opts(f);
                t[k].o.once = 0;
                t[k].o.batch_max = 500;
                t[k].o.poll_ms = 20;
                t[k].o.owner = k ? "relay-b" : "relay-a";
                t[k].o.stop = &t[k].stop;
                assert_int_equal(
                        pthread_create(&th[k], NULL, run_relay, &t[k]), 0);
        }
        for (i = 0; i < 1200 && q(f, "SELECT count(*) FROM outbox_messages "
                                     "WHERE status != 'SENT'");
             i++)
                usleep(50 * 1000);
        for (k = 0; k < 2; k++) {
                t[k].stop = 1;
                pthread_join(th[k], NULL);
                assert_int_equal(t[k].rc, 0);
                of_appdb_close(t[k].app);
        }
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'SENT'"),
                         10001);
        assert_true(t[0].st.published > 0 && t[1].st.published > 0);
        assert_int_equal(t[0].st.published + t[1].st.published, 10001);
        s = read_topic(f, f->db);
        printf("# two relays: %llu + %llu rows, %d on the topic, %d "
               "duplicates\n",
               (unsigned long long)t[0].st.published,
               (unsigned long long)t[1].st.published, s.count, s.dups);
        assert_int_equal(s.count, 10001);
        assert_int_equal(s.dups, 0);
        assert_int_equal(s.bad, 0);
        assert_int_equal(s.reordered, 0);
        /* Two producers interleave in a partition: each order's events
         * still stand in seq order. */
        assert_int_equal(s.late, 0);
}

/* The broker comes back at the hook's second call: once the report of
 * the second batch (o-2's place) is in. */
typedef struct up_hook {
        rd_kafka_mock_cluster_t *mc;
        int calls;
} up_hook;

static int broker_up_at_second_report(void *opaque)
{
        up_hook *h = opaque;

        if (++h->calls == 2)
                rd_kafka_mock_broker_set_up(h->mc, 1);
        return 0;
}

/* Found on Kafka (tests/kafka/cases/node_restart.sh): a broker down
 * longer than message.timeout.ms made the place of an order time out
 * while its pay, produced a round later behind it, was still queued;
 * the broker came back and the pay went out first (librdkafka times
 * messages out one by one). Now the relay purges everything on its way at
 * the deadline and claims nothing behind a failed row: each order's
 * first copies stay in seq order. One row a batch: o-1's place, o-2's
 * place, o-2's pay, each in a batch of its own. */
static void
test_relay_broker_down_past_the_timeout_keeps_each_order_in_order(void **state)
{
        fixture *f = *state;
        rd_kafka_mock_cluster_t *mc = tu_broker_mock(&f->broker);
        static const char *props[] = {"message.timeout.ms=1500"};
        static relay_thread t;
        up_hook h = {mc, 0};
        pthread_t th;
        char errstr[512];
        int i;
        seen s;

        place_order(f, 1);
        place_order(f, 2);
        pay_order(f, 2);
        rd_kafka_mock_broker_set_down(mc, 1);
        memset(&t, 0, sizeof(t));
        t.f = f;
        assert_int_equal(
                of_appdb_open(&t.app, f->app_path, errstr, sizeof(errstr)), 0);
        t.o = relay_opts(f);
        t.o.once = 0;
        t.o.batch_max = 1;
        t.o.poll_ms = 20;
        t.o.ko.props = props;
        t.o.ko.props_cnt = 1;
        t.o.after_produce = broker_up_at_second_report;
        t.o.hook_opaque = &h;
        t.o.stop = &t.stop;
        assert_int_equal(pthread_create(&th, NULL, run_relay, &t), 0);
        for (i = 0; i < 600 && q(f, "SELECT count(*) FROM outbox_messages "
                                    "WHERE status != 'SENT'");
             i++)
                usleep(50 * 1000);
        t.stop = 1;
        pthread_join(th, NULL);
        assert_int_equal(t.rc, 0);
        of_appdb_close(t.app);
        assert_true(h.calls >= 2);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'SENT'"),
                         3);
        s = read_topic(f, f->db);
        assert_int_equal(s.bad, 0);
        assert_int_equal(s.reordered, 0);
        assert_int_equal(s.disordered, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_relay_publishes_every_row_with_key_headers_in_order),
                T(test_relay_produce_errors_back_off_go_dead_then_retry),
                T(test_relay_crash_before_mark_publishes_twice_model_exact),
                T(test_relay_pipelined_batches_keep_each_order_in_order),
                T(test_relay_partitions_keep_seq_order_in_one_batch),
                T(test_relay_partitions_keep_seq_order_in_batches_of_7),
                T(test_relay_partitions_keep_seq_order_in_batches_of_50),
                T(test_relay_failed_row_holds_back_only_its_orders_later_rows),
                T(test_relay_broker_errors_hold_back_only_the_failed_orders),
                T(test_two_relays_publish_10000_rows_once_each_in_order),
                T(test_relay_broker_down_past_the_timeout_keeps_each_order_in_order),
        };

        of_log_verbosity =
                getenv("OF_TEST_VERBOSE") ? OF_LOG_DEBUG : OF_LOG_ERROR;
        return cmocka_run_group_tests_name("relay", tests, NULL, NULL);
}
