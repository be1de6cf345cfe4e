/* of_timestamp_normalise(): RFC 3339 in, UTC milliseconds out. Tables of
 * valid and invalid forms, plus a sweep over every day of years 0001-9999
 * checked against the C library's gmtime_r(). */
#include "testutil.h"

#include <time.h>

#include "orderflow/error.h"
#include "orderflow/timestamp.h"

struct ts_case {
        const char *in;
        const char *want; /* valid: the normalised form; invalid: errstr
                           * prefix */
};

/* Runs one row on an exact-size heap copy (no NUL after it), so that a
 * read past len shows up under AddressSanitizer. */
static int run(char out[OF_TS_LEN + 1], const char *in, char *err,
               size_t err_size)
{
        size_t len = strlen(in);
        char *copy = malloc(len ? len : 1);
        int rc;

        assert_non_null(copy);
        memcpy(copy, in, len);
        rc = of_timestamp_normalise(out, copy, len, err, err_size);
        free(copy);
        return rc;
}

static const struct ts_case valid[] = {
        {"2026-11-27T10:15:30.123Z", "2026-11-27T10:15:30.123Z"},
        {"2026-11-27t10:15:30.123z", "2026-11-27T10:15:30.123Z"},
        {"2026-11-27T10:15:30Z", "2026-11-27T10:15:30.000Z"},
        {"2026-11-27T10:15:30.1Z", "2026-11-27T10:15:30.100Z"},
        {"2026-11-27T10:15:30.12Z", "2026-11-27T10:15:30.120Z"},
        {"2026-11-27T10:15:30.123456789Z", "2026-11-27T10:15:30.123Z"},
        /* truncated, never rounded into the next second */
        {"2026-11-27T10:15:30.9999Z", "2026-11-27T10:15:30.999Z"},
        {"2026-11-27T10:15:59.99999999999999999999Z",
         "2026-11-27T10:15:59.999Z"},
        {"2026-11-27T10:15:30.123+09:00", "2026-11-27T01:15:30.123Z"},
        {"2026-11-27T10:15:30-05:30", "2026-11-27T15:45:30.000Z"},
        {"2026-11-27T10:15:30+00:00", "2026-11-27T10:15:30.000Z"},
        {"2026-11-27T10:15:30-00:00", "2026-11-27T10:15:30.000Z"},
        {"2026-11-27T10:15:30.5+23:59", "2026-11-26T10:16:30.500Z"},
        {"2026-11-27T10:15:30.5-23:59", "2026-11-28T10:14:30.500Z"},
        /* day, month and year boundaries crossed by the offset */
        {"2026-11-27T05:00:00+09:00", "2026-11-26T20:00:00.000Z"},
        {"2026-11-30T20:00:00-05:00", "2026-12-01T01:00:00.000Z"},
        {"2026-03-01T01:00:00+02:00", "2026-02-28T23:00:00.000Z"},
        {"2024-03-01T01:00:00+02:00", "2024-02-29T23:00:00.000Z"},
        {"2024-02-28T23:00:00-02:00", "2024-02-29T01:00:00.000Z"},
        {"2025-12-31T23:30:00-01:00", "2026-01-01T00:30:00.000Z"},
        {"2026-01-01T00:00:00+00:01", "2025-12-31T23:59:00.000Z"},
        /* leap days: every 4 years, not every 100, again every 400 */
        {"2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000Z"},
        {"2000-02-29T12:00:00Z", "2000-02-29T12:00:00.000Z"},
        {"1600-02-29T12:00:00Z", "1600-02-29T12:00:00.000Z"},
        /* the ends of the range */
        {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"},
        {"0001-01-01T00:00:00-00:01", "0001-01-01T00:01:00.000Z"},
        {"9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"},
        {"9999-12-31T23:59:59+01:00", "9999-12-31T22:59:59.000Z"},
        {"1969-12-31T23:59:59.999-00:01", "1970-01-01T00:00:59.999Z"},
};

static const struct ts_case invalid[] = {
        {"", "empty"},
        {"2026-11-27", "no T after the date"},
        {"2026-11-27 10:15:30Z", "a space instead of T"},
        {"2026-11-27_10:15:30Z", "no T after the date"},
        {"2026-11-27T10:15:30", "no UTC offset"},
        {"2026-11-27T10:15:30.123", "no UTC offset"},
        {"2026-11-27T10:15:30 Z", "no UTC offset"},
        {"2026-11-27T10:15:30,123Z", "no UTC offset"},
        {"2026-11-27T10:15:30Zjunk", "trailing characters"},
        {"2026-11-27T10:15:30Z ", "trailing characters"},
        {"2026-11-27T10:15:30+09:00:00", "trailing characters"},
        {"2026-11-27T10:15:30+0900", "UTC offset not +HH:MM"},
        {"2026-11-27T10:15:30+9:00", "UTC offset not +HH:MM"},
        {"2026-11-27T10:15:30+09", "UTC offset not +HH:MM"},
        {"2026-11-27T10:15:30+24:00", "offset hours above 23"},
        {"2026-11-27T10:15:30-09:60", "offset minutes above 59"},
        {"2026-11-27T10:15:30.Z", "no digits after '.'"},
        {"2026-11-27T10:15:60Z", "seconds above 59"},
        {"2026-11-27T10:60:00Z", "minutes above 59"},
        {"2026-11-27T24:00:00Z", "hours above 23"},
        {"2026-11-27T10:15Z", "not a time HH:MM:SS"},
        {"2026-11-27T1:15:30Z", "not a time HH:MM:SS"},
        {"2026-11-27T10-15-30Z", "not a time HH:MM:SS"},
        {"2026-02-30T10:00:00Z", "no such day: 2026-02-30"},
        {"2026-02-29T10:00:00Z", "no such day: 2026-02-29"},
        {"1900-02-29T10:00:00Z", "no such day: 1900-02-29"},
        {"2026-04-31T10:00:00Z", "no such day: 2026-04-31"},
        {"2026-11-00T10:00:00Z", "no such day: 2026-11-00"},
        {"2026-13-01T10:00:00Z", "no such month: 13"},
        {"2026-00-01T10:00:00Z", "no such month: 00"},
        {"0000-01-01T00:00:00Z", "no year 0000"},
        {"0001-01-01T00:00:00+00:01", "outside years 0001-9999"},
        {"9999-12-31T23:00:00-01:00", "outside years 0001-9999"},
        {"26-11-27T10:15:30Z", "not a date YYYY-MM-DD"},
        {"2026/11/27T10:15:30Z", "not a date YYYY-MM-DD"},
        {"+2026-11-27T10:15:30Z", "not a date YYYY-MM-DD"},
        {"\xef\xbc\x92"
         "026-11-27T10:15:30Z",
         "not a date YYYY-MM-DD"},
        {"1764238530", "not a date YYYY-MM-DD"},
};

static void test_timestamp_normalises_valid_forms_to_utc_ms(void **state)
{
        char out[OF_TS_LEN + 1], err[128];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
                err[0] = '\0';
                if (run(out, valid[i].in, err, sizeof(err)) != 0)
                        fail_msg("%s: rejected (%s)", valid[i].in, err);
                if (strcmp(out, valid[i].want) != 0)
                        fail_msg("%s: got %s, want %s", valid[i].in, out,
                                 valid[i].want);
                assert_int_equal(strlen(out), OF_TS_LEN);
        }
}

