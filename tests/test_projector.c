/* The projector: its batch without a broker, then the whole consumer over
 * TCP against the embedded mock cluster: duplicates and malformed
 * messages, a crash between the database and the Kafka commit followed by
 * a restart, and a second consumer joining the group. Each ends with an
 * exact check of the read model. */
#include "testutil.h"
#include "tu_broker.h"

#include <pthread.h>
#include <sqlite3.h>
#include <librdkafka/rdkafka.h>

#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/projector.h"
#include "orderflow/store.h"

#define N_ORDERS 300

/* Group timings short enough for tests (see docs/operations.md: every later
 * join waits about session.timeout.ms). */
static const char *test_props[] = {
        "session.timeout.ms=6000",
        "heartbeat.interval.ms=500",
};

typedef struct fixture {
        char *path;
        of_store *st;
        sqlite3 *db;
        tu_broker broker; /* none for the broker-free tests */
        int64_t expect_placed, expect_paid;
        int64_t expect_placed_amount, expect_paid_amount;
        int expect_events; /* distinct valid ids */
        int expect_dead;   /* rejected messages */
        int expect_dups;   /* redeliveries in the stream itself */
} fixture;

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));
        char errstr[512];

        f->path = tu_tmp_path("readmodel.db");
        assert_int_equal(
                of_store_open(&f->st, f->path, errstr, sizeof(errstr)), 0);
        f->db = tu_db_open(f->path, 0);
        *state = f;
        return 0;
}

static int setup_broker(void **state)
{
        fixture *f;

        setup(state);
        f = *state;
        tu_broker_start(&f->broker, "orders", 4);
        return 0;
}

static int teardown(void **state)
{
        fixture *f = *state;

        sqlite3_close(f->db);
        of_store_close(f->st);
        tu_broker_stop(&f->broker);
        tu_tmp_free(f->path);
        free(f);
        *state = NULL;
        return 0;
}

static int64_t q(fixture *f, const char *sql)
{
        return tu_qi(f->db, sql);
}

/* ---- the stream ---- */

static char *placed(int i, const char *id_suffix, int64_t total)
{
        char *s = malloc(512);

        snprintf(s, 512,
                 "{\"id\":\"p-%d%s\",\"type\":\"OrderPlaced\","
                 "\"aggregateId\":\"o-%d\",\"occurredAt\":"
                 "\"2026-11-%02dT10:00:00.5+01:00\",\"payload\":"
                 "{\"orderId\":\"o-%d\",\"total\":%lld}}",
                 i, id_suffix, i, 1 + i % 5, i, (long long)total);
        return s;
}

static char *paid(int i)
{
        char *s = malloc(512);

        snprintf(s, 512,
                 "{\"id\":\"q-%d\",\"type\":\"OrderPaid\",\"aggregateId\":"
                 "\"o-%d\",\"occurredAt\":\"2026-11-%02dT23:30:00Z\","
                 "\"payload\":{\"orderId\":\"o-%d\",\"amount\":%d}}",
                 i, i, 1 + i % 5, i, 100 + i);
        return s;
}

typedef struct stream {
        char *key[4 * N_ORDERS];
        char *value[4 * N_ORDERS]; /* NULL: a tombstone */
        size_t value_len[4 * N_ORDERS];
        int n;
} stream;

static void add(stream *s, const char *key, char *value, size_t len)
{
        s->key[s->n] = key ? strdup(key) : NULL;
        s->value[s->n] = value;
        s->value_len[s->n] = len;
        s->n++;
}

static void add_json(stream *s, int order, char *value)
{
        char key[32];

        snprintf(key, sizeof(key), "o-%d", order);
        add(s, key, value, strlen(value));
}

/* N_ORDERS orders, all placed, two in three paid, one in seven paid
 * before placed, every tenth event delivered twice, then malformed and
 * rule-breaking messages. Fills the fixture's expectations. */
