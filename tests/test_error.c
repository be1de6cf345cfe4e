/* error.c: of_errf, and of_retry, the rule every loop that retries a
 * database follows (busy or full: wait as long as it lasts; an I/O
 * error: a few attempts; a warning at most every few seconds), driven
 * here by a made-up clock. */
#include "testutil.h"

#include "orderflow/error.h"
#include "orderflow/log.h"

static int quiet(void **state)
{
        (void)state;
        of_log_verbosity = OF_LOG_ERROR; /* the warnings are counted */
        return 0;
}

static void test_errf_truncates_and_returns_error(void **state)
{
        char buf[8];

        (void)state;
        assert_int_equal(of_errf(buf, sizeof(buf), "%s", "0123456789"),
                         OF_ERROR);
        assert_string_equal(buf, "0123456");
        assert_int_equal(of_errf(NULL, 0, "nothing"), OF_ERROR);
}

static void test_retry_busy_waits_for_ever_warning_now_and_then(void **state)
{
        of_retry r = {.max_ms = 1000};
        char errstr[64] = "COMMIT: database or disk is full";
        int64_t now = 1000;
        int want = 50, i, wait;

        (void)state;
        for (i = 0; i < 1000; i++) {
                wait = of_retry_failed(&r, OF_EBUSY, "read model", errstr,
                                       sizeof(errstr), now);
                assert_int_equal(wait, want);
                now += wait;
                want = want * 2 > 1000 ? 1000 : want * 2;
        }
        assert_string_equal(errstr, "COMMIT: database or disk is full");
        /* The first failure, then one line per OF_RETRY_LOG_MS at most:
         * about 1000 s of failures, not 1000 lines. */
        assert_true(r.lines >= 2);
        assert_true(r.lines <= 1 + (now - 1000) / OF_RETRY_LOG_MS);
}

static void test_retry_io_error_gives_up_after_a_few(void **state)
{
        of_retry r = {0};
        char errstr[64] = "COMMIT: disk I/O error";
        static const int waits[] = {250, 500, 1000, 2000};
        int64_t now = 1;
        int i;

        (void)state;
        for (i = 0; i < OF_RETRY_IO_MAX - 1; i++) {
                assert_int_equal(of_retry_failed(&r, OF_EIO, "read model",
                                                 errstr, sizeof(errstr), now),
                                 waits[i]);
                now += waits[i];
        }
        assert_int_equal(of_retry_failed(&r, OF_EIO, "read model", errstr,
                                         sizeof(errstr), now),
                         -1);
        assert_string_equal(errstr, "COMMIT: disk I/O error (5 attempts)");
}

static void test_retry_busy_between_io_errors_counts_io_only(void **state)
{
        of_retry r = {0};
        char errstr[64] = "x";
        int i;

        (void)state;
        for (i = 0; i < OF_RETRY_IO_MAX - 1; i++) {
                assert_true(of_retry_failed(&r, OF_EIO, "w", errstr,
                                            sizeof(errstr), 1) > 0);
                assert_true(of_retry_failed(&r, OF_EBUSY, "w", errstr,
                                            sizeof(errstr), 1) > 0);
        }
        assert_int_equal(
                of_retry_failed(&r, OF_EIO, "w", errstr, sizeof(errstr), 1),
                -1);
}

static void test_retry_success_starts_a_new_spell(void **state)
{
        of_retry r = {0};
        char errstr[64] = "x";
        int i;

        (void)state;
        for (i = 0; i < OF_RETRY_IO_MAX - 1; i++)
                assert_true(of_retry_failed(&r, OF_EIO, "w", errstr,
                                            sizeof(errstr), 1) > 0);
        of_retry_ok(&r, "w", 2);
        assert_int_equal(
                of_retry_failed(&r, OF_EIO, "w", errstr, sizeof(errstr), 3),
                250);
        assert_int_equal(
                of_retry_failed(&r, OF_EBUSY, "w", errstr, sizeof(errstr), 3),
                50);
}

static void test_retry_other_errors_are_not_retried(void **state)
{
        static const int errs[] = {OF_ERROR, OF_ENOTFOUND, OF_EABORT,
                                   OF_EEXISTS, OF_ESTALE};
        of_retry r = {0};
        char errstr[64] = "database disk image is malformed";
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
                assert_int_equal(of_retry_failed(&r, errs[i], "w", errstr,
                                                 sizeof(errstr), 1),
                                 -1);
        assert_string_equal(errstr, "database disk image is malformed");
        assert_int_equal(r.lines, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_errf_truncates_and_returns_error),
                cmocka_unit_test(
                        test_retry_busy_waits_for_ever_warning_now_and_then),
                cmocka_unit_test(test_retry_io_error_gives_up_after_a_few),
                cmocka_unit_test(
                        test_retry_busy_between_io_errors_counts_io_only),
                cmocka_unit_test(test_retry_success_starts_a_new_spell),
                cmocka_unit_test(test_retry_other_errors_are_not_retried),
        };

        return cmocka_run_group_tests(tests, quiet, NULL);
}
