/* RFC 3339 date-time -> UTC "YYYY-MM-DDTHH:MM:SS.sssZ" (docs/reference.md 1).
 * A strict hand-written parser plus days-from-civil arithmetic, so neither
 * the locale, the time zone nor timegm() is involved. Pure: no I/O. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "orderflow/error.h"
#include "orderflow/timestamp.h"

#define MINUTES_PER_DAY 1440LL

/* The value of the n ASCII digits at s, or -1 if one is not a digit. The
 * caller has checked that n bytes are there. */
static int digits(const char *s, int n)
{
        int v = 0;
        int i;

        for (i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        return v;
}

/* Writes v as exactly n decimal digits (v fits: the caller checked it). */
static char *put(char *p, int v, int n)
{
        int i;

        for (i = n - 1; i >= 0; i--) {
                p[i] = (char)('0' + v % 10);
                v /= 10;
        }
        return p + n;
}

static int days_in_month(long long y, int m)
{
        static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        return m == 2 && leap ? 29 : mdays[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard
 * Hinnant's algorithms: eras of 400 years = 146097 days, years that start
 * on 1 March so the leap day is the last day of a year). */
static long long days_from_civil(long long y, int m, int d)
{
        long long era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d)
{
        long long era, doe, yoe, doy, mp;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        *d = (int)(doy - (153 * mp + 2) / 5 + 1);
        *m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *y = yoe + era * 400 + (*m <= 2);
}

/* The UTC offset that ends a date-time: "Z" or "+HH:MM"/"-HH:MM", all of
 * the len bytes at s; *off gets it in minutes east of UTC. */
static int parse_offset(int *off, const char *s, size_t len, char *errstr,
                        size_t errstr_size)
{
        int oh, om;

        if (len == 0)
                return of_errf(errstr, errstr_size, "no UTC offset");
        if (s[0] == 'Z' || s[0] == 'z') {
                *off = 0;
                len--;
        } else if (s[0] == '+' || s[0] == '-') {
                if (len < 6 || (oh = digits(s + 1, 2)) < 0 || s[3] != ':' ||
                    (om = digits(s + 4, 2)) < 0)
                        return of_errf(errstr, errstr_size,
                                       "UTC offset not +HH:MM or -HH:MM");
                if (oh > 23)
                        return of_errf(errstr, errstr_size,
                                       "offset hours above 23");
                if (om > 59)
                        return of_errf(errstr, errstr_size,
                                       "offset minutes above 59");
                *off = (s[0] == '-' ? -1 : 1) * (oh * 60 + om);
                len -= 6;
        } else {
                return of_errf(errstr, errstr_size,
                               "no UTC offset (Z or +HH:MM)");
        }
        if (len != 0)
                return of_errf(errstr, errstr_size,
                               "trailing characters after the offset");
        return 0;
}

/* "YYYY-MM-DDTHH:MM:SS.sssZ" into out, mins the minute of the day. */
static void format_utc(char *out, long long y, int mo, int d, int mins,
                       int sec, int ms)
{
        char *o = out;

        o = put(o, (int)y, 4);
        *o++ = '-';
        o = put(o, mo, 2);
        *o++ = '-';
        o = put(o, d, 2);
        *o++ = 'T';
        o = put(o, mins / 60, 2);
        *o++ = ':';
        o = put(o, mins % 60, 2);
        *o++ = ':';
        o = put(o, sec, 2);
        *o++ = '.';
        o = put(o, ms, 3);
        *o++ = 'Z';
        *o = '\0';
}

int of_timestamp_normalise(char out[OF_TS_LEN + 1], const char *s, size_t len,
                           char *errstr, size_t errstr_size)
{
        long long y, days, mins;
        int mo, d, h, mi, sec;
        int ms = 0, off = 0, nfrac;
        size_t p = 19; /* just after "YYYY-MM-DDTHH:MM:SS" */

        if (len == 0)
                return of_errf(errstr, errstr_size, "empty");
        if (len < 10 || (y = digits(s, 4)) < 0 || s[4] != '-' ||
            (mo = digits(s + 5, 2)) < 0 || s[7] != '-' ||
            (d = digits(s + 8, 2)) < 0)
                return of_errf(errstr, errstr_size, "not a date YYYY-MM-DD");
        if (y == 0)
                return of_errf(errstr, errstr_size, "no year 0000");
        if (mo < 1 || mo > 12)
                return of_errf(errstr, errstr_size, "no such month: %02d", mo);
        if (d < 1 || d > days_in_month(y, mo))
                return of_errf(errstr, errstr_size,
                               "no such day: %04lld-%02d-%02d", y, mo, d);
        if (len < 11 || (s[10] != 'T' && s[10] != 't'))
                return of_errf(errstr, errstr_size,
                               len > 10 && s[10] == ' '
                                       ? "a space instead of T"
                                       : "no T after the date");
        if (len < 19 || (h = digits(s + 11, 2)) < 0 || s[13] != ':' ||
            (mi = digits(s + 14, 2)) < 0 || s[16] != ':' ||
            (sec = digits(s + 17, 2)) < 0)
                return of_errf(errstr, errstr_size, "not a time HH:MM:SS");
        if (h > 23)
                return of_errf(errstr, errstr_size, "hours above 23");
        if (mi > 59)
                return of_errf(errstr, errstr_size, "minutes above 59");
        if (sec > 59)
                return of_errf(errstr, errstr_size, "seconds above 59");

        /* Any number of fraction digits; the first three are kept, the rest
         * truncated (never rounded: .9999 must not become the next second). */
        if (p < len && s[p] == '.') {
                for (nfrac = 0, p++; p < len && s[p] >= '0' && s[p] <= '9';
                     nfrac++, p++)
                        if (nfrac < 3)
                                ms = ms * 10 + (s[p] - '0');
                if (nfrac == 0)
                        return of_errf(errstr, errstr_size,
                                       "no digits after '.'");
                for (; nfrac < 3; nfrac++)
                        ms *= 10;
        }

        if (parse_offset(&off, s + p, len - p, errstr, errstr_size))
                return OF_ERROR;

        /* Local time minus its offset is UTC; an offset of up to 23:59
         * moves the date by at most one day, across month and year ends. */
        mins = days_from_civil(y, mo, d) * MINUTES_PER_DAY + h * 60 + mi - off;
        days = mins / MINUTES_PER_DAY;
        if (mins % MINUTES_PER_DAY < 0)
                days--; /* floor division: dates before 1970 */
        mins -= days * MINUTES_PER_DAY;
        civil_from_days(days, &y, &mo, &d);
        if (y < 1 || y > 9999)
                return of_errf(errstr, errstr_size,
                               "outside years 0001-9999 in UTC");

        format_utc(out, y, mo, d, (int)mins, sec, ms);
        return 0;
}

int64_t of_timestamp_pack(const char ts[OF_TS_LEN])
{
        long long days = days_from_civil(digits(ts, 4), digits(ts + 5, 2),
                                         digits(ts + 8, 2));

        return (int64_t)days * 86400000 +
               ((int64_t)digits(ts + 11, 2) * 3600 + digits(ts + 14, 2) * 60 +
                digits(ts + 17, 2)) *
                       1000 +
               digits(ts + 20, 3);
}

void of_timestamp_unpack(char out[OF_TS_LEN + 1], int64_t ms)
{
        int64_t days = ms / 86400000, rest;
        long long y;
        int mo, d;

        if (ms % 86400000 < 0)
                days--; /* floor division: dates before 1970 */
        rest = ms - days * 86400000;
        civil_from_days(days, &y, &mo, &d);
        format_utc(out, y, mo, d, (int)(rest / 60000), (int)(rest / 1000 % 60),
                   (int)(rest % 1000));
}

void of_timestamp_from_ms(char out[OF_TS_LEN + 1], int64_t ms)
{
        time_t sec;
        struct tm tm;
        char all[48];

        if (ms < 0)
                ms = 0;
        sec = (time_t)(ms / 1000);
        gmtime_r(&sec, &tm);
        snprintf(all, sizeof(all), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        memcpy(out, all, OF_TS_LEN + 1);
}

int64_t of_timestamp_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
