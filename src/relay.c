/* The relay: outbox rows -> Kafka. Claims a batch of due rows (appdb),
 * produces them all, waits for every delivery report (served on this
 * thread by rd_kafka_poll, so no locks), then marks the batch in one
 * transaction; the next batch is claimed and produced while the reports
 * of the one before come in, the rows of that one counting as on their
 * way, so an order's rows go out in seq order without waiting a round.
 * At-least-once: a crash before marking publishes again, and so does a
 * row published behind one of its order that failed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/dbwatch.h"
#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/timestamp.h"
#include "orderflow/relay.h"

#include "relay_int.h"

/* Runs inside rd_kafka_poll() on our thread. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque)
{
        in_flight *fl = rkm->_private;

        (void)rk;
        (void)opaque;
        /* A message purged at the deadline (finish) failed as one that
         * timed out: say it so. */
        fl->err = rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                                  rkm->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT
                          ? RD_KAFKA_RESP_ERR__MSG_TIMED_OUT
                          : rkm->err;
        fl->reported_us = mono_us();
        fl->b->outstanding--;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
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
                /* A claim is produced in one go: nothing is gained by
                 * waiting for more (docs/design.md, Latency). */
                "linger.ms=0",
                /* Two requests in a row on one connection must not wait
                 * for the broker's ACK of the first. */
                "socket.nagle.disable=true",
                /* A dead broker fails a batch within 30 s, so rows back off
                 * and `relay --once` can exit 1. */
                "message.timeout.ms=30000",
                NULL,
        };
        rd_kafka_conf_t *conf;
        char why[512], v[32];
        size_t vn = sizeof(v);

        if (of_kafka_conf_new(&conf, &r->o->ko, defaults, errstr, errstr_size))
                return OF_ERROR;
        /* librdkafka times messages out one by one: a message that timed
         * out in the queue leaves a gap, and a later message of the same
         * partition (the next row of the order) may still be delivered
         * after it, out of commit order. So librdkafka never times out
         * (0), and finish() purges every message still on its way at the
         * deadline: the later rows fail with the earlier. */
        if (rd_kafka_conf_get(conf, "message.timeout.ms", v, &vn) !=
                    RD_KAFKA_CONF_OK ||
            (r->deliver_ms = strtoll(v, NULL, 10)) <= 0)
                r->deliver_ms = 0; /* the user's infinity */
        if (rd_kafka_conf_set(conf, "message.timeout.ms", "0", why,
                              sizeof(why)) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(conf);
                return of_errf(errstr, errstr_size, "message.timeout.ms: %s",
                               why);
        }
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

/* At the deadline of messages produced at t_produced: purge every message
 * still queued or in flight (all fail together, see producer_new); true
 * when it did. */
