/* Private to the projector module: its metrics (projector_metrics.c),
 * called from projector.c. */
#ifndef ORDERFLOW_PROJECTOR_INT_H
#define ORDERFLOW_PROJECTOR_INT_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/metrics.h"
#include "orderflow/store.h"

/* Declare the projector's families in m, every dead-letter reason at 0. */
void projector_metrics_declare(of_metrics *m);

/* After a committed batch that took batch_ns: publish the counters, the
 * batch's duration and time, and the lag of each partition assigned to rk
 * (NULL: none) on topic, from its cached high watermark and the next
 * offset st holds for it. */
void projector_metrics_publish(of_metrics *m, const of_store_stats *stats,
                               uint64_t batch_ns, rd_kafka_t *rk,
                               of_store *st, const char *topic);

#endif
