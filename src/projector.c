/* The projector: a batch of copied messages and partition positions,
 * applied to the store in one transaction with retries; and the consumer
 * loop that feeds it (rebalance, exit-at-end, Kafka commits after the
 * database commit). What applying means is the store's business. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/timestamp.h"
#include "orderflow/projector.h"

#include "projector_int.h"

/* A message of the batch; its bytes live in the batch arena. */
typedef struct held_msg {
        int32_t partition;
        int64_t offset;
        int64_t ts_ms;           /* the message's timestamp; -1: none */
        size_t key_at, value_at; /* positions in the arena */
        size_t key_len, value_len;
        int has_key, has_value;
} held_msg;

typedef struct part_pos {
        int32_t partition;
        int64_t next_offset; /* first offset not yet in hand */
} part_pos;

#define LAT_MAX_MS 10000 /* latencies above this share the last bucket */
#define PROGRESS_EVERY 1000000 /* messages between two progress lines */
/* An idle projector looks this often (ms) for a rebuild's swap, which a
 * batch transaction would notice by itself. */
#define REPLACED_CHECK_MS 500

struct of_projector {
        of_store *st;
        of_projector_opts o;
        of_store_stats stats;
        held_msg *msgs;
        size_t n, cap;
        char *arena; /* keys and values of the batch, back to back */
        size_t arena_len, arena_cap;
        part_pos *pos; /* positions reached by the batch */
        size_t npos, pos_cap;
        int64_t opened_ms; /* when the batch got its first item; 0: empty */
        int64_t first_ms;  /* first commit holding messages; 0: none yet */
        int64_t last_ms;   /* latest commit holding messages */
        uint64_t taken;    /* messages committed since first_ms's batch */
        uint64_t done;     /* messages committed in all */
        uint64_t done_at_mark; /* done at the last progress line */
        int64_t mark_ms;   /* when that line was written */
        uint64_t fetch_ns; /* in rd_kafka_consumer_poll() */
        uint32_t *lat;     /* LAT_MAX_MS + 1 buckets: ms from the message's
                            * timestamp to its commit; NULL: not kept */
        int64_t ts_next;   /* the timestamp of the next handled message */
        int64_t checked_ms; /* when the file's generation was last seen */
        int64_t *expect;   /* by partition: the next offset the read model
                            * needs (-1: unknown), to tell deleted history
                            * from gaps (see take()) */
        int32_t expect_cnt;
        int64_t prune_at;  /* dedupe retention: next of_store_prune() */
        rd_kafka_t *rk;    /* the consumer, in of_projector_run only */
        int failed;        /* a callback hit an error: its OF_E* code */
        char err[1100];    /* its message */
};

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

        while (nanosleep(&ts, &ts) && errno == EINTR)
                ;
}

static int stopping(const of_projector *pj)
{
        return pj->o.stop && *pj->o.stop;
}

/* ---- the batch ---- */

int of_projector_new(of_projector **out, of_store *st,
                     const of_projector_opts *o, char *errstr,
                     size_t errstr_size)
{
        of_projector *pj = calloc(1, sizeof(*pj));

        *out = NULL;
        if (!pj)
                return of_errf(errstr, errstr_size, "out of memory");
        pj->st = st;
        pj->o = *o;
        if (!pj->o.batch_max)
                pj->o.batch_max = OF_DEFAULT_BATCH_MAX;
        if (pj->o.batch_ms <= 0)
                pj->o.batch_ms = OF_DEFAULT_BATCH_MS;
        if (pj->o.max_retry_ms <= 0)
                pj->o.max_retry_ms = 5000;
        pj->ts_next = -1;
        /* Without the histogram latency is simply not reported. */
        pj->lat = calloc(LAT_MAX_MS + 1, sizeof(*pj->lat));
        if (pj->o.metrics)
                projector_metrics_declare(pj->o.metrics);
        *out = pj;
        return 0;
}

void of_projector_free(of_projector *pj)
{
        if (!pj)
                return;
        free(pj->msgs);
        free(pj->arena);
        free(pj->pos);
        free(pj->lat);
        free(pj->expect);
        free(pj);
}

