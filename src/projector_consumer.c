/* The projector's consumer loop: the consumer and its group (or, for a
 * rebuild, every partition assigned), each partition started at the read
 * model's offset, rebalances, exit at the end, Kafka commits after the
 * database commit, a rebuild's swap noticed and followed, deleted history
 * reported, dedupe retention between batches. The batch is projector.c's. */
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
        int32_t cnt;      /* partitions of the topic at the start */
        int64_t *end;     /* their end (high watermark) offsets */
        int64_t *low;     /* their first offsets */
} end_state;

/* Remember the first failure of a callback: "<prefix><detail>". */
static void fail_with(of_projector *pj, int code, const char *prefix,
                      const char *detail)
{
        if (!pj->failed) {
                snprintf(pj->err, sizeof(pj->err), "%s%s", prefix, detail);
                pj->failed = code;
        }
}

static void fail(of_projector *pj, const char *prefix, const char *detail)
{
        fail_with(pj, OF_ERROR, prefix, detail);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque)
{
        of_projector *pj = opaque;
        char why[512];

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_fatal_error(rk, why, sizeof(why));
                fail(pj, "kafka: fatal error: ", why);
                return;
        }
        /* Connection failures are already in librdkafka's own log. */
        of_log(err == RD_KAFKA_RESP_ERR__TRANSPORT ? OF_LOG_DEBUG
                                                   : OF_LOG_WARN,
               "kafka: %s", reason);
}

/* What the read model needs next from partition (0 when it has nothing:
 * its beginning); out of memory only loses the check. */
static void set_expect(of_projector *pj, int32_t partition, int64_t next)
{
        if (partition < 0)
                return;
        if (partition >= pj->expect_cnt) {
                int32_t n = partition + 16, i;
                int64_t *e = realloc(pj->expect, (size_t)n * sizeof(*e));

                if (!e)
                        return;
                for (i = pj->expect_cnt; i < n; i++)
                        e[i] = -1;
                pj->expect = e;
                pj->expect_cnt = n;
        }
        pj->expect[partition] = next;
}

/* A message at offset of partition, whose previous offsets the read model
 * has not applied: gaps are normal (transaction markers, compaction), but
 * offsets below the partition's first available one were deleted
 * (retention) before this read model got them, and it will never have
 * them: say so, once per gap. The low watermark is librdkafka's cached
 * one (from the fetch response): no broker round trip. */
static void check_gap(of_projector *pj, const char *topic, int32_t partition,
                      int64_t offset)
{
        int64_t want, low = -1, high = -1;

        if (partition < 0 || partition >= pj->expect_cnt ||
            (want = pj->expect[partition]) < 0 || offset <= want)
                return;
        rd_kafka_get_watermark_offsets(pj->rk, topic, partition, &low, &high);
        if (low > want)
                of_log(OF_LOG_WARN,
                       "%s [%" PRId32 "]: offsets %" PRId64 "-%" PRId64
                       " were deleted (retention) before this read model "
                       "applied them: it lacks them, and a rebuild cannot "
                       "bring them back",
                       topic, partition, want, low - 1);
}

/* Start each assigned partition at the read model's offset for it (the
 * beginning for one it never applied), not at the group's commit. */
/* Set each partition of parts to start at the read model's offset for it
 * (the beginning where it has none); log each when verb is not NULL. */
static int from_read_model(of_projector *pj,
                           rd_kafka_topic_partition_list_t *parts,
                           const char *verb, char *errstr,
                           size_t errstr_size)
{
        int i;

        for (i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];
                int64_t next;
                int err = of_store_offset(&next, pj->st, p->topic,
                                          p->partition, errstr, errstr_size);

                if (err && err != OF_ENOTFOUND)
                        return err;
                p->offset = err ? RD_KAFKA_OFFSET_BEGINNING : next;
                set_expect(pj, p->partition, err ? 0 : next);
                if (verb)
                        of_log(OF_LOG_INFO, "%s %s [%" PRId32 "] from %s",
                               verb, p->topic, p->partition,
                               err ? "the beginning"
                                   : "the read model's offset");
        }
        return 0;
}

