/* The relay: outbox rows -> Kafka. Claims a batch of due rows (appdb),
 * produces them all, waits for every delivery report (served on this
 * thread by rd_kafka_poll, so no locks), then marks the batch in one
 * transaction. At-least-once: a crash before marking publishes again. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/timestamp.h"
#include "orderflow/relay.h"

/* A row in flight: its result, and the delivery report's error code
 * (turned into text only once every report is in). */
typedef struct in_flight {
        of_outbox_result *res;
        rd_kafka_resp_err_t err;
} in_flight;

typedef struct relay {
        const of_relay_opts *o;
        rd_kafka_t *rk;
        size_t outstanding; /* messages without a delivery report yet */
        int fatal;          /* a fatal producer error happened */
        char err[512];
} relay;

static int stopping(const relay *r)
{
        return r->o->stop && *r->o->stop;
}

/* Runs inside rd_kafka_poll() on our thread. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque)
{
        relay *r = opaque;
        in_flight *fl = rkm->_private;

        (void)rk;
        fl->err = rkm->err;
        r->outstanding--;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque)
{
        relay *r = opaque;

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char why[400];

                rd_kafka_fatal_error(rk, why, sizeof(why));
                if (!r->fatal)
                        snprintf(r->err, sizeof(r->err),
                                 "kafka: fatal error: %s", why);
                r->fatal = 1;
                return;
        }
        of_log(err == RD_KAFKA_RESP_ERR__TRANSPORT ? OF_LOG_DEBUG
                                                   : OF_LOG_WARN,
               "kafka: %s", reason);
}

static int producer_new(relay *r, char *errstr, size_t errstr_size)
{
        static const char *defaults[] = {
                /* Broker-side retries add no copies and keep order. */
                "enable.idempotence=true",
                "linger.ms=5",
                /* A dead broker fails a batch within 30 s, so rows back off
                 * and `relay --once` can exit 1. */
                "message.timeout.ms=30000",
                NULL,
        };
        rd_kafka_conf_t *conf;
        char why[512];

        if (of_kafka_conf_new(&conf, &r->o->ko, defaults, errstr,
                              errstr_size))
                return OF_ERROR;
        rd_kafka_conf_set_opaque(conf, r);
        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
        rd_kafka_conf_set_error_cb(conf, error_cb);
        r->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
        if (!r->rk) {
                rd_kafka_conf_destroy(conf);
                return of_errf(errstr, errstr_size, "%s", why);
        }
        conf = NULL; /* now owned by r->rk */
        return 0;
}

/* Produce every row, then serve delivery reports until all are in. */
static void publish(relay *r, const of_outbox_row *rows,
                    of_outbox_result *res, in_flight *fl, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++) {
                rd_kafka_resp_err_t err;

                res[i] = (of_outbox_result){rows[i].seq, rows[i].attempts,
                                            NULL};
                fl[i] = (in_flight){&res[i], RD_KAFKA_RESP_ERR_NO_ERROR};
                for (;;) {
                        err = rd_kafka_producev(
                                r->rk, RD_KAFKA_V_TOPIC(r->o->ko.topic),
                                RD_KAFKA_V_KEY(rows[i].aggregate_id,
                                               strlen(rows[i].aggregate_id)),
                                RD_KAFKA_V_VALUE(rows[i].payload,
                                                 rows[i].payload_len),
                                RD_KAFKA_V_HEADER("event_id", rows[i].id, -1),
                                RD_KAFKA_V_HEADER("event_type", rows[i].type,
                                                  -1),
                                RD_KAFKA_V_OPAQUE(&fl[i]), RD_KAFKA_V_END);
                        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                break;
                        rd_kafka_poll(r->rk, 50);
                }
                if (err)
                        fl[i].err = err;
                else
                        r->outstanding++;
        }
        /* Every message ends in a report within message.timeout.ms. */
        while (r->outstanding > 0)
                rd_kafka_poll(r->rk, 100);
        for (i = 0; i < n; i++)
                if (fl[i].err)
                        res[i].error = rd_kafka_err2str(fl[i].err);
}

static void idle(relay *r)
{
        int waited;

        for (waited = 0; waited < r->o->poll_ms && !stopping(r);
             waited += 50)
                rd_kafka_poll(r->rk, 50);
}

/* A run that publishes once fails fast, touching no row, when no broker
 * answers (instead of waiting out message.timeout.ms per row). */
static int reachable(relay *r, char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;

        err = rd_kafka_metadata(r->rk, 0, NULL, &md, 10000);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (err)
                return of_errf(errstr, errstr_size,
                               "no broker of %s answered: %s",
                               r->o->ko.brokers, rd_kafka_err2str(err));
        return 0;
}

