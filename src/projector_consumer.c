/* The projector's consumer loop: the consumer and its group (or, for a
 * rebuild, every partition assigned), the check at the start that the read
 * model fits the topic, exit at the end, a rebuild's swap noticed, dedupe
 * retention between batches. Where each partition starts and what its
 * messages say is projector_partitions.c's; the batch is projector.c's. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/projector.h"

#include "projector_int.h"

/* An idle projector looks this often (ms) for a rebuild's swap, which a
 * batch transaction would notice by itself. */
#define REPLACED_CHECK_MS 500

typedef struct end_state {
        int32_t cnt;  /* partitions of the topic at the start */
        int64_t *end; /* their end (high watermark) offsets */
        int64_t *low; /* their first offsets */
} end_state;

/* ---- The topic's ends: the check at the start and -e ---- */

static int query_ends(of_projector *pj, end_state *es, char *errstr,
                      size_t errstr_size)
{
        return of_kafka_watermarks(pj->rk, pj->o.ko.topic, 10000, &es->cnt,
                                   &es->low, &es->end, errstr, errstr_size);
}

/* Whether the read model has every partition up to its end at the start. */
static int at_end(of_projector *pj, const end_state *es, char *errstr,
                  size_t errstr_size)
{
        int32_t p;

        for (p = 0; p < es->cnt; p++) {
                int64_t next;
                int err;

                if (es->end[p] <= es->low[p])
                        continue; /* nothing to read */
                err = of_store_offset(&next, pj->st, pj->o.ko.topic, p, errstr,
                                      errstr_size);
                if (err == OF_ENOTFOUND)
                        return 0;
                if (err)
                        return err;
                if (next < es->end[p])
                        return 0;
        }
        return 1;
}

/* At the start: whether the read model's offsets fit the topic as the
 * brokers have it now (es): 0, or OF_ERROR with the line that says what
 * does not and what to do. */
static int check_fit(of_projector *pj, const end_state *es, char *errstr,
                     size_t errstr_size)
{
        of_store_part *parts = NULL;
        size_t n = 0;
        char why[900];
        int err;

        if ((err = of_store_parts(&parts, &n, pj->st, errstr, errstr_size)))
                return err;
        switch (of_store_check_fit(parts, n, pj->o.ko.topic, es->cnt, es->end,
                                   why, sizeof(why))) {
        case OF_FIT_OK:
                break;
        case OF_FIT_OTHER_TOPIC:
                err = of_errf(errstr, errstr_size, "%s", why);
                break;
        default:
                err = of_errf(errstr, errstr_size, "%s" OF_STORE_REBUILD_HINT,
                              why);
        }
        of_store_parts_free(parts, n);
        return err;
}

/* ---- The consumer ---- */

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        of_projector *pj = opaque;
        char why[512];

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_fatal_error(rk, why, sizeof(why));
                projector_fail(pj, OF_ERROR, "kafka: fatal error: ", why);
                return;
        }
        /* Connection failures are already in librdkafka's own log. */
        of_log(err == RD_KAFKA_RESP_ERR__TRANSPORT ? OF_LOG_DEBUG
                                                   : OF_LOG_WARN,
               "kafka: %s", reason);
}

#define FETCH_MAX_BYTES "524288"

/* librdkafka refuses a fetch.max.bytes below message.max.bytes: a user who
 * raised message.max.bytes and left our fetch.max.bytes gets it raised to
 * match instead. */
static int fit_fetch_max(rd_kafka_conf_t *conf, char *errstr,
                         size_t errstr_size)
{
        char fetch[32], msg[32], why[256];
        size_t fn = sizeof(fetch), mn = sizeof(msg);

        if (rd_kafka_conf_get(conf, "fetch.max.bytes", fetch, &fn) !=
                    RD_KAFKA_CONF_OK ||
            rd_kafka_conf_get(conf, "message.max.bytes", msg, &mn) !=
                    RD_KAFKA_CONF_OK)
                return 0; /* rd_kafka_new says what is wrong */
        if (strcmp(fetch, FETCH_MAX_BYTES) != 0 ||
            strtoll(msg, NULL, 10) <= strtoll(fetch, NULL, 10))
                return 0;
        if (rd_kafka_conf_set(conf, "fetch.max.bytes", msg, why,
                              sizeof(why)) != RD_KAFKA_CONF_OK)
                return of_errf(errstr, errstr_size, "fetch.max.bytes: %s",
                               why);
        return 0;
}