int relay_purge_at(relay *r, int64_t t_produced)
{
        if (r->deliver_ms <= 0 ||
            of_timestamp_now_ms() < t_produced + r->deliver_ms)
                return 0;
        rd_kafka_purge(r->rk,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        /* Every purged message's report, before anything is claimed:
         * the next claim must see which rows failed. */
        while (r->b[0].outstanding + r->b[1].outstanding > 0)
                rd_kafka_poll(r->rk, 50);
        return 1;
}

/* The rows of b that are on their way for the next claim: all of them
 * but those whose message failed already (the rows of their orders
 * behind them must not be produced before them); NULL when out of
 * memory. Only the seqs of the rows are copied. */
static const of_outbox_batch *on_their_way(relay *r, const batch *b)
{
        of_outbox_batch *a = &r->alive;
        size_t i;

        for (i = 0; i < b->claimed.n && !b->fl[i].err; i++)
                ;
        if (i == b->claimed.n)
                return &b->claimed;
        if (a->cap < b->claimed.n) {
                of_outbox_row *rows =
                        realloc(a->rows, b->claimed.n * sizeof(*rows));

                if (!rows)
                        return NULL;
                a->rows = rows;
                a->cap = b->claimed.n;
        }
        a->n = 0;
        for (i = 0; i < b->claimed.n; i++)
                if (!b->fl[i].err)
                        a->rows[a->n++] =
                                (of_outbox_row){.seq = b->claimed.rows[i].seq};
        return a;
}

/* Produce every row of b; their delivery reports come in later. The
 * values are not copied: b keeps them until its reports are in. A full
 * queue is waited out, up to the deadline of the batch before (flying,
 * or NULL): then everything on its way is purged, and b's rows not
 * produced yet fail with it. */
static void produce(relay *r, batch *b, const batch *flying)
{
        const of_outbox_row *rows = b->claimed.rows;
        int64_t t0 = flying ? flying->t_produced : of_timestamp_now_ms();
        int cut = 0;
        size_t i;

        for (i = 0; i < b->claimed.n; i++) {
                rd_kafka_resp_err_t err;

                b->res[i] = (of_outbox_result){.seq = rows[i].seq,
                                               .attempts = rows[i].attempts,
                                               .behind = rows[i].behind};
                b->fl[i] = (in_flight){.b = b};
                if (cut) {
                        b->fl[i].err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
                        continue;
                }
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
                                RD_KAFKA_V_OPAQUE(&b->fl[i]), RD_KAFKA_V_END);
                        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                break;
                        if ((cut = relay_purge_at(r, t0)))
                                err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
                        rd_kafka_poll(r->rk, 50);
                        if (cut)
                                break;
                }
                if (err)
                        b->fl[i].err = err;
                else
                        b->outstanding++;
        }
}

/* Each row's wait in the outbox, from its commit (occurred_at, as the
 * writer stamps it) to the claim: a share of the end-to-end latency. */
static void count_outbox_wait(relay *r, const batch *b)
{
        int64_t now_us = of_timestamp_now_ms() * 1000;
        size_t i;

        if (r->o->metrics)
                of_metrics_begin(r->o->metrics);
        for (i = 0; i < b->claimed.n; i++) {
                const of_outbox_row *row = &b->claimed.rows[i];
                int64_t us;

                if (row->occurred_ms < 0)
                        continue;
                us = now_us - row->occurred_ms * 1000;
                of_lathist_add(&r->st->outbox_wait, us);
                if (r->o->metrics)
                        of_relay_metrics_observe(r->o->metrics,
                                                 OF_RELAY_OUTBOX_WAIT, us);
        }
        if (r->o->metrics)
                of_metrics_end(r->o->metrics);
}

/* Each delivered row's time from its claim to its delivery report. */
static void count_delivery(relay *r, const batch *b)
{
        size_t i;

        if (r->o->metrics)
                of_metrics_begin(r->o->metrics);
        for (i = 0; i < b->claimed.n; i++) {
                int64_t us = b->fl[i].reported_us - b->t_claim_us;

                if (b->fl[i].err)
                        continue;
                of_lathist_add(&r->st->delivery, us);
                if (r->o->metrics)
                        of_relay_metrics_observe(r->o->metrics,
                                                 OF_RELAY_DELIVERY, us);
        }
        if (r->o->metrics)
                of_metrics_end(r->o->metrics);
}

/* Claim due rows into b and produce them; flying (NULL: none) is the
 * batch produced before, not marked yet. */
static int claim(relay *r, of_appdb *app, batch *b, const batch *flying,
                 const char *owner, int64_t now_ms, char *errstr,
                 size_t errstr_size)
{
        size_t max = r->o->batch_max;
        const of_outbox_batch *fly = NULL;
        int err;

        b->t_claim = of_timestamp_now_ms();
        if (b->cap < max) {
                of_outbox_result *res = realloc(b->res, max * sizeof(*res));
                in_flight *fl;

                if (res)
                        b->res = res;
                fl = res ? realloc(b->fl, max * sizeof(*fl)) : NULL;
                if (!fl)
                        return of_errf(errstr, errstr_size, "out of memory");
                b->fl = fl;
                b->cap = max;
        }
        if (flying && !(fly = on_their_way(r, flying)))
                return of_errf(errstr, errstr_size, "out of memory");
        err = of_outbox_claim(app, &b->claimed, max, fly, now_ms,
                              r->o->lease_ms, owner, errstr, errstr_size);
        if (err || !b->claimed.n)
                return err;
        b->t_claim_us = mono_us();
        count_outbox_wait(r, b);
        produce(r, b, flying);
        b->t_produced = of_timestamp_now_ms();
        return 0;
}