static void make_stream(fixture *f, stream *s)
{
        static const char *bad[] = {
                "not json",
                "",
                "{\"id\":\"m1\"}",
                "{\"id\":\"m2\",\"type\":\"OrderPlaced\",\"aggregateId\":"
                "\"o-x\",\"occurredAt\":\"2026-02-30T10:00:00Z\","
                "\"payload\":{\"orderId\":\"o-x\",\"total\":1}}",
                "{\"id\":\"m3\",\"type\":\"OrderPlaced\",\"aggregateId\":"
                "\"o-x\",\"occurredAt\":\"2026-11-27 10:00:00Z\","
                "\"payload\":{\"orderId\":\"o-x\",\"total\":1}}",
                "{\"id\":\"m4\",\"type\":\"OrderPlaced\",\"aggregateId\":"
                "\"o-x\",\"occurredAt\":\"2026-11-27T10:00:00Z\","
                "\"payload\":{\"orderId\":\"o-x\",\"total\":-5}}",
                "{\"id\":\"m5\",\"type\":\"OrderPaid\",\"aggregateId\":"
                "\"o-x\",\"occurredAt\":\"2026-11-27T10:00:00Z\","
                "\"payload\":{\"orderId\":\"o-x\",\"amount\":1.5}}",
                "\xff\xfe",
        };
        int i, events = 0, k;

        memset(s, 0, sizeof(*s));
        for (i = 0; i < N_ORDERS; i++) {
                int is_paid = i % 3 != 0, paid_first = i % 7 == 0;

                if (is_paid && paid_first)
                        add_json(s, i, paid(i));
                add_json(s, i, placed(i, "", 100 + i));
                if (is_paid && !paid_first)
                        add_json(s, i, paid(i));
                f->expect_placed++;
                f->expect_placed_amount += 100 + i;
                if (is_paid) {
                        f->expect_paid++;
                        f->expect_paid_amount += 100 + i;
                }
        }
        events = s->n;
        f->expect_events = events;
        /* Redeliveries at new offsets, like a relay that published twice. */
        for (k = 0; k < events; k += 10) {
                add(s, s->key[k], strdup(s->value[k]), s->value_len[k]);
                f->expect_dups++;
        }
        for (k = 0; k < (int)(sizeof(bad) / sizeof(bad[0])); k++)
                add(s, "bad", strdup(bad[k]), strlen(bad[k]));
        add(s, "bad", NULL, 0);
        /* After the originals in their partition: first in log order wins. */
        add_json(s, 1, placed(1, "-again", 101));
        add_json(s, 2, placed(2, "", 999));
        f->expect_dead = (int)(sizeof(bad) / sizeof(bad[0])) + 3;
}

static void free_stream(stream *s)
{
        int i;

        for (i = 0; i < s->n; i++) {
                free(s->key[i]);
                free(s->value[i]);
        }
}

static void produce(fixture *f, stream *s, int from, int to)
{
        rd_kafka_t *rk;
        int i;

        rk = tu_producer(&f->broker);
        for (i = from; i < to; i++) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                        rk, RD_KAFKA_V_TOPIC("orders"),
                        RD_KAFKA_V_KEY(s->key[i],
                                       s->key[i] ? strlen(s->key[i]) : 0),
                        RD_KAFKA_V_VALUE(s->value[i], s->value_len[i]),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_END);
                assert_int_equal(err, 0);
        }
        assert_int_equal(rd_kafka_flush(rk, 30000), 0);
        rd_kafka_destroy(rk);
}

static of_projector_opts opts_for(fixture *f)
{
        of_projector_opts o = OF_PROJECTOR_OPTS_INIT;

        o.ko.brokers = tu_broker_bootstraps(&f->broker);
        o.ko.props = test_props;
        o.ko.props_cnt = 2;
        o.group = "test-group";
        return o;
}

