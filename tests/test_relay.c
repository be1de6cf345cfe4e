/* The relay against the embedded mock cluster over TCP: what lands on the
 * topic (key, headers, envelope, per-order order), Produce errors with
 * backoff, DEAD and retry, a crash between produce and mark (published
 * twice, projector still exact), and two relays on one outbox. */
#include "testutil.h"

#include <pthread.h>
#include <sqlite3.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "orderflow/appdb.h"
#include "orderflow/broker.h"
#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/projector.h"
#include "orderflow/relay.h"
#include "orderflow/store.h"

#define PARTITIONS 4

typedef struct fixture {
        char dir[64];     /* in /dev/shm when there: fsyncs are free */
        char app_path[96];
        of_appdb *app;
        sqlite3 *db;      /* a second connection, for checking */
        of_broker *broker;
} fixture;

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));
        char errstr[512];

        snprintf(f->dir, sizeof(f->dir), "%s/orderflow-relay-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->app_path, sizeof(f->app_path), "%s/app.db", f->dir);
        assert_int_equal(of_appdb_open(&f->app, f->app_path, errstr,
                                       sizeof(errstr)), 0);
        assert_int_equal(sqlite3_open(f->app_path, &f->db), SQLITE_OK);
        assert_int_equal(of_broker_start(&f->broker, 1, "orders", PARTITIONS,
                                         errstr, sizeof(errstr)), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fixture *f = *state;
        char cmd[128];

        sqlite3_close(f->db);
        of_appdb_close(f->app);
        of_broker_stop(f->broker);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        *state = NULL;
        return 0;
}

static int64_t q(fixture *f, const char *sql)
{
        sqlite3_stmt *stmt;
        int64_t v = -1;

        assert_int_equal(sqlite3_prepare_v2(f->db, sql, -1, &stmt, NULL),
                         SQLITE_OK);
        if (sqlite3_step(stmt) == SQLITE_ROW)
                v = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        return v;
}

/* Orders o-0..o-(n-1), totals 100+i, every second one paid. */
static void place_orders(fixture *f, int n)
{
        char id[32], errstr[512];
        int i;

        for (i = 0; i < n; i++) {
                snprintf(id, sizeof(id), "o-%d", i);
                assert_int_equal(of_appdb_place(f->app, NULL, id, 100 + i,
                                                errstr, sizeof(errstr)), 0);
                if (i % 2 == 0)
                        assert_int_equal(of_appdb_pay(f->app, NULL, id,
                                                      100 + i, errstr,
                                                      sizeof(errstr)), 0);
        }
}

static of_relay_opts relay_opts(fixture *f)
{
        of_relay_opts o = OF_RELAY_OPTS_INIT;

        o.ko.brokers = of_broker_bootstraps(f->broker);
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
} seen;

static const char *header(rd_kafka_message_t *rkm, const char *name,
                          char *buf, size_t size)
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

/* Read every partition from its start to its end; check each message's
 * key and headers against its envelope, count duplicates by id, and check
 * that no order's OrderPaid comes before its OrderPlaced. */
static seen read_topic(fixture *f, sqlite3 *ids)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts =
                rd_kafka_topic_partition_list_new(PARTITIONS);
        seen s = {0};
        char errstr[512], hid[160], htype[64];
        rd_kafka_t *rk;
        int p, eof = 0;

        rd_kafka_conf_set(conf, "bootstrap.servers",
                          of_broker_bootstraps(f->broker), errstr,
                          sizeof(errstr));
        rd_kafka_conf_set(conf, "group.id", "reader", errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                          sizeof(errstr));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        for (p = 0; p < PARTITIONS; p++)
                rd_kafka_topic_partition_list_add(parts, "orders", p)
                        ->offset = RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, parts), 0);
        assert_int_equal(sqlite3_exec(ids, "CREATE TEMP TABLE ev (id TEXT "
                                           "PRIMARY KEY, n INTEGER)",
                                      NULL, NULL, NULL), SQLITE_OK);
        while (eof < PARTITIONS) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 5000);
                of_event ev;
                char reason[OF_REASON_MAX], sql[400];

                assert_non_null(rkm); /* the end comes within 5 s */
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eof++;
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                assert_int_equal(rkm->err, 0);
                s.count++;
                assert_int_equal(of_event_parse(&ev, rkm->payload, rkm->len,
                                                reason, sizeof(reason)), 0);
                if (rkm->key_len != strlen(ev.aggregate_id) ||
                    memcmp(rkm->key, ev.aggregate_id, rkm->key_len) ||
                    strcmp(header(rkm, "event_id", hid, sizeof(hid)),
                           ev.id) ||
                    strcmp(header(rkm, "event_type", htype, sizeof(htype)),
                           ev.type_name))
                        s.bad++;
                snprintf(sql, sizeof(sql),
                         "INSERT INTO ev VALUES ('%s', 1) ON CONFLICT DO "
                         "UPDATE SET n = n + 1", ev.id);
                assert_int_equal(sqlite3_exec(ids, sql, NULL, NULL, NULL),
                                 SQLITE_OK);
                if (ev.type == OF_EVENT_PAID) {
                        /* Its OrderPlaced must have been read already:
                         * same key, same partition, lower offset. */
                        snprintf(sql, sizeof(sql),
                                 "SELECT 1 FROM outbox_messages o JOIN ev "
                                 "ON ev.id = o.id WHERE o.aggregate_id = "
                                 "'%s' AND o.type = 'OrderPlaced'",
                                 ev.aggregate_id);
                        {
                                sqlite3_stmt *stmt;

                                sqlite3_prepare_v2(ids, sql, -1, &stmt, NULL);
                                if (sqlite3_step(stmt) != SQLITE_ROW)
                                        s.reordered++;
                                sqlite3_finalize(stmt);
                        }
                }
                rd_kafka_message_destroy(rkm);
        }
        {
                sqlite3_stmt *stmt;

                sqlite3_prepare_v2(ids, "SELECT count(*) FROM ev WHERE n > 1",
                                   -1, &stmt, NULL);
                sqlite3_step(stmt);
                s.dups = sqlite3_column_int(stmt, 0);
                sqlite3_finalize(stmt);
        }
        sqlite3_exec(ids, "DROP TABLE ev", NULL, NULL, NULL);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return s;
}

