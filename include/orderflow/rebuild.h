/* The rebuild: replay a topic from its first offsets into a new read model
 * beside the live one (the projector's apply path, no consumer group),
 * then swap it into the live file in one transaction. One rebuild of a
 * file at a time (flock on PATH.lock); what an operator cannot have meant
 * (another topic's offsets, an empty topic, history deleted by retention)
 * is refused with the live file unchanged. Progress, printing and exit
 * codes are the caller's (cmd_rebuild.c). */
#ifndef ORDERFLOW_REBUILD_H
#define ORDERFLOW_REBUILD_H

#include <signal.h>
#include <stdint.h>

#include "orderflow/kafka.h"
#include "orderflow/projector.h"
#include "orderflow/store.h"

/* How long the swap waits for the live file's write lock (a projector's
 * batch holds it for well under a second). */
#define OF_REBUILD_SWAP_TIMEOUT_MS 60000

typedef struct of_rebuild_opts {
        of_kafka_opts ko;    /* brokers, topic, properties (borrowed) */
        int allow_truncated; /* rebuild although retention deleted the
                              * start of the topic */
        int force;           /* rebuild although the live model's offsets
                              * do not fit the topic, or it is empty */
        size_t batch_max;    /* messages per transaction of the replay */
        int swap_timeout_ms; /* the swap's wait for the write lock */
        volatile sig_atomic_t *stop; /* set (by a signal) to stop; NULL:
                                      * never. Checked during the replay
                                      * and once more before the swap */
        /* Called after each committed batch of the replay with the
         * offsets done of total (final: once more at the end); may be
         * NULL. */
        void (*on_progress)(void *opaque, uint64_t done, int64_t total,
                            int final);
        void *progress_opaque;
        /* Test hook, as of_projector_opts.after_db_commit. */
        int (*after_db_commit)(void *opaque);
        void *hook_opaque;
} of_rebuild_opts;

#define OF_REBUILD_OPTS_INIT                                                  \
        {                                                                     \
                .ko = OF_KAFKA_OPTS_INIT, .batch_max = OF_DEFAULT_BATCH_MAX,  \
                .swap_timeout_ms = OF_REBUILD_SWAP_TIMEOUT_MS                 \
        }

/* What a finished rebuild did. Free with of_rebuild_result_free. */
typedef struct of_rebuild_result {
        of_store_info before; /* the live model just before the swap */
        of_store_info after;  /* the new model, counted */
        int64_t total;        /* offsets replayed */
        int32_t partitions;
        int64_t start_ms;    /* wall clock: replay started */
        int64_t replayed_ms; /* replay done, checked */
        int64_t done_ms;     /* swap done */
} of_rebuild_result;

/* Rebuild the read model at path (created when missing, so that the swap
 * has a target) from o->ko.topic. Returns 0 with *out filled; OF_EBUSY
 * when another rebuild of path holds its lock; OF_EABORT when *o->stop
 * was set (path unchanged); OF_ERROR with a message (path unchanged).
 * *out is zeroed first and always safe to free. */
int of_rebuild_run(of_rebuild_result *out, const char *path,
                   const of_rebuild_opts *o, char *errstr, size_t errstr_size);

void of_rebuild_result_free(of_rebuild_result *r);

#endif
