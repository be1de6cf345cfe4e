/* Private to the projector module: the of_projector structure shared by
 * the batch (projector.c), the consumer loop (projector_consumer.c), its
 * partitions (projector_partitions.c) and its metrics
 * (projector_metrics.c). */
#ifndef ORDERFLOW_PROJECTOR_INT_H
#define ORDERFLOW_PROJECTOR_INT_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/lathist.h"
#include "orderflow/metrics.h"
#include "orderflow/projector.h"
#include "orderflow/store.h"

/* A block of the batch arena: messages' keys and values back to back.
 * Blocks never move, so the batch's of_msg point into them; they are
 * kept from batch to batch (one larger than ARENA_BLOCK, made for a
 * large message, is freed when the batch is). */
typedef struct arena_block {
        struct arena_block *next;
        size_t len, cap;
        char data[];
} arena_block;

typedef struct part_pos {
        int32_t partition;
        int64_t next_offset; /* first offset not yet in hand */
} part_pos;

struct of_projector {
        of_store *st;
        of_projector_opts o;
        of_store_stats stats;
        of_msg *msgs; /* the batch, as the store takes it; keys and
                       * values in the arena */
        int64_t *ts;  /* each one's timestamp (ms); -1: none */
        size_t n, cap, ts_cap;
        arena_block *arena; /* every block, in the order they fill */
        arena_block *block; /* the one being filled; NULL: none yet */
        part_pos *pos;      /* positions reached by the batch */
        size_t npos, pos_cap;
        int64_t opened_ms; /* when the batch got its first item; 0: empty */
        int64_t first_ms;  /* first commit holding messages; 0: none yet */
        int64_t last_ms;   /* latest commit holding messages */
        uint64_t taken;    /* messages committed since first_ms's batch */
        uint64_t done;     /* messages committed in all */
        uint64_t done_at_mark;   /* done at the last progress line */
        int64_t mark_ms;         /* when that line was written */
        uint64_t fetch_ns;       /* in rd_kafka_consumer_poll() */
        uint64_t decode_ns;      /* in of_store_batch_decode() */
        of_store_batch *decoded; /* the batch in hand, decoded to apply */
        of_lathist *lat;         /* us from each message's timestamp to its
                                  * commit; NULL: not kept */
        int64_t ts_next;    /* the timestamp of the next handled message */
        int64_t checked_ms; /* when the file's generation was last seen */
        int64_t *expect;    /* by partition: the next offset the read model
                             * needs (-1: unknown), to tell deleted history
                             * from gaps (projector_take()) */
        int32_t expect_cnt;
        int64_t prune_at;        /* dedupe retention: next of_store_prune() */
        int64_t joining_ms;      /* when it asked to join the group; 0: not
                                  * joining (assigned, or no group) */
        int64_t joining_said_ms; /* when it last said it still waits */
        rd_kafka_t *rk;          /* the consumer, in of_projector_run only */
        int failed;              /* a callback hit an error: its OF_E* code */
        char err[1100];          /* its message */
};

static inline int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

        while (nanosleep(&ts, &ts) && errno == EINTR)
                ;
}

static inline int stopping(const of_projector *pj)
{
        return pj->o.stop && *pj->o.stop;
}

/* projector.c: the batch's commit to Kafka (lag tools only) is inside
 * of_projector_flush(); the summary lines at the end of a run: */
void projector_report(const of_projector *pj);

/* projector_partitions.c, for the consumer loop: */

/* Remember the first failure of a callback (code, "<prefix><detail>"),
 * which stops the loop. */
void projector_fail(of_projector *pj, int code, const char *prefix,
                    const char *detail);

/* Assign parts (incrementally under the cooperative protocol), each
 * partition from the read model's offset, once that offset is checked to
 * lie within the partition; a failure goes to projector_fail(). */
void projector_assign(of_projector *pj, rd_kafka_t *rk,
                      rd_kafka_topic_partition_list_t *parts, int incremental);

/* The consumer's rebalance callback (opaque: pj): assign, or apply the
 * batch in hand before the partitions are revoked. */
void projector_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts,
                            void *opaque);

/* Take one message or event of the consumer (end of a partition, a fetch
 * out of range, a gap) into the batch. 0 or a negative OF_E*. */
int projector_take(of_projector *pj, rd_kafka_message_t *rkm, char *errstr,
                   size_t errstr_size);

/* After a rebuild swapped the file: move every assigned partition to the
 * new model's offset for it (the beginning where it has none). librdkafka
 * drops what it fetched before the seek. 0 or OF_ERROR. */
int projector_resync(of_projector *pj, char *errstr, size_t errstr_size);

/* Count a message's us from its timestamp to its commit; between
 * of_metrics_begin() and of_metrics_end(). */
void projector_metrics_latency(of_metrics *m, int64_t us);

/* Declare the projector's families in m, every dead-letter reason at 0. */
void projector_metrics_declare(of_metrics *m);

/* After a committed batch that took batch_ns: publish the counters, the
 * batch's duration and time, and the lag of each partition assigned to rk
 * (NULL: none) on topic, from its cached high watermark and the next
 * offset st holds for it. */
void projector_metrics_publish(of_metrics *m, const of_store_stats *stats,
                               uint64_t batch_ns, rd_kafka_t *rk, of_store *st,
                               const char *topic);

#endif
