/* The embedded broker: librdkafka's mock cluster, hosted by a producer
 * handle that never produces. It listens on loopback ports the OS picks;
 * serving until a signal is cmd_broker.c's business. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

/* The mock cluster's sockets keep Nagle's algorithm on: a response
 * written while the one before is not acknowledged yet waits for the
 * client's delayed ACK, 40 ms on Linux, and a producer with messages for
 * two partitions of one broker got its second report that much later.
 * Kafka's brokers set TCP_NODELAY on their connections; the mock's
 * listening sockets get it here (an accepted connection inherits it), found
 * among the process's descriptors since the mock does not hand them out. A
 * descriptor that is not a listening TCP socket is left alone. */
static void nodelay_listeners(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;

        if (!d)
                return;
        while ((e = readdir(d))) {
                int fd = atoi(e->d_name), on = 1, v = 0;
                socklen_t len = sizeof(v);

                if (fd <= 2 || fd == dirfd(d))
                        continue;
                if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) || !v)
                        continue;
                len = sizeof(v);
                if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) ||
                    v != IPPROTO_TCP)
                        continue;
                if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)))
                        of_log(OF_LOG_DEBUG, "TCP_NODELAY on %d: %s", fd,
                               strerror(errno));
        }
        closedir(d);
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
        nodelay_listeners();
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

/* ---- fault injection: one command a line ---- */

/* Request types a command may name (Kafka protocol ApiKeys). */
static const struct {
        const char *name;
        int16_t key;
} api_keys[] = {
        {"Produce", 0},          {"Fetch", 1},        {"ListOffsets", 2},
        {"Metadata", 3},         {"OffsetCommit", 8}, {"OffsetFetch", 9},
        {"FindCoordinator", 10}, {"JoinGroup", 11},   {"Heartbeat", 12},
        {"LeaveGroup", 13},      {"SyncGroup", 14},   {"ApiVersions", 18},
        {"InitProducerId", 22},
};

#define CONTROL_MAX_ERRORS 1000 /* errors one "errors" command may push */

static int parse_long(long *out, const char *s, long lo, long hi)
{
        char *end;

        errno = 0;
        *out = strtol(s, &end, 10);
        return (s[0] && !*end && !errno && *out >= lo && *out <= hi) ? 0 : -1;
}

/* An error by its name without the RD_KAFKA_RESP_ERR_ prefix
 * ("NOT_LEADER_FOR_PARTITION", "_TRANSPORT") or its number. */
static int parse_err(rd_kafka_resp_err_t *out, const char *s)
{
        const struct rd_kafka_err_desc *descs;
        size_t i, cnt;
        long n;

        if (parse_long(&n, s, -200, 200) == 0) {
                *out = (rd_kafka_resp_err_t)n;
                return 0;
        }
        rd_kafka_get_err_descs(&descs, &cnt);
        for (i = 0; i < cnt; i++) {
                if (descs[i].name && strcmp(descs[i].name, s) == 0) {
                        *out = descs[i].code;
                        return 0;
                }
        }
        return -1;
}

static int parse_api(int16_t *out, const char *s)
{
        size_t i;
        long n;

        for (i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++) {
                if (strcmp(api_keys[i].name, s) == 0) {
                        *out = api_keys[i].key;
                        return 0;
                }
        }
        if (parse_long(&n, s, 0, INT16_MAX) != 0)
                return -1;
        *out = (int16_t)n;
        return 0;
}

static int broker_id(int32_t *out, const char *s)
{
        long n;

        if (strcmp(s, "all") == 0) {
                *out = -1;
                return 0;
        }
        if (parse_long(&n, s, 1, INT32_MAX) != 0)
                return -1;
        *out = (int32_t)n;
        return 0;
}

int of_broker_control(of_broker *b, const char *line, char *errstr,
                      size_t errstr_size)
{
        char buf[512], *arg[5], *save = NULL, *w;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR, e;
        rd_kafka_resp_err_t *errs;
        int argc = 0;
        int32_t id;
        int16_t api;
        long n, m;

        if (strlen(line) >= sizeof(buf))
                return of_errf(errstr, errstr_size, "line too long");
        strcpy(buf, line);
        for (w = strtok_r(buf, " \t\r\n", &save); w && argc < 5;
             w = strtok_r(NULL, " \t\r\n", &save))
                arg[argc++] = w;
        if (w)
                return of_errf(errstr, errstr_size, "too many words");
        if (argc == 0)
                return of_errf(errstr, errstr_size, "empty command");
        if ((strcmp(arg[0], "down") == 0 || strcmp(arg[0], "up") == 0) &&
            argc == 2) {
                if (broker_id(&id, arg[1]) != 0)
                        goto bad_broker;
                err = arg[0][0] == 'd'
                              ? rd_kafka_mock_broker_set_down(b->mcluster, id)
                              : rd_kafka_mock_broker_set_up(b->mcluster, id);
        } else if (strcmp(arg[0], "rtt") == 0 && argc == 3) {
                if (broker_id(&id, arg[1]) != 0)
                        goto bad_broker;
                if (parse_long(&n, arg[2], 0, 3600000) != 0)
                        return of_errf(errstr, errstr_size,
                                       "%s: not a delay in ms", arg[2]);
                err = rd_kafka_mock_broker_set_rtt(b->mcluster, id, (int)n);
        } else if (strcmp(arg[0], "errors") == 0 && argc == 4) {
                if (parse_api(&api, arg[1]) != 0)
                        return of_errf(errstr, errstr_size,
                                       "%s: not a request type", arg[1]);
                if (parse_long(&n, arg[2], 1, CONTROL_MAX_ERRORS) != 0)
                        return of_errf(errstr, errstr_size,
                                       "%s: not a count from 1 to %d", arg[2],
                                       CONTROL_MAX_ERRORS);
                if (parse_err(&e, arg[3]) != 0)
                        return of_errf(errstr, errstr_size,
                                       "%s: not an error name", arg[3]);
                errs = malloc((size_t)n * sizeof(*errs));
                if (!errs)
                        return of_errf(errstr, errstr_size, "out of memory");
                for (m = 0; m < n; m++)
                        errs[m] = e;
                rd_kafka_mock_push_request_errors_array(b->mcluster, api,
                                                        (size_t)n, errs);
                free(errs);
        } else if (strcmp(arg[0], "coordinator") == 0 && argc == 4) {
                if (strcmp(arg[1], "group") != 0 &&
                    strcmp(arg[1], "transaction") != 0)
                        return of_errf(errstr, errstr_size,
                                       "%s: not group or transaction", arg[1]);
                if (broker_id(&id, arg[3]) != 0 || id < 0)
                        goto bad_broker;
                err = rd_kafka_mock_coordinator_set(b->mcluster, arg[1],
                                                    arg[2], id);
        } else if (strcmp(arg[0], "leader") == 0 && argc == 4) {
                if (parse_long(&n, arg[2], 0, INT32_MAX) != 0)
                        return of_errf(errstr, errstr_size,
                                       "%s: not a partition", arg[2]);
                if (broker_id(&id, arg[3]) != 0)
                        goto bad_broker;
                err = rd_kafka_mock_partition_set_leader(b->mcluster, arg[1],
                                                         (int32_t)n, id);
        } else {
                return of_errf(errstr, errstr_size,
                               "unknown command or wrong number of words");
        }
        if (err)
                return of_errf(errstr, errstr_size, "%s",
                               rd_kafka_err2str(err));
        return 0;
bad_broker:
        return of_errf(errstr, errstr_size,
                       "not a broker id (1, 2, ... or all)");
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
