/* The metrics registry: the exposition text it renders (HELP and TYPE,
 * escaping, values, histograms) compared byte for byte, and its HTTP
 * server spoken to over a plain socket on loopback. The scrape by
 * Prometheus's own parser is tests/cli/metrics.sh. */
#include "testutil.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "orderflow/error.h"
#include "orderflow/metrics.h"

static int setup(void **state)
{
        of_metrics *m;
        char errstr[256];

        assert_int_equal(of_metrics_new(&m, errstr, sizeof(errstr)), 0);
        *state = m;
        return 0;
}

static int teardown(void **state)
{
        of_metrics_free(*state);
        *state = NULL;
        return 0;
}

/* Render m and compare with want. */
static void assert_renders(of_metrics *m, const char *want)
{
        char *text;
        size_t len;

        assert_int_equal(of_metrics_render(m, &text, &len), 0);
        assert_string_equal(text, want);
        assert_int_equal(len, strlen(want));
        free(text);
}

static void test_metrics_renders_help_type_and_samples(void **state)
{
        of_metrics *m = *state;

        of_metrics_declare(m, "t_events_total", OF_METRIC_COUNTER, "Events.",
                           NULL, NULL, 0);
        of_metrics_declare(m, "t_lag", OF_METRIC_GAUGE, "Lag.", "partition",
                           NULL, 0);
        of_metrics_begin(m);
        of_metrics_set(m, "t_events_total", NULL, 3);
        of_metrics_set(m, "t_events_total", NULL, 7); /* replaces */
        of_metrics_set(m, "t_lag", "0", 12);
        of_metrics_set(m, "t_lag", "1", 0);
        of_metrics_end(m);
        assert_renders(m, "# HELP t_events_total Events.\n"
                          "# TYPE t_events_total counter\n"
                          "t_events_total 7\n"
                          "# HELP t_lag Lag.\n"
                          "# TYPE t_lag gauge\n"
                          "t_lag{partition=\"0\"} 12\n"
                          "t_lag{partition=\"1\"} 0\n");
        of_metrics_begin(m);
        of_metrics_clear(m, "t_lag");
        of_metrics_set(m, "t_lag", "2", 5);
        of_metrics_end(m);
        assert_renders(m, "# HELP t_events_total Events.\n"
                          "# TYPE t_events_total counter\n"
                          "t_events_total 7\n"
                          "# HELP t_lag Lag.\n"
                          "# TYPE t_lag gauge\n"
                          "t_lag{partition=\"2\"} 5\n");
}

/* Exposition format 0.0.4: in label values \ " and newline are escaped;
 * in HELP only \ and newline. */
static void test_metrics_escapes_label_values_and_help(void **state)
{
        of_metrics *m = *state;

        of_metrics_declare(m, "t_dead_total", OF_METRIC_COUNTER,
                           "Say \"why\" \\ on\ntwo lines.", "reason", NULL, 0);
        of_metrics_begin(m);
        of_metrics_set(m, "t_dead_total", "a \"quoted\" \\path\\\nnext", 1);
        of_metrics_set(m, "t_dead_total", "", 2);
        of_metrics_end(m);
        assert_renders(m,
                       "# HELP t_dead_total Say \"why\" \\\\ on\\ntwo lines.\n"
                       "# TYPE t_dead_total counter\n"
                       "t_dead_total{reason=\"a \\\"quoted\\\" \\\\path\\\\"
                       "\\nnext\"} 1\n"
                       "t_dead_total{reason=\"\"} 2\n");
}

static void test_metrics_values_read_back_exactly(void **state)
{
        of_metrics *m = *state;

        of_metrics_declare(m, "t_v", OF_METRIC_GAUGE, "V.", "k", NULL, 0);
        of_metrics_begin(m);
        of_metrics_set(m, "t_v", "big", 9007199254740991.0);
        of_metrics_set(m, "t_v", "neg", -42);
        of_metrics_set(m, "t_v", "frac", 0.1);
        of_metrics_set(m, "t_v", "third", 1.0 / 3);
        of_metrics_set(m, "t_v", "huge", 1e300);
        of_metrics_set(m, "t_v", "inf", INFINITY);
        of_metrics_set(m, "t_v", "ninf", -INFINITY);
        of_metrics_set(m, "t_v", "nan", NAN);
        of_metrics_end(m);
        assert_renders(m, "# HELP t_v V.\n"
                          "# TYPE t_v gauge\n"
                          "t_v{k=\"big\"} 9007199254740991\n"
                          "t_v{k=\"neg\"} -42\n"
                          "t_v{k=\"frac\"} 0.1\n"
                          "t_v{k=\"third\"} 0.33333333333333331\n"
                          "t_v{k=\"huge\"} 1e+300\n"
                          "t_v{k=\"inf\"} +Inf\n"
                          "t_v{k=\"ninf\"} -Inf\n"
                          "t_v{k=\"nan\"} NaN\n");
}

