/* The read-model store: each contract rule of docs/reference.md 2 on small,
 * hand-checked inputs, read back with plain SQL. The random, model-checked
 * version of the same rules is test_property.c. */
#include "testutil.h"

#include <pthread.h>
#include <time.h>
#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/store.h"

typedef struct fixture {
        char *path;
        of_store *st;
        sqlite3 *db; /* a second connection, for checking */
        int64_t next_offset;
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

static int teardown(void **state)
{
        fixture *f = *state;

        sqlite3_close(f->db);
        of_store_close(f->st);
        tu_tmp_free(f->path);
        free(f);
        *state = NULL;
        return 0;
}

/* The first column of the first row of sql, as text ("NULL" for NULL,
 * "" for no row), in a static buffer. */
static const char *q(fixture *f, const char *sql)
{
        return tu_q(f->db, sql);
}

static of_msg msg_at(const char *value, int32_t partition, int64_t offset)
{
        of_msg m = {.topic = "orders",
                    .partition = partition,
                    .offset = offset,
                    .key = "k",
                    .key_len = 1,
                    .value = value,
                    .value_len = value ? strlen(value) : 0};
        return m;
}

/* Apply the values as one batch at the next offsets of partition 0. */
static int apply(fixture *f, const char *const *values, size_t n)
{
        of_msg msgs[16];
        of_store_stats stats = {0};
        of_store_pos pos;
        char errstr[512];
        size_t i;
        int rc;

        assert_true(n <= 16);
        for (i = 0; i < n; i++)
                msgs[i] = msg_at(values[i], 0, f->next_offset++);
        pos = (of_store_pos){"orders", 0, f->next_offset};
        rc = of_store_apply_batch(f->st, msgs, n, &pos, 1, &stats, errstr,
                                  sizeof(errstr));
        if (rc)
                fprintf(stderr, "apply: %s\n", errstr);
        return rc;
}

static int apply1(fixture *f, const char *value)
{
        return apply(f, &value, 1);
}

#define PLACED(id, order, total, at)                                          \
        "{\"id\":\"" id                                                       \
        "\",\"type\":\"OrderPlaced\",\"aggregateId\":\"" order                \
        "\",\"occurredAt\":\"" at "\",\"payload\":{\"orderId\":\"" order      \
        "\",\"total\":" total "}}"
#define PAID(id, order, amount, at)                                           \
        "{\"id\":\"" id "\",\"type\":\"OrderPaid\",\"aggregateId\":\"" order  \
        "\",\"occurredAt\":\"" at "\",\"payload\":{\"orderId\":\"" order      \
        "\",\"amount\":" amount "}}"

static void test_store_new_file_has_schema_and_zero_totals(void **state)
{
        fixture *f = *state;

        assert_string_equal(q(f, "SELECT schema_version FROM schema_info"),
                            "1");
        assert_string_equal(q(f, "SELECT count(*) FROM schema_info"), "1");
        assert_string_equal(q(f, "SELECT orders_placed || ',' || orders_paid"
                                 " || ',' || placed_amount || ',' ||"
                                 " paid_amount FROM order_totals"),
                            "0,0,0,0");
        assert_string_equal(q(f, "SELECT count(*) FROM order_totals"), "1");
        assert_string_equal(q(f, "PRAGMA journal_mode"), "wal");
}

static void test_store_reopen_keeps_data(void **state)
{
        fixture *f = *state;
        char errstr[512];

        assert_int_equal(
                apply1(f, PLACED("e1", "o1", "5", "2026-11-27T10:00:00Z")), 0);
        of_store_close(f->st);
        assert_int_equal(
                of_store_open(&f->st, f->path, errstr, sizeof(errstr)), 0);
        assert_string_equal(q(f, "SELECT count(*) FROM schema_info"), "1");
        assert_string_equal(q(f, "SELECT placed_amount FROM order_totals"),
                            "5");
}

static void test_store_placed_then_paid_projects_everything(void **state)
{
        fixture *f = *state;
        const char *batch[] = {
                PLACED("e1", "o1", "1250", "2026-11-27T10:15:30.123+09:00"),
                PAID("e2", "o1", "1250", "2026-11-27T23:16:02Z"),
        };

        assert_int_equal(apply(f, batch, 2), 0);
        assert_string_equal(
                q(f, "SELECT status||','||total||','||paid_amount||','||"
                     "placed_at||','||paid_at FROM order_list"),
                "PAID,1250,1250,2026-11-27T01:15:30.123Z,"
                "2026-11-27T23:16:02.000Z");
        assert_string_equal(q(f, "SELECT orders_placed||','||orders_paid||"
                                 "','||placed_amount||','||paid_amount "
                                 "FROM order_totals"),
                            "1,1,1250,1250");
        assert_string_equal(q(f, "SELECT group_concat(day||':'||"
                                 "orders_placed||'/'||orders_paid, ' ') "
                                 "FROM daily_totals"),
                            "2026-11-27:1/1");
        assert_string_equal(q(f, "SELECT count(*) FROM processed_events"),
                            "2");
}

static void test_store_paid_before_placed_stays_paid(void **state)
{
        fixture *f = *state;

        assert_int_equal(
                apply1(f, PAID("e2", "o1", "7", "2026-11-28T00:00:00Z")), 0);
        assert_string_equal(q(f, "SELECT status||','||ifnull(total,'NULL')||"
                                 "','||ifnull(placed_at,'NULL') FROM "
                                 "order_list"),
                            "PAID,NULL,NULL");
        assert_int_equal(
                apply1(f, PLACED("e1", "o1", "7", "2026-11-27T23:59:59.999Z")),
                0);
        assert_string_equal(q(f, "SELECT status||','||total||','||placed_at"
                                 " FROM order_list"),
                            "PAID,7,2026-11-27T23:59:59.999Z");
        /* Each event counts on the UTC day of its own occurredAt. */
        assert_string_equal(q(f, "SELECT group_concat(day||':'||"
                                 "orders_placed||'/'||orders_paid, ' ') "
                                 "FROM (SELECT * FROM daily_totals "
                                 "ORDER BY day)"),
                            "2026-11-27:1/0 2026-11-28:0/1");
}

static void test_store_same_event_twice_is_noop(void **state)
{
        fixture *f = *state;
        /* The second copy differs in white space, key order, unknown
         * fields and offset notation: it still agrees. */
        const char *again =
                "{ \"payload\": {\"total\": 1.25e3, \"orderId\": \"o1\", "
                "\"x\": [1]}, \"type\": \"OrderPlaced\", \"id\": \"e1\", "
                "\"occurredAt\": \"2026-11-27T11:15:30.123+10:00\", "
                "\"aggregateId\": \"o1\", \"extra\": null }";
        const char *batch[] = {
                PLACED("e1", "o1", "1250", "2026-11-27T01:15:30.123Z"),
                PLACED("e1", "o1", "1250", "2026-11-27T01:15:30.123Z"),
        };

        assert_int_equal(apply(f, batch, 2), 0);
        assert_int_equal(apply1(f, again), 0);
        assert_string_equal(q(f, "SELECT orders_placed||','||placed_amount "
                                 "FROM order_totals"),
                            "1,1250");
        assert_string_equal(q(f, "SELECT count(*) FROM dead_letters"), "0");
        assert_string_equal(q(f, "SELECT orders_placed FROM daily_totals"),
                            "1");
}

static void test_store_same_id_other_body_is_conflict(void **state)
{
        fixture *f = *state;

        assert_int_equal(
                apply1(f, PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z")),
                0);
        assert_int_equal(
                apply1(f, PLACED("e1", "o1", "11", "2026-11-27T10:00:00Z")),
                0);
        assert_string_equal(q(f, "SELECT reason FROM dead_letters"),
                            "conflict: event e1 was applied with another "
                            "payload.total");
        assert_string_equal(q(f, "SELECT offset FROM dead_letters"), "1");
        assert_string_equal(q(f, "SELECT placed_amount FROM order_totals"),
                            "10");
}

static void test_store_second_placed_for_order_is_dead(void **state)
{
        fixture *f = *state;
        const char *batch[] = {
                PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z"),
                PLACED("e9", "o1", "99", "2026-11-27T10:00:00Z"),
                PAID("e2", "o1", "10", "2026-11-27T10:00:00Z"),
                PAID("e8", "o1", "10", "2026-11-27T10:00:00Z"),
        };

        assert_int_equal(apply(f, batch, 4), 0);
        assert_string_equal(q(f, "SELECT group_concat(reason, '|') FROM "
                                 "(SELECT reason FROM dead_letters ORDER BY "
                                 "offset)"),
                            "duplicate OrderPlaced for order: o1|"
                            "duplicate OrderPaid for order: o1");
        assert_string_equal(q(f, "SELECT group_concat(event_id) FROM "
                                 "processed_events"),
                            "e1,e2");
        assert_string_equal(q(f, "SELECT total FROM order_list"), "10");
}

static void test_store_other_type_is_recorded_only(void **state)
{
        fixture *f = *state;

        assert_int_equal(
                apply1(f, "{\"id\":\"x1\",\"type\":\"OrderShipped\"}"), 0);
        assert_string_equal(q(f, "SELECT event_id FROM processed_events"),
                            "x1");
        assert_string_equal(q(f, "SELECT count(*) FROM order_list"), "0");
        assert_string_equal(q(f, "SELECT count(*) FROM daily_totals"), "0");
}

static void test_store_malformed_is_dead_letter_with_exact_bytes(void **state)
{
        fixture *f = *state;
        of_msg m[2] = {msg_at("{\"id\":", 2, 41), msg_at(NULL, 2, 42)};
        of_store_pos pos = {"orders", 2, 43};
        of_store_stats stats = {0};
        char errstr[512];

        m[1].key = NULL;
        assert_int_equal(of_store_apply_batch(f->st, m, 2, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        /* Delivered again at the same offsets: still one row each. */
        assert_int_equal(of_store_apply_batch(f->st, m, 2, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        assert_int_equal(stats.dead, 2);
        assert_string_equal(q(f, "SELECT count(*) FROM dead_letters"), "2");
        assert_string_equal(q(f, "SELECT topic||','||partition||','||offset"
                                 "||','||typeof(key)||','||value FROM "
                                 "dead_letters WHERE offset = 41"),
                            "orders,2,41,blob,{\"id\":");
        assert_string_equal(q(f, "SELECT typeof(key)||','||typeof(value)||"
                                 "','||reason FROM dead_letters WHERE "
                                 "offset = 42"),
                            "null,null,empty value");
        assert_string_equal(q(f, "SELECT reason LIKE 'invalid JSON%' FROM "
                                 "dead_letters WHERE offset = 41"),
                            "1");
        assert_int_equal(strlen(q(f, "SELECT received_at FROM dead_letters")),
                         OF_TS_LEN);
}

static void test_store_counts_dead_letters_by_reason_phrase(void **state)
{
        fixture *f = *state;
        of_msg m[6] = {
                msg_at(PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z"), 0, 0),
                msg_at(PLACED("e9", "o1", "99", "2026-11-27T10:00:00Z"), 0, 1),
                msg_at(PLACED("e1", "o1", "11", "2026-11-27T10:00:00Z"), 0, 2),
                msg_at("{\"id\":", 0, 3),
                msg_at("nope", 0, 4),
                msg_at(NULL, 0, 5),
        };
        of_store_pos pos = {"orders", 0, 6};
        of_store_stats stats = {0};
        char errstr[512];
        int i;

        assert_int_equal(of_store_apply_batch(f->st, m, 6, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        /* Delivered again at the same offsets: no new dead letter. */
        assert_int_equal(of_store_apply_batch(f->st, m, 6, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        assert_int_equal(stats.dead, 5);
        for (i = 0; i < OF_REASON_COUNT; i++) {
                const char *p = of_event_reason_phrase(i);
                uint64_t want = !strcmp(p, OF_REASON_JSON)         ? 2
                                : !strcmp(p, OF_REASON_DUP_PLACED) ? 1
                                : !strcmp(p, OF_REASON_CONFLICT)   ? 1
                                : !strcmp(p, OF_REASON_NO_VALUE)   ? 1
                                                                   : 0;

                if (stats.dead_by_reason[i] != want)
                        fail_msg("%s: %llu dead letters, expected %llu", p,
                                 (unsigned long long)stats.dead_by_reason[i],
                                 (unsigned long long)want);
        }
}

static void test_store_offsets_never_go_back(void **state)
{
        fixture *f = *state;
        of_store_pos pos = {"orders", 3, 100};
        of_store_stats stats = {0};
        char errstr[512];
        int64_t next = -1;

        assert_int_equal(of_store_offset(&next, f->st, "orders", 3, errstr,
                                         sizeof(errstr)),
                         OF_ENOTFOUND);
        assert_int_equal(of_store_apply_batch(f->st, NULL, 0, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        pos.next_offset = 50;
        assert_int_equal(of_store_apply_batch(f->st, NULL, 0, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        assert_int_equal(of_store_offset(&next, f->st, "orders", 3, errstr,
                                         sizeof(errstr)),
                         0);
        assert_int_equal(next, 100);
}

typedef struct locker {
        const char *path;
        int hold_ms;
        int locked; /* set once the lock is held */
} locker;

static void *hold_write_lock(void *arg)
{
        locker *l = arg;
        sqlite3 *db;

        db = tu_db_open(l->path, 0);
        assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                         SQLITE_OK);
        __atomic_store_n(&l->locked, 1, __ATOMIC_SEQ_CST);
        usleep((useconds_t)l->hold_ms * 1000);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(db);
        return NULL;
}

static void test_store_busy_file_rolls_back_and_can_retry(void **state)
{
        fixture *f = *state;
        locker l = {f->path, 600, 0};
        pthread_t th;
        const char *v = PLACED("e1", "o1", "3", "2026-11-27T10:00:00Z");
        of_msg m = msg_at(v, 0, 0);
        of_store_pos pos = {"orders", 0, 1};
        of_store_stats stats = {0};
        char errstr[512];
        int64_t next;

        of_store_set_busy_timeout(f->st, 50);
        assert_int_equal(pthread_create(&th, NULL, hold_write_lock, &l), 0);
        while (!__atomic_load_n(&l.locked, __ATOMIC_SEQ_CST))
                usleep(1000);
        assert_int_equal(of_store_apply_batch(f->st, &m, 1, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         OF_EBUSY);
        assert_int_equal(stats.batches, 0);
        pthread_join(th, NULL);
        assert_int_equal(of_store_offset(&next, f->st, "orders", 0, errstr,
                                         sizeof(errstr)),
                         OF_ENOTFOUND);
        assert_int_equal(of_store_apply_batch(f->st, &m, 1, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        assert_string_equal(q(f, "SELECT placed_amount FROM order_totals"),
                            "3");
}

static void test_store_newer_schema_is_refused(void **state)
{
        fixture *f = *state;
        of_store *st2 = NULL;
        char errstr[512];

        assert_int_equal(sqlite3_exec(f->db,
                                      "UPDATE schema_info SET "
                                      "schema_version = 99",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(of_store_open(&st2, f->path, errstr, sizeof(errstr)),
                         OF_ERROR);
        assert_non_null(strstr(errstr, "schema version 99"));
        assert_null(st2);
}

static void test_store_not_a_database_is_an_error(void **state)
{
        fixture *f = *state;
        of_store *st2 = NULL;
        char errstr[512], path[600];
        FILE *fp;

        snprintf(path, sizeof(path), "%s.bad", f->path);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("this is not a database, not even close; it is just text that "
              "goes on for a while to fill a header\n",
              fp);
        fclose(fp);
        assert_int_equal(of_store_open(&st2, path, errstr, sizeof(errstr)),
                         OF_ERROR);
        assert_non_null(strstr(errstr, path));
        unlink(path);
}

static void test_store_refuses_an_application_database(void **state)
{
        fixture *f = *state;
        of_store *st2 = NULL;
        char errstr[512], path[600];
        sqlite3 *db;

        snprintf(path, sizeof(path), "%s.app", f->path);
        db = tu_db_open(path, 0);
        assert_int_equal(sqlite3_exec(db, "CREATE TABLE outbox_messages (x)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(of_store_open(&st2, path, errstr, sizeof(errstr)),
                         OF_ERROR);
        assert_non_null(strstr(errstr, "an application database, not a "
                                       "read model"));
        /* Nothing of the read model was added to it. */
        db = tu_db_open(path, 0);
        assert_int_equal(
                sqlite3_exec(db, "SELECT * FROM order_list", NULL, NULL, NULL),
                SQLITE_ERROR);
        sqlite3_close(db);
        unlink(path);
}

/* Values of tens of MiB: a valid event with a 24 MiB unknown member is
 * applied, a 24 MiB malformed value is a dead letter holding every byte. */
static void test_store_values_of_tens_of_mib(void **state)
{
        fixture *f = *state;
        const size_t big = 24u << 20;
        static const char head[] =
                "{\"id\":\"e-big\",\"type\":\"OrderPlaced\",\"aggregateId\":"
                "\"o-big\",\"occurredAt\":\"2026-11-27T10:00:00Z\","
                "\"payload\":{\"orderId\":\"o-big\",\"total\":7},\"x\":\"";
        char *valid = malloc(sizeof(head) + big + 2), *bad = malloc(big);
        of_msg m[2];
        of_store_pos pos = {"orders", 3, 2};
        of_store_stats stats = {0};
        char errstr[512];
        size_t n = sizeof(head) - 1;

        assert_non_null(valid);
        assert_non_null(bad);
        memcpy(valid, head, n);
        memset(valid + n, 'v', big);
        memcpy(valid + n + big, "\"}", 2);
        memset(bad, '{', big);
        m[0] = (of_msg){.topic = "orders",
                        .partition = 3,
                        .offset = 0,
                        .value = valid,
                        .value_len = n + big + 2};
        m[1] = (of_msg){.topic = "orders",
                        .partition = 3,
                        .offset = 1,
                        .value = bad,
                        .value_len = big};
        assert_int_equal(of_store_apply_batch(f->st, m, 2, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        assert_int_equal(stats.applied, 1);
        assert_int_equal(stats.dead, 1);
        assert_string_equal(q(f, "SELECT total FROM order_list WHERE"
                                 " order_id = 'o-big'"),
                            "7");
        /* every byte kept: 24 MiB of '{' and nothing else */
        assert_string_equal(q(f, "SELECT typeof(value) = 'blob' AND"
                                 " length(value) = 25165824 AND length("
                                 "replace(CAST(value AS TEXT), '{', ''))"
                                 " = 0 FROM dead_letters"),
                            "1");
        free(valid);
        free(bad);
}

static void reopen(fixture *f)
{
        char errstr[512];

        of_store_close(f->st);
        assert_int_equal(
                of_store_open(&f->st, f->path, errstr, sizeof(errstr)), 0);
}

/* Ids sealed into runs are still found: by the same store, after a
 * reopen (filters read back from the file), and through the view. */
static void test_store_sealed_ids_are_still_known(void **state)
{
        fixture *f = *state;
        const char *b1[] = {
                PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z"),
                PLACED("e2", "o2", "20", "2026-11-27T10:00:00Z"),
        };
        const char *b2[] = {
                PAID("e3", "o1", "10", "2026-11-28T10:00:00Z"),
        };
        const char *again[] = {
                PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z"),
                PAID("e3", "o1", "10", "2026-11-28T10:00:00Z"),
                PLACED("e2", "o2", "21", "2026-11-27T10:00:00Z"),
        };

        of_store_set_seal_events(f->st, 1);
        assert_int_equal(apply(f, b1, 2), 0);
        assert_int_equal(apply(f, b2, 1), 0);
        /* sealed before the second batch: e1, e2 in run 1, e3 recent */
        assert_string_equal(q(f, "SELECT group_concat(run || ':' || events)"
                                 " FROM processed_runs"),
                            "1:2");
        assert_string_equal(q(f, "SELECT event_id FROM processed_recent"),
                            "e3");
        assert_string_equal(q(f, "SELECT group_concat(event_id) FROM (SELECT"
                                 " event_id FROM processed_events ORDER BY"
                                 " 1)"),
                            "e1,e2,e3");
        assert_int_equal(apply(f, again, 3), 0);
        reopen(f);
        assert_int_equal(apply(f, again, 3), 0);
        /* Duplicates changed nothing; the disagreeing e2 is a conflict
         * both times, found in a run each time. */
        assert_string_equal(q(f, "SELECT placed_amount || ',' || paid_amount"
                                 " FROM order_totals"),
                            "30,10");
        assert_string_equal(q(f, "SELECT count(*) || ' ' || min(reason) FROM"
                                 " dead_letters"),
                            "2 conflict: event e2 was applied with another"
                            " payload.total");
        assert_string_equal(q(f, "SELECT count(*) FROM processed_events"),
                            "3");
}

/* Two projectors on one file (failover): runs sealed by one are seen by
 * the other before its next batch, so an id in them is still known. */
static void test_store_sees_runs_sealed_by_another(void **state)
{
        fixture *f = *state;
        of_store *other = NULL;
        of_store_stats stats = {0};
        of_store_pos pos = {"orders", 1, 3};
        char errstr[512];
        const char *b1[] = {
                PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z"),
                PLACED("e2", "o2", "20", "2026-11-27T10:00:00Z"),
        };
        const char *b2[] = {
                PAID("e3", "o1", "10", "2026-11-27T10:00:00Z"),
        };
        of_msg again[2];

        /* the other is open (and has read the runs: none) before the seal */
        assert_int_equal(
                of_store_open(&other, f->path, errstr, sizeof(errstr)), 0);
        of_store_set_seal_events(f->st, 1);
        assert_int_equal(apply(f, b1, 2), 0);
        assert_int_equal(apply(f, b2, 1), 0); /* seals e1, e2 first */
        assert_string_equal(q(f, "SELECT count(*) FROM processed_runs"), "1");
        /* the other gets e1 and e2 again, at other offsets */
        again[0] = msg_at(b1[0], 1, 1);
        again[1] = msg_at(b1[1], 1, 2);
        assert_int_equal(of_store_apply_batch(other, again, 2, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        assert_int_equal(stats.duplicates, 2);
        assert_int_equal(stats.applied, 0);
        assert_string_equal(q(f, "SELECT placed_amount FROM order_totals"),
                            "30");
        assert_string_equal(q(f, "SELECT count(*) FROM processed_events"),
                            "3");
        of_store_close(other);
}

/* A rebuild copies a new model into the live file: a reader sees it whole,
 * and a store open on the live file gets OF_ESTALE for its next batch
 * (nothing of it applied), is then open on the new model, and applies
 * the batch again on top of it. The info counts what each file holds. */
static void test_store_replaced_file_is_noticed(void **state)
{
        fixture *f = *state;
        char *fresh_path = tu_tmp_path("fresh.db");
        of_store *fresh = NULL;
        of_store_info before, after;
        char errstr[512];
        int64_t next;
        const char *old[] = {
                PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z"),
                PLACED("e2", "o2", "20", "2026-11-27T10:00:00Z"),
        };
        const char *late[] = {
                PAID("e3", "o1", "10", "2026-11-28T10:00:00Z"),
        };
        of_msg m = msg_at(old[0], 0, 0);
        of_store_pos pos = {"orders", 0, 1};
        of_store_stats stats = {0};

        assert_int_equal(apply(f, old, 2), 0); /* offsets 0, 1 */
        assert_int_equal(of_store_info_read(&before, f->path, 1, errstr,
                                            sizeof(errstr)),
                         0);
        assert_int_equal(before.orders, 2);
        assert_int_equal(before.applied, 2);
        assert_int_equal(before.batches, 1);
        assert_int_equal((int)before.nparts, 1);
        assert_int_equal(before.parts[0].next_offset, 2);
        /* the new model: only offset 0 (a "fixed" replay up to 1) */
        assert_int_equal(
                of_store_open(&fresh, fresh_path, errstr, sizeof(errstr)), 0);
        assert_int_equal(of_store_set_rebuilt(fresh, "orders [9] gone", errstr,
                                              sizeof(errstr)),
                         0);
        assert_int_equal(of_store_apply_batch(fresh, &m, 1, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        of_store_close(fresh);
        assert_int_equal(of_store_replace(f->path, fresh_path, 5000, errstr,
                                          sizeof(errstr)),
                         0);
        assert_string_equal(q(f, "SELECT count(*) FROM order_list"), "1");
        assert_string_equal(q(f, "SELECT truncated FROM store_info"),
                            "orders [9] gone");
        assert_string_equal(q(f, "PRAGMA journal_mode"), "wal");
        /* the live store's next batch is refused, then it is on the new
         * model and resumes from its offset */
        assert_int_equal(apply(f, late, 1), OF_ESTALE);
        assert_string_equal(q(f, "SELECT count(*) FROM processed_events"),
                            "1");
        assert_int_equal(of_store_offset(&next, f->st, "orders", 0, errstr,
                                         sizeof(errstr)),
                         0);
        assert_int_equal(next, 1);
        f->next_offset = 1;
        assert_int_equal(apply(f, old + 1, 1), 0);
        assert_int_equal(apply(f, late, 1), 0);
        assert_int_equal(
                of_store_check_replaced(f->st, errstr, sizeof(errstr)), 0);
        assert_int_equal(
                of_store_info_read(&after, f->path, 1, errstr, sizeof(errstr)),
                0);
        assert_true(after.generation != before.generation);
        assert_int_equal(after.orders, 2);
        assert_int_equal(after.applied, 3);
        assert_int_equal(after.paid_amount, 10);
        assert_int_equal(after.placed_amount, 30);
        assert_int_equal(after.events, 3);
        assert_true(after.rebuilt_at[0] != '\0');
        of_store_info_free(&before);
        of_store_info_free(&after);
        tu_tmp_free(fresh_path);
}

/* Between batches, an idle store notices the swap too. */
static void test_store_idle_store_notices_replacement(void **state)
{
        fixture *f = *state;
        char *fresh_path = tu_tmp_path("fresh.db");
        of_store *fresh = NULL;
        char errstr[512];
        int64_t next;

        assert_int_equal(
                apply1(f, PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z")),
                0);
        assert_int_equal(
                of_store_check_replaced(f->st, errstr, sizeof(errstr)), 0);
        assert_int_equal(
                of_store_open(&fresh, fresh_path, errstr, sizeof(errstr)), 0);
        of_store_close(fresh);
        assert_int_equal(of_store_replace(f->path, fresh_path, 5000, errstr,
                                          sizeof(errstr)),
                         0);
        assert_int_equal(
                of_store_check_replaced(f->st, errstr, sizeof(errstr)),
                OF_ESTALE);
        assert_int_equal(of_store_offset(&next, f->st, "orders", 0, errstr,
                                         sizeof(errstr)),
                         OF_ENOTFOUND);
        assert_int_equal(
                of_store_check_replaced(f->st, errstr, sizeof(errstr)), 0);
        tu_tmp_free(fresh_path);
}

/* A file whose processed_events is the table of earlier versions: it
 * becomes processed_recent, and its ids stay known. */
static void test_store_migrates_a_processed_events_table(void **state)
{
        fixture *f = *state;
        const char *b1[] = {
                PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z"),
        };

        assert_int_equal(apply(f, b1, 1), 0);
        of_store_close(f->st);
        f->st = NULL;
        assert_int_equal(sqlite3_exec(f->db,
                                      "DROP VIEW processed_events;"
                                      " ALTER TABLE processed_recent RENAME"
                                      " TO processed_events;"
                                      " DROP TABLE processed_runs",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        reopen(f);
        assert_string_equal(q(f, "SELECT type FROM sqlite_master WHERE name ="
                                 " 'processed_events'"),
                            "view");
        assert_int_equal(apply(f, b1, 1), 0);
        assert_string_equal(q(f, "SELECT count(*) || ',' || min(event_id)"
                                 " FROM processed_events"),
                            "1,e1");
        assert_string_equal(q(f, "SELECT placed_amount FROM order_totals"),
                            "10");
}

/* A filter saved by another version is not trusted: it is rebuilt from
 * the run's ids. */
static void test_store_rebuilds_a_filter_of_another_version(void **state)
{
        fixture *f = *state;
        const char *b1[] = {
                PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z"),
        };

        of_store_set_seal_events(f->st, 1);
        assert_int_equal(apply(f, b1, 1), 0);
        assert_int_equal(sqlite3_exec(f->db,
                                      "UPDATE processed_runs SET"
                                      " filter_version = 0, filter ="
                                      " zeroblob(64)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        reopen(f);
        assert_int_equal(apply(f, b1, 1), 0);
        assert_string_equal(q(f, "SELECT placed_amount FROM order_totals"),
                            "10");
        assert_string_equal(q(f, "SELECT count(*) FROM processed_events"),
                            "1");
}

/* ---- dedupe retention ---- */

#define T0        1800000000000LL /* 2027-01-15, ms */
#define HOUR      3600000LL
#define OTHER(id) "{\"id\":\"" id "\",\"type\":\"OrderShipped\"}"

static int64_t test_clock(void *opaque)
{
        return *(const int64_t *)opaque;
}

static of_store_pruned prune(fixture *f, int64_t window_ms)
{
        of_store_pruned p;
        char errstr[512];

        if (of_store_prune(&p, f->st, window_ms, 0, errstr, sizeof(errstr)))
                fail_msg("prune: %s", errstr);
        return p;
}

/* The contract's sums, checked against order_list: "1" when they hold. */
static const char sums_hold[] =
        "SELECT (SELECT orders_placed FROM order_totals) ="
        " (SELECT count(placed_at) FROM order_list)"
        " AND (SELECT placed_amount FROM order_totals) ="
        " (SELECT ifnull(sum(total), 0) FROM order_list)"
        " AND (SELECT orders_paid FROM order_totals) ="
        " (SELECT count(paid_at) FROM order_list)"
        " AND (SELECT paid_amount FROM order_totals) ="
        " (SELECT ifnull(sum(paid_amount), 0) FROM order_list)"
        " AND (SELECT sum(placed_amount) FROM daily_totals) ="
        " (SELECT placed_amount FROM order_totals)";

/* Ids recorded longer ago than the window are forgotten with their run;
 * ids inside it are still deduplicated. A copy of a forgotten id counts
 * as new: an OrderPlaced then meets its order's OrderPlaced and is a dead
 * letter (the totals stay right), an event of another type is recorded
 * again. This is the trade-off docs/operations.md's dedupe retention
 * describes. */
static void test_store_prune_forgets_ids_older_than_the_window(void **state)
{
        fixture *f = *state;
        int64_t now = T0;
        of_store_pruned p;
        const char *b1[] = {
                PLACED("e1", "o1", "10", "2027-01-15T10:00:00Z"),
                OTHER("e2"),
        };
        const char *b2[] = {PAID("e3", "o1", "10", "2027-01-15T11:00:00Z")};
        const char *b3[] = {PLACED("e4", "o3", "30", "2027-01-15T11:00:00Z")};
        const char *b4[] = {PLACED("e5", "o4", "40", "2027-01-15T12:00:00Z")};
        const char *again[] = {b1[0], b1[1], b2[0], b3[0], b4[0]};

        of_store_set_clock(f->st, test_clock, &now);
        of_store_set_seal_events(f->st, 2);
        assert_int_equal(apply(f, b1, 2), 0);
        now = T0 + HOUR;
        assert_int_equal(apply(f, b2, 1), 0); /* run 1 = e1, e2 */
        assert_int_equal(apply(f, b3, 1), 0);
        now = T0 + 2 * HOUR;
        assert_int_equal(apply(f, b4, 1), 0); /* run 2 = e3, e4 */
        assert_string_equal(q(f, "SELECT group_concat(run || ':' ||"
                                 " ((sealed_at - 1800000000000) / 3600000))"
                                 " FROM processed_runs"),
                            "1:1,2:2");

        /* at 2 h nothing is older than a 1 h window yet */
        p = prune(f, HOUR);
        assert_int_equal(p.runs, 0);
        assert_int_equal(p.sealed, 0);
        /* 1 ms later run 1 (sealed at 1 h) is; run 2 is not, and
         * processed_recent (since 2 h) is younger than 1 h / 4 */
        now++;
        p = prune(f, HOUR);
        assert_int_equal(p.runs, 1);
        assert_int_equal(p.events, 2);
        assert_int_equal(p.sealed, 0);
        assert_string_equal(q(f, "SELECT group_concat(run) FROM"
                                 " processed_runs"),
                            "2");
        assert_string_equal(q(f, "SELECT count(*) FROM sqlite_master WHERE"
                                 " name = 'processed_run_1'"),
                            "0");
        assert_string_equal(q(f, "SELECT group_concat(event_id) FROM (SELECT"
                                 " event_id FROM processed_events ORDER BY"
                                 " 1)"),
                            "e3,e4,e5");

        /* every copy again, at new offsets */
        assert_int_equal(apply(f, again, 5), 0);
        assert_string_equal(q(f, "SELECT count(*) || ' ' || min(reason) FROM"
                                 " dead_letters"),
                            "1 duplicate OrderPlaced for order: o1");
        assert_string_equal(q(f, "SELECT group_concat(event_id) FROM (SELECT"
                                 " event_id FROM processed_events ORDER BY"
                                 " 1)"),
                            "e2,e3,e4,e5");
        assert_string_equal(q(f, "SELECT orders_placed || ',' ||"
                                 " placed_amount || ',' || paid_amount"
                                 " FROM order_totals"),
                            "3,80,10");
        assert_string_equal(q(f, sums_hold), "1");
}

/* processed_recent is sealed once its first row is a quarter of the
 * window old, so that under little traffic no id stays for ever; the run
 * is then dropped a window after that. */
static void test_store_prune_seals_recent_ids_by_age(void **state)
{
        fixture *f = *state;
        int64_t now = T0;
        of_store_pruned p;
        const char *b1[] = {PLACED("e1", "o1", "10", "2027-01-15T10:00:00Z")};

        of_store_set_clock(f->st, test_clock, &now);
        prune(f, 4 * HOUR); /* nothing recorded: nothing to do */
        assert_string_equal(q(f, "SELECT since_ms FROM"
                                 " processed_recent_since"),
                            "NULL");
        assert_int_equal(apply(f, b1, 1), 0);
        now = T0 + HOUR - 1;
        p = prune(f, 4 * HOUR);
        assert_int_equal(p.sealed, 0);
        now = T0 + HOUR;
        p = prune(f, 4 * HOUR);
        assert_int_equal(p.sealed, 1);
        assert_int_equal(p.runs, 0);
        assert_string_equal(q(f, "SELECT (sealed_at - 1800000000000) ||"
                                 " ',' || events FROM processed_runs"),
                            "3600000,1");
        assert_string_equal(q(f, "SELECT since_ms FROM"
                                 " processed_recent_since"),
                            "NULL");
        now = T0 + 5 * HOUR;
        p = prune(f, 4 * HOUR);
        assert_int_equal(p.runs, 0);
        now++;
        p = prune(f, 4 * HOUR);
        assert_int_equal(p.runs, 1);
        assert_int_equal(p.sealed, 0);
        assert_string_equal(q(f, "SELECT count(*) FROM processed_events"),
                            "0");
        assert_string_equal(q(f, "SELECT count(*) FROM processed_runs"), "0");
        /* a copy within the window after that is still a duplicate */
        assert_int_equal(
                apply1(f, PLACED("e2", "o2", "20", "2027-01-15T10:00:00Z")),
                0);
        assert_int_equal(
                apply1(f, PLACED("e2", "o2", "20", "2027-01-15T10:00:00Z")),
                0);
        assert_string_equal(q(f, "SELECT count(*) FROM dead_letters"), "0");
        assert_string_equal(q(f, "SELECT placed_amount FROM order_totals"),
                            "30");
        assert_string_equal(q(f, sums_hold), "1");
}

/* Two projectors on one file: runs dropped by one are gone for the other
 * at its next batch (no error, no statement on a dropped table), ids of
 * the runs kept are still known to it, and it can seal and prune in turn.
 */
static void test_store_sees_runs_dropped_by_another(void **state)
{
        fixture *f = *state;
        of_store *other = NULL;
        of_store_stats stats = {0};
        of_store_pos pos = {"orders", 1, 3};
        of_store_pruned p;
        int64_t now = T0;
        char errstr[512];
        const char *b[] = {
                PLACED("e1", "o1", "10", "2027-01-15T10:00:00Z"),
                PLACED("e2", "o2", "20", "2027-01-15T10:00:00Z"),
                PLACED("e3", "o3", "30", "2027-01-15T10:00:00Z"),
        };
        of_msg again[3];
        size_t i;

        assert_int_equal(
                of_store_open(&other, f->path, errstr, sizeof(errstr)), 0);
        of_store_set_clock(f->st, test_clock, &now);
        of_store_set_clock(other, test_clock, &now);
        of_store_set_seal_events(f->st, 1);
        of_store_set_seal_events(other, 1);
        for (i = 0; i < 3; i++) { /* runs 1 (e1), 2 (e2); e3 recent */
                now = T0 + (int64_t)i * HOUR;
                assert_int_equal(apply1(f, b[i]), 0);
        }
        /* the other reads the three runs' worth in a batch of its own */
        for (i = 0; i < 3; i++)
                again[i] = msg_at(b[i], 1, (int64_t)i);
        assert_int_equal(of_store_apply_batch(other, again, 3, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        assert_int_equal(stats.duplicates, 3);
        /* f drops run 1 (sealed at 1 h), keeps run 2 (at 2 h) */
        now = T0 + 3 * HOUR;
        p = prune(f, 90 * 60000);
        assert_int_equal(p.runs, 1);
        memset(&stats, 0, sizeof(stats));
        pos.next_offset = 6;
        for (i = 0; i < 3; i++)
                again[i] = msg_at(b[i], 1, 3 + (int64_t)i);
        if (of_store_apply_batch(other, again, 3, &pos, 1, &stats, errstr,
                                 sizeof(errstr)))
                fail_msg("other: %s", errstr);
        /* e1 forgotten: its copy meets o1's OrderPlaced, a dead letter */
        assert_int_equal(stats.duplicates, 2);
        assert_int_equal(stats.dead, 1);
        /* the other prunes what is left, f goes on */
        now = T0 + 10 * HOUR;
        if (of_store_prune(&p, other, HOUR, 1, errstr, sizeof(errstr)))
                fail_msg("other prune: %s", errstr);
        assert_int_equal(p.runs, 1); /* at most 1: run 2 */
        assert_int_equal(p.more, 1);
        if (of_store_prune(&p, other, HOUR, 1, errstr, sizeof(errstr)))
                fail_msg("other prune: %s", errstr);
        assert_int_equal(p.runs, 1); /* run 3: e3 (e1 was a dead letter) */
        assert_int_equal(p.more, 0);
        assert_int_equal(p.sealed, 0);
        assert_string_equal(q(f, "SELECT count(*) FROM processed_runs"), "0");
        assert_int_equal(
                apply1(f, PLACED("e4", "o4", "40", "2027-01-15T10:00:00Z")),
                0);
        assert_int_equal(
                apply1(f, PLACED("e4", "o4", "40", "2027-01-15T10:00:00Z")),
                0);
        assert_string_equal(q(f, "SELECT group_concat(event_id) FROM"
                                 " processed_events"),
                            "e4");
        assert_string_equal(q(f, "SELECT placed_amount FROM order_totals"),
                            "100");
        assert_string_equal(q(f, sums_hold), "1");
        of_store_close(other);
}

/* A file from before dedupe retention: its runs and processed_recent get
 * the time of the migration (later than the truth: kept longer, never
 * shorter). */
static void test_store_migrates_runs_without_sealed_at(void **state)
{
        fixture *f = *state;
        int64_t before = (int64_t)time(NULL) * 1000;

        of_store_set_seal_events(f->st, 1);
        assert_int_equal(
                apply1(f, PLACED("e1", "o1", "10", "2026-11-27T10:00:00Z")),
                0);
        assert_int_equal(
                apply1(f, PLACED("e2", "o2", "20", "2026-11-27T10:00:00Z")),
                0);
        of_store_close(f->st);
        f->st = NULL;
        if (sqlite3_exec(f->db,
                         "ALTER TABLE processed_runs DROP COLUMN sealed_at;"
                         " DROP TABLE processed_recent_since",
                         NULL, NULL, NULL) != SQLITE_OK)
                fail_msg("%s", sqlite3_errmsg(f->db));
        reopen(f);
        assert_string_equal(q(f, "SELECT count(*) FROM processed_runs WHERE"
                                 " sealed_at IS NULL"),
                            "0");
        assert_int_equal(atoll(q(f, "SELECT min(sealed_at) FROM"
                                    " processed_runs")) >= before,
                         1);
        assert_int_equal(atoll(q(f, "SELECT since_ms FROM"
                                    " processed_recent_since")) >= before,
                         1);
        /* a window of an hour keeps them all */
        assert_int_equal(prune(f, HOUR).runs, 0);
        assert_string_equal(q(f, "SELECT count(*) FROM processed_events"),
                            "2");
}

/* Whether a file's offsets fit the topic (2026-12: a read model ahead of
 * a topic deleted and created again went unnoticed): a table of files'
 * offsets against the topic as the brokers have it. */
static void test_store_check_fit_table(void **state)
{
        static of_store_part parts[][3] = {
                {{"orders", 0, 10}, {"orders", 1, 5}, {NULL, 0, 0}},
                {{"orders", 0, 10}, {"other", 1, 5}, {NULL, 0, 0}},
                {{"other", 0, 10}, {NULL, 0, 0}, {NULL, 0, 0}},
                {{"orders", 0, 10}, {"orders", 3, 5}, {"orders", 5, 1}},
                {{"orders", 0, 11}, {"orders", 1, 6}, {NULL, 0, 0}},
        };
        static const int64_t ends[] = {10, 5, 0, 0};
        static const int64_t unknown[] = {-1, 6, -1, -1};
        static const struct {
                int file; /* parts[file] */
                size_t n;
                int32_t cnt;        /* partitions of the topic; -1 unknown */
                const int64_t *end; /* NULL: not checked */
                of_store_fit want;
                const char *why; /* a part of the line */
        } cases[] = {
                {0, 2, 4, ends, OF_FIT_OK, ""},
                {0, 0, 4, ends, OF_FIT_OK, ""}, /* an empty model */
                {1, 2, 4, ends, OF_FIT_OTHER_TOPIC,
                 "holds offsets of topic other, not of orders alone"},
                {2, 1, 4, ends, OF_FIT_OTHER_TOPIC,
                 "holds offsets of topic other, not of orders (a wrong"},
                {3, 3, 4, ends, OF_FIT_MISSING,
                 "partition(s) [5] of topic orders, which has 4"},
                {3, 3, 3, ends, OF_FIT_MISSING, "[3], [5] of topic orders"},
                {3, 3, -1, NULL, OF_FIT_OK, ""}, /* nothing known */
                {4, 2, 4, ends, OF_FIT_AHEAD,
                 "ahead of topic orders: [0] next offset 11, end 10, [1] "
                 "next offset 6, end 5 (the topic was deleted"},
                {4, 2, 4, NULL, OF_FIT_OK, ""},     /* ends not checked */
                {4, 2, -1, unknown, OF_FIT_OK, ""}, /* [0] unknown */
        };
        char why[900];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                why[0] = '\0';
                assert_int_equal(of_store_check_fit(parts[cases[i].file],
                                                    cases[i].n, "orders",
                                                    cases[i].cnt, cases[i].end,
                                                    why, sizeof(why)),
                                 cases[i].want);
                if (!strstr(why, cases[i].why))
                        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why,
                                 cases[i].why);
        }
}

/* Until 2026-12-02 a SQLite file of another program got the read model's
 * tables and WAL mode added, and the projector ran on it. Now it is
 * refused before anything is written, read-only opens included. */
static void test_store_refuses_a_database_of_another_program(void **state)
{
        fixture *f = *state;
        of_store *st2 = NULL;
        of_cursor *cur = NULL;
        of_store_info info;
        char errstr[512], path[600], want[800], *before, *after;
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
                 "%s: a database of another program (table users), not a "
                 "read model",
                 path);

        assert_int_equal(of_store_open(&st2, path, errstr, sizeof(errstr)),
                         OF_ERROR);
        assert_null(st2);
        assert_string_equal(errstr, want);
        assert_int_not_equal(of_store_cursor_open(&cur, path, "order_totals",
                                                  errstr, sizeof(errstr)),
                             0);
        assert_string_equal(errstr, want);
        assert_int_not_equal(
                of_store_info_read(&info, path, 0, errstr, sizeof(errstr)), 0);
        assert_string_equal(errstr, want);
        /* Byte for byte as it was: no table, no WAL mode (header). */
        after = tu_read_file(path, &n2);
        assert_true(n2 == n && !memcmp(before, after, n));
        free(before);
        free(after);
        snprintf(path, sizeof(path), "%s.other-wal", f->path);
        assert_int_equal(access(path, F_OK), -1);
}

static void
test_store_read_only_open_refuses_an_application_database(void **state)
{
        fixture *f = *state;
        of_cursor *cur = NULL;
        char errstr[512], path[600], want[800];
        sqlite3 *db;

        snprintf(path, sizeof(path), "%s.app", f->path);
        db = tu_db_open(path, 0);
        assert_int_equal(sqlite3_exec(db, "CREATE TABLE outbox_messages (x)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        assert_int_not_equal(of_store_cursor_open(&cur, path, "order_list",
                                                  errstr, sizeof(errstr)),
                             0);
        snprintf(want, sizeof(want),
                 "%s: an application database, not a read model", path);
        assert_string_equal(errstr, want);
}

/* An empty file is a new read model; SQLite's own tables (ANALYZE's
 * sqlite_stat1) do not make a file foreign. */
static void test_store_opens_an_empty_file_and_one_analyzed(void **state)
{
        fixture *f = *state;
        of_store *st2 = NULL;
        char errstr[512], path[600];
        FILE *fp;

        snprintf(path, sizeof(path), "%s.empty", f->path);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fclose(fp);
        assert_int_equal(of_store_open(&st2, path, errstr, sizeof(errstr)), 0);
        of_store_close(st2);
        assert_int_equal(sqlite3_exec(f->db, "ANALYZE", NULL, NULL, NULL),
                         SQLITE_OK);
        assert_string_equal(q(f, "SELECT count(*) FROM sqlite_master WHERE"
                                 " name = 'sqlite_stat1'"),
                            "1");
        assert_int_equal(of_store_open(&st2, f->path, errstr, sizeof(errstr)),
                         0);
        of_store_close(st2);
}

/* Until 2026-12-02 the last connection to close removed the -wal and -shm,
 * and a reader who may not create them (no write access to the folder)
 * could not read the file until a projector ran again. */
static void test_store_keeps_wal_and_shm_when_closed(void **state)
{
        fixture *f = *state;
        of_store *st2 = NULL;
        char errstr[512], path[600], side[700];
        struct stat sb;

        snprintf(path, sizeof(path), "%s.kept", f->path);
        assert_int_equal(of_store_open(&st2, path, errstr, sizeof(errstr)), 0);
        of_store_close(st2);
        snprintf(side, sizeof(side), "%s-shm", path);
        assert_int_equal(access(side, F_OK), 0);
        /* The WAL stays, checkpointed and empty: the file alone is
         * the whole model. */
        snprintf(side, sizeof(side), "%s-wal", path);
        assert_int_equal(stat(side, &sb), 0);
        assert_int_equal(sb.st_size, 0);
}

/* Until 2026-12-02 an I/O error was OF_EBUSY, which the projector retried
 * for ever. Now it is OF_EIO (a few retries, then exit 1); the batch
 * rolled back applies whole once the disk works again. */
static void test_store_io_error_is_eio_and_the_batch_can_go_again(void **state)
{
        fixture *f = *state;
        const char *v = PLACED("e1", "o1", "3", "2026-11-27T10:00:00Z");
        of_msg m = msg_at(v, 0, 0);
        of_store_pos pos = {"orders", 0, 1};
        of_store_stats stats = {0};
        char errstr[512], wal[600];
        struct stat sb;
        int err;

        snprintf(wal, sizeof(wal), "%s-wal", f->path);
        assert_int_equal(stat(wal, &sb), 0);
        /* The WAL cannot grow: the batch's commit fails to write. */
        tu_file_size_limit((rlim_t)sb.st_size);
        err = of_store_apply_batch(f->st, &m, 1, &pos, 1, &stats, errstr,
                                   sizeof(errstr));
        tu_file_size_limit(0);
        assert_int_equal(err, OF_EIO);
        assert_non_null(strstr(errstr, "disk I/O error"));
        assert_int_equal(stats.batches, 0);
        assert_string_equal(q(f, "SELECT count(*) FROM processed_events"),
                            "0");
        assert_int_equal(of_store_apply_batch(f->st, &m, 1, &pos, 1, &stats,
                                              errstr, sizeof(errstr)),
                         0);
        assert_string_equal(q(f, "SELECT placed_amount FROM order_totals"),
                            "3");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_store_new_file_has_schema_and_zero_totals),
                T(test_store_reopen_keeps_data),
                T(test_store_placed_then_paid_projects_everything),
                T(test_store_paid_before_placed_stays_paid),
                T(test_store_same_event_twice_is_noop),
                T(test_store_same_id_other_body_is_conflict),
                T(test_store_second_placed_for_order_is_dead),
                T(test_store_other_type_is_recorded_only),
                T(test_store_malformed_is_dead_letter_with_exact_bytes),
                T(test_store_counts_dead_letters_by_reason_phrase),
                T(test_store_offsets_never_go_back),
                T(test_store_busy_file_rolls_back_and_can_retry),
                T(test_store_newer_schema_is_refused),
                T(test_store_sealed_ids_are_still_known),
                T(test_store_sees_runs_sealed_by_another),
                T(test_store_replaced_file_is_noticed),
                T(test_store_idle_store_notices_replacement),
                T(test_store_values_of_tens_of_mib),
                T(test_store_migrates_a_processed_events_table),
                T(test_store_rebuilds_a_filter_of_another_version),
                T(test_store_not_a_database_is_an_error),
                T(test_store_refuses_an_application_database),
                T(test_store_prune_forgets_ids_older_than_the_window),
                T(test_store_prune_seals_recent_ids_by_age),
                T(test_store_sees_runs_dropped_by_another),
                T(test_store_migrates_runs_without_sealed_at),
                cmocka_unit_test(test_store_check_fit_table),
                T(test_store_refuses_a_database_of_another_program),
                T(test_store_read_only_open_refuses_an_application_database),
                T(test_store_opens_an_empty_file_and_one_analyzed),
                T(test_store_keeps_wal_and_shm_when_closed),
                T(test_store_io_error_is_eio_and_the_batch_can_go_again),
        };

        return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