/* Wait for b's last delivery report, then mark its rows in one
 * transaction. */
static int finish(relay *r, of_appdb *app, batch *b, of_relay_stats *st,
                  char *errstr, size_t errstr_size)
{
        const of_outbox_row *rows = b->claimed.rows;
        size_t n = b->claimed.n, dead = 0, held = 0, i;
        int64_t t_delivered;
        of_retry retry = {0};
        int wait, err;

        /* Every message ends in a report by the deadline: then whatever
         * is still on its way (this batch's and the next one's) is purged
         * at once, so no later message of a partition is delivered after
         * an earlier one failed. */
        while (b->outstanding > 0) {
                relay_purge_at(r, b->t_produced);
                rd_kafka_poll(r->rk, 100);
        }
        t_delivered = of_timestamp_now_ms();
        for (i = 0; i < n; i++)
                if (b->fl[i].err)
                        b->res[i].error = rd_kafka_err2str(b->fl[i].err);
        count_delivery(r, b);
        if (r->o->after_produce && r->o->after_produce(r->o->hook_opaque)) {
                of_errf(errstr, errstr_size, "stopped by the test hook");
                return OF_EABORT;
        }
        while ((err = of_outbox_mark(app, b->claimed.lease, b->res, n,
                                     &r->o->backoff, of_timestamp_now_ms(),
                                     &dead, errstr, errstr_size)) ==
                       OF_EBUSY ||
               err == OF_EIO) {
                if ((wait = of_retry_failed(&retry, err, "outbox", errstr,
                                            errstr_size,
                                            of_timestamp_now_ms())) < 0)
                        break;
                rd_kafka_poll(r->rk, wait);
        }
        if (!err)
                of_retry_ok(&retry, "outbox", of_timestamp_now_ms());
        if (err)
                return err;
        of_log(OF_LOG_DEBUG,
               "batch of %zu: claim and produce %lld ms, last report %lld "
               "ms later, mark %lld ms",
               n, (long long)(b->t_produced - b->t_claim),
               (long long)(t_delivered - b->t_produced),
               (long long)(of_timestamp_now_ms() - t_delivered));
        st->batches++;
        st->dead += dead;
        for (i = 0; i < n; i++) {
                if (b->res[i].held) {
                        held++;
                        of_log(OF_LOG_DEBUG,
                               "event %s (order %s): held back behind a "
                               "failed row of its order",
                               rows[i].id, rows[i].aggregate_id);
                        continue;
                }
                if (!b->res[i].error) {
                        st->published++;
                        continue;
                }
                st->failed++;
                of_log(OF_LOG_WARN, "event %s (order %s): %s", rows[i].id,
                       rows[i].aggregate_id, b->res[i].error);
        }
        st->held += held;
        /* Published (most of them), but not SENT: they go again once the
         * earlier row of their order is delivered. */
        if (held)
                of_log(OF_LOG_INFO,
                       "%zu outbox row(s) held back behind a failed row of "
                       "their order",
                       held);
        if (dead)
                of_log(OF_LOG_ERROR,
                       "%zu outbox row(s) DEAD after %d attempts: see "
                       "'orderflow outbox list --dead' and 'outbox retry'",
                       dead, r->o->backoff.max_attempts);
        b->claimed.n = 0;
        return 0;
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

/* The relay's loop: claim and publish batch after batch until stopped
 * (or, --once, until nothing is due), two batches at a time. Returns 0
 * or what ended it, with a message. */
static int run(relay *r, of_appdb *app, const char *owner, of_relay_stats *st,
               char *errstr, size_t errstr_size)
{
        const of_relay_opts *o = r->o;
        int64_t start_ms = of_timestamp_now_ms();
        batch *cur = &r->b[0], *prev = NULL;
        of_retry retry = {0};
        int wait = 0, err = 0;

        for (;;) {
                int go = !stopping(r) && !r->fatal, busy = 0, marked = 0;

                /* Claim and produce the next batch while the one before
                 * is still being delivered: its rows count as on their
                 * way, so their orders' later rows go in this claim
                 * (and are held back at the mark should an earlier one
                 * fail). --once publishes what was due when it started:
                 * a row that fails now waits for a later run, however
                 * short its backoff. */
                if (go)
                        err = claim(r, app, cur, prev, owner,
                                    o->once ? start_ms : of_timestamp_now_ms(),
                                    errstr, errstr_size);
                if ((err == OF_EBUSY || err == OF_EIO) &&
                    (wait = of_retry_failed(&retry, err, "outbox", errstr,
                                            errstr_size,
                                            of_timestamp_now_ms())) >= 0) {
                        err = 0;
                        busy = 1;
                } else if (go && !err) {
                        of_retry_ok(&retry, "outbox", of_timestamp_now_ms());
                }
                /* Nothing new to produce while prev is on its way: a
                 * commit meanwhile is claimed at once. */
                if (!err && prev && !cur->claimed.n && go && !busy &&
                    r->watch && relay_await(r, app, prev))
                        continue;
                if (!err && prev) {
                        err = finish(r, app, prev, st, errstr, errstr_size);
                        prev = NULL;
                        marked = 1;
                        if (!err && o->metrics)
                                of_relay_metrics_publish(o->metrics, st);
                }
                if (err)
                        return err;
                if (cur->claimed.n) {
                        prev = cur;
                        cur = cur == &r->b[0] ? &r->b[1] : &r->b[0];
                        continue;
                }
                if (!go)
                        return 0;
                /* Marking may have freed later rows of those orders. */
                if (marked && !busy)
                        continue;
                if (o->once && !busy)
                        return 0;
                if (busy)
                        relay_pause(r, wait);
                else
                        relay_idle(r, app, o->poll_ms);
        }
}

int of_relay_run(of_appdb *app, const of_relay_opts *o, of_relay_stats *stats,
                 char *errstr, size_t errstr_size)
{
        of_relay_stats st = {0};
        relay r = {.o = o, .st = &st, .events = {-1, -1}};
        char owner[300], host[256] = "localhost";
        size_t i;
        int err;

        if (!o->owner) {
                gethostname(host, sizeof(host) - 1);
                snprintf(owner, sizeof(owner), "%s:%ld", host, (long)getpid());
        } else {
                snprintf(owner, sizeof(owner), "%s", o->owner);
        }
        if (o->metrics)
                of_relay_metrics_declare(o->metrics);
        if ((err = of_appdb_relay_durability(app, errstr, errstr_size)) ||
            (err = producer_new(&r, errstr, errstr_size)))
                return err;
        if (o->once && (err = reachable(&r, errstr, errstr_size)))
                goto out;
        if (!o->once && (err = relay_watch_open(&r, app, errstr, errstr_size)))
                goto out;
        err = run(&r, app, owner, &st, errstr, errstr_size);
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
        /* Only now: the producer no longer holds the batches' values. */
        for (i = 0; i < 2; i++) {
                of_outbox_batch_free(&r.b[i].claimed);
                free(r.b[i].res);
                free(r.b[i].fl);
        }
        free(r.alive.rows);
        of_dbwatch_close(r.watch);
        if (r.events[0] >= 0) {
                close(r.events[0]);
                close(r.events[1]);
        }
        if (stats)
                *stats = st;
        return err;
}