/* The read model holds exactly the stream's expected outcome. */
static void check_exact(fixture *f)
{
        assert_int_equal(q(f, "SELECT orders_placed FROM order_totals"),
                         f->expect_placed);
        assert_int_equal(q(f, "SELECT orders_paid FROM order_totals"),
                         f->expect_paid);
        assert_int_equal(q(f, "SELECT placed_amount FROM order_totals"),
                         f->expect_placed_amount);
        assert_int_equal(q(f, "SELECT paid_amount FROM order_totals"),
                         f->expect_paid_amount);
        assert_int_equal(q(f, "SELECT count(*) FROM order_list"), N_ORDERS);
        assert_int_equal(q(f, "SELECT count(*) FROM order_list WHERE "
                              "status = 'PAID'"),
                         f->expect_paid);
        assert_int_equal(q(f, "SELECT total FROM order_list WHERE "
                              "order_id = 'o-2'"),
                         102);
        assert_int_equal(q(f, "SELECT count(*) FROM order_list WHERE "
                              "placed_at != printf('2026-11-%02dT09:00:00."
                              "500Z', 1 + substr(order_id, 3) % 5)"),
                         0);
        /* The totals equal the sums over order_list, per day too. */
        assert_int_equal(q(f, "SELECT (SELECT sum(placed_amount) FROM "
                              "daily_totals) = (SELECT sum(total) FROM "
                              "order_list) AND (SELECT sum(orders_paid) FROM "
                              "daily_totals) = (SELECT count(paid_at) FROM "
                              "order_list)"),
                         1);
        assert_int_equal(q(f, "SELECT count(*) FROM daily_totals"), 5);
        assert_int_equal(q(f, "SELECT count(*) FROM processed_events"),
                         f->expect_events);
        assert_int_equal(q(f, "SELECT count(*) FROM dead_letters"),
                         f->expect_dead);
        assert_int_equal(q(f, "SELECT count(*) FROM dead_letters WHERE "
                              "reason = 'duplicate OrderPlaced for order: "
                              "o-1'"),
                         1);
        assert_int_equal(q(f, "SELECT count(*) FROM dead_letters WHERE "
                              "reason LIKE 'conflict%'"),
                         1);
        assert_int_equal(q(f, "SELECT count(*) FROM dead_letters WHERE "
                              "value IS NULL"),
                         1);
}

/* ---- without a broker ---- */

static int stop_now(void *opaque)
{
        (void)opaque;
        return 1;
}