/* One claim-publish-mark round: *claimed gets the rows claimed. */
static int round_trip(relay *r, of_appdb *app, of_relay_stats *st,
                      const char *owner, int64_t now_ms, size_t *claimed,
                      char *errstr, size_t errstr_size)
{
        of_outbox_row *rows = NULL;
        of_outbox_result *res = NULL;
        in_flight *fl = NULL;
        int64_t t_start = of_timestamp_now_ms(), t_claimed, t_published;
        size_t n = 0, dead = 0, i;
        int err;

        err = of_appdb_claim(app, &rows, &n, r->o->batch_max, now_ms,
                             r->o->lease_ms, owner, errstr, errstr_size);
        *claimed = n;
        if (err || !n)
                return err;
        res = calloc(n, sizeof(*res));
        fl = calloc(n, sizeof(*fl));
        if (!res || !fl) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        t_claimed = of_timestamp_now_ms();
        publish(r, rows, res, fl, n);
        t_published = of_timestamp_now_ms();
        if (r->o->after_produce && r->o->after_produce(r->o->hook_opaque)) {
                of_errf(errstr, errstr_size, "stopped by the test hook");
                err = OF_EABORT;
                goto out;
        }
        while ((err = of_appdb_mark(app, res, n, &r->o->backoff,
                                    of_timestamp_now_ms(),
                                    &dead, errstr, errstr_size)) ==
               OF_EBUSY) {
                of_log(OF_LOG_WARN, "outbox: %s; retrying", errstr);
                rd_kafka_poll(r->rk, 200);
        }
        if (err)
                goto out;
        of_log(OF_LOG_DEBUG,
               "batch of %zu: claim %lld ms, publish %lld ms, mark %lld ms",
               n, (long long)(t_claimed - t_start),
               (long long)(t_published - t_claimed),
               (long long)(of_timestamp_now_ms() - t_published));
        st->batches++;
        st->dead += dead;
        for (i = 0; i < n; i++) {
                if (!res[i].error) {
                        st->published++;
                        continue;
                }
                st->failed++;
                of_log(OF_LOG_WARN, "event %s (order %s): %s", rows[i].id,
                       rows[i].aggregate_id, res[i].error);
        }
        if (dead)
                of_log(OF_LOG_ERROR,
                       "%zu outbox row(s) DEAD after %d attempts: see "
                       "'orderflow outbox status' and 'outbox retry'",
                       dead, r->o->backoff.max_attempts);
out:
        free(res);
        free(fl);
        of_appdb_rows_free(rows, n);
        return err;
}

int of_relay_run(of_appdb *app, const of_relay_opts *o,
                 of_relay_stats *stats, char *errstr, size_t errstr_size)
{
        relay r = {.o = o};
        of_relay_stats st = {0};
        char owner[300], host[256] = "localhost";
        int64_t start_ms = of_timestamp_now_ms();
        size_t claimed;
        int err;

        if (!o->owner) {
                gethostname(host, sizeof(host) - 1);
                snprintf(owner, sizeof(owner), "%s:%ld", host,
                         (long)getpid());
        } else {
                snprintf(owner, sizeof(owner), "%s", o->owner);
        }
        if ((err = producer_new(&r, errstr, errstr_size)))
                return err;
        if (o->once && (err = reachable(&r, errstr, errstr_size)))
                goto out;
        while (!stopping(&r) && !r.fatal) {
                /* --once publishes what was due when it started: a row
                 * that fails now waits for a later run, however short
                 * its backoff. */
                err = round_trip(&r, app, &st, owner,
                                 o->once ? start_ms
                                         : of_timestamp_now_ms(),
                                 &claimed,
                                 errstr, errstr_size);
                if (err == OF_EBUSY) {
                        of_log(OF_LOG_WARN, "outbox: %s; retrying", errstr);
                        idle(&r);
                        continue;
                }
                if (err)
                        break;
                if (claimed)
                        continue;
                if (o->once)
                        break;
                idle(&r);
        }
        if (!err && r.fatal)
                err = of_errf(errstr, errstr_size, "%s", r.err);
out:
        if (err == OF_EABORT) {
                /* A simulated crash: whatever is queued is dropped. */
                rd_kafka_purge(r.rk, RD_KAFKA_PURGE_F_QUEUE |
                                             RD_KAFKA_PURGE_F_INFLIGHT);
        }
        rd_kafka_flush(r.rk, 5000);
        rd_kafka_destroy(r.rk);
        if (stats)
                *stats = st;
        return err;
}
