/* The broker of an integration test program: the embedded one (a mock
 * cluster of its own for each test), or, when OF_TEST_KAFKA holds a real
 * cluster's bootstrap list (tests/kafka/cases/integration.sh, run by
 * `make test-kafka`), that cluster, with the test's topic deleted and
 * created again empty for each test. Tests that inject faults through the
 * mock cluster ask tu_broker_mock() and skip on real Kafka. */
#ifndef ORDERFLOW_TU_BROKER_H
#define ORDERFLOW_TU_BROKER_H

#include <librdkafka/rdkafka.h>
#include <time.h>

#include "orderflow/broker.h"
#include "testutil.h"

typedef struct tu_broker {
        of_broker *mock;  /* the embedded broker, or NULL */
        const char *real; /* OF_TEST_KAFKA, or NULL */
} tu_broker;

static inline int64_t tu_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How many partitions topic has, each with a leader (-1: it does not
 * exist; 0: it exists, some partition has no leader yet). */
static inline int tu_topic_ready(rd_kafka_t *rk, const char *topic)
{
        const struct rd_kafka_metadata *md;
        int i, n = -1;

        if (rd_kafka_metadata(rk, 1, NULL, &md, 5000))
                return 0;
        for (i = 0; i < md->topic_cnt; i++) {
                const struct rd_kafka_metadata_topic *t = &md->topics[i];
                int p;

                if (strcmp(t->topic, topic))
                        continue;
                n = t->err ? 0 : t->partition_cnt;
                for (p = 0; p < t->partition_cnt; p++)
                        if (t->partitions[p].leader < 0)
                                n = 0;
        }
        rd_kafka_metadata_destroy(md);
        return n;
}

/* One admin request (delete: DeleteTopics, else CreateTopics) for topic;
 * its result's error for the topic. */
static inline rd_kafka_resp_err_t tu_admin(rd_kafka_t *rk, int delete,
                                           const char *topic, int partitions)
{
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_NewTopic_t *nt = NULL;
        rd_kafka_DeleteTopic_t *dt = NULL;
        rd_kafka_event_t *ev;
        const rd_kafka_topic_result_t **res;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        char errstr[256];
        size_t n = 0;

        if (delete) {
                dt = rd_kafka_DeleteTopic_new(topic);
                rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
        } else {
                nt = rd_kafka_NewTopic_new(topic, partitions, -1, errstr,
                                           sizeof(errstr));
                assert_non_null(nt);
                rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        }
        ev = rd_kafka_queue_poll(q, 15000);
        if (ev && rd_kafka_event_error(ev)) {
                err = rd_kafka_event_error(ev);
        } else if (ev) {
                res = delete ? rd_kafka_DeleteTopics_result_topics(
                                       rd_kafka_event_DeleteTopics_result(ev),
                                       &n)
                             : rd_kafka_CreateTopics_result_topics(
                                       rd_kafka_event_CreateTopics_result(ev),
                                       &n);
                err = n == 1 ? rd_kafka_topic_result_error(res[0])
                             : RD_KAFKA_RESP_ERR__FAIL;
        }
        if (ev)
                rd_kafka_event_destroy(ev);
        if (dt)
                rd_kafka_DeleteTopic_destroy(dt);
        if (nt)
                rd_kafka_NewTopic_destroy(nt);
        rd_kafka_queue_destroy(q);
        return err;
}

/* topic on the real cluster b->real, empty, with partitions partitions:
 * deleted (if there), then created, then every partition has a leader;
 * within 60 s. */
static inline void tu_topic_renew(const char *bootstraps, const char *topic,
                                  int partitions)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];
        rd_kafka_t *rk;
        int64_t deadline = tu_now_ms() + 60000;
        rd_kafka_resp_err_t err;

        assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                           bootstraps, errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
        assert_int_equal(rd_kafka_conf_set(conf, "allow.auto.create.topics",
                                           "false", errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        if (tu_topic_ready(rk, topic) != -1) {
                err = tu_admin(rk, 1, topic, 0);
                if (err && err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                        fail_msg("deleting %s: %s", topic,
                                 rd_kafka_err2str(err));
                while (tu_topic_ready(rk, topic) != -1 &&
                       tu_now_ms() < deadline)
                        usleep(100 * 1000);
        }
        /* A topic just deleted may still be "marked for deletion". */
        while ((err = tu_admin(rk, 0, topic, partitions)) &&
               err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS &&
               tu_now_ms() < deadline)
                usleep(200 * 1000);
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                fail_msg("creating %s: %s", topic, rd_kafka_err2str(err));
        while (tu_topic_ready(rk, topic) != partitions &&
               tu_now_ms() < deadline)
                usleep(100 * 1000);
        assert_int_equal(tu_topic_ready(rk, topic), partitions);
        rd_kafka_destroy(rk);
}

static inline void tu_broker_start(tu_broker *b, const char *topic,
                                   int partitions)
{
        char errstr[512];
        const char *real = getenv("OF_TEST_KAFKA");

        memset(b, 0, sizeof(*b));
        if (real && *real) {
                b->real = real;
                tu_topic_renew(real, topic, partitions);
                return;
        }
        if (of_broker_start(&b->mock, 1, topic, partitions, errstr,
                            sizeof(errstr)))
                fail_msg("embedded broker: %s", errstr);
}

static inline const char *tu_broker_bootstraps(const tu_broker *b)
{
        return b->real ? b->real : of_broker_bootstraps(b->mock);
}

/* A producer to the test's broker, librdkafka's defaults otherwise; the
 * caller flushes and destroys it. */
static inline rd_kafka_t *tu_producer(const tu_broker *b)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                           tu_broker_bootstraps(b), errstr,
                                           sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        return rk;
}

/* The mock cluster for fault injection; skips the test on real Kafka. */
static inline void *tu_broker_mock(tu_broker *b)
{
        if (!b->mock)
                skip();
        return of_broker_mock(b->mock);
}

static inline void tu_broker_stop(tu_broker *b)
{
        of_broker_stop(b->mock);
        b->mock = NULL;
}

#endif
