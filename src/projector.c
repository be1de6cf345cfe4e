/* The projector's batch: copied messages and partition positions,
 * applied to the store in one transaction with retries, and the run's
 * summary. The consumer loop that feeds it is projector_consumer.c's; what
 * applying means is the store's business. */
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

#define PROGRESS_EVERY 1000000       /* messages between two progress lines */
#define ARENA_BLOCK    (1024 * 1024) /* bytes of a block of the arena */

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
        if (of_store_batch_new(&pj->decoded, errstr, errstr_size)) {
                free(pj);
                return OF_ERROR;
        }
        /* Without the histogram latency is simply not reported. */
        pj->lat = calloc(1, sizeof(*pj->lat));
        if (pj->o.metrics)
                projector_metrics_declare(pj->o.metrics);
        *out = pj;
        return 0;
}

void of_projector_free(of_projector *pj)
{
        arena_block *b, *next;

        if (!pj)
                return;
        for (b = pj->arena; b; b = next) {
                next = b->next;
                free(b);
        }
        free(pj->msgs);
        free(pj->ts);
        free(pj->pos);
        free(pj->lat);
        free(pj->expect);
        of_store_batch_free(pj->decoded);
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

/* A copy of the len bytes at p in the arena, where it stays until the
 * batch is cleared; NULL when memory runs out. Blocks are filled in
 * turn; a block is made where the next one is missing or too small. */
static const void *arena_put(of_projector *pj, const void *p, size_t len)
{
        arena_block *b = pj->block, *nb;
        char *at;

        if (!b || b->cap - b->len < len) {
                b = b ? b->next : pj->arena;
                if (!b || b->cap < len) {
                        size_t cap = len > ARENA_BLOCK ? len : ARENA_BLOCK;

                        if (!(nb = malloc(sizeof(*nb) + cap)))
                                return NULL;
                        nb->len = 0;
                        nb->cap = cap;
                        nb->next = b;
                        if (pj->block)
                                pj->block->next = nb;
                        else
                                pj->arena = nb;
                        b = nb;
                }
                pj->block = b;
        }
        at = b->data + b->len;
        if (len)
                memcpy(at, p, len);
        b->len += len;
        return at;
}

/* Empty the arena for the next batch: its blocks are kept, but for one
 * made larger for a large message. */
static void arena_clear(of_projector *pj)
{
        arena_block **link = &pj->arena, *b;

        while ((b = *link)) {
                if (b->cap > ARENA_BLOCK) {
                        *link = b->next;
                        free(b);
                        continue;
                }
                b->len = 0;
                link = &b->next;
        }
        pj->block = NULL;
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
        of_msg *h;

        assert(!strcmp(m->topic, pj->o.ko.topic));
        if (grow((void **)&pj->msgs, &pj->cap, pj->n + 1, sizeof(*pj->msgs)) ||
            grow((void **)&pj->ts, &pj->ts_cap, pj->n + 1, sizeof(*pj->ts)))
                return of_errf(errstr, errstr_size, "out of memory");
        h = &pj->msgs[pj->n];
        *h = (of_msg){
                .topic = pj->o.ko.topic,
                .partition = m->partition,
                .offset = m->offset,
                .key_len = m->key ? m->key_len : 0,
                .value_len = m->value ? m->value_len : 0,
        };
        if ((m->key && !(h->key = arena_put(pj, m->key, h->key_len))) ||
            (m->value && !(h->value = arena_put(pj, m->value, h->value_len))))
                return of_errf(errstr, errstr_size,
                               "out of memory holding a message of %zu bytes",
                               m->value_len);
        pj->ts[pj->n] = pj->ts_next;
        pj->ts_next = -1;
        if (pj->n++ == 0)
                of_log(OF_LOG_DEBUG,
                       "batch: first message %s [%" PRId32 "] offset %" PRId64,
                       m->topic, m->partition, m->offset);
        of_projector_mark(pj, m->partition, m->offset + 1);
        return 0;
}

static void batch_clear(of_projector *pj)
{
        pj->n = 0;
        arena_clear(pj);
        pj->npos = 0;
        pj->opened_ms = 0;
}

/* Hand the batch's positions to librdkafka, which commits the latest ones
 * to Kafka every auto.commit.interval.ms and when it leaves, for lag tools
 * only: the read model's own offsets decide where the projector resumes.
 * (A commit request per batch queued up ahead of the heartbeats: with
 * small batches the group took the member for dead.) */
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
        /* A partition no longer assigned (revoked meanwhile) is refused:
         * its new owner commits it. */
        err = rd_kafka_offsets_store(pj->rk, offsets);
        if (err)
                of_log(OF_LOG_DEBUG, "kafka offset store: %s",
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

/* Count each message of the batch just committed: the time from its
 * timestamp (the producer's, when the relay produced it) to now. */
static void count_latency(of_projector *pj)
{
        struct timespec ts;
        int64_t now_us, us;
        size_t i;

        clock_gettime(CLOCK_REALTIME, &ts);
        now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        if (pj->o.metrics)
                of_metrics_begin(pj->o.metrics);
        for (i = 0; i < pj->n; i++) {
                if (pj->ts[i] < 0)
                        continue;
                us = now_us - pj->ts[i] * 1000;
                of_lathist_add(pj->lat, us);
                if (pj->o.metrics)
                        projector_metrics_latency(pj->o.metrics, us);
        }
        if (pj->o.metrics)
                of_metrics_end(pj->o.metrics);
}

/* The batch's positions as the store takes them, into *pos (the caller
 * frees it), and its messages decoded into pj->decoded: once, before the
 * transaction and its retries, so that the write lock is held for SQL
 * only. *decode_ns gets the time decoding took. */
static int batch_decode(of_projector *pj, of_store_pos **pos,
                        uint64_t *decode_ns, char *errstr, size_t errstr_size)
{
        uint64_t t0;
        size_t i;
        int err;

        if (!(*pos = calloc(pj->npos ? pj->npos : 1, sizeof(**pos))))
                return of_errf(errstr, errstr_size, "out of memory");
        for (i = 0; i < pj->npos; i++)
                (*pos)[i] =
                        (of_store_pos){pj->o.ko.topic, pj->pos[i].partition,
                                       pj->pos[i].next_offset};
        t0 = now_ns();
        err = of_store_batch_decode(pj->decoded, pj->msgs, pj->n, errstr,
                                    errstr_size);
        *decode_ns = now_ns() - t0;
        pj->decode_ns += *decode_ns;
        return err;
}

/* Apply the decoded batch in one transaction, again while it fails with
 * what waiting (OF_EBUSY) or a few attempts (OF_EIO) may clear. */
static int apply_retrying(of_projector *pj, const of_store_pos *pos,
                          char *errstr, size_t errstr_size)
{
        of_retry retry = {.max_ms = pj->o.max_retry_ms};
        int64_t give_up_at = 0;
        int wait, err;

        for (;;) {
                err = of_store_apply_decoded(pj->st, pj->decoded, pos,
                                             pj->npos, &pj->stats, errstr,
                                             errstr_size);
                if (err != OF_EBUSY && err != OF_EIO)
                        break;
                /* Nothing was applied; the same batch goes again: busy or
                 * full until it clears, an I/O error a few times. Once
                 * asked to stop, give it a few seconds more, then leave
                 * the batch to be read again on restart. */
                if (stopping(pj) && !give_up_at)
                        give_up_at = now_ms() + 7000;
                if (give_up_at && now_ms() >= give_up_at)
                        break;
                if ((wait = of_retry_failed(&retry, err, "read model", errstr,
                                            errstr_size, now_ms())) < 0)
                        break;
                sleep_ms(wait);
        }
        if (!err)
                of_retry_ok(&retry, "read model", now_ms());
        return err;
}

int of_projector_flush(of_projector *pj, char *errstr, size_t errstr_size)
{
        of_store_pos *pos = NULL;
        uint64_t apply_ns = pj->stats.apply_ns, decode_ns = 0;
        int err;

        if (!pj->n && !pj->npos)
                return 0;
        if ((err = batch_decode(pj, &pos, &decode_ns, errstr, errstr_size)))
                goto out;
        err = apply_retrying(pj, pos, errstr, errstr_size);
        if (err == OF_ESTALE) {
                /* A rebuild swapped a new model in: what we hold was read
                 * for the old one. The consumer loop seeks to the new
                 * file's offsets (resync()). */
                of_log(OF_LOG_WARN,
                       "%s (%zu messages dropped, to be read "
                       "again from the new model's offsets)",
                       errstr, pj->n);
                batch_clear(pj);
                goto out;
        }
        if (err)
                goto out;
        if (pj->o.after_db_commit &&
            pj->o.after_db_commit(pj->o.hook_opaque)) {
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
        /* The histogram's batch: decoding, apply and COMMIT. */
        if (pj->o.metrics)
                projector_metrics_publish(pj->o.metrics, &pj->stats,
                                          decode_ns + pj->stats.apply_ns -
                                                  apply_ns,
                                          pj->rk, pj->st, pj->o.ko.topic);
        batch_clear(pj);
out:
        free(pos);
        return err;
}

/* The run's summary lines: steady rate, latency, where the time went. */
void projector_report(const of_projector *pj)
{
        if (pj->last_ms > pj->first_ms)
                of_log(OF_LOG_DEBUG,
                       "rate: %" PRIu64 " messages in %.3f s after the first "
                       "batch (%.0f/s)",
                       pj->taken, (double)(pj->last_ms - pj->first_ms) / 1000,
                       (double)pj->taken * 1000 /
                               (double)(pj->last_ms - pj->first_ms));
        if (pj->lat && pj->lat->n) {
                char line[96];

                of_log(OF_LOG_DEBUG,
                       "latency from message timestamp to commit: %s over "
                       "%" PRIu64 " messages",
                       of_lathist_format(pj->lat, line, sizeof(line)),
                       pj->lat->n);
        }
        if (pj->stats.batches)
                of_log(OF_LOG_DEBUG,
                       "time: fetch %.3f s, decode %.3f s, apply %.3f s "
                       "(decode excluded; commit %.3f s of it)",
                       (double)pj->fetch_ns / 1e9, (double)pj->decode_ns / 1e9,
                       (double)pj->stats.apply_ns / 1e9,
                       (double)pj->stats.commit_ns / 1e9);
}