static void test_timestamp_rejects_invalid_forms_saying_why(void **state)
{
        char out[OF_TS_LEN + 1], err[128];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
                err[0] = '\0';
                if (run(out, invalid[i].in, err, sizeof(err)) != OF_ERROR)
                        fail_msg("%s: accepted as %s", invalid[i].in, out);
                if (strncmp(err, invalid[i].want, strlen(invalid[i].want)))
                        fail_msg("%s: error '%s', want '%s...'", invalid[i].in,
                                 err, invalid[i].want);
        }
}

static void test_timestamp_reads_only_len_bytes(void **state)
{
        static const char s[] = "2026-11-27T10:15:30Z+09:00";
        char out[OF_TS_LEN + 1], err[128];

        (void)state;
        assert_int_equal(of_timestamp_normalise(out, s, 20, err, sizeof(err)),
                         0);
        assert_string_equal(out, "2026-11-27T10:15:30.000Z");
        assert_int_equal(of_timestamp_normalise(out, s, 19, err, sizeof(err)),
                         OF_ERROR);
        assert_string_equal(err, "no UTC offset");
}

/* Formats t + off_min minutes as local time with that offset. */
static void format_local(char *buf, size_t size, time_t t, int off_min)
{
        time_t local = t + (time_t)off_min * 60;
        struct tm tm;
        int a = off_min < 0 ? -off_min : off_min;

        assert_non_null(gmtime_r(&local, &tm));
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(t % 1000 + 1000) % 1000,
                 off_min < 0 ? '-' : '+', a / 60, a % 60);
}

