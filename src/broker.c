/* The embedded broker: librdkafka's mock cluster, hosted by a producer
 * handle that never produces. It listens on loopback ports the OS picks;
 * serving until a signal is cmd_broker.c's business. */
#include <assert.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "orderflow/broker.h"
#include "orderflow/error.h"
#include "orderflow/log.h"

struct of_broker {
        rd_kafka_t *rk;                    /* hosts the cluster */
        rd_kafka_mock_cluster_t *mcluster; /* owned, destroyed before rk */
};

/* The mock cluster logs through its host handle: keep librdkafka's
 * chatter (including "no bootstrap.servers") out of sight unless -v. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
        (void)rk;
        (void)level;
        of_log(OF_LOG_DEBUG, "rdkafka %s: %s", fac, buf);
}

int of_broker_start(of_broker **out, int broker_cnt, const char *topic,
                    int partitions, char *errstr, size_t errstr_size)
{
        of_broker *b = NULL;
        rd_kafka_conf_t *conf = NULL;
        char rkerr[512];
        int rc = OF_ERROR;

        assert(broker_cnt > 0);
        *out = NULL;
        b = calloc(1, sizeof(*b));
        if (!b)
                return of_errf(errstr, errstr_size, "out of memory");
        conf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(conf, log_cb);
        if (rd_kafka_conf_set(conf, "client.id", "orderflow-broker", rkerr,
                              sizeof(rkerr)) != RD_KAFKA_CONF_OK) {
                of_errf(errstr, errstr_size, "%s", rkerr);
                goto out;
        }
        b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rkerr, sizeof(rkerr));
        if (!b->rk) {
                of_errf(errstr, errstr_size, "%s", rkerr);
                goto out;
        }
        conf = NULL; /* owned by b->rk now */
        b->mcluster = rd_kafka_mock_cluster_new(b->rk, broker_cnt);
        if (!b->mcluster) {
                of_errf(errstr, errstr_size,
                        "could not start a mock cluster of %d broker(s)",
                        broker_cnt);
                goto out;
        }
        if (topic && of_broker_create_topic(b, topic, partitions, errstr,
                                            errstr_size) != 0)
                goto out;
        *out = b;
        b = NULL; /* owned by the caller now */
        rc = 0;
out:
        if (conf)
                rd_kafka_conf_destroy(conf);
        of_broker_stop(b);
        return rc;
}

const char *of_broker_bootstraps(const of_broker *b)
{
        return rd_kafka_mock_cluster_bootstraps(b->mcluster);
}

void *of_broker_mock(of_broker *b)
{
        return b->mcluster;
}

int of_broker_create_topic(of_broker *b, const char *topic, int partitions,
                           char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t err;

        assert(partitions > 0);
        /* Replication factor 1: every partition lives on one broker. */
        err = rd_kafka_mock_topic_create(b->mcluster, topic, partitions, 1);
        if (err)
                return of_errf(errstr, errstr_size, "topic %s: %s", topic,
                               rd_kafka_err2str(err));
        return 0;
}

void of_broker_stop(of_broker *b)
{
        if (!b)
                return;
        if (b->mcluster)
                rd_kafka_mock_cluster_destroy(b->mcluster);
        if (b->rk)
                rd_kafka_destroy(b->rk);
        free(b);
}
