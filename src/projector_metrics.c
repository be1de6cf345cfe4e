/* The projector's metrics: what it counts, published to the registry after
 * each committed batch. Serving them is metrics.c's business. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/event.h"
#include "orderflow/timestamp.h"

#include "projector_int.h"

#define APPLIED    "orderflow_projector_events_applied_total"
#define IGNORED    "orderflow_projector_events_ignored_total"
#define DUPLICATES "orderflow_projector_duplicates_skipped_total"
#define DEAD       "orderflow_projector_dead_letters_total"
#define BATCHES    "orderflow_projector_batches_total"
#define DURATION   "orderflow_projector_batch_duration_seconds"
#define LAST       "orderflow_projector_last_batch_timestamp_seconds"
#define LAG        "orderflow_projector_partition_lag"
#define LATENCY    "orderflow_projector_event_latency_seconds"

void projector_metrics_declare(of_metrics *m)
{
        static const double bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,   1,    2.5,   5,    10};
        int i;

        of_metrics_declare(m, APPLIED, OF_METRIC_COUNTER,
                           "OrderPlaced and OrderPaid events applied.", NULL,
                           NULL, 0);
        of_metrics_declare(m, IGNORED, OF_METRIC_COUNTER,
                           "Events of other types recorded, changing no "
                           "projection.",
                           NULL, NULL, 0);
        of_metrics_declare(m, DUPLICATES, OF_METRIC_COUNTER,
                           "Events delivered again (known id, agreeing body) "
                           "and skipped.",
                           NULL, NULL, 0);
        of_metrics_declare(m, DEAD, OF_METRIC_COUNTER,
                           "Dead letters written, by the fixed phrase of "
                           "their reason.",
                           "reason", NULL, 0);
        of_metrics_declare(m, BATCHES, OF_METRIC_COUNTER,
                           "Batch transactions committed.", NULL, NULL, 0);
        of_metrics_declare(m, DURATION, OF_METRIC_HISTOGRAM,
                           "Time of one committed batch transaction (decode, "
                           "apply, commit).",
                           NULL, bounds, sizeof(bounds) / sizeof(bounds[0]));
        of_metrics_declare(m, LATENCY, OF_METRIC_HISTOGRAM,
                           "Time from a message's timestamp (its produce) to "
                           "the commit of its batch to the read model.",
                           NULL, of_metrics_latency_bounds,
                           OF_METRICS_LATENCY_BOUNDS);
        of_metrics_declare(m, LAST, OF_METRIC_GAUGE,
                           "Unix time of the last committed batch.", NULL,
                           NULL, 0);
        of_metrics_declare(m, LAG, OF_METRIC_GAUGE,
                           "Messages of an assigned partition not applied "
                           "yet: its high watermark minus the next offset "
                           "to apply.",
                           "partition", NULL, 0);
        of_metrics_begin(m);
        for (i = 0; i < OF_REASON_COUNT; i++)
                of_metrics_set(m, DEAD, of_event_reason_phrase(i), 0);
        of_metrics_end(m);
}

void projector_metrics_latency(of_metrics *m, int64_t us)
{
        of_metrics_observe(m, LATENCY, (double)us / 1e6);
}

typedef struct lag {
        int32_t partition;
        int64_t lag;
} lag;

/* The lag of each partition assigned to rk into *out (malloc'd), their
 * number into *n; nothing on failure. Read before the registry is locked,
 * so a scrape never waits on SQLite or librdkafka. The high watermark is
 * librdkafka's cached one, from the latest fetch: no broker round trip. */
static void read_lags(lag **out, int *n, rd_kafka_t *rk, of_store *st,
                      const char *topic)
{
        rd_kafka_topic_partition_list_t *parts = NULL;
        char errstr[256];
        int i;

        *out = NULL;
        *n = 0;
        if (rd_kafka_assignment(rk, &parts))
                return;
        if (!(*out = calloc((size_t)parts->cnt + 1, sizeof(**out))))
                goto out;
        for (i = 0; i < parts->cnt; i++) {
                int32_t p = parts->elems[i].partition;
                int64_t low, high, next;

                if (strcmp(parts->elems[i].topic, topic) ||
                    rd_kafka_get_watermark_offsets(rk, topic, p, &low,
                                                   &high) ||
                    high < 0 ||
                    of_store_offset(&next, st, topic, p, errstr,
                                    sizeof(errstr)))
                        continue; /* not known yet */
                (*out)[(*n)++] = (lag){p, high > next ? high - next : 0};
        }
out:
        rd_kafka_topic_partition_list_destroy(parts);
}

void projector_metrics_publish(of_metrics *m, const of_store_stats *stats,
                               uint64_t batch_ns, rd_kafka_t *rk, of_store *st,
                               const char *topic)
{
        lag *lags = NULL;
        char label[16];
        int i, nlags = 0;

        if (rk)
                read_lags(&lags, &nlags, rk, st, topic);
        of_metrics_begin(m);
        of_metrics_set(m, APPLIED, NULL, (double)stats->applied);
        of_metrics_set(m, IGNORED, NULL, (double)stats->ignored);
        of_metrics_set(m, DUPLICATES, NULL, (double)stats->duplicates);
        for (i = 0; i < OF_REASON_COUNT; i++)
                of_metrics_set(m, DEAD, of_event_reason_phrase(i),
                               (double)stats->dead_by_reason[i]);
        of_metrics_set(m, BATCHES, NULL, (double)stats->batches);
        of_metrics_observe(m, DURATION, (double)batch_ns / 1e9);
        of_metrics_set(m, LAST, NULL, (double)of_timestamp_now_ms() / 1000);
        if (lags) {
                /* Replaced whole: a revoked partition goes away. */
                of_metrics_clear(m, LAG);
                for (i = 0; i < nlags; i++) {
                        snprintf(label, sizeof(label), "%" PRId32,
                                 lags[i].partition);
                        of_metrics_set(m, LAG, label, (double)lags[i].lag);
                }
        }
        of_metrics_end(m);
        free(lags);
}