static int consumer_new(of_projector *pj, char *errstr, size_t errstr_size)
{
        char group[600], why[512];
        const char *defaults[] = {
                group,
                /* Kafka's committed offsets are for lag tools: the
                 * positions of applied batches (commit_kafka), committed
                 * by librdkafka now and then, never per batch. */
                "enable.auto.commit=true",
                "enable.auto.offset.store=false",
                /* Every partition starts at an explicit offset (the read
                 * model's, or the beginning): a fetch out of range means
                 * the topic moved under the read model, which
                 * projector_partitions.c decides about, never a silent
                 * reset. */
                "auto.offset.reset=error",
                "enable.partition.eof=true",
                /* Bound what librdkafka buffers ahead (its default may hold
                 * 64 MiB); the apply step is the bottleneck anyway. It
                 * counts values only: 12 MiB of them held 42-46 MiB of
                 * librdkafka's heap (each message's op beside its value;
                 * embedded broker, 1M events). Less did not pay: once over
                 * it the fetcher looks again only up to 1 s later
                 * (librdkafka 2.0), so batches came smaller (Kafka, 1M
                 * events: 35-40 at 10 MiB, 29-31 at 12) and the rate fell
                 * (embedded broker, 1M v7 ids, 3 runs each: 75k/s at 10
                 * MiB, 88k/s at 12). */
                "queued.max.messages.kbytes=12288",
                /* Bound one fetch too: the queue's bound is checked before
                 * a fetch, and the answer comes on top of it, up to this
                 * many bytes of compressed batches (zstd: some 40,000 of
                 * our events a MiB). Measured on Kafka, 1M events, 64
                 * partitions, peak RSS of 3 runs, the rate within the runs'
                 * noise: 4 MiB 131-151 MiB, 1 MiB 100-108, 512 KiB 96-98,
                 * 256 KiB 90-92. On the embedded broker (one batch a
                 * partition a fetch) peak RSS stayed at 90-93 MiB from
                 * 4 MiB to 256 KiB, and at 256 KiB its commits took 1.6 s
                 * a million events instead of 0.9: 512 KiB. Below the
                 * 1,000,000 bytes of message.max.bytes, which librdkafka
                 * refuses, so that comes down too; a larger batch still
                 * comes whole (a fetch returns the first batch whatever
                 * its size), and a raised message.max.bytes raises
                 * fetch.max.bytes to match (fit_fetch_max). */
                "message.max.bytes=" FETCH_MAX_BYTES,
                "fetch.max.bytes=" FETCH_MAX_BYTES,
                /* A broker that does not answer a fetch as soon as data
                 * arrives (the mock cluster) would add up to this much to
                 * every event's latency; Kafka answers at once, and an
                 * idle projector asks this often (docs/design.md, Latency). */
                "fetch.wait.max.ms=20",
                /* Two requests in a row on one connection must not wait
                 * for the broker's ACK of the first. */
                "socket.nagle.disable=true",
                NULL,
        };
        rd_kafka_conf_t *conf;

        /* Without a group (rebuild) the partitions are assigned, never
         * subscribed, so no group is joined; librdkafka's consumer poll
         * still wants a group.id. */
        snprintf(group, sizeof(group), "group.id=%s",
                 pj->o.group ? pj->o.group : "orderflow-rebuild");
        if (of_kafka_conf_new(&conf, &pj->o.ko, defaults, errstr, errstr_size))
                return OF_ERROR;
        if (fit_fetch_max(conf, errstr, errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return OF_ERROR;
        }
        rd_kafka_conf_set_opaque(conf, pj);
        rd_kafka_conf_set_error_cb(conf, error_cb);
        rd_kafka_conf_set_rebalance_cb(conf, projector_rebalance_cb);
        pj->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
        if (!pj->rk) {
                rd_kafka_conf_destroy(conf);
                return of_errf(errstr, errstr_size, "%s", why);
        }
        conf = NULL; /* now owned by pj->rk */
        rd_kafka_poll_set_consumer(pj->rk);
        return 0;
}

/* The one line a projector says at its start: what it reads, from where,
 * into what. */
static void say_start(of_projector *pj)
{
        char brokers[512] = "?";
        size_t size = sizeof(brokers);

        rd_kafka_conf_get(rd_kafka_conf(pj->rk), "bootstrap.servers", brokers,
                          &size);
        of_log(OF_LOG_INFO,
               "projecting topic %s into %s: group %s, brokers %s; joining "
               "the group",
               pj->o.ko.topic, of_store_path(pj->st), pj->o.group, brokers);
}

static int subscribe(of_projector *pj, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *topics =
                rd_kafka_topic_partition_list_new(1);
        rd_kafka_resp_err_t err;

        rd_kafka_topic_partition_list_add(topics, pj->o.ko.topic,
                                          RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(pj->rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err)
                return of_errf(errstr, errstr_size, "subscribing to %s: %s",
                               pj->o.ko.topic, rd_kafka_err2str(err));
        say_start(pj);
        pj->joining_ms = pj->joining_said_ms = now_ms();
        return 0;
}

/* Join the group; without one (rebuild), take every partition of the
 * topic from the read model's offsets. */
static int start(of_projector *pj, const end_state *es, char *errstr,
                 size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *parts;
        int32_t p;

        if (pj->o.group)
                return subscribe(pj, errstr, errstr_size);
        parts = rd_kafka_topic_partition_list_new(es->cnt);
        for (p = 0; p < es->cnt; p++)
                rd_kafka_topic_partition_list_add(parts, pj->o.ko.topic, p);
        projector_assign(pj, pj->rk, parts, 0);
        rd_kafka_topic_partition_list_destroy(parts);
        if (pj->failed)
                return of_errf(errstr, errstr_size, "%s", pj->err);
        return 0;
}

/* ---- The loop ---- */

/* Flush the batch; when the file was swapped, resync instead. */
static int flush_or_resync(of_projector *pj, char *errstr, size_t errstr_size)
{
        int err = of_projector_flush(pj, errstr, errstr_size);

        return err == OF_ESTALE ? projector_resync(pj, errstr, errstr_size)
                                : err;
}

/* Dedupe retention (docs/operations.md), between batches: one run a call, so
 * the messages behind wait about 0.1 s at most; again at once while more are
 * due, else after a quarter of the window (1 s to 1 min). A failure only
 * puts it off. */
static void prune(of_projector *pj)
{
        int64_t t0 = now_ms(), every = pj->o.dedupe_retention_ms / 4;
        of_store_pruned p;
        char errstr[512];
        int err;

        err = of_store_prune(&p, pj->st, pj->o.dedupe_retention_ms, 1, errstr,
                             sizeof(errstr));
        every = every < 1000 ? 1000 : every > 60000 ? 60000 : every;
        pj->prune_at = t0 + (p.more && !err ? 0 : every);
        if (err)
                of_log(OF_LOG_WARN, "dedupe retention: %s; trying again later",
                       errstr);
        if (p.runs || p.sealed)
                of_log(OF_LOG_INFO,
                       "dedupe retention: dropped %" PRId64
                       " run(s) of %" PRId64 " ids in %" PRId64 " ms%s",
                       p.runs, p.events, now_ms() - t0,
                       p.sealed ? "; sealed processed_recent for its age"
                                : "");
}

/* A join that takes long is not a hang: say why, every JOIN_SAY_MS. */
#define JOIN_SAY_MS 10000

static void still_joining(of_projector *pj)
{
        char timeout[32] = "?";
        size_t size = sizeof(timeout);

        if (!pj->joining_ms || now_ms() - pj->joining_said_ms < JOIN_SAY_MS)
                return;
        pj->joining_said_ms = now_ms();
        rd_kafka_conf_get(rd_kafka_conf(pj->rk), "session.timeout.ms", timeout,
                          &size);
        of_log(OF_LOG_INFO,
               "still joining group %s after %" PRId64 " s: the broker "
               "waits up to session.timeout.ms (%s ms) for a member that "
               "left without leaving the group (the embedded broker also "
               "for one that left cleanly)",
               pj->o.group, (now_ms() - pj->joining_ms) / 1000, timeout);
}

static int loop(of_projector *pj, const end_state *es, char *errstr,
                size_t errstr_size)
{
        int err;

        while (!stopping(pj) && !pj->failed) {
                uint64_t t0;
                rd_kafka_message_t *rkm;
                int drained;

                /* A batch in hand takes what is ready and no more: when
                 * nothing is, it is committed (a group commit: at a low
                 * rate each message goes at once, under load the batch
                 * grows while the one before commits). */
                t0 = now_ns();
                rkm = rd_kafka_consumer_poll(pj->rk, pj->opened_ms ? 0 : 100);
                pj->fetch_ns += now_ns() - t0;
                drained = !rkm && pj->opened_ms;
                if (rkm) {
                        err = projector_take(pj, rkm, errstr, errstr_size);
                        rd_kafka_message_destroy(rkm);
                        if (err)
                                return err;
                }
                if (pj->failed)
                        break;
                still_joining(pj);
                if (!pj->opened_ms &&
                    now_ms() - pj->checked_ms >= REPLACED_CHECK_MS) {
                        pj->checked_ms = now_ms();
                        err = of_store_check_replaced(pj->st, errstr,
                                                      errstr_size);
                        if (err == OF_ESTALE) {
                                of_log(OF_LOG_WARN, "%s", errstr);
                                err = projector_resync(pj, errstr,
                                                       errstr_size);
                        }
                        if (err)
                                return err;
                }
                if (pj->n >= pj->o.batch_max || drained ||
                    (pj->opened_ms &&
                     now_ms() - pj->opened_ms >= pj->o.batch_ms)) {
                        if ((err = flush_or_resync(pj, errstr, errstr_size)))
                                return err;
                        if (es &&
                            (err = at_end(pj, es, errstr, errstr_size)) != 0)
                                return err < 0 ? err : 0;
                }
                if (pj->o.dedupe_retention_ms && !pj->n &&
                    now_ms() >= pj->prune_at)
                        prune(pj);
        }
        if (pj->failed) {
                of_errf(errstr, errstr_size, "%s", pj->err);
                return pj->failed;
        }
        err = of_projector_flush(pj, errstr, errstr_size);
        return err == OF_ESTALE ? 0 : err; /* stopping: nothing to resume */
}

int of_projector_run(of_store *st, const of_projector_opts *o,
                     of_store_stats *stats, char *errstr, size_t errstr_size)
{
        of_projector *pj = NULL;
        end_state es = {0};
        int err, done = 0;

        if (!o->group && !o->exit_at_end)
                return of_errf(errstr, errstr_size,
                               "a projector without a group needs "
                               "exit_at_end");
        if ((err = of_projector_new(&pj, st, o, errstr, errstr_size)) ||
            (err = consumer_new(pj, errstr, errstr_size)))
                goto out;
        /* Where the topic stands now: -e's goal, and the check that the
         * read model still fits it. A topic that does not exist yet is
         * waited for by a projector without -e (nothing to check). */
        if ((err = query_ends(pj, &es, errstr, errstr_size))) {
                if (o->exit_at_end)
                        goto out;
                of_log(OF_LOG_DEBUG,
                       "not checking the read model against "
                       "the topic: %s",
                       errstr);
                err = 0;
        } else if ((err = check_fit(pj, &es, errstr, errstr_size))) {
                goto out;
        }
        if (o->exit_at_end) {
                if ((done = at_end(pj, &es, errstr, errstr_size)) < 0) {
                        err = done;
                        goto out;
                }
        }
        if (!done && !(err = start(pj, &es, errstr, errstr_size)))
                err = loop(pj, o->exit_at_end ? &es : NULL, errstr,
                           errstr_size);
        if (err == OF_EABORT) {
                /* A simulated crash: no commit, no goodbye to the group. */
                rd_kafka_destroy_flags(pj->rk,
                                       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
                pj->rk = NULL;
                goto out;
        }
        rd_kafka_consumer_close(pj->rk);
        if (!err && pj->failed) {
                of_errf(errstr, errstr_size, "%s", pj->err);
                err = pj->failed;
        }
out:
        if (pj)
                projector_report(pj);
        if (pj && pj->rk)
                rd_kafka_destroy(pj->rk);
        if (pj && stats)
                *stats = pj->stats;
        of_projector_free(pj);
        free(es.end);
        free(es.low);
        return err;
}
