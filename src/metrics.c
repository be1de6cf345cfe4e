/* The metrics registry and its HTTP server: families and samples under one
 * mutex, rendered in the Prometheus text exposition format 0.0.4, served
 * by libmicrohttpd's internal thread. HTTP itself (parsing, keep-alive,
 * limits) is libmicrohttpd's business; which metrics exist is the
 * caller's. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/metrics.h"

typedef struct sample {
        char *label_value; /* owned; NULL in an unlabelled family */
        double v;
} sample;

typedef struct family {
        const char *name, *help, *label; /* borrowed */
        const char *const *info;         /* an info family's label pairs, NULL
                                          * terminated (borrowed); else NULL */
        of_metric_type type;
        sample *s; /* counters and gauges */
        size_t n, cap;
        double bounds[OF_METRICS_MAX_BUCKETS]; /* histograms */
        size_t nbounds;
        uint64_t counts[OF_METRICS_MAX_BUCKETS + 1]; /* per bucket, not
                                                      * cumulative; the last
                                                      * is above every bound */
        double sum;
} family;

struct of_metrics {
        pthread_mutex_t lock;
        family fam[OF_METRICS_MAX_FAMILIES];
        size_t nfam;
        of_metrics_collect_fn *collect;
        void *collect_opaque;
        struct MHD_Daemon *daemon;
        int port;
};

int of_metrics_new(of_metrics **out, char *errstr, size_t errstr_size)
{
        of_metrics *m = calloc(1, sizeof(*m));

        *out = NULL;
        if (!m)
                return of_errf(errstr, errstr_size, "out of memory");
        if (pthread_mutex_init(&m->lock, NULL)) {
                free(m);
                return of_errf(errstr, errstr_size, "pthread_mutex_init");
        }
        *out = m;
        return 0;
}

void of_metrics_free(of_metrics *m)
{
        size_t i, j;

        if (!m)
                return;
        /* Waits for the server's thread; it closes the listening socket. */
        if (m->daemon)
                MHD_stop_daemon(m->daemon);
        for (i = 0; i < m->nfam; i++) {
                for (j = 0; j < m->fam[i].n; j++)
                        free(m->fam[i].s[j].label_value);
                free(m->fam[i].s);
        }
        pthread_mutex_destroy(&m->lock);
        free(m);
}

/* ---- the registry ---- */

void of_metrics_declare(of_metrics *m, const char *name, of_metric_type type,
                        const char *help, const char *label,
                        const double *bounds, size_t nbounds)
{
        family *f;
        size_t i;

        assert(m->nfam < OF_METRICS_MAX_FAMILIES);
        for (i = 0; i < m->nfam; i++)
                assert(strcmp(m->fam[i].name, name) != 0);
        assert(type != OF_METRIC_HISTOGRAM ||
               (!label && nbounds <= OF_METRICS_MAX_BUCKETS));
        pthread_mutex_lock(&m->lock);
        f = &m->fam[m->nfam++];
        memset(f, 0, sizeof(*f));
        f->name = name;
        f->help = help;
        f->label = label;
        f->type = type;
        if (type == OF_METRIC_HISTOGRAM) {
                memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
                f->nbounds = nbounds;
        }
        pthread_mutex_unlock(&m->lock);
}

void of_metrics_declare_info(of_metrics *m, const char *name, const char *help,
                             const char *const *labels)
{
        of_metrics_declare(m, name, OF_METRIC_GAUGE, help, NULL, NULL, 0);
        pthread_mutex_lock(&m->lock);
        m->fam[m->nfam - 1].info = labels;
        pthread_mutex_unlock(&m->lock);
}

void of_metrics_begin(of_metrics *m)
{
        pthread_mutex_lock(&m->lock);
}

void of_metrics_end(of_metrics *m)
{
        pthread_mutex_unlock(&m->lock);
}

static family *find(of_metrics *m, const char *name)
{
        size_t i;

        for (i = 0; i < m->nfam; i++)
                if (!strcmp(m->fam[i].name, name))
                        return &m->fam[i];
        assert(!"metric family not declared");
        return NULL;
}

void of_metrics_set(of_metrics *m, const char *name, const char *label_value,
                    double v)
{
        family *f = find(m, name);
        sample *s;
        size_t i;

        assert(f->type != OF_METRIC_HISTOGRAM);
        assert(!f->label == !label_value);
        for (i = 0; i < f->n; i++) {
                if (!label_value ||
                    !strcmp(f->s[i].label_value, label_value)) {
                        f->s[i].v = v;
                        return;
                }
        }
        if (f->n == f->cap) {
                size_t cap = f->cap ? 2 * f->cap : 4;

                if (!(s = realloc(f->s, cap * sizeof(*s))))
                        return;
                f->s = s;
                f->cap = cap;
        }
        s = &f->s[f->n];
        s->label_value = NULL;
        if (label_value && !(s->label_value = strdup(label_value)))
                return;
        s->v = v;
        f->n++;
}

