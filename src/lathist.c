/* Log-linear latency buckets (lathist.h). */
#include <stdio.h>

#include "orderflow/lathist.h"

#define EXACT 128 /* values below have a bucket each */
#define SUB   64  /* buckets per power of two above */

static unsigned bucket_of(uint64_t v)
{
        unsigned msb;

        if (v < EXACT)
                return (unsigned)v;
        msb = 63u - (unsigned)__builtin_clzll(v);
        if (msb > 36)
                return OF_LATHIST_BUCKETS - 1;
        /* v's top seven bits, 64 to 127, pick the bucket within its
         * power of two */
        return EXACT + (msb - 7) * SUB + (unsigned)(v >> (msb - 6)) - SUB;
}

/* The largest value of bucket i. */
static int64_t upper_of(unsigned i)
{
        unsigned msb, top;

        if (i < EXACT)
                return i;
        msb = (i - EXACT) / SUB + 7;
        top = (i - EXACT) % SUB + SUB;
        return ((int64_t)(top + 1) << (msb - 6)) - 1;
}

void of_lathist_add(of_lathist *h, int64_t us)
{
        if (us < 0)
                us = 0;
        h->b[bucket_of((uint64_t)us)]++;
        h->n++;
        if (us > h->max_us)
                h->max_us = us;
}

int64_t of_lathist_quantile(const of_lathist *h, double q)
{
        uint64_t seen = 0;
        unsigned i;

        if (!h->n)
                return -1;
        for (i = 0; i < OF_LATHIST_BUCKETS; i++) {
                seen += h->b[i];
                if (seen && (double)seen >= q * (double)h->n) {
                        int64_t v = upper_of(i);

                        /* the last bucket holds everything above */
                        if (i == OF_LATHIST_BUCKETS - 1 || v > h->max_us)
                                return h->max_us;
                        return v;
                }
        }
        return h->max_us;
}

char *of_lathist_format(const of_lathist *h, char *out, unsigned size)
{
        if (!h->n)
                snprintf(out, size, "none");
        else
                snprintf(out, size, "p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                         (double)of_lathist_quantile(h, 0.5) / 1000,
                         (double)of_lathist_quantile(h, 0.99) / 1000,
                         (double)h->max_us / 1000);
        return out;
}