static void assign(of_projector *pj, rd_kafka_t *rk,
                   rd_kafka_topic_partition_list_t *parts, int incremental)
{
        rd_kafka_error_t *error = NULL;
        char errstr[512];

        if (from_read_model(pj, parts, "assigned", errstr, sizeof(errstr))) {
                fail(pj, "read model: ", errstr);
                return;
        }
        if (incremental)
                error = rd_kafka_incremental_assign(rk, parts);
        else
                rd_kafka_assign(rk, parts);
        if (error) {
                fail(pj, "kafka: assign: ", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        of_projector *pj = opaque;
        int incremental =
                !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        char errstr[512];
        rd_kafka_error_t *error = NULL;
        int rc;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                assign(pj, rk, parts, incremental);
                return;
        }
        /* Revoked (or lost): apply the batch in hand first, so the next
         * owner starts where we stopped. */
        rc = of_projector_flush(pj, errstr, sizeof(errstr));
        if (rc == OF_EABORT)
                fail_with(pj, OF_EABORT, "", errstr);
        else if (rc && rc != OF_ESTALE) /* stale: the next owner reads the
                                         * new file's offsets */
                fail(pj, "read model: ", errstr);
        if (incremental)
                error = rd_kafka_incremental_unassign(rk, parts);
        else
                rd_kafka_assign(rk, NULL);
        if (error)
                rd_kafka_error_destroy(error);
}

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
                err = of_store_offset(&next, pj->st, pj->o.ko.topic, p,
                                      errstr, errstr_size);
                if (err == OF_ENOTFOUND)
                        return 0;
                if (err)
                        return err;
                if (next < es->end[p])
                        return 0;
        }
        return 1;
}

static int consumer_new(of_projector *pj, char *errstr, size_t errstr_size)
{
        char group[600], why[512];
        const char *defaults[] = {
                group,
                "enable.auto.commit=false",
                "enable.auto.offset.store=false",
                "auto.offset.reset=earliest",
                "enable.partition.eof=true",
                /* Bound what librdkafka buffers ahead (its default may hold
                 * 64 MiB); the apply step is the bottleneck anyway. */
                "queued.max.messages.kbytes=12288",
                /* A broker that does not answer a fetch as soon as data
                 * arrives (the mock cluster) would add up to this much to
                 * every event's latency; 50 ms bounds it (README). */
                "fetch.wait.max.ms=50",
                NULL,
        };
        rd_kafka_conf_t *conf;

        /* Without a group (rebuild) the partitions are assigned, never
         * subscribed, so no group is joined; librdkafka's consumer poll
         * still wants a group.id. */
        snprintf(group, sizeof(group), "group.id=%s",
                 pj->o.group ? pj->o.group : "orderflow-rebuild");
        if (of_kafka_conf_new(&conf, &pj->o.ko, defaults, errstr,
                              errstr_size))
                return OF_ERROR;
        rd_kafka_conf_set_opaque(conf, pj);
        rd_kafka_conf_set_error_cb(conf, error_cb);
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        pj->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
        if (!pj->rk) {
                rd_kafka_conf_destroy(conf);
                return of_errf(errstr, errstr_size, "%s", why);
        }
        conf = NULL; /* now owned by pj->rk */
        rd_kafka_poll_set_consumer(pj->rk);
        return 0;
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
        assign(pj, pj->rk, parts, 0);
        rd_kafka_topic_partition_list_destroy(parts);
        if (pj->failed)
                return of_errf(errstr, errstr_size, "%s", pj->err);
        return 0;
}

/* Take one message or event from the consumer into the batch. */
static int take(of_projector *pj, rd_kafka_message_t *rkm, char *errstr,
                size_t errstr_size)
{
        of_msg m;

        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* Everything before rkm->offset was handed to us, even
                 * offsets that hold no message (transaction markers). */
                of_projector_mark(pj, rkm->partition, rkm->offset);
                set_expect(pj, rkm->partition, rkm->offset);
                return 0;
        }
        if (rkm->err) {
                of_log(OF_LOG_WARN, "kafka: %s",
                       rd_kafka_message_errstr(rkm));
                return 0;
        }
        check_gap(pj, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                  rkm->offset);
        set_expect(pj, rkm->partition, rkm->offset + 1);
        pj->ts_next = rd_kafka_message_timestamp(rkm, NULL);
        m = (of_msg){
                .topic = rd_kafka_topic_name(rkm->rkt),
                .partition = rkm->partition,
                .offset = rkm->offset,
                .key = rkm->key,
                .key_len = rkm->key_len,
                .value = rkm->payload,
                .value_len = rkm->len,
        };
        return of_projector_handle(pj, &m, errstr, errstr_size);
}