const double of_metrics_latency_bounds[OF_METRICS_LATENCY_BOUNDS] = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
        0.25,  0.5,    1,     2.5,  5,     10,   30};

void of_metrics_observe(of_metrics *m, const char *name, double v)
{
        family *f = find(m, name);
        size_t i;

        assert(f->type == OF_METRIC_HISTOGRAM);
        for (i = 0; i < f->nbounds && v > f->bounds[i]; i++)
                ;
        f->counts[i]++;
        f->sum += v;
}

void of_metrics_clear(of_metrics *m, const char *name)
{
        family *f = find(m, name);
        size_t i;

        for (i = 0; i < f->n; i++)
                free(f->s[i].label_value);
        f->n = 0;
}

void of_metrics_set_collect(of_metrics *m, of_metrics_collect_fn *fn,
                            void *opaque)
{
        pthread_mutex_lock(&m->lock);
        m->collect = fn;
        m->collect_opaque = opaque;
        pthread_mutex_unlock(&m->lock);
}

/* ---- the exposition format ---- */

/* v as Prometheus reads it, into buf (32 bytes): whole numbers exactly,
 * others in the fewest digits that read back the same, +Inf, -Inf, NaN. */
static const char *value_str(char *buf, double v)
{
        if (isnan(v))
                return "NaN";
        if (isinf(v))
                return v > 0 ? "+Inf" : "-Inf";
        if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v) {
                snprintf(buf, 32, "%" PRId64, (int64_t)v);
                return buf;
        }
        snprintf(buf, 32, "%.15g", v);
        if (strtod(buf, NULL) != v)
                snprintf(buf, 32, "%.17g", v);
        return buf;
}

/* s with backslash and newline escaped, and the double quote too in a
 * label value (HELP text keeps its quotes). */
static void put_escaped(FILE *f, const char *s, int quote)
{
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else if (*s == '"' && quote)
                        fputs("\\\"", f);
                else
                        fputc(*s, f);
        }
}

static void put_sample(FILE *f, const char *name, const char *suffix,
                       const char *label, const char *label_value, double v)
{
        char buf[32];

        fprintf(f, "%s%s", name, suffix);
        if (label) {
                fprintf(f, "{%s=\"", label);
                put_escaped(f, label_value, 1);
                fputs("\"}", f);
        }
        fprintf(f, " %s\n", value_str(buf, v));
}

/* An info family's one sample: name{k="v",...} 1. */
static void put_info(FILE *f, const family *fam)
{
        const char *const *p;

        fprintf(f, "%s{", fam->name);
        for (p = fam->info; p[0]; p += 2) {
                fprintf(f, "%s%s=\"", p == fam->info ? "" : ",", p[0]);
                put_escaped(f, p[1], 1);
                fputc('"', f);
        }
        fputs("} 1\n", f);
}

static void put_histogram(FILE *f, const family *fam)
{
        char buf[32];
        uint64_t cum = 0;
        size_t i;

        for (i = 0; i <= fam->nbounds; i++) {
                cum += fam->counts[i];
                put_sample(f, fam->name, "_bucket", "le",
                           i < fam->nbounds ? value_str(buf, fam->bounds[i])
                                            : "+Inf",
                           (double)cum);
        }
        put_sample(f, fam->name, "_sum", NULL, NULL, fam->sum);
        put_sample(f, fam->name, "_count", NULL, NULL, (double)cum);
}

int of_metrics_render(of_metrics *m, char **out, size_t *len)
{
        static const char *const types[] = {"counter", "gauge", "histogram"};
        FILE *f;
        size_t i, j;

        *out = NULL;
        *len = 0;
        if (!(f = open_memstream(out, len)))
                return OF_ERROR;
        pthread_mutex_lock(&m->lock);
        for (i = 0; i < m->nfam; i++) {
                const family *fam = &m->fam[i];

                fprintf(f, "# HELP %s ", fam->name);
                put_escaped(f, fam->help, 0);
                fprintf(f, "\n# TYPE %s %s\n", fam->name, types[fam->type]);
                if (fam->type == OF_METRIC_HISTOGRAM)
                        put_histogram(f, fam);
                if (fam->info)
                        put_info(f, fam);
                for (j = 0; j < fam->n; j++)
                        put_sample(f, fam->name, "", fam->label,
                                   fam->s[j].label_value, fam->s[j].v);
        }
        pthread_mutex_unlock(&m->lock);
        if (ferror(f)) {
                fclose(f);
                free(*out);
                *out = NULL;
                return OF_ERROR;
        }
        return fclose(f) ? OF_ERROR : 0;
}