static void test_metrics_histogram_buckets_are_cumulative(void **state)
{
        of_metrics *m = *state;
        static const double bounds[] = {0.01, 0.1, 1};

        of_metrics_declare(m, "t_seconds", OF_METRIC_HISTOGRAM, "Time.", NULL,
                           bounds, 3);
        assert_renders(m, "# HELP t_seconds Time.\n"
                          "# TYPE t_seconds histogram\n"
                          "t_seconds_bucket{le=\"0.01\"} 0\n"
                          "t_seconds_bucket{le=\"0.1\"} 0\n"
                          "t_seconds_bucket{le=\"1\"} 0\n"
                          "t_seconds_bucket{le=\"+Inf\"} 0\n"
                          "t_seconds_sum 0\n"
                          "t_seconds_count 0\n");
        of_metrics_begin(m);
        of_metrics_observe(m, "t_seconds", 0.01); /* le is inclusive */
        of_metrics_observe(m, "t_seconds", 0.5);
        of_metrics_observe(m, "t_seconds", 0.25);
        of_metrics_observe(m, "t_seconds", 30);
        of_metrics_end(m);
        assert_renders(m, "# HELP t_seconds Time.\n"
                          "# TYPE t_seconds histogram\n"
                          "t_seconds_bucket{le=\"0.01\"} 1\n"
                          "t_seconds_bucket{le=\"0.1\"} 1\n"
                          "t_seconds_bucket{le=\"1\"} 3\n"
                          "t_seconds_bucket{le=\"+Inf\"} 4\n"
                          "t_seconds_sum 30.76\n"
                          "t_seconds_count 4\n");
}

/* ---- the server ---- */

/* Send request to 127.0.0.1:port and return the whole answer (malloc'd). */
static char *http(int port, const char *request)
{
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port)};
        char *out = calloc(1, 65536);
        size_t len = 0;
        ssize_t n;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        assert_non_null(out);
        assert_true(fd >= 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(write(fd, request, strlen(request)),
                         (ssize_t)strlen(request));
        /* Connection: close in the request, so the answer ends at EOF. */
        while ((n = read(fd, out + len, 65535 - len)) > 0)
                len += (size_t)n;
        close(fd);
        return out;
}

static int collected;

static void collect(of_metrics *m, void *opaque)
{
        (void)opaque;
        of_metrics_begin(m);
        of_metrics_set(m, "t_scrapes", NULL, ++collected);
        of_metrics_end(m);
}

static void test_metrics_serves_get_metrics_only(void **state)
{
        of_metrics *m = *state;
        char errstr[256], *r;
        int port;

        of_metrics_declare(m, "t_scrapes", OF_METRIC_GAUGE, "Scrapes.", NULL,
                           NULL, 0);
        of_metrics_set_collect(m, collect, NULL);
        assert_int_equal(
                of_metrics_serve(m, "127.0.0.1", 0, errstr, sizeof(errstr)),
                0);
        port = of_metrics_port(m);
        assert_true(port > 0);

        r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                       "Connection: close\r\n\r\n");
        assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
        assert_non_null(
                strstr(r, "Content-Type: " OF_METRICS_CONTENT_TYPE "\r\n"));
        assert_non_null(strstr(r, "\r\n\r\n# HELP t_scrapes Scrapes.\n"
                                  "# TYPE t_scrapes gauge\n"
                                  "t_scrapes 1\n"));
        free(r);
        r = http(port, "GET /metrics/x HTTP/1.1\r\nHost: x\r\n"
                       "Connection: close\r\n\r\n");
        assert_non_null(strstr(r, "HTTP/1.1 404 Not Found\r\n"));
        free(r);
        r = http(port, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n"
                       "Connection: close\r\n\r\n");
        assert_non_null(strstr(r, "HTTP/1.1 405 Method Not Allowed\r\n"));
        assert_non_null(strstr(r, "Allow: GET, HEAD\r\n"));
        free(r);
        assert_int_equal(collected, 1); /* only /metrics collects */
}

static void test_metrics_port_in_use_is_an_error(void **state)
{
        of_metrics *m = *state, *m2 = NULL;
        char errstr[256], want[64];
        int port;

        assert_int_equal(
                of_metrics_serve(m, "127.0.0.1", 0, errstr, sizeof(errstr)),
                0);
        assert_int_equal(of_metrics_new(&m2, errstr, sizeof(errstr)), 0);
        assert_int_equal(of_metrics_serve(m2, "127.0.0.1", of_metrics_port(m),
                                          errstr, sizeof(errstr)),
                         OF_ERROR);
        snprintf(want, sizeof(want),
                 "cannot listen on 127.0.0.1 port %d: ", of_metrics_port(m));
        assert_non_null(strstr(errstr, want));
        assert_int_equal(of_metrics_port(m2), 0);
        of_metrics_free(m2);
        /* Once stopped, the port is free again (MHD closed the socket). */
        port = of_metrics_port(m);
        of_metrics_free(m);
        *state = NULL;
        assert_int_equal(of_metrics_new(&m2, errstr, sizeof(errstr)), 0);
        *state = m2;
        assert_int_equal(of_metrics_serve(m2, "127.0.0.1", port, errstr,
                                          sizeof(errstr)),
                         0);
}

/* An info gauge: one sample of 1, its labels in the order given, values
 * escaped. */
static void test_metrics_info_gauge_has_every_label(void **state)
{
        static const char *const labels[] = {
                "version", "1.2.3", "git_revision", "abc\"d", NULL,
        };
        of_metrics *m = *state;

        of_metrics_declare_info(m, "t_build_info", "Build.", labels);
        assert_renders(m, "# HELP t_build_info Build.\n"
                          "# TYPE t_build_info gauge\n"
                          "t_build_info{version=\"1.2.3\","
                          "git_revision=\"abc\\\"d\"} 1\n");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_metrics_renders_help_type_and_samples),
                T(test_metrics_escapes_label_values_and_help),
                T(test_metrics_info_gauge_has_every_label),
                T(test_metrics_values_read_back_exactly),
                T(test_metrics_histogram_buckets_are_cumulative),
                T(test_metrics_serves_get_metrics_only),
                T(test_metrics_port_in_use_is_an_error),
        };

        return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
