/* The rebuild as a library (of_rebuild_run) against the embedded broker
 * in-process: a replay swapped into a live file that has readers, a
 * second rebuild of the same file while the first replays (refused,
 * the first completes), another topic's model refused unless forced, a
 * stop before the swap, and what killed rebuilds left removed. Each case
 * checks the live file against the stream the test produced. */
#include "testutil.h"
#include "tu_broker.h"

#include <glob.h>
#include <sqlite3.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/rebuild.h"
#include "orderflow/store.h"

#define N_ORDERS   400
#define PARTITIONS 4

typedef struct fixture {
        char *path; /* the live read model */
        tu_broker broker;
        int produced; /* orders produced so far: o-0 .. o-(produced-1) */
} fixture;

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));

        f->path = tu_tmp_path("live.db");
        tu_broker_start(&f->broker, "orders", PARTITIONS);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fixture *f = *state;

        tu_broker_stop(&f->broker);
        tu_tmp_free(f->path);
        free(f);
        *state = NULL;
        return 0;
}

/* One integer from the live file, on a connection of its own. */
static int64_t q(fixture *f, const char *sql)
{
        sqlite3 *db = tu_db_open(f->path, 1);
        int64_t v = tu_qi(db, sql);

        sqlite3_close(db);
        return v;
}

/* Orders o-from .. o-(to-1) placed (total 100 + i), the even ones paid,
 * each event keyed by its order. */