/* ---- the server ---- */

static void mhd_log(void *cls, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char line[512];
        size_t len;

        (void)cls;
        vsnprintf(line, sizeof(line), fmt, ap);
        len = strlen(line);
        if (len && line[len - 1] == '\n')
                line[len - 1] = '\0';
        of_log(OF_LOG_WARN, "metrics: %s", line);
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status,
                              const char *type, char *body, size_t len,
                              enum MHD_ResponseMemoryMode mode)
{
        struct MHD_Response *resp;
        enum MHD_Result ret;

        resp = MHD_create_response_from_buffer(len, body, mode);
        if (!resp) {
                if (mode == MHD_RESPMEM_MUST_FREE)
                        free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                        "GET, HEAD");
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

#define TEXT(s) (char *)(s), sizeof(s) - 1, MHD_RESPMEM_PERSISTENT

/* Every request, on the server's thread. The answer goes out on the first
 * call: a request body (none is expected) is read and dropped by MHD. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
        static const char plain[] = "text/plain; charset=utf-8";
        of_metrics *m = cls;
        of_metrics_collect_fn *collect;
        void *opaque;
        char *text;
        size_t len;

        (void)version;
        (void)upload_data;
        (void)upload_data_size;
        (void)con_cls;
        if (strcmp(method, MHD_HTTP_METHOD_GET) &&
            strcmp(method, MHD_HTTP_METHOD_HEAD))
                return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, plain,
                              TEXT("method not allowed: GET /metrics\n"));
        if (strcmp(url, "/metrics"))
                return answer(conn, MHD_HTTP_NOT_FOUND, plain,
                              TEXT("not found: GET /metrics\n"));
        pthread_mutex_lock(&m->lock);
        collect = m->collect;
        opaque = m->collect_opaque;
        pthread_mutex_unlock(&m->lock);
        if (collect)
                collect(m, opaque);
        if (of_metrics_render(m, &text, &len))
                return answer(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, plain,
                              TEXT("out of memory\n"));
        return answer(conn, MHD_HTTP_OK, OF_METRICS_CONTENT_TYPE, text, len,
                      MHD_RESPMEM_MUST_FREE);
}

/* A listening socket on addr:port, bound here rather than by MHD so that
 * a failure says why (MHD only returns NULL), and port 0 can be read back.
 * Returns the socket, or -1 with a message. */
static int listen_on(const char *addr, int port, int *bound, char *errstr,
                     size_t errstr_size)
{
        struct addrinfo hints = {0}, *ai = NULL;
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        char service[16];
        int fd = -1, one = 1, rc;

        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
        hints.ai_socktype = SOCK_STREAM;
        snprintf(service, sizeof(service), "%d", port);
        if ((rc = getaddrinfo(addr, service, &hints, &ai))) {
                of_errf(errstr, errstr_size, "%s: %s", addr, gai_strerror(rc));
                return -1;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64) ||
            getsockname(fd, (struct sockaddr *)&ss, &sslen)) {
                of_errf(errstr, errstr_size, "cannot listen on %s port %d: %s",
                        addr, port, strerror(errno));
                if (fd >= 0)
                        close(fd);
                freeaddrinfo(ai);
                return -1;
        }
        *bound = ntohs(ss.ss_family == AF_INET6
                               ? ((struct sockaddr_in6 *)&ss)->sin6_port
                               : ((struct sockaddr_in *)&ss)->sin_port);
        freeaddrinfo(ai);
        return fd;
}

int of_metrics_serve(of_metrics *m, const char *addr, int port, char *errstr,
                     size_t errstr_size)
{
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
        int fd, bound = 0;

        assert(!m->daemon);
        if (!addr)
                addr = "0.0.0.0";
        if ((fd = listen_on(addr, port, &bound, errstr, errstr_size)) < 0)
                return OF_ERROR;
        if (strchr(addr, ':'))
                flags |= MHD_USE_IPv6;
        /* Scrapes are small and rare: a few connections, each bounded in
         * time, so a stuck client cannot hold the thread. */
        m->daemon = MHD_start_daemon(
                flags, 0, NULL, NULL, handle, m, MHD_OPTION_EXTERNAL_LOGGER,
                mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                MHD_OPTION_CONNECTION_LIMIT, 16u,
                MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
        if (!m->daemon) {
                close(fd);
                return of_errf(errstr, errstr_size,
                               "cannot start the HTTP server on %s port %d",
                               addr, bound);
        }
        m->port = bound;
        return 0;
}

int of_metrics_port(const of_metrics *m)
{
        return m->port;
}
