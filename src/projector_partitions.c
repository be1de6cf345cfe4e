/* The projector's partitions: where each assigned partition starts (the
 * read model's offset, checked against the brokers' ends), rebalances,
 * gaps and deleted history, fetches out of range, the move to a swapped-in
 * model's offsets, and one message into the batch. The consumer and its
 * loop are projector_consumer.c's, the batch projector.c's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/projector.h"

#include "projector_int.h"

void projector_fail(of_projector *pj, int code, const char *prefix,
                    const char *detail)
{
        if (!pj->failed) {
                snprintf(pj->err, sizeof(pj->err), "%s%s", prefix, detail);
                pj->failed = code;
        }
}

static void fail(of_projector *pj, const char *prefix, const char *detail)
{
        projector_fail(pj, OF_ERROR, prefix, detail);
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

/* Set each partition of parts to start at the read model's offset for it
 * (the beginning where it has none), not at the group's commit; log each
 * when verb is not NULL. */
static int from_read_model(of_projector *pj,
                           rd_kafka_topic_partition_list_t *parts,
                           const char *verb, char *errstr, size_t errstr_size)
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
                       rd_kafka_topic_partition_list_t *parts, char *errstr,
                       size_t errstr_size)
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
                        err = of_errf(
                                errstr, errstr_size,
                                "kafka: reading the offsets of %s [%" PRId32
                                "]: %s",
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

void projector_assign(of_projector *pj, rd_kafka_t *rk,
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

void projector_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts,
                            void *opaque)
{
        of_projector *pj = opaque;
        int incremental =
                !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        char errstr[512];
        rd_kafka_error_t *error = NULL;
        int rc, i;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                projector_assign(pj, rk, parts, incremental);
                return;
        }
        /* Revoked (or lost): apply the batch in hand first, so the next
         * owner starts where we stopped. Then a new assignment is
         * awaited. */
        pj->joining_ms = pj->joining_said_ms = now_ms();
        rc = of_projector_flush(pj, errstr, sizeof(errstr));
        if (rc == OF_EABORT)
                projector_fail(pj, OF_EABORT, "", errstr);
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

/* Fetch partition of topic from offset again. After an out-of-range
 * fetch with auto.offset.reset=error librdkafka has stopped the
 * partition, and a seek is refused: it is assigned again, on its own
 * (cooperative), or with the whole assignment at the current positions
 * (eager, or no group), since assign() replaces the assignment. */
static int restart_at(of_projector *pj, const char *topic, int32_t partition,
                      int64_t offset, char *errstr, size_t errstr_size)
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
                err = of_errf(errstr, errstr_size,
                              "kafka: assign %s [%" PRId32 "]: %s", topic,
                              partition, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (kerr) {
                err = of_errf(errstr, errstr_size,
                              "kafka: assign %s [%" PRId32 "]: %s", topic,
                              partition, rd_kafka_err2str(kerr));
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

        kerr = rd_kafka_query_watermark_offsets(pj->rk, topic, rkm->partition,
                                                &low, &high, 10000);
        if (kerr)
                return of_errf(errstr, errstr_size,
                               "kafka: %s; reading the offsets of %s [%" PRId32
                               "]: %s",
                               rd_kafka_message_errstr(rkm), topic,
                               rkm->partition, rd_kafka_err2str(kerr));
        if (rkm->offset > high) {
                of_store_part part = {(char *)topic, rkm->partition,
                                      rkm->offset};
                int64_t *end =
                        calloc((size_t)rkm->partition + 1, sizeof(*end));

                if (!end)
                        return of_errf(errstr, errstr_size, "out of memory");
                end[rkm->partition] = high;
                of_store_check_fit(&part, 1, topic, -1, end, why, sizeof(why));
                free(end);
                return of_errf(errstr, errstr_size, "%s" OF_STORE_REBUILD_HINT,
                               why);
        }
        if (rkm->offset < low) {
                warn_deleted(topic, rkm->partition, rkm->offset, low - 1);
                set_expect(pj, rkm->partition, low);
                return restart_at(pj, topic, rkm->partition, low, errstr,
                                  errstr_size);
        }
        of_log(OF_LOG_INFO,
               "kafka: %s; %s [%" PRId32 "] has offsets %" PRId64 "-%" PRId64
               " now: fetching from %" PRId64 " again",
               rd_kafka_message_errstr(rkm), topic, rkm->partition, low,
               high - 1, rkm->offset);
        return restart_at(pj, topic, rkm->partition, rkm->offset, errstr,
                          errstr_size);
}

int projector_take(of_projector *pj, rd_kafka_message_t *rkm, char *errstr,
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
                of_log(OF_LOG_WARN, "kafka: %s", rd_kafka_message_errstr(rkm));
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

int projector_resync(of_projector *pj, char *errstr, size_t errstr_size)
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
                of_log(OF_LOG_INFO,
                       "resumed %d partitions from the new "
                       "model's offsets",
                       parts->cnt);
        rd_kafka_topic_partition_list_destroy(parts);
        return rc;
}
