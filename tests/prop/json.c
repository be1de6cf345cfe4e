/* A body as a message value: JSON as any producer might write it (member
 * order, whitespace, escapes, number spellings, time zones and unknown
 * members all drawn at random), or broken in one of the ways of
 * enum prop_defect, with the reason each must get. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prop.h"

static const char *ws(prop_rng *r)
{
        static const char *const w[] = {"",   "",   "",   "",     " ",
                                        "  ", "\n", "\t", "\r\n", " \n\t "};

        return PROP_PICK(r, w);
}

static void put_u16(prop_sbuf *o, uint32_t u, int upper)
{
        if (upper)
                prop_sb_printf(o, "\\u%04X", (unsigned)u);
        else
                prop_sb_printf(o, "\\u%04x", (unsigned)u);
}

/* A JSON string for the UTF-8 s, escaping at random where JSON allows. */
static void put_jstr(prop_sbuf *o, prop_rng *r, const char *s)
{
        const unsigned char *p = (const unsigned char *)s;
        int esc = prop_chance(r, 15);
        int upper = prop_chance(r, 50);
        uint32_t cp, lo;
        int n;

        prop_sb_putc(o, '"');
        while (*p) {
                if (*p == '"' || *p == '\\' || *p < 0x20 ||
                    (*p < 0x80 && esc && prop_chance(r, 30))) {
                        if (*p == '"' || *p == '\\') {
                                if (!esc || prop_chance(r, 50)) {
                                        prop_sb_putc(o, '\\');
                                        prop_sb_putc(o, (char)*p++);
                                        continue;
                                }
                        } else if (*p == '\n' && prop_chance(r, 50)) {
                                prop_sb_puts(o, "\\n");
                                p++;
                                continue;
                        } else if (*p == '/' && prop_chance(r, 50)) {
                                prop_sb_puts(o, "\\/");
                                p++;
                                continue;
                        }
                        put_u16(o, *p++, upper);
                        continue;
                }
                if (*p < 0x80 || !esc || prop_chance(r, 50)) {
                        n = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
                        prop_sb_add(o, p, (size_t)n);
                        p += n;
                        continue;
                }
                /* a \u escape of a multi-byte character */
                if (*p < 0xe0) {
                        cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
                        p += 2;
                } else if (*p < 0xf0) {
                        cp = (uint32_t)(p[0] & 0x0f) << 12 |
                             (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
                        p += 3;
                } else {
                        cp = (uint32_t)(p[0] & 0x07) << 18 |
                             (uint32_t)(p[1] & 0x3f) << 12 |
                             (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
                        p += 4;
                }
                if (cp >= 0x10000) {
                        lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
                        cp = 0xd800 + ((cp - 0x10000) >> 10);
                        put_u16(o, cp, upper);
                        cp = lo;
                }
                put_u16(o, cp, upper);
        }
        prop_sb_putc(o, '"');
}

/* The members of one object under construction, shuffled on close. */
typedef struct members {
        prop_sbuf m[16];
        int n;
} members;

/* Start a member "key": and return the buffer its value goes into. */
static prop_sbuf *member(members *ms, prop_rng *r, const char *key)
{
        prop_sbuf *b = &ms->m[ms->n++];

        if (ms->n > 16)
                abort();
        memset(b, 0, sizeof(*b));
        put_jstr(b, r, key);
        prop_sb_puts(b, ws(r));
        prop_sb_putc(b, ':');
        prop_sb_puts(b, ws(r));
        return b;
}

static void close_object(prop_sbuf *o, prop_rng *r, members *ms)
{
        prop_sbuf tmp;
        int i, j;

        for (i = ms->n - 1; i > 0; i--) {
                j = (int)prop_below(r, (uint64_t)i + 1);
                tmp = ms->m[i];
                ms->m[i] = ms->m[j];
                ms->m[j] = tmp;
        }
        prop_sb_putc(o, '{');
        prop_sb_puts(o, ws(r));
        for (i = 0; i < ms->n; i++) {
                if (i) {
                        prop_sb_puts(o, ws(r));
                        prop_sb_putc(o, ',');
                        prop_sb_puts(o, ws(r));
                }
                prop_sb_add(o, ms->m[i].p, ms->m[i].len);
                prop_sb_free(&ms->m[i]);
        }
        prop_sb_puts(o, ws(r));
        prop_sb_putc(o, '}');
        ms->n = 0;
}

/* An unknown value: scalars, strings, and below depth 2 arrays and
 * objects whose keys may repeat the envelope's (they are nested). */
static void rand_json(prop_sbuf *o, prop_rng *r, int depth)
{
        static const char *const scalars[] = {
                "null",
                "true",
                "false",
                "0",
                "-1",
                "42",
                "-0.5",
                "1e3",
                "2.5E-3",
                "123456789012345678901234567890",
                "-9007199254740993",
                "1.7976931348623157e308",
        };
        static const char *const strs[] = {
                "",
                "x",
                PROP_E_ACUTE,
                PROP_NIHON "!",
                "tab\tnl\n",
                "q\"b\\s/",
                PROP_SMILE,
                "\x7f",
                "OrderPlaced",
        };
        static const char *const keys[] = {
                "id",         "type",    "total",   "amount",
                "occurredAt", "payload", "orderId", "x",
        };
        members ms = {.n = 0};
        size_t k, n, start;

        switch (prop_below(r, depth < 2 ? 5 : 3)) {
        case 0:
                prop_sb_puts(o, PROP_PICK(r, scalars));
                break;
        case 1:
        case 2:
                put_jstr(o, r, PROP_PICK(r, strs));
                break;
        case 3:
                prop_sb_putc(o, '[');
                prop_sb_puts(o, ws(r));
                for (k = 0, n = prop_below(r, 4); k < n; k++) {
                        if (k) {
                                prop_sb_putc(o, ',');
                                prop_sb_puts(o, ws(r));
                        }
                        rand_json(o, r, depth + 1);
                        prop_sb_puts(o, ws(r));
                }
                prop_sb_putc(o, ']');
                break;
        default:
                start = prop_below(r, sizeof(keys) / sizeof(*keys));
                for (k = 0, n = prop_below(r, 4); k < n; k++)
                        rand_json(member(&ms, r,
                                         keys[(start + k) %
                                              (sizeof(keys) / sizeof(*keys))]),
                                  r, depth + 1);
                close_object(o, r, &ms);
        }
}

/* 0..max distinct unknown members from pool. */
static void add_extras(members *ms, prop_rng *r, const char *const *pool,
                       size_t n, unsigned max)
{
        size_t start = prop_below(r, n), k, cnt = prop_below(r, max + 1);

        for (k = 0; k < cnt; k++)
                rand_json(member(ms, r, pool[(start + k) % n]), r, 0);
}

/* occurredAt for the instant (s, ms), as some producer might write it:
 * any offset, T or t, Z or z, 0 to 9 fraction digits (truncation to ms
 * must give ms back). Time defects replace it with a broken form. */
static void put_time(prop_sbuf *o, prop_rng *r, int64_t s, int ms, int defect)
{
        static const int offs[] = {0,    0,  0,    540, -330, 345, 840,
                                   -720, 60, -480, 330, -600, 570, -150};
        static const char *const bad_dates[] = {
                "2026-02-30T10:00:00Z",      "2023-02-29T12:00:00+09:00",
                "2026-04-31T00:00:00Z",      "2026-13-01T00:00:00Z",
                "2026-11-00T08:00:00-05:30", "2024-02-30T23:59:59.999Z",
        };
        static const char *const bad_years[] = {
                "0001-01-01T00:30:00+01:00",
                "9999-12-31T23:30:00-01:00",
                "0000-06-01T00:00:00Z",
        };
        int off = prop_chance(r, 5) ? (int)prop_below(r, 2879) - 1439
                                    : PROP_PICK(r, offs);
        char frac[16], zone[16], digits[8];
        prop_civil t;
        int k, i;

        if (defect == PROP_D_BAD_DATE || defect == PROP_D_BAD_YEAR) {
                prop_sb_printf(o, "\"%s\"",
                               defect == PROP_D_BAD_DATE
                                       ? PROP_PICK(r, bad_dates)
                                       : PROP_PICK(r, bad_years));
                return;
        }
        t = prop_to_civil(s + off * 60);
        if (t.y < 1 || t.y > 9999) {
                off = 0;
                t = prop_to_civil(s);
        }
        do
                k = (int)prop_below(r, 10);
        while ((k == 0 && ms % 1000) || (k == 1 && ms % 100) ||
               (k == 2 && ms % 10));
        snprintf(digits, sizeof(digits), "%03d", ms);
        frac[0] = '\0';
        if (k > 0) {
                frac[0] = '.';
                for (i = 0; i < k; i++)
                        frac[i + 1] = i < 3 ? digits[i]
                                            : (char)('0' + prop_below(r, 10));
                frac[k + 1] = '\0';
        }
        if (defect == PROP_D_NO_OFFSET)
                zone[0] = '\0';
        else if (off == 0)
                snprintf(zone, sizeof(zone), "%s",
                         prop_chance(r, 20)   ? "z"
                         : prop_chance(r, 20) ? "+00:00"
                                              : "Z");
        else
                snprintf(zone, sizeof(zone), "%c%02d:%02d",
                         off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
        prop_sb_printf(o, "\"%04" PRId64 "-%02d-%02d%c%02d:%02d:%02d%s%s\"",
                       t.y, t.mo, t.d,
                       defect == PROP_D_SPACE_T ? ' '
                       : prop_chance(r, 20)     ? 't'
                                                : 'T',
                       t.h, t.mi, defect == PROP_D_SEC60 ? 60 : t.s, frac,
                       zone);
}

/* A whole number in one of the spellings JSON allows for it. */
static void put_amount(prop_sbuf *o, prop_rng *r, int64_t a, int defect)
{
        static const char *const too_big[] = {
                "9007199254740992",
                "9007199254740993",
                "1e16",
                "18446744073709551616",
                "1e300",
                "9.007199254740992e15",
        };
        static const char *const not_num[] = {
                "\"1250\"", "null", "true", "[1250]", "{\"v\":1}",
        };
        char d[32];
        int n, tz;

        switch (defect) {
        case PROP_D_NEG:
                prop_sb_printf(o, "-%d", 1 + (int)prop_below(r, 1000000));
                return;
        case PROP_D_FRACTION: /* small: a.5 must not round to a whole number */
                prop_sb_printf(o, "%d.%s", (int)(a % 1000000),
                               prop_chance(r, 50) ? "5" : "25");
                return;
        case PROP_D_2P53:
                prop_sb_puts(o, PROP_PICK(r, too_big));
                return;
        case PROP_D_STRING:
                prop_sb_puts(o, PROP_PICK(r, not_num));
                return;
        }
        n = snprintf(d, sizeof(d), "%" PRId64, a);
        for (tz = 0; a && d[n - 1 - tz] == '0'; tz++)
                ;
        switch (prop_below(r, 16)) {
        case 0:
                prop_sb_printf(o, "%s.0", d);
                break;
        case 1:
                prop_sb_printf(o, "%s.000", d);
                break;
        case 2: /* d.ddd e(n-1): exact, as strtod rounds correctly */
                if (n > 1) {
                        prop_sb_printf(o, "%c.%s%s%d", d[0], d + 1,
                                       prop_chance(r, 50) ? "e" : "E+", n - 1);
                        break;
                }
                /* fall through */
        case 3:
                if (tz > 0) {
                        d[n - tz] = '\0';
                        prop_sb_printf(o, "%se%d", d, tz);
                        break;
                }
                /* fall through */
        default:
                prop_sb_puts(o, d);
        }
}

static void render_payload(prop_sbuf *o, prop_case *c, const prop_body *b,
                           int defect)
{
        static const char *const pool[] = {
                "currency", "items",    "note",   "Total",    "AMOUNT",
                "orderID",  "customer", "total ", "discount",
        };
        prop_rng *r = &c->r;
        members ms = {.n = 0};

        if (b->order >= 0)
                put_jstr(member(&ms, r, "orderId"), r,
                         defect == PROP_D_MISMATCH ? "o-elsewhere"
                                                   : c->orders[b->order]);
        if (b->type != PROP_OTHER) {
                put_amount(member(&ms, r,
                                  b->type == PROP_PLACED ? "total" : "amount"),
                           r, b->amount, defect);
                /* the other type's field is an unknown one here */
                if (prop_chance(r, 10))
                        rand_json(member(&ms, r,
                                         b->type == PROP_PLACED ? "amount"
                                                                : "total"),
                                  r, 1);
        }
        add_extras(&ms, r, pool, sizeof(pool) / sizeof(*pool), 2);
        close_object(o, r, &ms);
}

static void render_obj(prop_sbuf *o, prop_case *c, const prop_body *b,
                       int defect)
{
        static const char *const pool[] = {
                "meta", "traceId",     "version",    "source",  "ID",
                "Type", "aggregateID", "OccurredAt", "Payload", "",
                "id ",  "headers",     "schema",
        };
        static const char *const bad_utf8[] = {"\xff", "\xc3\x28",
                                               "\xed\xa0\x80"};
        prop_rng *r = &c->r;
        members ms = {.n = 0};
        prop_sbuf *v;
        int n;

        if (defect != PROP_D_NO_ID) {
                v = member(&ms, r, "id");
                if (defect == PROP_D_EMPTY_ID) {
                        prop_sb_puts(v, "\"\"");
                } else if (defect == PROP_D_LONG_ID) {
                        n = (int)v->len;
                        prop_sb_printf(v, "\"L%d-", b->idn);
                        while (v->len - (size_t)n < 130)
                                prop_sb_putc(v, 'a');
                        prop_sb_putc(v, '"');
                } else {
                        put_jstr(v, r, b->id);
                        if (defect == PROP_D_NUL_ID ||
                            defect == PROP_D_BAD_UTF8) {
                                v->len--; /* reopen the string */
                                prop_sb_puts(v,
                                             defect == PROP_D_NUL_ID
                                                     ? "\\u0000z"
                                                     : PROP_PICK(r, bad_utf8));
                                prop_sb_putc(v, '"');
                        }
                }
        }
        if (defect != PROP_D_NO_TYPE) {
                v = member(&ms, r, "type");
                if (defect == PROP_D_NUM_TYPE)
                        prop_sb_puts(v, "7");
                else
                        put_jstr(v, r, b->type_name);
        }
        if (b->order >= 0)
                put_jstr(member(&ms, r, "aggregateId"), r,
                         c->orders[b->order]);
        if (b->has_at)
                put_time(member(&ms, r, "occurredAt"), r, b->at_s, b->at_ms,
                         defect);
        if (b->has_payload && defect != PROP_D_NO_PAYLOAD)
                render_payload(member(&ms, r, "payload"), c, b, defect);
        add_extras(&ms, r, pool, sizeof(pool) / sizeof(*pool), 3);
        close_object(o, r, &ms);
}

void prop_render_value(prop_sbuf *o, prop_case *c, const prop_body *b,
                       int defect)
{
        static const char *const trail[] = {"}", "x", "{}", ",", "\"s\""};
        prop_rng *r = &c->r;
        prop_sbuf obj = {0};

        render_obj(&obj, c, b, defect);
        switch (defect) {
        case PROP_D_CUT: /* a strict prefix of an object is never JSON */
                prop_sb_add(o, obj.p, 1 + prop_below(r, obj.len - 1));
                break;
        case PROP_D_TRAIL:
                prop_sb_add(o, obj.p, obj.len);
                prop_sb_puts(o, ws(r));
                prop_sb_puts(o, PROP_PICK(r, trail));
                break;
        case PROP_D_NOT_OBJECT:
                switch (prop_below(r, 4)) {
                case 0:
                        prop_sb_putc(o, '[');
                        prop_sb_add(o, obj.p, obj.len);
                        prop_sb_putc(o, ']');
                        break;
                case 1:
                        prop_sb_puts(o, "null");
                        break;
                case 2:
                        prop_sb_puts(o, " 42 ");
                        break;
                default:
                        prop_sb_puts(o, "\"{}\"");
                }
                break;
        default:
                prop_sb_puts(o, ws(r));
                prop_sb_add(o, obj.p, obj.len);
                prop_sb_puts(o, ws(r));
        }
        prop_sb_free(&obj);
}

const char *prop_defect_reason(int defect, int type)
{
        switch (defect) {
        case PROP_D_NULL:
                return PROP_REASON_NO_VALUE;
        case PROP_D_CUT: /* a cut may split a UTF-8 sequence */
                return PROP_REASON_JSON "|" PROP_REASON_UTF8;
        case PROP_D_TRAIL:
                return PROP_REASON_JSON;
        case PROP_D_NOT_OBJECT:
                return PROP_REASON_NOT_OBJECT;
        case PROP_D_NEG:
        case PROP_D_FRACTION:
        case PROP_D_2P53:
        case PROP_D_STRING:
                return type == PROP_PLACED ? PROP_REASON_TOTAL
                                           : PROP_REASON_AMOUNT;
        case PROP_D_NO_ID:
        case PROP_D_EMPTY_ID:
        case PROP_D_LONG_ID:
        case PROP_D_NUL_ID:
                return PROP_REASON_ID;
        case PROP_D_BAD_UTF8:
                return PROP_REASON_UTF8 "|" PROP_REASON_ID;
        case PROP_D_BAD_DATE:
        case PROP_D_NO_OFFSET:
        case PROP_D_SPACE_T:
        case PROP_D_SEC60:
        case PROP_D_BAD_YEAR:
                return PROP_REASON_OCCURRED;
        case PROP_D_NO_TYPE:
        case PROP_D_NUM_TYPE:
                return PROP_REASON_TYPE;
        case PROP_D_MISMATCH:
                return PROP_REASON_MISMATCH;
        default:
                return PROP_REASON_PAYLOAD;
        }
}
