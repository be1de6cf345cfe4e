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

/* Offsets from..to of partition were deleted before the read model
 * applied them. */
static void warn_deleted(const char *topic, int32_t partition, int64_t from,
                         int64_t to)
{
        of_log(OF_LOG_WARN,
               "%s [%" PRId32 "]: offsets %" PRId64 "-%" PRId64
               " were deleted (retention) before this read model applied "
               "them: it lacks them, and a rebuild cannot bring them back",
               topic, partition, from, to);
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
                warn_deleted(topic, partition, want, low - 1);
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

/* Whether the read model's offsets for the partitions of parts (set by
 * from_read_model) lie within the partitions as the brokers have them
 * now: 0, or OF_ERROR with the line that says which do not and what to
 * do. One below the partition's first offset starts at the beginning. */
static int check_ahead(of_projector *pj,
                       rd_kafka_topic_partition_list_t *parts,
                       char *errstr, size_t errstr_size)
{
        of_store_part *mine = calloc((size_t)parts->cnt + 1, sizeof(*mine));
        int64_t *end = NULL, low;
        int32_t top = 0;
        size_t n = 0;
        char why[900];
        int i, err = 0;

        for (i = 0; i < parts->cnt; i++)
                if (parts->elems[i].partition >= top)
                        top = parts->elems[i].partition + 1;
        end = malloc(((size_t)top + 1) * sizeof(*end));
        if (!mine || !end) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        for (i = 0; i < top; i++)
                end[i] = -1;
        for (i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];
                rd_kafka_resp_err_t kerr;

                if (p->offset < 0 || p->partition < 0)
                        continue; /* the beginning: nothing to be past */
                kerr = rd_kafka_query_watermark_offsets(
                        pj->rk, p->topic, p->partition, &low,
                        &end[p->partition], 10000);
                if (kerr) {
                        err = of_errf(errstr, errstr_size,
                                      "kafka: reading the offsets of %s [%"
                                      PRId32 "]: %s",
                                      p->topic, p->partition,
                                      rd_kafka_err2str(kerr));
                        goto out;
                }
                mine[n++] = (of_store_part){(char *)p->topic, p->partition,
                                            p->offset};
                /* Retention deleted what the read model would read next:
                 * start at the first offset there is (check_gap() says
                 * what is missing when it comes), not out of range. */
                if (p->offset < low)
                        p->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        if (of_store_check_fit(mine, n, pj->o.ko.topic, -1, end, why,
                               sizeof(why)) != OF_FIT_OK)
                err = of_errf(errstr, errstr_size, "%s" OF_STORE_REBUILD_HINT,
                              why);
out:
        free(mine);
        free(end);
        return err;
}

static void assign(of_projector *pj, rd_kafka_t *rk,
                   rd_kafka_topic_partition_list_t *parts, int incremental)
{
        rd_kafka_error_t *error = NULL;
        char errstr[1024];

        if (from_read_model(pj, parts, "assigned", errstr, sizeof(errstr))) {
                fail(pj, "read model: ", errstr);
                return;
        }
        /* Never apply a partition the read model is ahead of (the topic
         * was deleted and created again) from its beginning. */
        if (check_ahead(pj, parts, errstr, sizeof(errstr))) {
                fail(pj, "", errstr);
                return;
        }
        pj->joining_ms = 0;
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
        int rc, i;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                assign(pj, rk, parts, incremental);
                return;
        }
        /* Revoked (or lost): apply the batch in hand first, so the next
         * owner starts where we stopped. Then a new assignment is
         * awaited. */
        pj->joining_ms = pj->joining_said_ms = now_ms();
        rc = of_projector_flush(pj, errstr, sizeof(errstr));
        if (rc == OF_EABORT)
                fail_with(pj, OF_EABORT, "", errstr);
        else if (rc && rc != OF_ESTALE) /* stale: the next owner reads the
                                         * new file's offsets */
                fail(pj, "read model: ", errstr);
        for (i = 0; i < parts->cnt; i++)
                of_log(OF_LOG_INFO, "%s %s [%" PRId32 "]",
                       rd_kafka_assignment_lost(rk) ? "lost" : "revoked",
                       parts->elems[i].topic, parts->elems[i].partition);
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

#define FETCH_MAX_BYTES "4194304"

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
                 * out_of_range() decides about, never a silent reset. */
                "auto.offset.reset=error",
                "enable.partition.eof=true",
                /* Bound what librdkafka buffers ahead (its default may hold
                 * 64 MiB); the apply step is the bottleneck anyway. */
                "queued.max.messages.kbytes=12288",
                /* Bound one fetch too: Kafka answers up to this many bytes
                 * of compressed batches at once (librdkafka's default here
                 * would be 12 MiB), each inflated in memory. Measured on
                 * Kafka, 1M events, 64 partitions (README, Performance):
                 * 12 MiB 83k/s at 250 MiB peak RSS, 4 MiB 88k/s at
                 * 136 MiB, 1 MiB 73k/s at 100 MiB. */
                "fetch.max.bytes=" FETCH_MAX_BYTES,
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
        if (fit_fetch_max(conf, errstr, errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return OF_ERROR;
        }
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
        of_log(OF_LOG_INFO, "joining group %s (topic %s)", pj->o.group,
               pj->o.ko.topic);
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
        assign(pj, pj->rk, parts, 0);
        rd_kafka_topic_partition_list_destroy(parts);
        if (pj->failed)
                return of_errf(errstr, errstr_size, "%s", pj->err);
        return 0;
}

/* Fetch partition of topic from offset again. After an out-of-range
 * fetch with auto.offset.reset=error librdkafka has stopped the
 * partition, and a seek is refused: it is assigned again, on its own
 * (cooperative), or with the whole assignment at the current positions
 * (eager, or no group), since assign() replaces the assignment. */
static int restart_at(of_projector *pj, const char *topic,
                      int32_t partition, int64_t offset, char *errstr,
                      size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t kerr = 0;
        int i, err = 0;

        if (!strcmp(rd_kafka_rebalance_protocol(pj->rk), "COOPERATIVE")) {
                parts = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(parts, topic, partition);
                error = rd_kafka_incremental_unassign(pj->rk, parts);
                parts->elems[0].offset = offset;
                if (!error)
                        error = rd_kafka_incremental_assign(pj->rk, parts);
                goto out;
        }
        if ((kerr = rd_kafka_assignment(pj->rk, &parts)) ||
            (kerr = rd_kafka_position(pj->rk, parts)))
                goto out;
        for (i = 0; i < parts->cnt && !err; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];
                int64_t next;

                if (p->partition == partition && !strcmp(p->topic, topic)) {
                        p->offset = offset;
                } else if (p->offset < 0) {
                        /* Nothing consumed since it was assigned. */
                        err = of_store_offset(&next, pj->st, p->topic,
                                              p->partition, errstr,
                                              errstr_size);
                        p->offset = err ? RD_KAFKA_OFFSET_BEGINNING : next;
                        err = err == OF_ENOTFOUND ? 0 : err;
                }
        }
        if (!err)
                kerr = rd_kafka_assign(pj->rk, parts);
out:
        if (error) {
                err = of_errf(errstr, errstr_size, "kafka: assign %s [%"
                              PRId32 "]: %s",
                              topic, partition, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (kerr) {
                err = of_errf(errstr, errstr_size, "kafka: assign %s [%"
                              PRId32 "]: %s",
                              topic, partition, rd_kafka_err2str(kerr));
        }
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        return err;
}

/* A fetch at rkm->offset was out of range (auto.offset.reset=error stops
 * the partition and says so). Past the end: the topic was deleted and
 * created again, or truncated, and the read model no longer matches it:
 * stop. Below the first offset: retention deleted offsets the read model
 * never applied: say so and go on from the first one. Neither (the range
 * moved meanwhile): fetch from there again. */
static int out_of_range(of_projector *pj, const rd_kafka_message_t *rkm,
                        char *errstr, size_t errstr_size)
{
        const char *topic = rd_kafka_topic_name(rkm->rkt);
        int64_t low = -1, high = -1;
        rd_kafka_resp_err_t kerr;
        char why[900];

        kerr = rd_kafka_query_watermark_offsets(pj->rk, topic,
                                                rkm->partition, &low, &high,
                                                10000);
        if (kerr)
                return of_errf(errstr, errstr_size,
                               "kafka: %s; reading the offsets of %s [%"
                               PRId32 "]: %s",
                               rd_kafka_message_errstr(rkm), topic,
                               rkm->partition, rd_kafka_err2str(kerr));
        if (rkm->offset > high) {
                of_store_part part = {(char *)topic, rkm->partition,
                                      rkm->offset};
                int64_t *end = calloc((size_t)rkm->partition + 1,
                                      sizeof(*end));

                if (!end)
                        return of_errf(errstr, errstr_size, "out of memory");
                end[rkm->partition] = high;
                of_store_check_fit(&part, 1, topic, -1, end, why,
                                   sizeof(why));
                free(end);
                return of_errf(errstr, errstr_size,
                               "%s" OF_STORE_REBUILD_HINT, why);
        }
        if (rkm->offset < low) {
                warn_deleted(topic, rkm->partition, rkm->offset, low - 1);
                set_expect(pj, rkm->partition, low);
                return restart_at(pj, topic, rkm->partition, low, errstr,
                                  errstr_size);
        }
        of_log(OF_LOG_INFO, "kafka: %s; %s [%" PRId32 "] has offsets %"
               PRId64 "-%" PRId64 " now: fetching from %" PRId64 " again",
               rd_kafka_message_errstr(rkm), topic, rkm->partition, low,
               high - 1, rkm->offset);
        return restart_at(pj, topic, rkm->partition, rkm->offset, errstr,
                          errstr_size);
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
        if (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
                return out_of_range(pj, rkm, errstr, errstr_size);
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

/* A join that takes long is not a hang: say why, every JOIN_SAY_MS. */
#define JOIN_SAY_MS 10000

static void still_joining(of_projector *pj)
{
        char timeout[32] = "?";
        size_t size = sizeof(timeout);

        if (!pj->joining_ms || now_ms() - pj->joining_said_ms < JOIN_SAY_MS)
                return;
        pj->joining_said_ms = now_ms();
        rd_kafka_conf_get(rd_kafka_conf(pj->rk), "session.timeout.ms",
                          timeout, &size);
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
                still_joining(pj);
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
        switch (of_store_check_fit(parts, n, pj->o.ko.topic, es->cnt,
                                   es->end, why, sizeof(why))) {
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
                of_log(OF_LOG_DEBUG, "not checking the read model against "
                       "the topic: %s", errstr);
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