/* ---- the tests ---- */

static void test_relay_publishes_every_row_with_key_headers_in_order(
        void **state)
{
        fixture *f = *state;
        of_relay_opts o = relay_opts(f);
        of_relay_stats st = {0};
        char errstr[512];
        seen s;

        place_orders(f, 200);
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr,
                                      sizeof(errstr)), 0);
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
}

static void test_relay_produce_errors_back_off_go_dead_then_retry(
        void **state)
{
        fixture *f = *state;
        rd_kafka_mock_cluster_t *mc = of_broker_mock(f->broker);
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
                assert_int_equal(of_relay_run(f->app, &o, &st, errstr,
                                              sizeof(errstr)), 0);
                assert_int_equal(st.published, 0);
                assert_int_equal(st.failed, 20); /* the 20 OrderPlaced */
        }
        /* The OrderPlaced rows are DEAD after 3 attempts; the OrderPaid
         * rows behind them were never published out of order. */
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'DEAD' AND attempts = 3 AND "
                              "type = 'OrderPlaced' AND last_error IS NOT "
                              "NULL"),
                         20);
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'PENDING' AND attempts = 0"),
                         10);
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr,
                                      sizeof(errstr)), 0);
        assert_int_equal(st.published + st.failed, 0);

        rd_kafka_mock_clear_request_errors(mc, 0);
        assert_int_equal(of_appdb_retry(f->app, NULL, &changed, errstr,
                                        sizeof(errstr)), 0);
        assert_int_equal(changed, 20);
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr,
                                      sizeof(errstr)), 0);
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

static void test_relay_crash_before_mark_publishes_twice_model_exact(
        void **state)
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
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr,
                                      sizeof(errstr)), OF_EABORT);
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
                assert_int_equal(of_relay_run(f->app, &o, &st, errstr,
                                              sizeof(errstr)), 0);
        }
        assert_int_equal(q(f, "SELECT count(*) FROM outbox_messages WHERE "
                              "status = 'SENT'"),
                         150);
        s = read_topic(f, f->db);
        /* Whatever the crashed run delivered, twice; nothing lost. */
        assert_int_equal(s.count, 150 + first);
        assert_int_equal(s.dups, first);
        assert_int_equal(s.reordered, 0);

        snprintf(rm_path, sizeof(rm_path), "%s/readmodel.db", f->dir);
        assert_int_equal(of_store_open(&store, rm_path, errstr,
                                       sizeof(errstr)), 0);
        po.ko.brokers = of_broker_bootstraps(f->broker);
        po.ko.props = props;
        po.ko.props_cnt = 2;
        po.exit_at_end = 1;
        assert_int_equal(of_projector_run(store, &po, &ps, errstr,
                                          sizeof(errstr)), 0);
        of_store_close(store);
        assert_int_equal(ps.applied, 150);
        assert_int_equal(ps.duplicates, (uint64_t)first);
        assert_int_equal(ps.dead, 0);
}

static void test_relay_pipelined_batches_keep_each_order_in_order(
        void **state)
{
        fixture *f = *state;
        of_relay_opts o = relay_opts(f);
        of_relay_stats st = {0};
        char errstr[512];
        seen s;

        /* 300 OrderPlaced, 150 OrderPaid, 25 rows a batch: the next batch
         * is claimed and produced while the one before is delivered, and
         * an OrderPaid right behind its OrderPlaced must wait for it. */
        place_orders(f, 300);
        o.batch_max = 25;
        assert_int_equal(of_relay_run(f->app, &o, &st, errstr,
                                      sizeof(errstr)), 0);
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

static void test_two_relays_publish_10000_rows_once_each_in_order(
        void **state)
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
                assert_int_equal(of_appdb_open(&t[k].app, f->app_path,
                                               errstr, sizeof(errstr)), 0);
                t[k].o = relay_opts(f);
                t[k].o.once = 0;
                t[k].o.batch_max = 500;
                t[k].o.poll_ms = 20;
                t[k].o.owner = k ? "relay-b" : "relay-a";
                t[k].o.stop = &t[k].stop;
                assert_int_equal(pthread_create(&th[k], NULL, run_relay,
                                                &t[k]), 0);
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
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_relay_publishes_every_row_with_key_headers_in_order),
                T(test_relay_produce_errors_back_off_go_dead_then_retry),
                T(test_relay_crash_before_mark_publishes_twice_model_exact),
                T(test_relay_pipelined_batches_keep_each_order_in_order),
                T(test_two_relays_publish_10000_rows_once_each_in_order),
        };

        of_log_verbosity = getenv("OF_TEST_VERBOSE") ? OF_LOG_DEBUG
                                                     : OF_LOG_ERROR;
        return cmocka_run_group_tests_name("relay", tests, NULL, NULL);
}
