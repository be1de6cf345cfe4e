/* Prometheus metrics: a registry of metric families that one owning thread
 * updates under a lock, and an HTTP server (libmicrohttpd, on a thread of
 * its own) that renders them on GET /metrics in the text exposition format
 * 0.0.4. It knows no metric itself: the projector and the relay declare
 * theirs. */
#ifndef ORDERFLOW_METRICS_H
#define ORDERFLOW_METRICS_H

#include <stddef.h>

#define OF_METRICS_MAX_FAMILIES 32
#define OF_METRICS_MAX_BUCKETS  16 /* histogram bounds, +Inf not counted */

/* Content-Type of the exposition format 0.0.4. */
#define OF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct of_metrics of_metrics;

/* The bounds (seconds) of the latency histograms of the relay and the
 * projector: 1 ms to 10 s. */
#define OF_METRICS_LATENCY_BOUNDS 14
extern const double of_metrics_latency_bounds[OF_METRICS_LATENCY_BOUNDS];

typedef enum of_metric_type {
        OF_METRIC_COUNTER = 0, /* name ends in _total */
        OF_METRIC_GAUGE = 1,
        OF_METRIC_HISTOGRAM = 2, /* _bucket{le=...}, _sum and _count */
} of_metric_type;

/* An empty registry, serving nothing yet. */
int of_metrics_new(of_metrics **out, char *errstr, size_t errstr_size);

/* Stop the server (waiting for its thread) and free; m may be NULL. */
void of_metrics_free(of_metrics *m);

/* Declare a family before setting it. name, help and label are borrowed
 * and must outlive m (string literals). label names the family's one
 * label, or is NULL for a family of one unlabelled sample. A histogram
 * takes nbounds ascending upper bounds (at most OF_METRICS_MAX_BUCKETS;
 * +Inf is implied) and no label. At most OF_METRICS_MAX_FAMILIES, each
 * name once. */
void of_metrics_declare(of_metrics *m, const char *name, of_metric_type type,
                        const char *help, const char *label,
                        const double *bounds, size_t nbounds);

/* Declare an info gauge: one sample of value 1 whose labels say what is
 * running (Prometheus' *_info convention). labels holds name, value,
 * name, value ..., then NULL; borrowed, like every string of it, until m
 * is freed. */
void of_metrics_declare_info(of_metrics *m, const char *name, const char *help,
                             const char *const *labels);

/* Updates go between of_metrics_begin() and of_metrics_end(), which hold
 * the registry's lock, so a scrape sees all of them or none. */
void of_metrics_begin(of_metrics *m);
void of_metrics_end(of_metrics *m);

/* Set the sample of family name whose label has value label_value (NULL
 * for an unlabelled family; copied). Metrics never stop the pipeline: out
 * of memory, a new label value is dropped. */
void of_metrics_set(of_metrics *m, const char *name, const char *label_value,
                    double v);

/* Count v into the histogram name. */
void of_metrics_observe(of_metrics *m, const char *name, double v);

/* Drop every sample of family name (a label value that went away). */
void of_metrics_clear(of_metrics *m, const char *name);

/* Called on the server's thread before each scrape is rendered, without
 * the lock (it calls of_metrics_begin/end itself): for values read on
 * demand, from resources that only this callback uses. */
typedef void of_metrics_collect_fn(of_metrics *m, void *opaque);
void of_metrics_set_collect(of_metrics *m, of_metrics_collect_fn *fn,
                            void *opaque);

/* Render the registry in the exposition format into *out (NUL-terminated;
 * the caller frees it with free()), its length in *len. OF_ERROR when out
 * of memory. */
int of_metrics_render(of_metrics *m, char **out, size_t *len);

/* Listen on addr (a numeric IPv4 or IPv6 address; NULL: 0.0.0.0) and port
 * (0: any free port, see of_metrics_port()) and serve GET /metrics on a
 * thread of the server's own until of_metrics_free(). Any other path is
 * 404. Returns OF_ERROR with a message when the address cannot be bound. */
int of_metrics_serve(of_metrics *m, const char *addr, int port, char *errstr,
                     size_t errstr_size);

/* The port being served, or 0 when not serving. */
int of_metrics_port(const of_metrics *m);

#endif