size_t of_projector_pending(const of_projector *pj)
{
        return pj->n;
}

const of_store_stats *of_projector_stats(const of_projector *pj)
{
        return &pj->stats;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
        size_t ncap = *cap ? *cap : 16;
        void *np;

        if (need <= *cap)
                return 0;
        while (ncap < need)
                ncap *= 2;
        if (!(np = realloc(*p, ncap * elem)))
                return OF_ERROR;
        *p = np;
        *cap = ncap;
        return 0;
}

static int arena_put(of_projector *pj, size_t *at, const void *p,
                     size_t len)
{
        if (grow((void **)&pj->arena, &pj->arena_cap, pj->arena_len + len, 1))
                return OF_ERROR;
        *at = pj->arena_len;
        if (len)
                memcpy(pj->arena + pj->arena_len, p, len);
        pj->arena_len += len;
        return 0;
}

void of_projector_mark(of_projector *pj, int32_t partition,
                       int64_t next_offset)
{
        size_t i;

        if (!pj->opened_ms)
                pj->opened_ms = now_ms();
        for (i = 0; i < pj->npos; i++) {
                if (pj->pos[i].partition == partition) {
                        if (next_offset > pj->pos[i].next_offset)
                                pj->pos[i].next_offset = next_offset;
                        return;
                }
        }
        /* Positions are few (one per partition); on a failed grow the
         * position is simply not recorded and is reached again later. */
        if (grow((void **)&pj->pos, &pj->pos_cap, pj->npos + 1,
                 sizeof(*pj->pos)))
                return;
        pj->pos[pj->npos].partition = partition;
        pj->pos[pj->npos].next_offset = next_offset;
        pj->npos++;
}

int of_projector_handle(of_projector *pj, const of_msg *m, char *errstr,
                        size_t errstr_size)
{
        held_msg *h;

        assert(!strcmp(m->topic, pj->o.ko.topic));
        if (grow((void **)&pj->msgs, &pj->cap, pj->n + 1, sizeof(*pj->msgs)))
                return of_errf(errstr, errstr_size, "out of memory");
        h = &pj->msgs[pj->n];
        h->partition = m->partition;
        h->offset = m->offset;
        h->ts_ms = pj->ts_next;
        pj->ts_next = -1;
        h->has_key = m->key != NULL;
        h->has_value = m->value != NULL;
        h->key_len = m->key ? m->key_len : 0;
        h->value_len = m->value ? m->value_len : 0;
        if (arena_put(pj, &h->key_at, m->key, h->key_len) ||
            arena_put(pj, &h->value_at, m->value, h->value_len))
                return of_errf(errstr, errstr_size,
                               "out of memory holding a message of %zu bytes",
                               m->value_len);
        pj->n++;
        of_projector_mark(pj, m->partition, m->offset + 1);
        return 0;
}

static void batch_clear(of_projector *pj)
{
        pj->n = 0;
        pj->arena_len = 0;
        pj->npos = 0;
        pj->opened_ms = 0;
}

/* Commit the batch's positions to Kafka, for lag tools only: the read
 * model's own offsets decide where the projector resumes. */
