/* The relay's metrics: its counters, published after each marked batch,
 * and the outbox gauges, read at each scrape on a connection of their own
 * (so they stay true while the relay waits on a broker). Serving them is
 * metrics.c's business. */
#include "orderflow/log.h"
#include "orderflow/relay.h"

#define PUBLISHED "orderflow_relay_published_total"
#define FAILED    "orderflow_relay_failed_total"
#define BATCHES   "orderflow_relay_batches_total"
#define PENDING   "orderflow_outbox_pending"
#define OLDEST    "orderflow_outbox_oldest_pending_age_seconds"
#define DEAD      "orderflow_outbox_dead"
#define WAITED    "orderflow_relay_outbox_wait_seconds"
#define DELIVERY  "orderflow_relay_delivery_seconds"

void of_relay_metrics_declare(of_metrics *m)
{
        static const of_relay_stats zero = {0};

        of_metrics_declare(m, PUBLISHED, OF_METRIC_COUNTER,
                           "Outbox rows delivered and marked SENT.", NULL,
                           NULL, 0);
        of_metrics_declare(m, FAILED, OF_METRIC_COUNTER,
                           "Failed delivery attempts (the row backs off, or "
                           "goes DEAD).",
                           NULL, NULL, 0);
        of_metrics_declare(m, BATCHES, OF_METRIC_COUNTER,
                           "Batches produced and marked.", NULL, NULL, 0);
        of_metrics_declare(m, WAITED, OF_METRIC_HISTOGRAM,
                           "Time from an outbox row's commit (its "
                           "occurred_at) to the relay's claim of it.",
                           NULL, of_metrics_latency_bounds,
                           OF_METRICS_LATENCY_BOUNDS);
        of_metrics_declare(m, DELIVERY, OF_METRIC_HISTOGRAM,
                           "Time from a row's claim to the broker's "
                           "acknowledgement of its message.",
                           NULL, of_metrics_latency_bounds,
                           OF_METRICS_LATENCY_BOUNDS);
        of_relay_metrics_publish(m, &zero);
}

void of_relay_metrics_observe(of_metrics *m, of_relay_stage stage, int64_t us)
{
        of_metrics_observe(m,
                           stage == OF_RELAY_OUTBOX_WAIT ? WAITED : DELIVERY,
                           (double)us / 1e6);
}

void of_relay_metrics_publish(of_metrics *m, const of_relay_stats *stats)
{
        of_metrics_begin(m);
        of_metrics_set(m, PUBLISHED, NULL, (double)stats->published);
        of_metrics_set(m, FAILED, NULL, (double)stats->failed);
        of_metrics_set(m, BATCHES, NULL, (double)stats->batches);
        of_metrics_end(m);
}

/* On the server's thread, before each scrape. A failed read leaves the
 * last values (and says so in the log). */
static void collect_outbox(of_metrics *m, void *opaque)
{
        of_outbox_status os;
        char errstr[512];

        if (of_appdb_outbox_status(opaque, &os, errstr, sizeof(errstr))) {
                of_log(OF_LOG_WARN, "metrics: outbox status: %s", errstr);
                return;
        }
        of_metrics_begin(m);
        of_metrics_set(m, PENDING, NULL, (double)os.pending);
        of_metrics_set(m, OLDEST, NULL,
                       os.oldest_pending_age_s < 0 ? 0
                                                   : os.oldest_pending_age_s);
        of_metrics_set(m, DEAD, NULL, (double)os.dead);
        of_metrics_end(m);
}

void of_relay_metrics_outbox(of_metrics *m, of_appdb *app)
{
        of_metrics_declare(m, PENDING, OF_METRIC_GAUGE,
                           "Outbox rows waiting to be published.", NULL, NULL,
                           0);
        of_metrics_declare(m, OLDEST, OF_METRIC_GAUGE,
                           "Age of the oldest pending outbox row; 0 when "
                           "none is pending.",
                           NULL, NULL, 0);
        of_metrics_declare(m, DEAD, OF_METRIC_GAUGE,
                           "Outbox rows DEAD after their last attempt "
                           "(see 'orderflow outbox retry').",
                           NULL, NULL, 0);
        of_metrics_set_collect(m, collect_outbox, app);
}