/* After a rebuild swapped the file: move every assigned partition to the
 * new model's offset for it (the beginning where it has none). librdkafka
 * drops what it fetched before the seek. */
static int resync(of_projector *pj, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_resp_err_t err;
        rd_kafka_error_t *error;
        int i, rc = 0;

        if ((err = rd_kafka_assignment(pj->rk, &parts)))
                return of_errf(errstr, errstr_size, "kafka: assignment: %s",
                               rd_kafka_err2str(err));
        rc = from_read_model(pj, parts, NULL, errstr, errstr_size);
        if (!rc && parts->cnt &&
            (error = rd_kafka_seek_partitions(pj->rk, parts, 10000))) {
                rc = of_errf(errstr, errstr_size, "kafka: seek: %s",
                             rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        for (i = 0; i < parts->cnt && !rc; i++)
                if (parts->elems[i].err)
                        rc = of_errf(errstr, errstr_size,
                                     "kafka: seek %s [%" PRId32 "]: %s",
                                     parts->elems[i].topic,
                                     parts->elems[i].partition,
                                     rd_kafka_err2str(parts->elems[i].err));
        if (!rc)
                of_log(OF_LOG_INFO, "resumed %d partitions from the new "
                       "model's offsets", parts->cnt);
        rd_kafka_topic_partition_list_destroy(parts);
        return rc;
}

/* Flush the batch; when the file was swapped, resync instead. */
static int flush_or_resync(of_projector *pj, char *errstr,
                           size_t errstr_size)
{
        int err = of_projector_flush(pj, errstr, errstr_size);

        return err == OF_ESTALE ? resync(pj, errstr, errstr_size) : err;
}

/* Dedupe retention (README), between batches: one run a call, so the
 * messages behind wait about 0.1 s at most; again at once while more are
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
                       "dedupe retention: dropped %" PRId64 " run(s) of %"
                       PRId64 " ids in %" PRId64 " ms%s",
                       p.runs, p.events, now_ms() - t0,
                       p.sealed ? "; sealed processed_recent for its age"
                                : "");
}

static int loop(of_projector *pj, const end_state *es, char *errstr,
                size_t errstr_size)
{
        int err;

        while (!stopping(pj) && !pj->failed) {
                uint64_t t0;
                int64_t wait = 100;
                rd_kafka_message_t *rkm;

                if (pj->opened_ms) {
                        wait = pj->opened_ms + pj->o.batch_ms - now_ms();
                        wait = wait < 0 ? 0 : wait > 100 ? 100 : wait;
                }
                t0 = now_ns();
                rkm = rd_kafka_consumer_poll(pj->rk, (int)wait);
                pj->fetch_ns += now_ns() - t0;
                if (rkm) {
                        err = take(pj, rkm, errstr, errstr_size);
                        rd_kafka_message_destroy(rkm);
                        if (err)
                                return err;
                }
                if (pj->failed)
                        break;
                if (!pj->opened_ms &&
                    now_ms() - pj->checked_ms >= REPLACED_CHECK_MS) {
                        pj->checked_ms = now_ms();
                        err = of_store_check_replaced(pj->st, errstr,
                                                      errstr_size);
                        if (err == OF_ESTALE) {
                                of_log(OF_LOG_WARN, "%s", errstr);
                                err = resync(pj, errstr, errstr_size);
                        }
                        if (err)
                                return err;
                }
                if (pj->n >= pj->o.batch_max ||
                    (pj->opened_ms &&
                     now_ms() - pj->opened_ms >= pj->o.batch_ms)) {
                        if ((err = flush_or_resync(pj, errstr,
                                                   errstr_size)))
                                return err;
                        if (es && (err = at_end(pj, es, errstr,
                                                errstr_size)) != 0)
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
        if (o->exit_at_end) {
                if ((err = query_ends(pj, &es, errstr, errstr_size)))
                        goto out;
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