static void
test_projector_abort_hook_keeps_the_batch_applied_once(void **state)
{
        fixture *f = *state;
        of_projector_opts o = OF_PROJECTOR_OPTS_INIT;
        of_projector *pj;
        char errstr[512], *v = placed(7, "", 107);
        of_msg m = {.topic = "orders",
                    .partition = 1,
                    .offset = 9,
                    .value = v,
                    .value_len = strlen(v)};
        int64_t next;

        o.after_db_commit = stop_now;
        assert_int_equal(
                of_projector_new(&pj, f->st, &o, errstr, sizeof(errstr)), 0);
        assert_int_equal(of_projector_handle(pj, &m, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(of_projector_pending(pj), 1);
        assert_int_equal(of_projector_flush(pj, errstr, sizeof(errstr)),
                         OF_EABORT);
        of_projector_free(pj);
        /* The database commit happened; the next owner resumes after it. */
        assert_int_equal(of_store_offset(&next, f->st, "orders", 1, errstr,
                                         sizeof(errstr)),
                         0);
        assert_int_equal(next, 10);
        assert_int_equal(q(f, "SELECT placed_amount FROM order_totals"), 107);
        free(v);
}

/* One message of test_projector_batch_holds_every_message_whole. */
typedef struct held {
        char key[16];
        int has_key;
        char *value; /* NULL: none */
        size_t value_len;
} held;

/* n bytes of c, not JSON: a dead letter whose bytes the file must keep. */
static char *filler(size_t n, char c)
{
        char *v = malloc(n);

        memset(v, c, n);
        v[n / 2] = (char)('0' + n % 10); /* not all one byte */
        return v;
}

/* Each of h[0..n) that is no valid event is a dead letter at its offset
 * with its key and value byte for byte (NULL where it had none). */
static void check_dead_kept(fixture *f, const held *h, int n)
{
        sqlite3_stmt *st;
        int i;

        assert_int_equal(
                sqlite3_prepare_v2(f->db,
                                   "SELECT key, value FROM "
                                   "dead_letters WHERE \"offset\" = ?",
                                   -1, &st, NULL),
                SQLITE_OK);
        for (i = 0; i < n; i++) {
                const void *k, *v;

                if (h[i].value && h[i].value_len < 1024)
                        continue; /* a valid event */
                sqlite3_bind_int(st, 1, i);
                assert_int_equal(sqlite3_step(st), SQLITE_ROW);
                k = sqlite3_column_blob(st, 0);
                v = sqlite3_column_blob(st, 1);
                assert_int_equal(sqlite3_column_type(st, 0),
                                 h[i].has_key ? SQLITE_BLOB : SQLITE_NULL);
                assert_int_equal(sqlite3_column_bytes(st, 0),
                                 h[i].has_key ? (int)strlen(h[i].key) : 0);
                assert_true(!k || !memcmp(k, h[i].key, strlen(h[i].key)));
                assert_int_equal(sqlite3_column_type(st, 1),
                                 h[i].value ? SQLITE_BLOB : SQLITE_NULL);
                assert_int_equal(sqlite3_column_bytes(st, 1),
                                 (int)h[i].value_len);
                assert_true(!h[i].value ||
                            !memcmp(v, h[i].value, h[i].value_len));
                sqlite3_reset(st);
        }
        sqlite3_finalize(st);
}

/* The batch holds copies of its messages until it is applied: small and
 * large ones (beyond a block of its arena: 1 MiB), a missing key, an empty
 * key, a missing value, over two batches (the second reusing what the
 * first left). Each valid event is applied and each other message is a
 * dead letter with its key and value exactly as handed in. */
static void test_projector_batch_holds_every_message_whole(void **state)
{
        enum { N = 20000 };
        static const size_t big[] = {900 * 1024, 3 * 1024 * 1024, 1024 * 1024,
                                     2560 * 1024};
        fixture *f = *state;
        of_projector_opts o = OF_PROJECTOR_OPTS_INIT;
        of_projector *pj;
        held *h = calloc(N, sizeof(*h));
        char errstr[512];
        int i, nbig = 0, dead = 0, placed_n = 0;
        int64_t placed_sum = 0;

        assert_non_null(h);
        for (i = 0; i < N; i++) {
                snprintf(h[i].key, sizeof(h[i].key), "o-%d", i);
                h[i].has_key = 1;
                if (i % 5000 == 1700) {
                        h[i].value_len = big[nbig];
                        h[i].value = filler(big[nbig], (char)('a' + nbig));
                        h[i].has_key = nbig != 1; /* one without a key */
                        nbig++;
                        dead++;
                } else if (i == 14321) {
                        h[i].key[0] = '\0'; /* an empty key, no value */
                        dead++;
                } else {
                        h[i].value = placed(i, "", 1000 + i);
                        h[i].value_len = strlen(h[i].value);
                        placed_n++;
                        placed_sum += 1000 + i;
                }
        }
        assert_int_equal(
                of_projector_new(&pj, f->st, &o, errstr, sizeof(errstr)), 0);
        for (i = 0; i < N; i++) {
                of_msg m = {.topic = "orders",
                            .partition = 0,
                            .offset = i,
                            .key = h[i].has_key ? h[i].key : NULL,
                            .key_len = strlen(h[i].key),
                            .value = h[i].value,
                            .value_len = h[i].value_len};

                assert_int_equal(
                        of_projector_handle(pj, &m, errstr, sizeof(errstr)),
                        0);
                if (i == N / 2 - 1)
                        assert_int_equal(
                                of_projector_flush(pj, errstr, sizeof(errstr)),
                                0);
        }
        assert_int_equal(of_projector_flush(pj, errstr, sizeof(errstr)), 0);
        of_projector_free(pj);

        assert_int_equal(q(f, "SELECT orders_placed FROM order_totals"),
                         placed_n);
        assert_int_equal(q(f, "SELECT placed_amount FROM order_totals"),
                         placed_sum);
        assert_int_equal(q(f, "SELECT count(*) FROM dead_letters"), dead);
        check_dead_kept(f, h, N);
        for (i = 0; i < N; i++)
                free(h[i].value);
        free(h);
}

typedef struct locker {
        const char *path;
        int locked;
} locker;

static void *hold_lock_a_while(void *arg)
{
        locker *l = arg;
        sqlite3 *db;

        db = tu_db_open(l->path, 0);
        assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                         SQLITE_OK);
        __atomic_store_n(&l->locked, 1, __ATOMIC_SEQ_CST);
        usleep(700 * 1000);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(db);
        return NULL;
}

static void test_projector_flush_waits_out_a_locked_file(void **state)
{
        fixture *f = *state;
        of_projector_opts o = OF_PROJECTOR_OPTS_INIT;
        of_projector *pj;
        locker l = {f->path, 0};
        pthread_t th;
        char errstr[512], *v = placed(3, "", 103);
        of_msg m = {.topic = "orders",
                    .partition = 0,
                    .offset = 0,
                    .value = v,
                    .value_len = strlen(v)};

        of_store_set_busy_timeout(f->st, 20);
        o.max_retry_ms = 100;
        assert_int_equal(
                of_projector_new(&pj, f->st, &o, errstr, sizeof(errstr)), 0);
        assert_int_equal(of_projector_handle(pj, &m, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(pthread_create(&th, NULL, hold_lock_a_while, &l), 0);
        while (!__atomic_load_n(&l.locked, __ATOMIC_SEQ_CST))
                usleep(1000);
        assert_int_equal(of_projector_flush(pj, errstr, sizeof(errstr)), 0);
        pthread_join(th, NULL);
        assert_int_equal(of_projector_pending(pj), 0);
        assert_int_equal(of_projector_stats(pj)->applied, 1);
        assert_int_equal(q(f, "SELECT placed_amount FROM order_totals"), 103);
        of_projector_free(pj);
        free(v);
}

/* ---- over TCP against the mock cluster ---- */

static void test_projector_duplicates_and_malformed_end_exact(void **state)
{
        fixture *f = *state;
        of_projector_opts o = opts_for(f);
        of_store_stats stats = {0};
        static stream s;
        char errstr[512];

        make_stream(f, &s);
        produce(f, &s, 0, s.n);
        o.exit_at_end = 1;
        assert_int_equal(
                of_projector_run(f->st, &o, &stats, errstr, sizeof(errstr)),
                0);
        check_exact(f);
        assert_int_equal(stats.applied, f->expect_events);
        assert_int_equal(stats.duplicates, f->expect_dups);
        assert_int_equal(stats.dead, f->expect_dead);

        /* A new group delivers everything again from the read model's
         * offsets: nothing changes. */
        o.group = "another-group";
        memset(&stats, 0, sizeof(stats));
        assert_int_equal(
                of_projector_run(f->st, &o, &stats, errstr, sizeof(errstr)),
                0);
        check_exact(f);
        assert_int_equal(stats.applied + stats.dead, 0);
        free_stream(&s);
}

typedef struct crash_after {
        int left; /* commits to let through before the "crash" */
} crash_after;

static int crash_hook(void *opaque)
{
        crash_after *c = opaque;

        return --c->left <= 0;
}

static void
test_projector_crash_between_commits_then_restart_exact(void **state)
{
        fixture *f = *state;
        of_projector_opts o = opts_for(f);
        of_store_stats s1 = {0}, s2 = {0};
        crash_after c = {3};
        static stream s;
        char errstr[512];

        make_stream(f, &s);
        produce(f, &s, 0, s.n);
        o.exit_at_end = 1;
        o.batch_max = 40;
        o.after_db_commit = crash_hook;
        o.hook_opaque = &c;
        assert_int_equal(
                of_projector_run(f->st, &o, &s1, errstr, sizeof(errstr)),
                OF_EABORT);
        assert_true(s1.applied > 0);
        assert_true(s1.applied < (uint64_t)f->expect_events);

        /* Restart in the same group: the read model, not Kafka's commit
         * (one batch behind), says where to resume, so nothing is read
         * twice: the duplicates are only the stream's own. */
        o.after_db_commit = NULL;
        assert_int_equal(
                of_projector_run(f->st, &o, &s2, errstr, sizeof(errstr)), 0);
        check_exact(f);
        assert_int_equal(s1.applied + s2.applied, f->expect_events);
        assert_int_equal(s1.duplicates + s2.duplicates, f->expect_dups);
        assert_int_equal(s1.dead + s2.dead, f->expect_dead);
        free_stream(&s);
}

typedef struct runner {
        fixture *f;
        of_store *st; /* its own connection to the file */
        of_projector_opts o;
        volatile sig_atomic_t stop;
        int commits; /* batches committed so far (atomic) */
        of_store_stats stats;
        int rc;
        char errstr[512];
} runner;

static int count_commit(void *opaque)
{
        runner *r = opaque;

        __atomic_add_fetch(&r->commits, 1, __ATOMIC_SEQ_CST);
        return 0;
}

static void *run_projector(void *arg)
{
        runner *r = arg;

        r->rc = of_projector_run(r->st, &r->o, &r->stats, r->errstr,
                                 sizeof(r->errstr));
        return NULL;
}

static void runner_start(runner *r, fixture *f, pthread_t *th)
{
        char errstr[512];

        memset(r, 0, sizeof(*r));
        r->f = f;
        assert_int_equal(
                of_store_open(&r->st, f->path, errstr, sizeof(errstr)), 0);
        r->o = opts_for(f);
        r->o.stop = &r->stop;
        r->o.after_db_commit = count_commit;
        r->o.hook_opaque = r;
        assert_int_equal(pthread_create(th, NULL, run_projector, r), 0);
}

/* Wait, at most timeout_s seconds, until sql gives want. */
static int wait_for(fixture *f, const char *sql, int64_t want, int timeout_s)
{
        int i;

        for (i = 0; i < timeout_s * 20; i++) {
                if (q(f, sql) == want)
                        return 1;
                usleep(50 * 1000);
        }
        return 0;
}

static void
test_projector_second_consumer_joins_and_model_stays_exact(void **state)
{
        fixture *f = *state;
        static runner a, b;
        static stream s;
        pthread_t ta, tb;
        int half, i;

        make_stream(f, &s);
        half = s.n / 2;
        runner_start(&a, f, &ta);
        produce(f, &s, 0, half);
        assert_true(wait_for(f,
                             "SELECT (SELECT count(*) FROM "
                             "processed_events) + (SELECT count(*) FROM "
                             "dead_letters) > 0",
                             1, 30));

        runner_start(&b, f, &tb);
        /* B commits a batch (at least its end-of-partition positions) once
         * the group has given it partitions: usually within seconds, but a
         * starved machine once took more than 30 s, so allow 90. */
        for (i = 0; i < 1800 && !__atomic_load_n(&b.commits, __ATOMIC_SEQ_CST);
             i++)
                usleep(50 * 1000);
        assert_true(__atomic_load_n(&b.commits, __ATOMIC_SEQ_CST) > 0);
        produce(f, &s, half, s.n);
        assert_true(wait_for(f, "SELECT count(*) FROM dead_letters",
                             f->expect_dead, 60));
        assert_true(wait_for(f, "SELECT count(*) FROM processed_events",
                             f->expect_events, 60));
        a.stop = 1;
        b.stop = 1;
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        assert_int_equal(a.rc, 0);
        assert_int_equal(b.rc, 0);
        check_exact(f);
        assert_true(b.stats.applied > 0);
        assert_int_equal(a.stats.applied + b.stats.applied, f->expect_events);
        of_store_close(a.st);
        of_store_close(b.st);
        free_stream(&s);
}

#define T(name, set) cmocka_unit_test_setup_teardown(name, set, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_projector_abort_hook_keeps_the_batch_applied_once,
                  setup),
                T(test_projector_flush_waits_out_a_locked_file, setup),
                T(test_projector_batch_holds_every_message_whole, setup),
                T(test_projector_duplicates_and_malformed_end_exact,
                  setup_broker),
                T(test_projector_crash_between_commits_then_restart_exact,
                  setup_broker),
                T(test_projector_second_consumer_joins_and_model_stays_exact,
                  setup_broker),
        };

        of_log_verbosity =
                getenv("OF_TEST_VERBOSE") ? OF_LOG_DEBUG : OF_LOG_ERROR;
        return cmocka_run_group_tests_name("projector", tests, NULL, NULL);
}
