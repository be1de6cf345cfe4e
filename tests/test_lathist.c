/* The latency histogram against an exact model: every quantile of a sorted
 * copy of the values, over spreads from microseconds to hours. */
#include <stdlib.h>

#include "testutil.h"

#include "orderflow/lathist.h"

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

/* The exact quantile: the smallest value with at least q * n at or below. */
static int64_t exact(const int64_t *sorted, size_t n, double q)
{
        size_t i;

        for (i = 0; i < n; i++)
                if ((double)(i + 1) >= q * (double)n)
                        return sorted[i];
        return sorted[n - 1];
}

static void test_lathist_quantiles_within_bucket_precision(void **state)
{
        static const int64_t spreads[] = {100, 5000, 200000, 90000000,
                                          (int64_t)1 << 40};
        static const double qs[] = {0, 0.01, 0.5, 0.9, 0.99, 0.999, 1};
        enum { N = 20000 };
        int64_t *v = malloc(N * sizeof(*v));
        size_t s, i, k;

        (void)state;
        assert_non_null(v);
        srand(7);
        for (s = 0; s < sizeof(spreads) / sizeof(spreads[0]); s++) {
                of_lathist *h = calloc(1, sizeof(*h));

                assert_non_null(h);
                assert_int_equal(of_lathist_quantile(h, 0.5), -1);
                for (i = 0; i < N; i++) {
                        /* skewed: most small, a long tail */
                        double u = (double)rand() / RAND_MAX;

                        v[i] = (int64_t)(u * u * u * (double)spreads[s]);
                        of_lathist_add(h, v[i]);
                }
                qsort(v, N, sizeof(*v), cmp_i64);
                assert_int_equal(h->n, N);
                assert_int_equal(h->max_us, v[N - 1]);
                for (k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
                        int64_t want = exact(v, N, qs[k]),
                                got = of_lathist_quantile(h, qs[k]);

                        /* never below the value, at most one bucket
                         * (1/64) above it, never above the maximum */
                        assert_true(got >= want || want >= ((int64_t)1 << 37));
                        assert_true(got <= want + want / 64 + 1 ||
                                    want >= ((int64_t)1 << 36));
                        assert_true(got <= v[N - 1]);
                }
                free(h);
        }
        free(v);
}

static void test_lathist_negative_counts_as_zero_and_formats(void **state)
{
        of_lathist h = {0};
        char line[80];

        (void)state;
        assert_string_equal(of_lathist_format(&h, line, sizeof(line)), "none");
        of_lathist_add(&h, -5);
        of_lathist_add(&h, 1500);
        of_lathist_add(&h, 2500);
        assert_int_equal(of_lathist_quantile(&h, 0.3), 0);
        assert_string_equal(of_lathist_format(&h, line, sizeof(line)),
                            "p50 1.5 ms, p99 2.5 ms, max 2.5 ms");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_lathist_quantiles_within_bucket_precision),
                cmocka_unit_test(
                        test_lathist_negative_counts_as_zero_and_formats),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