static void commit_kafka(of_projector *pj)
{
        rd_kafka_topic_partition_list_t *offsets;
        rd_kafka_resp_err_t err;
        size_t i;

        if (!pj->rk || !pj->npos || !pj->o.group)
                return;
        offsets = rd_kafka_topic_partition_list_new((int)pj->npos);
        for (i = 0; i < pj->npos; i++)
                rd_kafka_topic_partition_list_add(offsets, pj->o.ko.topic,
                                                  pj->pos[i].partition)
                        ->offset = pj->pos[i].next_offset;
        err = rd_kafka_commit(pj->rk, offsets, 1);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
                of_log(OF_LOG_DEBUG, "kafka offset commit: %s",
                       rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(offsets);
}

/* A line per PROGRESS_EVERY messages with the rate since the last one, so
 * a long run shows how the cost grows with the size of the read model. */
static void progress(of_projector *pj)
{
        uint64_t n = pj->done - pj->done_at_mark;
        int64_t ms = pj->last_ms - pj->mark_ms;

        /* At each multiple of PROGRESS_EVERY, so the last million of a
         * run of whole millions gets its line too. */
        if (pj->done / PROGRESS_EVERY == pj->done_at_mark / PROGRESS_EVERY)
                return;
        of_log(OF_LOG_INFO,
               "progress: %" PRIu64 " messages applied, %.0f/s over the "
               "last %" PRIu64,
               pj->done, ms > 0 ? (double)n * 1000 / (double)ms : 0.0, n);
        pj->done_at_mark = pj->done;
        pj->mark_ms = pj->last_ms;
}

/* Add the batch's messages to the latency histogram (just committed). */
static void count_latency(of_projector *pj)
{
        int64_t now = of_timestamp_now_ms(), d;
        size_t i;

        for (i = 0; i < pj->n; i++) {
                if (pj->msgs[i].ts_ms < 0)
                        continue;
                d = now - pj->msgs[i].ts_ms;
                pj->lat[d < 0 ? 0 : d > LAT_MAX_MS ? LAT_MAX_MS : d]++;
        }
}

/* The latency (ms) below which a share q of the counted messages fell;
 * -1 when none was counted. */
static int64_t latency_at(const of_projector *pj, double q, uint64_t *n)
{
        uint64_t total = 0, seen = 0;
        int64_t i;

        for (i = 0; i <= LAT_MAX_MS; i++)
                total += pj->lat[i];
        *n = total;
        for (i = 0; i <= LAT_MAX_MS && total; i++) {
                seen += pj->lat[i];
                if ((double)seen >= q * (double)total)
                        return i;
        }
        return -1;
}

int of_projector_flush(of_projector *pj, char *errstr, size_t errstr_size)
{
        of_msg *msgs = NULL;
        of_store_pos *pos = NULL;
        int64_t give_up_at = 0;
        uint64_t apply_ns = pj->stats.apply_ns;
        int backoff = 50, err = 0;
        size_t i;

        if (!pj->n && !pj->npos)
                return 0;
        msgs = calloc(pj->n ? pj->n : 1, sizeof(*msgs));
        pos = calloc(pj->npos ? pj->npos : 1, sizeof(*pos));
        if (!msgs || !pos) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        for (i = 0; i < pj->n; i++) {
                const held_msg *h = &pj->msgs[i];

                msgs[i] = (of_msg){
                        .topic = pj->o.ko.topic,
                        .partition = h->partition,
                        .offset = h->offset,
                        .key = h->has_key ? pj->arena + h->key_at : NULL,
                        .key_len = h->key_len,
                        .value = h->has_value ? pj->arena + h->value_at
                                              : NULL,
                        .value_len = h->value_len,
                };
        }
        for (i = 0; i < pj->npos; i++)
                pos[i] = (of_store_pos){pj->o.ko.topic, pj->pos[i].partition,
                                        pj->pos[i].next_offset};
        for (;;) {
                err = of_store_apply_batch(pj->st, msgs, pj->n, pos, pj->npos,
                                           &pj->stats, errstr, errstr_size);
                if (err != OF_EBUSY)
                        break;
                /* Busy or full: nothing was applied; the same batch goes
                 * again. Once asked to stop, give it a few seconds more,
                 * then leave the batch to be read again on restart. */
                if (stopping(pj) && !give_up_at)
                        give_up_at = now_ms() + 7000;
                if (give_up_at && now_ms() >= give_up_at)
                        break;
                of_log(OF_LOG_WARN, "read model: %s; retrying in %d ms",
                       errstr, backoff);
                sleep_ms(backoff);
                backoff = backoff * 2 > pj->o.max_retry_ms
                                  ? pj->o.max_retry_ms
                                  : backoff * 2;
        }
        if (err == OF_ESTALE) {
                /* A rebuild swapped a new model in: what we hold was read
                 * for the old one. The consumer loop seeks to the new
                 * file's offsets (resync()). */
                of_log(OF_LOG_WARN, "%s (%zu messages dropped, to be read "
                       "again from the new model's offsets)", errstr,
                       pj->n);
                batch_clear(pj);
                goto out;
        }
        if (err)
                goto out;
        if (pj->o.after_db_commit && pj->o.after_db_commit(pj->o.hook_opaque)) {
                err = OF_EABORT;
                of_errf(errstr, errstr_size, "stopped by the test hook");
                goto out;
        }
        if (pj->n && pj->lat)
                count_latency(pj);
        if (pj->n) {
                pj->last_ms = now_ms();
                if (!pj->first_ms)
                        pj->first_ms = pj->mark_ms = pj->last_ms;
                else
                        pj->taken += pj->n;
                pj->done += pj->n;
                progress(pj);
                if (pj->o.on_commit)
                        pj->o.on_commit(pj->o.commit_opaque, pj->done);
        }
        commit_kafka(pj);
        if (pj->o.metrics)
                projector_metrics_publish(pj->o.metrics, &pj->stats,
                                          pj->stats.apply_ns - apply_ns,
                                          pj->rk, pj->st, pj->o.ko.topic);
        batch_clear(pj);
out:
        free(msgs);
        free(pos);
        return err;
}

/* ---- the consumer loop ---- */

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
static void assign(of_projector *pj, rd_kafka_t *rk,
                   rd_kafka_topic_partition_list_t *parts, int incremental)
{
        rd_kafka_error_t *error = NULL;
        char errstr[512];
        int i;

        for (i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];
                int64_t next;
                int err = of_store_offset(&next, pj->st, p->topic,
                                          p->partition, errstr,
                                          sizeof(errstr));

                if (err == OF_ENOTFOUND)
                        p->offset = RD_KAFKA_OFFSET_BEGINNING;
                else if (err) {
                        fail(pj, "read model: ", errstr);
                        return;
                }
                else
                        p->offset = next;
                set_expect(pj, p->partition, err ? 0 : next);
                of_log(OF_LOG_INFO, "assigned %s [%" PRId32 "] from %s",
                       p->topic, p->partition,
                       err ? "the beginning" : "the read model's offset");
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
        for (i = 0; i < parts->cnt && !rc; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];
                int64_t next;

                rc = of_store_offset(&next, pj->st, p->topic, p->partition,
                                     errstr, errstr_size);
                p->offset = rc == OF_ENOTFOUND ? RD_KAFKA_OFFSET_BEGINNING
                                               : next;
                set_expect(pj, p->partition, rc == OF_ENOTFOUND ? 0 : next);
                if (rc == OF_ENOTFOUND)
                        rc = 0;
        }
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
        if (pj && pj->last_ms > pj->first_ms)
                of_log(OF_LOG_INFO,
                       "rate: %" PRIu64 " messages in %.3f s after the first "
                       "batch (%.0f/s)",
                       pj->taken, (double)(pj->last_ms - pj->first_ms) / 1000,
                       (double)pj->taken * 1000 /
                               (double)(pj->last_ms - pj->first_ms));
        if (pj && pj->lat) {
                uint64_t n;
                int64_t p50 = latency_at(pj, 0.5, &n),
                        p99 = latency_at(pj, 0.99, &n);

                if (n)
                        of_log(OF_LOG_INFO,
                               "latency from message timestamp to commit: "
                               "p50 %" PRId64 " ms, p99 %" PRId64
                               " ms over %" PRIu64 " messages%s",
                               p50, p99, n,
                               p99 >= LAT_MAX_MS ? " (capped at 10 s)" : "");
        }
        if (pj && pj->stats.batches)
                of_log(OF_LOG_INFO,
                       "time: fetch %.3f s, decode %.3f s, apply %.3f s "
                       "(decode excluded; commit %.3f s of it)",
                       (double)pj->fetch_ns / 1e9,
                       (double)pj->stats.decode_ns / 1e9,
                       (double)(pj->stats.apply_ns - pj->stats.decode_ns) /
                               1e9,
                       (double)pj->stats.commit_ns / 1e9);
        if (pj && pj->rk)
                rd_kafka_destroy(pj->rk);
        if (pj && stats)
                *stats = pj->stats;
        of_projector_free(pj);
        free(es.end);
        free(es.low);
        return err;
}
