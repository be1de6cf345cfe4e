/* The projector: batches messages and applies each batch to the store in
 * one transaction, retrying transient store failures; and the consumer
 * loop of `orderflow project` around it. of_projector_handle() and
 * of_projector_flush() need no broker, so tests drive them directly. */
#ifndef ORDERFLOW_PROJECTOR_H
#define ORDERFLOW_PROJECTOR_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "orderflow/kafka.h"
#include "orderflow/metrics.h"
#include "orderflow/store.h"

#define OF_DEFAULT_BATCH_MAX 50000 /* messages per transaction */
#define OF_DEFAULT_BATCH_MS  100   /* longest a batch stays open */

typedef struct of_projector_opts {
        of_kafka_opts ko;
        const char *group; /* consumer group; NULL: none, every
                            * partition assigned (needs exit_at_end:
                            * rebuild) */
        int exit_at_end;   /* -e: stop once the start's end is applied */
        size_t batch_max;  /* messages per transaction */
        int batch_ms;      /* ms a batch may stay open */
        int max_retry_ms;  /* longest backoff between store retries */
        int64_t dedupe_retention_ms; /* forget ids recorded longer ago
                                      * (of_store_prune); 0: keep them */
        /* Test hook, called after each database commit and before the
         * Kafka commit; nonzero stops the projector at once as a crash
         * would (no Kafka commit, no group leave): OF_EABORT. */
        int (*after_db_commit)(void *opaque);
        void *hook_opaque;
        /* Called after each committed batch with the messages committed
         * since the start (rebuild's progress); may be NULL. */
        void (*on_commit)(void *opaque, uint64_t done);
        void *commit_opaque;
        volatile sig_atomic_t *stop; /* set (by a signal) to stop; may be
                                      * NULL */
        of_metrics *metrics;         /* borrowed: its families are declared by
                                      * of_projector_new and updated after each
                                      * committed batch; may be NULL */
} of_projector_opts;

#define OF_PROJECTOR_OPTS_INIT                                                \
        {                                                                     \
                .ko = OF_KAFKA_OPTS_INIT, .group = OF_DEFAULT_GROUP,          \
                .batch_max = OF_DEFAULT_BATCH_MAX,                            \
                .batch_ms = OF_DEFAULT_BATCH_MS, .max_retry_ms = 5000         \
        }

typedef struct of_projector of_projector;

/* A projector applying to st (borrowed: it must outlive the projector),
 * with options copied from o (strings in o are borrowed likewise). */
int of_projector_new(of_projector **out, of_store *st,
                     const of_projector_opts *o, char *errstr,
                     size_t errstr_size);
void of_projector_free(of_projector *pj); /* pj may be NULL */

/* Add one message to the batch in hand (copied: m may go away). The
 * message's partition position advances to m->offset + 1. */
int of_projector_handle(of_projector *pj, const of_msg *m, char *errstr,
                        size_t errstr_size);

/* Record that partition has been read up to next_offset (end of
 * partition), so the next batch stores it even without a message. */
void of_projector_mark(of_projector *pj, int32_t partition,
                       int64_t next_offset);

/* Apply the batch in hand, retrying as of_retry says (OF_EBUSY until it
 * clears, OF_EIO a few times, then returned); on success the batch is
 * empty. Returns OF_EABORT when the test hook asked to stop, and
 * OF_ESTALE (the batch dropped) when a rebuild replaced the read model:
 * the messages must be read again from the new file's offsets. */
int of_projector_flush(of_projector *pj, char *errstr, size_t errstr_size);

/* Messages in the batch in hand. */
size_t of_projector_pending(const of_projector *pj);

/* The counters so far. */
const of_store_stats *of_projector_stats(const of_projector *pj);

/* Consume o->ko.topic in group o->group until *o->stop is set (or, with
 * exit_at_end, the topic is applied to its end as of the start), applying
 * into st. Returns 0, OF_EABORT (test hook) or OF_ERROR with a message;
 * fills *stats when not NULL. */
int of_projector_run(of_store *st, const of_projector_opts *o,
                     of_store_stats *stats, char *errstr, size_t errstr_size);

#endif
