/* Kafka client configuration shared by the projector, relay and tools:
 * our defaults first, then -X properties verbatim, so the user wins.
 * Polling, offsets and messages belong to the modules that use them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/error.h"
#include "orderflow/kafka.h"
#include "orderflow/log.h"

/* librdkafka's log, through ours: its syslog levels to our letters. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
        of_log_level ours = level <= LOG_ERR       ? OF_LOG_ERROR
                            : level <= LOG_WARNING ? OF_LOG_WARN
                            : level <= LOG_INFO    ? OF_LOG_INFO
                                                   : OF_LOG_DEBUG;

        /* librdkafka's notices are chatty; keep them for -v. */
        if (level == LOG_NOTICE)
                ours = OF_LOG_DEBUG;
        of_log(ours, "kafka %s: %s: %s", rk ? rd_kafka_name(rk) : "-", fac,
               buf);
}

/* For short-lived clients whose caller reports the outcome in one line:
 * librdkafka's connection failures on the way are for -v only. */
static void quiet_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
        (void)level;
        of_log(OF_LOG_DEBUG, "kafka %s: %s: %s", rk ? rd_kafka_name(rk) : "-",
               fac, buf);
}

int of_kafka_prop_is_secret(const char *prop)
{
        const char *eq = strchr(prop, '=');
        size_t n = eq ? (size_t)(eq - prop) : strlen(prop);
        char key[256];

        snprintf(key, sizeof(key), "%.*s", (int)n, prop);
        return strstr(key, "password") || strstr(key, "secret");
}

static int set_prop(rd_kafka_conf_t *conf, const char *prop, char *errstr,
                    size_t errstr_size)
{
        char key[256], why[512];
        const char *eq = strchr(prop, '=');

        if (!eq || eq == prop || (size_t)(eq - prop) >= sizeof(key))
                return of_errf(errstr, errstr_size,
                               "%s: expected key=value", prop);
        memcpy(key, prop, (size_t)(eq - prop));
        key[eq - prop] = '\0';
        if (rd_kafka_conf_set(conf, key, eq + 1, why, sizeof(why)) !=
            RD_KAFKA_CONF_OK)
                return of_errf(errstr, errstr_size, "-X %s: %s", key, why);
        return 0;
}

int of_kafka_conf_new(rd_kafka_conf_t **out, const of_kafka_opts *ko,
                      const char *const *defaults, char *errstr,
                      size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char why[512];
        size_t i;

        *out = NULL;
        rd_kafka_conf_set_log_cb(conf, log_cb);
        if (rd_kafka_conf_set(conf, "bootstrap.servers", ko->brokers, why,
                              sizeof(why)) != RD_KAFKA_CONF_OK) {
                of_errf(errstr, errstr_size, "--brokers: %s", why);
                goto fail;
        }
        for (i = 0; defaults && defaults[i]; i++)
                if (set_prop(conf, defaults[i], errstr, errstr_size))
                        goto fail;
        for (i = 0; i < ko->props_cnt; i++)
                if (set_prop(conf, ko->props[i], errstr, errstr_size))
                        goto fail;
        *out = conf;
        return 0;
fail:
        rd_kafka_conf_destroy(conf);
        return OF_ERROR;
}

int of_kafka_check_opts(const of_kafka_opts *ko, char *errstr,
                        size_t errstr_size)
{
        rd_kafka_conf_t *conf;

        if (of_kafka_conf_new(&conf, ko, NULL, errstr, errstr_size))
                return OF_ERROR;
        rd_kafka_conf_destroy(conf);
        return 0;
}

int of_kafka_watermarks(rd_kafka_t *rk, const char *topic, int timeout_ms,
                        int32_t *cnt, int64_t **low, int64_t **high,
                        char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err;
        int32_t i, n;
        int rc = OF_ERROR;

        *cnt = 0;
        *low = *high = NULL;
        if (!rkt)
                return of_errf(errstr, errstr_size, "topic %s: %s", topic,
                               rd_kafka_err2str(rd_kafka_last_error()));
        err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
        if (err) {
                of_errf(errstr, errstr_size, "reading metadata of %s: %s",
                        topic, rd_kafka_err2str(err));
                goto out;
        }
        if (md->topic_cnt != 1 || md->topics[0].err) {
                of_errf(errstr, errstr_size, "topic %s: %s", topic,
                        md->topic_cnt ? rd_kafka_err2str(md->topics[0].err)
                                      : "not found");
                goto out;
        }
        n = md->topics[0].partition_cnt;
        *low = calloc((size_t)n + 1, sizeof(**low));
        *high = calloc((size_t)n + 1, sizeof(**high));
        if (!*low || !*high) {
                of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        for (i = 0; i < n; i++) {
                int32_t p = md->topics[0].partitions[i].id;

                if (p < 0 || p >= n)
                        continue;
                err = rd_kafka_query_watermark_offsets(
                        rk, topic, p, &(*low)[p], &(*high)[p], timeout_ms);
                if (err) {
                        of_errf(errstr, errstr_size,
                                "reading the offsets of %s [%" PRId32
                                "]: %s",
                                topic, p, rd_kafka_err2str(err));
                        goto out;
                }
        }
        *cnt = n;
        rc = 0;
out:
        if (rc) {
                free(*low);
                free(*high);
                *low = *high = NULL;
        }
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return rc;
}

int of_kafka_query_topic(const of_kafka_opts *ko, int timeout_ms,
                         int32_t *cnt, int64_t **low, int64_t **high,
                         char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        char why[512];
        int err;

        if (of_kafka_conf_new(&conf, ko, NULL, errstr, errstr_size))
                return OF_ERROR;
        rd_kafka_conf_set_log_cb(conf, quiet_log_cb);
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why)))) {
                rd_kafka_conf_destroy(conf);
                return of_errf(errstr, errstr_size, "kafka: %s", why);
        }
        err = of_kafka_watermarks(rk, ko->topic, timeout_ms, cnt, low, high,
                                  errstr, errstr_size);
        rd_kafka_destroy(rk);
        return err;
}