/* Every 11th day from 0001-01-02 to 9999-12-30 (so every day of the
 * week and of the month, in every kind of year), at a time of day and an
 * offset that change each time, must come back as gmtime_r() says. */
static void test_timestamp_matches_gmtime_in_years_0001_to_9999(void **state)
{
        const time_t first = -62135596800 + 86400; /* 0001-01-02 */
        const time_t last = 253402300799 - 86400;  /* 9999-12-30 */
        char in[64], want[64], out[OF_TS_LEN + 1], err[128];
        struct tm tm;
        long long k;
        time_t t;
        int off;

        (void)state;
        for (k = 0; (t = first + k * 11 * 86400 + k * 3607 % 86400) < last;
             k++) {
                off = (int)(k * 37 % 2879) - 1439; /* -23:59 .. +23:59 */
                format_local(in, sizeof(in), t, off);
                assert_non_null(gmtime_r(&t, &tm));
                snprintf(want, sizeof(want),
                         "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec,
                         (int)(t % 1000 + 1000) % 1000);
                if (of_timestamp_normalise(out, in, strlen(in), err,
                                           sizeof(err)) != 0)
                        fail_msg("%s: rejected (%s)", in, err);
                if (strcmp(out, want) != 0)
                        fail_msg("%s: got %s, want %s", in, out, want);
        }
}

/* Packed into ms and back, every normalised form comes out the same, and
 * the packed values keep the timestamps' order; 1970 and after agree with
 * of_timestamp_from_ms (an independent formatter: gmtime). */
static void test_timestamp_pack_round_trips_in_years_0001_to_9999(void **state)
{
        const time_t first = -62135596800;        /* 0001-01-01 */
        const time_t last = 253402300799 - 86400; /* 9999-12-30 */
        char ts[64], back[OF_TS_LEN + 1], ref[OF_TS_LEN + 1];
        struct tm tm;
        int64_t packed, prev = INT64_MIN;
        long long k;
        time_t t;

        (void)state;
        for (k = 0; (t = first + k * 7 * 86400 + k * 3607 % 86400) < last;
             k++) {
                assert_non_null(gmtime_r(&t, &tm));
                snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(k % 1000));
                packed = of_timestamp_pack(ts);
                assert_int_equal(packed, (int64_t)t * 1000 + k % 1000);
                assert_true(packed > prev);
                prev = packed;
                of_timestamp_unpack(back, packed);
                if (strcmp(back, ts) != 0)
                        fail_msg("%s: back as %s", ts, back);
                if (t >= 0) {
                        of_timestamp_from_ms(ref, packed);
                        assert_string_equal(ref, ts);
                }
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_timestamp_normalises_valid_forms_to_utc_ms),
                cmocka_unit_test(
                        test_timestamp_rejects_invalid_forms_saying_why),
                cmocka_unit_test(test_timestamp_reads_only_len_bytes),
                cmocka_unit_test(
                        test_timestamp_matches_gmtime_in_years_0001_to_9999),
                cmocka_unit_test(
                        test_timestamp_pack_round_trips_in_years_0001_to_9999),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
