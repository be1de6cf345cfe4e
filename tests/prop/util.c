/* The small tools of test_property's parts: memory, splitmix64 random
 * numbers, growing strings, the calendar (proleptic Gregorian, our own
 * arithmetic, not src/timestamp.c's) and the pieces of a canonical dump
 * that the model's and the database's dumps share. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prop.h"

/* ---- small utilities ------------------------------------------------ */

void *prop_xrealloc(void *p, size_t n)
{
        p = realloc(p, n ? n : 1);
        if (!p)
                abort();
        return p;
}

void *prop_dupbytes(const void *s, size_t n)
{
        void *p = prop_xrealloc(NULL, n);

        if (n)
                memcpy(p, s, n);
        return p;
}

void *prop_grow(void *p, size_t n, size_t *cap, size_t size)
{
        if (n < *cap)
                return p;
        *cap = *cap ? *cap * 2 : 16;
        return prop_xrealloc(p, *cap * size);
}

uint64_t prop_rnd(prop_rng *r)
{
        uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);

        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

uint64_t prop_below(prop_rng *r, uint64_t n)
{
        return n ? prop_rnd(r) % n : 0;
}

int prop_chance(prop_rng *r, unsigned percent)
{
        return prop_below(r, 100) < percent;
}

void prop_sb_add(prop_sbuf *b, const void *s, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                b->cap = (b->len + n + 1) * 2;
                b->p = prop_xrealloc(b->p, b->cap);
        }
        if (n)
                memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

void prop_sb_puts(prop_sbuf *b, const char *s)
{
        prop_sb_add(b, s, strlen(s));
}

void prop_sb_putc(prop_sbuf *b, char c)
{
        prop_sb_add(b, &c, 1);
}

void prop_sb_printf(prop_sbuf *b, const char *fmt, ...)
{
        char tmp[400];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(tmp))
                abort();
        prop_sb_add(b, tmp, (size_t)n);
}

void prop_sb_free(prop_sbuf *b)
{
        free(b->p);
        memset(b, 0, sizeof(*b));
}

/* ---- calendar: proleptic Gregorian, our own arithmetic -------------- */

static int64_t floordiv(int64_t a, int64_t b)
{
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 (H. Hinnant's days_from_civil). */
int64_t prop_days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = floordiv(y, 400);
        yoe = y - era * 400;
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

prop_civil prop_to_civil(int64_t secs)
{
        int64_t z = floordiv(secs, 86400), rem = secs - z * 86400;
        int64_t era, doe, yoe, doy, mp;
        prop_civil t;

        z += 719468;
        era = floordiv(z, 146097);
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        t.d = (int)(doy - (153 * mp + 2) / 5 + 1);
        t.mo = (int)(mp < 10 ? mp + 3 : mp - 9);
        t.y = yoe + era * 400 + (t.mo <= 2);
        t.h = (int)(rem / 3600);
        t.mi = (int)(rem / 60 % 60);
        t.s = (int)(rem % 60);
        return t;
}

void prop_utc_text(char out[48], int64_t secs, int ms)
{
        prop_civil t = prop_to_civil(secs);

        snprintf(out, 48, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", t.y,
                 t.mo, t.d, t.h, t.mi, t.s, ms);
}

/* ---- pieces of a canonical dump ------------------------------------- */

static uint64_t fnv1a(const void *p, size_t n)
{
        const unsigned char *s = p;
        uint64_t h = 0xcbf29ce484222325ULL;

        while (n--)
                h = (h ^ *s++) * 0x100000001b3ULL;
        return h;
}

void prop_put_text(prop_sbuf *o, const void *p, size_t n)
{
        const unsigned char *s = p;
        size_t i;

        prop_sb_putc(o, '"');
        for (i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\')
                        prop_sb_printf(o, "\\x%02x", s[i]);
                else
                        prop_sb_putc(o, (char)s[i]);
        prop_sb_putc(o, '"');
}

void prop_put_bytes(prop_sbuf *o, const void *p, size_t n, int null)
{
        if (null)
                prop_sb_puts(o, "NULL");
        else
                prop_sb_printf(o, "bytes(%zu,%016" PRIx64 ")", n, fnv1a(p, n));
}

void prop_put_offsets(prop_sbuf *o, const int64_t next[PROP_NPART])
{
        int p;

        prop_sb_puts(o, "== next_offsets\n");
        for (p = 0; p < PROP_NPART; p++)
                if (next[p] < 0)
                        prop_sb_printf(o, "%d|none\n", p);
                else
                        prop_sb_printf(o, "%d|%" PRId64 "\n", p, next[p]);
}
