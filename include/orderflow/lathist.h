/* A latency histogram in microseconds: log-linear buckets (exact below
 * 128 us, then 64 a power of two: within 1.6% of the value) from 0 to more
 * than a day, 8 KiB, no allocation. For the percentiles the relay, the
 * projector and the latency benchmark report; the Prometheus histograms
 * (metrics.h) are for scraping. */
#ifndef ORDERFLOW_LATHIST_H
#define ORDERFLOW_LATHIST_H

#include <stdint.h>

#define OF_LATHIST_BUCKETS (128 + 30 * 64)

typedef struct of_lathist {
        uint64_t n;     /* values counted */
        int64_t max_us; /* the largest; 0 when none */
        uint32_t b[OF_LATHIST_BUCKETS];
} of_lathist;

/* Count a latency of us microseconds (a negative one as 0). */
void of_lathist_add(of_lathist *h, int64_t us);

/* The value (us) at or below which a share q (0 to 1) of the counted values
 * fell: the upper end of its bucket, never above the largest value; -1
 * when none was counted. */
int64_t of_lathist_quantile(const of_lathist *h, double q);

/* "p50 X ms, p99 Y ms, max Z ms" (one decimal) into out; "none" when
 * empty. Returns out. */
char *of_lathist_format(const of_lathist *h, char *out, unsigned size);

#endif