static void produce(fixture *f, const char *topic, int from, int to)
{
        char key[32], value[512];
        rd_kafka_t *rk;
        int i, paid;

        rk = tu_producer(&f->broker);
        for (i = from; i < to; i++) {
                for (paid = 0; paid <= (i % 2 == 0); paid++) {
                        snprintf(key, sizeof(key), "o-%d", i);
                        snprintf(value, sizeof(value),
                                 "{\"id\":\"%c-%d\",\"type\":\"%s\","
                                 "\"aggregateId\":\"o-%d\",\"occurredAt\":"
                                 "\"2026-11-27T10:00:00Z\",\"payload\":"
                                 "{\"orderId\":\"o-%d\",\"%s\":%d}}",
                                 paid ? 'q' : 'p', i,
                                 paid ? "OrderPaid" : "OrderPlaced", i, i,
                                 paid ? "amount" : "total", 100 + i);
                        assert_int_equal(
                                rd_kafka_producev(
                                        rk, RD_KAFKA_V_TOPIC(topic),
                                        RD_KAFKA_V_KEY(key, strlen(key)),
                                        RD_KAFKA_V_VALUE(value, strlen(value)),
                                        RD_KAFKA_V_MSGFLAGS(
                                                RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_END),
                                0);
                }
        }
        assert_int_equal(rd_kafka_flush(rk, 30000), 0);
        rd_kafka_destroy(rk);
        if (!strcmp(topic, "orders"))
                f->produced = to;
}

static of_rebuild_opts opts_for(fixture *f)
{
        of_rebuild_opts o = OF_REBUILD_OPTS_INIT;

        o.ko.brokers = tu_broker_bootstraps(&f->broker);
        o.batch_max = 100; /* several commits, so progress is seen */
        return o;
}

/* The live file holds exactly orders o-0 .. o-(n-1) as produce() made
 * them. */
static void check_live(fixture *f, int n)
{
        int64_t placed = 0, paid = 0, paid_n = 0;
        int i;

        for (i = 0; i < n; i++) {
                placed += 100 + i;
                if (i % 2 == 0) {
                        paid += 100 + i;
                        paid_n++;
                }
        }
        assert_int_equal(q(f, "SELECT count(*) FROM order_list"), n);
        assert_int_equal(q(f, "SELECT count(*) FROM processed_events"),
                         n + paid_n);
        assert_int_equal(q(f, "SELECT coalesce(sum(total), 0) "
                              "FROM order_list"),
                         placed);
        assert_int_equal(q(f, "SELECT count(*) FROM order_list "
                              "WHERE status = 'PAID'"),
                         paid_n);
        assert_int_equal(q(f, "SELECT coalesce((SELECT paid_amount FROM "
                              "order_totals), 0)"),
                         paid);
        assert_int_equal(q(f, "SELECT count(*) FROM dead_letters"), 0);
}

/* Files beside the live one that match pattern (appended to its path). */
static size_t beside(fixture *f, const char *pattern)
{
        char pat[600];
        glob_t g;
        size_t n;

        snprintf(pat, sizeof(pat), "%s%s", f->path, pattern);
        if (glob(pat, 0, NULL, &g))
                return 0;
        n = g.gl_pathc;
        globfree(&g);
        return n;
}

static int rebuild(fixture *f, of_rebuild_opts *o, of_rebuild_result *r,
                   char *errstr, size_t errstr_size)
{
        return of_rebuild_run(r, f->path, o, errstr, errstr_size);
}

static void test_rebuild_swaps_the_replay_into_the_live_file(void **state)
{
        fixture *f = *state;
        of_rebuild_opts o = opts_for(f);
        of_rebuild_result r;
        char errstr[1024];

        produce(f, "orders", 0, N_ORDERS / 2);
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        assert_int_equal(r.before.orders, 0);
        assert_int_equal(r.after.orders, N_ORDERS / 2);
        assert_int_equal(r.partitions, PARTITIONS);
        of_rebuild_result_free(&r);
        check_live(f, N_ORDERS / 2);

        /* Again over the whole topic: the old model is replaced. */
        produce(f, "orders", N_ORDERS / 2, N_ORDERS);
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        assert_int_equal(r.before.orders, N_ORDERS / 2);
        assert_int_equal(r.after.orders, N_ORDERS);
        assert_int_not_equal(r.after.generation, r.before.generation);
        of_rebuild_result_free(&r);
        check_live(f, N_ORDERS);
        assert_int_equal(beside(f, ".rebuild*"), 0);
}

/* The second rebuild starts from the first one's progress callback:
 * mid-replay, every time. */
typedef struct second {
        fixture *f;
        int calls;      /* progress calls of the first rebuild */
        int rc;         /* the second rebuild's result */
        int64_t orders; /* the live file's orders meanwhile */
        char errstr[1024];
} second;

static void start_second(void *opaque, uint64_t done, int64_t total, int final)
{
        second *s = opaque;
        of_rebuild_opts o = opts_for(s->f);
        of_rebuild_result r;

        (void)done;
        (void)total;
        if (final || s->calls++)
                return;
        s->rc = of_rebuild_run(&r, s->f->path, &o, s->errstr,
                               sizeof(s->errstr));
        of_rebuild_result_free(&r);
        s->orders = q(s->f, "SELECT count(*) FROM order_list");
}

static void
test_rebuild_second_rebuild_while_one_replays_is_refused(void **state)
{
        fixture *f = *state;
        of_rebuild_opts o = opts_for(f);
        of_rebuild_result r;
        second s = {.f = f, .rc = 1};
        char errstr[1024], want[700];

        produce(f, "orders", 0, N_ORDERS);
        o.on_progress = start_second;
        o.progress_opaque = &s;
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        of_rebuild_result_free(&r);
        assert_true(s.calls > 0);
        assert_int_equal(s.rc, OF_EBUSY);
        snprintf(want, sizeof(want),
                 "another rebuild of %s is running (it holds %s.lock)",
                 f->path, f->path);
        assert_string_equal(s.errstr, want);
        assert_int_equal(s.orders, 0); /* the live file untouched */
        check_live(f, N_ORDERS);
        /* The lock is released: a third rebuild runs. */
        o.on_progress = NULL;
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        of_rebuild_result_free(&r);
        check_live(f, N_ORDERS);
}

static void test_rebuild_refuses_another_topic_unless_forced(void **state)
{
        fixture *f = *state;
        rd_kafka_mock_cluster_t *mc = tu_broker_mock(&f->broker);
        of_rebuild_opts o = opts_for(f);
        of_rebuild_result r;
        char errstr[1024];

        assert_int_equal(rd_kafka_mock_topic_create(mc, "other", 2, 1), 0);
        produce(f, "orders", 0, 50);
        produce(f, "other", 0, 10);
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        of_rebuild_result_free(&r);
        check_live(f, 50);

        o.ko.topic = "other";
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), OF_ERROR);
        of_rebuild_result_free(&r);
        assert_non_null(strstr(errstr, "--force rebuilds from other "
                                       "anyway"));
        check_live(f, 50);

        o.force = 1;
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        of_rebuild_result_free(&r);
        check_live(f, 10);
        assert_int_equal(q(f, "SELECT count(*) FROM partition_offsets "
                              "WHERE topic != 'other'"),
                         0);
}

