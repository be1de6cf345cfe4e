/* The relay: claims due outbox rows in commit order, publishes them with an
 * idempotent producer (key = order id, headers event_id and event_type,
 * value = the stored envelope), waits for the delivery reports, then marks
 * the rows SENT or backs them off, in one transaction per batch, with the
 * next batch claimed and produced meanwhile (two in flight). Within a
 * partition the messages stand in seq order; a row that fails holds back
 * only the later rows of its order (published already, they stay PENDING
 * and go again after it). */
#ifndef ORDERFLOW_RELAY_H
#define ORDERFLOW_RELAY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "orderflow/lathist.h"
#include "orderflow/outbox.h"
#include "orderflow/kafka.h"
#include "orderflow/metrics.h"

#define OF_DEFAULT_RELAY_BATCH 10000 /* rows per claim */
#define OF_DEFAULT_RELAY_POLL                                                 \
        200                          /* ms between looks at an idle outbox    \
                                      * (a commit wakes the relay sooner) */
#define OF_DEFAULT_RELAY_LEASE 60000 /* ms a claim keeps other relays off */

typedef struct of_relay_opts {
        of_kafka_opts ko;
        int once;         /* publish what is due now, then return */
        size_t batch_max; /* rows per claim */
        int poll_ms;      /* idle wait, cut short by a commit */
        int lease_ms;     /* how long claimed rows stay ours */
        of_backoff backoff;
        const char *owner; /* lease owner name; NULL: host:pid */
        /* Test hook, called after the delivery reports of a batch and
         * before its rows are marked; nonzero stops at once as a crash
         * would (rows stay leased and PENDING): OF_EABORT. */
        int (*after_produce)(void *opaque);
        void *hook_opaque;
        volatile sig_atomic_t *stop; /* set to stop; may be NULL */
        of_metrics *metrics; /* borrowed: the counters are declared at the
                              * start and updated after each marked batch;
                              * may be NULL */
} of_relay_opts;

#define OF_RELAY_OPTS_INIT                                                    \
        {                                                                     \
                .ko = OF_KAFKA_OPTS_INIT,                                     \
                .batch_max = OF_DEFAULT_RELAY_BATCH,                          \
                .poll_ms = OF_DEFAULT_RELAY_POLL,                             \
                .lease_ms = OF_DEFAULT_RELAY_LEASE,                           \
                .backoff = OF_BACKOFF_INIT                                    \
        }

typedef struct of_relay_stats {
        uint64_t published; /* rows delivered and marked SENT */
        uint64_t failed;    /* failed attempts */
        uint64_t held;      /* rows published behind a failed row of their
                             * order, left PENDING to go again after it */
        uint64_t dead;      /* rows that went DEAD */
        uint64_t batches;
        of_lathist outbox_wait; /* us from a row's commit to its claim */
        of_lathist delivery;    /* us from its claim to its delivery
                                 * report */
} of_relay_stats;

/* ---- metrics (relay_metrics.c) ---- */

/* Declare the relay's counters in m (at 0). */
void of_relay_metrics_declare(of_metrics *m);

/* The stages of a row's way, as histograms (in seconds). */
typedef enum of_relay_stage {
        OF_RELAY_OUTBOX_WAIT, /* its commit to its claim */
        OF_RELAY_DELIVERY,    /* its claim to its delivery report */
} of_relay_stage;

/* Count us microseconds of stage; between of_metrics_begin() and
 * of_metrics_end(). */
void of_relay_metrics_observe(of_metrics *m, of_relay_stage stage, int64_t us);

/* Publish the counters of stats. */
void of_relay_metrics_publish(of_metrics *m, const of_relay_stats *stats);

/* Declare the outbox gauges (pending, oldest pending age, dead) in m and
 * have them read from app at each scrape, on the metrics server's thread:
 * app is a connection of their own (borrowed; it must outlive the server)
 * that nothing else uses meanwhile. */
void of_relay_metrics_outbox(of_metrics *m, of_appdb *app);

/* Run the relay on app until *o->stop is set, or with o->once until no row
 * is due. Returns 0, OF_EABORT (test hook) or OF_ERROR with a message;
 * fills *stats when not NULL. With once, failed rows are not an error
 * here: the caller reads stats->failed. */
int of_relay_run(of_appdb *app, const of_relay_opts *o, of_relay_stats *stats,
                 char *errstr, size_t errstr_size);

#endif