/* The topic deleted and created again, empty (here: a new broker): the
 * model is ahead of it, which a rebuild may mend, but an empty replay is
 * refused while the model has applied offsets. */
static void test_rebuild_refuses_an_empty_topic(void **state)
{
        fixture *f = *state;
        of_rebuild_opts o = opts_for(f);
        of_rebuild_result r;
        char errstr[1024], want[300];

        produce(f, "orders", 0, 30);
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        of_rebuild_result_free(&r);
        tu_broker_stop(&f->broker);
        tu_broker_start(&f->broker, "orders", PARTITIONS);
        o = opts_for(f);
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), OF_ERROR);
        of_rebuild_result_free(&r);
        snprintf(want, sizeof(want),
                 "topic orders holds no events, but "
                 "the read model has applied %d offsets",
                 30 + 15);
        assert_non_null(strstr(errstr, want));
        check_live(f, 30);
        o.force = 1;
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        of_rebuild_result_free(&r);
        check_live(f, 0);
}

static void stop_at_first(void *opaque, uint64_t done, int64_t total,
                          int final)
{
        (void)done;
        (void)total;
        (void) final;
        *(volatile sig_atomic_t *)opaque = 1;
}

static void test_rebuild_stopped_leaves_the_live_file_unchanged(void **state)
{
        fixture *f = *state;
        of_rebuild_opts o = opts_for(f);
        volatile sig_atomic_t stop = 0;
        of_rebuild_result r;
        char errstr[1024];

        produce(f, "orders", 0, 100);
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        of_rebuild_result_free(&r);
        produce(f, "orders", 100, N_ORDERS);
        o.stop = &stop;
        o.on_progress = stop_at_first;
        o.progress_opaque = (void *)&stop;
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)),
                         OF_EABORT);
        of_rebuild_result_free(&r);
        check_live(f, 100);
        assert_int_equal(beside(f, ".rebuild*"), 0);
}

static void test_rebuild_removes_what_killed_rebuilds_left(void **state)
{
        fixture *f = *state;
        static const char *const left[] = {".rebuild-99999",
                                           ".rebuild-99999-wal", ".rebuild",
                                           ".rebuild-journal"};
        of_rebuild_opts o = opts_for(f);
        of_rebuild_result r;
        char errstr[1024], path[600];
        size_t i;
        FILE *fp;

        produce(f, "orders", 0, 20);
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        of_rebuild_result_free(&r);
        for (i = 0; i < sizeof(left) / sizeof(left[0]); i++) {
                snprintf(path, sizeof(path), "%s%s", f->path, left[i]);
                assert_non_null(fp = fopen(path, "w"));
                fputs("left behind", fp);
                fclose(fp);
        }
        /* Not ours: a name that only starts alike stays. */
        snprintf(path, sizeof(path), "%s.rebuilder", f->path);
        assert_non_null(fp = fopen(path, "w"));
        fclose(fp);
        assert_int_equal(beside(f, ".rebuild*"), 5);
        assert_int_equal(rebuild(f, &o, &r, errstr, sizeof(errstr)), 0);
        of_rebuild_result_free(&r);
        assert_int_equal(beside(f, ".rebuild*"), 1);
        check_live(f, 20);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_rebuild_swaps_the_replay_into_the_live_file),
                T(test_rebuild_second_rebuild_while_one_replays_is_refused),
                T(test_rebuild_refuses_another_topic_unless_forced),
                T(test_rebuild_refuses_an_empty_topic),
                T(test_rebuild_stopped_leaves_the_live_file_unchanged),
                T(test_rebuild_removes_what_killed_rebuilds_left),
        };

        of_log_verbosity =
                getenv("OF_TEST_VERBOSE") ? OF_LOG_DEBUG : OF_LOG_ERROR;
        return cmocka_run_group_tests_name("rebuild", tests, NULL, NULL);
}
