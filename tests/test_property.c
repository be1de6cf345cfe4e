/* Property tests of of_store_apply_batch() against CONTRACT 2: a random
 * valid event set, delivered in any order with repeats and redeliveries,
 * gives the read model that an independent in-memory model computes from
 * the set; an invalid log follows "first in log order wins"; sums stop at
 * 2^63-1. The model shares no code with src/: it renders its own JSON and
 * does its own calendar arithmetic. OF_PROP_SEED and OF_PROP_CASES
 * override the base seed and the number of cases. */
#include "testutil.h"

#include <inttypes.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/store.h"

#define TOPIC         "orders"
#define NPART         4
#define ID_CAP        160 /* id and order buffers: 129 bytes + NUL fit */
#define AMOUNT_MAX    9007199254740991LL /* 2^53-1 */
#define SEED_DEFAULT  20261127ULL
#define CASES_VALID   1000
#define CASES_INVALID 300

/* UTF-8 pieces, kept apart so that no \x escape swallows a letter. */
#define E_ACUTE "\xc3\xa9"
#define NIHON   "\xe6\x97\xa5\xe6\x9c\xac"
#define GCLEF   "\xf0\x9d\x84\x9e"
#define SMILE   "\xf0\x9f\x98\x80"

static char *g_dir; /* the temporary directory of this run */

/* ---- small utilities ------------------------------------------------ */

static void *xrealloc(void *p, size_t n)
{
        p = realloc(p, n ? n : 1);
        if (!p)
                abort();
        return p;
}

static void *dupbytes(const void *s, size_t n)
{
        void *p = xrealloc(NULL, n);

        if (n)
                memcpy(p, s, n);
        return p;
}

/* Make room for one more element in a growing array. */
static void *grow(void *p, size_t n, size_t *cap, size_t size)
{
        if (n < *cap)
                return p;
        *cap = *cap ? *cap * 2 : 16;
        return xrealloc(p, *cap * size);
}

typedef struct rng {
        uint64_t s; /* splitmix64 state */
} rng;

static uint64_t rnd(rng *r)
{
        uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);

        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

static uint64_t below(rng *r, uint64_t n)
{
        return n ? rnd(r) % n : 0;
}

static int chance(rng *r, unsigned percent)
{
        return below(r, 100) < percent;
}

#define PICK(r, arr) ((arr)[below((r), sizeof(arr) / sizeof(*(arr)))])

typedef struct sbuf {
        char *p;    /* NUL-terminated once anything was added */
        size_t len; /* bytes, NUL excluded */
        size_t cap;
} sbuf;

static void sb_add(sbuf *b, const void *s, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                b->cap = (b->len + n + 1) * 2;
                b->p = xrealloc(b->p, b->cap);
        }
        if (n)
                memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
        sb_add(b, s, strlen(s));
}

static void sb_putc(sbuf *b, char c)
{
        sb_add(b, &c, 1);
}

static void sb_printf(sbuf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
        char tmp[400];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(tmp))
                abort();
        sb_add(b, tmp, (size_t)n);
}

static void sb_free(sbuf *b)
{
        free(b->p);
        memset(b, 0, sizeof(*b));
}

static uint64_t fnv1a(const void *p, size_t n)
{
        const unsigned char *s = p;
        uint64_t h = 0xcbf29ce484222325ULL;

        while (n--)
                h = (h ^ *s++) * 0x100000001b3ULL;
        return h;
}

/* ---- calendar: proleptic Gregorian, our own arithmetic ------------- */

static int64_t floordiv(int64_t a, int64_t b)
{
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = floordiv(y, 400);
        yoe = y - era * 400;
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

typedef struct civil {
        int64_t y;
        int mo, d, h, mi, s;
} civil;

static civil to_civil(int64_t secs)
{
        int64_t z = floordiv(secs, 86400), rem = secs - z * 86400;
        int64_t era, doe, yoe, doy, mp;
        civil t;

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

/* The contract's normalised form: YYYY-MM-DDTHH:MM:SS.sssZ. */
static void utc_text(char out[48], int64_t secs, int ms)
{
        civil t = to_civil(secs);

        snprintf(out, 48, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 t.y, t.mo, t.d, t.h, t.mi, t.s, ms);
}

/* ---- the events of a case ------------------------------------------ */

enum { T_PLACED, T_PAID, T_OTHER };

/* Ways to break a message; each maps to the reason(s) it must get. */
enum defect {
        D_NONE, D_NULL, D_CUT, D_TRAIL, D_NOT_OBJECT, D_NEG, D_FRACTION,
        D_2P53, D_STRING, D_NO_ID, D_EMPTY_ID, D_LONG_ID, D_NUL_ID,
        D_BAD_UTF8, D_BAD_DATE, D_NO_OFFSET, D_SPACE_T, D_SEC60, D_BAD_YEAR,
        D_NO_TYPE, D_NUM_TYPE, D_MISMATCH, D_NO_PAYLOAD, D_COUNT
};

typedef struct body {
        int type;              /* T_PLACED, T_PAID or T_OTHER */
        const char *type_name; /* the type string sent */
        int idn;               /* identity: equal idn <=> equal id */
        char id[ID_CAP];       /* the id, decoded UTF-8 */
        int order;             /* index into the case's orders, -1 none */
        int has_at;            /* occurredAt sent (always for known types) */
        int64_t at_s;          /* occurredAt: UTC seconds since 1970 */
        int at_ms;             /* and the milliseconds kept of it */
        int64_t amount;        /* total or amount; -1 for T_OTHER */
        int has_payload;       /* a payload object is sent */
} body;

typedef struct msg {
        int32_t partition;
        int64_t offset;
        unsigned char *key;   /* exactly key_len bytes; NULL: no key */
        size_t key_len;
        unsigned char *value; /* exactly value_len bytes, no NUL; or NULL */
        size_t value_len;
        int body;             /* the body it carries */
        const char *reason;   /* malformed: the reason phrase(s), '|' */
} msg;

typedef struct pcase {
        uint64_t seed;
        rng r;
        int64_t t0;             /* the case's time window: first second */
        int64_t span;           /* and its length in seconds */
        char (*orders)[ID_CAP]; /* order ids */
        int norders;
        body *bodies;
        size_t nbodies, cbodies;
        int nidn;               /* identities handed out */
        msg *log;               /* the delivery log, in log order */
        size_t nlog, clog;
        size_t maxb;            /* largest batch; 0: chosen at random */
        size_t (*sched)[2];     /* the slices applied, in order */
        size_t nsched, csched;
} pcase;

static const struct window {
        int y, mo, d; /* the first UTC day */
        int days;     /* its length */
        int weight;   /* how often a case picks it */
} windows[] = {
        {2026, 11, 26, 4, 70}, {2024, 2, 27, 4, 12}, {2026, 12, 30, 4, 12},
        {1, 1, 1, 2, 3},       {9999, 12, 30, 2, 3},
};

static void case_init(pcase *c, uint64_t seed)
{
        unsigned w = (unsigned)below(&(rng){seed}, 100), i = 0;

        memset(c, 0, sizeof(*c));
        c->seed = seed;
        c->r.s = seed;
        while (w >= (unsigned)windows[i].weight)
                w -= (unsigned)windows[i++].weight;
        c->t0 = days_from_civil(windows[i].y, windows[i].mo, windows[i].d) *
                86400;
        c->span = (int64_t)windows[i].days * 86400;
}

static void case_free(pcase *c)
{
        size_t i;

        for (i = 0; i < c->nlog; i++) {
                free(c->log[i].key);
                free(c->log[i].value);
        }
        free(c->log);
        free(c->bodies);
        free(c->orders);
        free(c->sched);
}

static void make_order(char *out, rng *r, int i)
{
        int n;

        switch (below(r, 10)) {
        case 6:
                snprintf(out, ID_CAP, "o-" NIHON "-%d", i);
                break;
        case 7:
                snprintf(out, ID_CAP, "ORD %d/" E_ACUTE, i);
                break;
        case 8:
                snprintf(out, ID_CAP, "o-%d-" SMILE, i);
                break;
        case 9: /* exactly the 128 bytes allowed */
                n = snprintf(out, ID_CAP, "o%d-", i);
                memset(out + n, 'z', (size_t)(128 - n));
                out[128] = '\0';
                break;
        default:
                snprintf(out, ID_CAP, "o-%d", i);
        }
}

static void make_id(char *out, rng *r, int idn)
{
        int n;

        switch (below(r, 10)) {
        case 6:
                snprintf(out, ID_CAP, "evt \"%d\" \\ " E_ACUTE, idn);
                break;
        case 7:
                snprintf(out, ID_CAP, E_ACUTE "v" E_ACUTE "nement/%d", idn);
                break;
        case 8:
                snprintf(out, ID_CAP, GCLEF "-%d-" NIHON, idn);
                break;
        case 9:
                n = snprintf(out, ID_CAP, "e%d-", idn);
                memset(out + n, 'y', (size_t)(128 - n));
                out[128] = '\0';
                break;
        default:
                snprintf(out, ID_CAP, "%08" PRIx32 "-%04x-4%03x-a%03x-%012x",
                         (uint32_t)rnd(r), (unsigned)below(r, 0x10000),
                         (unsigned)below(r, 0x1000),
                         (unsigned)below(r, 0x1000), (unsigned)idn);
        }
}

static int64_t rand_amount(rng *r)
{
        switch (below(r, 20)) {
        case 0:
                return 0;
        case 1:
        case 2:
                return AMOUNT_MAX;
        case 3:
        case 4:
                return (int64_t)below(r, AMOUNT_MAX + 1ULL);
        case 5:
        case 6:
                return (int64_t)below(r, 1000000000);
        default:
                return (int64_t)below(r, 100000);
        }
}

static void rand_instant(pcase *c, int64_t *s, int *ms)
{
        *s = c->t0 + (int64_t)below(&c->r, (uint64_t)c->span);
        switch (below(&c->r, 4)) {
        case 0:
                *ms = 0;
                break;
        case 1:
                *ms = 100 * (int)below(&c->r, 10);
                break;
        case 2:
                *ms = 10 * (int)below(&c->r, 100);
                break;
        default:
                *ms = (int)below(&c->r, 1000);
        }
}

static const char *const other_types[] = {
        "OrderShipped", "OrderCancelled", "orderplaced", "ORDERPAID",
        "OrderPlacedV2", "Order Paid",
};

/* A new body with a new identity; returns its index. */
static int new_body(pcase *c, int type, int order)
{
        body *b;

        c->bodies = grow(c->bodies, c->nbodies, &c->cbodies, sizeof(*b));
        b = &c->bodies[c->nbodies];
        memset(b, 0, sizeof(*b));
        b->type = type;
        b->type_name = type == T_PLACED ? "OrderPlaced"
                       : type == T_PAID ? "OrderPaid"
                                        : PICK(&c->r, other_types);
        b->idn = c->nidn++;
        make_id(b->id, &c->r, b->idn);
        b->order = order;
        b->has_at = type != T_OTHER || chance(&c->r, 50);
        rand_instant(c, &b->at_s, &b->at_ms);
        b->amount = type == T_OTHER ? -1 : rand_amount(&c->r);
        b->has_payload = type != T_OTHER || chance(&c->r, 50);
        return (int)c->nbodies++;
}

/* 1..max_orders orders, each placed (~85%) and paid (~70%), plus a few
 * events of other types: a valid set, every id with one body. */
static void gen_valid_set(pcase *c, int max_orders)
{
        int o, k;

        c->norders = 1 + (int)below(&c->r, (uint64_t)max_orders);
        c->orders = xrealloc(NULL, (size_t)c->norders * ID_CAP);
        for (o = 0; o < c->norders; o++) {
                make_order(c->orders[o], &c->r, o);
                if (chance(&c->r, 85))
                        new_body(c, T_PLACED, o);
                if (chance(&c->r, 70))
                        new_body(c, T_PAID, o);
        }
        for (k = (int)below(&c->r, 4); k > 0; k--)
                new_body(c, T_OTHER,
                         chance(&c->r, 50)
                                 ? (int)below(&c->r, (uint64_t)c->norders)
                                 : -1);
}

/* ---- rendering JSON ------------------------------------------------- */

static const char *ws(rng *r)
{
        static const char *const w[] = {"", "", "", "", " ", "  ", "\n",
                                        "\t", "\r\n", " \n\t "};

        return PICK(r, w);
}

static void put_u16(sbuf *o, uint32_t u, int upper)
{
        if (upper)
                sb_printf(o, "\\u%04X", (unsigned)u);
        else
                sb_printf(o, "\\u%04x", (unsigned)u);
}

/* A JSON string for the UTF-8 s, escaping at random where JSON allows. */
static void put_jstr(sbuf *o, rng *r, const char *s)
{
        const unsigned char *p = (const unsigned char *)s;
        int esc = chance(r, 15);
        int upper = chance(r, 50);
        uint32_t cp, lo;
        int n;

        sb_putc(o, '"');
        while (*p) {
                if (*p == '"' || *p == '\\' || *p < 0x20 ||
                    (*p < 0x80 && esc && chance(r, 30))) {
                        if (*p == '"' || *p == '\\') {
                                if (!esc || chance(r, 50)) {
                                        sb_putc(o, '\\');
                                        sb_putc(o, (char)*p++);
                                        continue;
                                }
                        } else if (*p == '\n' && chance(r, 50)) {
                                sb_puts(o, "\\n");
                                p++;
                                continue;
                        } else if (*p == '/' && chance(r, 50)) {
                                sb_puts(o, "\\/");
                                p++;
                                continue;
                        }
                        put_u16(o, *p++, upper);
                        continue;
                }
                if (*p < 0x80 || !esc || chance(r, 50)) {
                        n = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
                        sb_add(o, p, (size_t)n);
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
        sb_putc(o, '"');
}

/* The members of one object under construction, shuffled on close. */
typedef struct members {
        sbuf m[16];
        int n;
} members;

/* Start a member "key": and return the buffer its value goes into. */
static sbuf *member(members *ms, rng *r, const char *key)
{
        sbuf *b = &ms->m[ms->n++];

        if (ms->n > 16)
                abort();
        memset(b, 0, sizeof(*b));
        put_jstr(b, r, key);
        sb_puts(b, ws(r));
        sb_putc(b, ':');
        sb_puts(b, ws(r));
        return b;
}

static void close_object(sbuf *o, rng *r, members *ms)
{
        sbuf tmp;
        int i, j;

        for (i = ms->n - 1; i > 0; i--) {
                j = (int)below(r, (uint64_t)i + 1);
                tmp = ms->m[i];
                ms->m[i] = ms->m[j];
                ms->m[j] = tmp;
        }
        sb_putc(o, '{');
        sb_puts(o, ws(r));
        for (i = 0; i < ms->n; i++) {
                if (i) {
                        sb_puts(o, ws(r));
                        sb_putc(o, ',');
                        sb_puts(o, ws(r));
                }
                sb_add(o, ms->m[i].p, ms->m[i].len);
                sb_free(&ms->m[i]);
        }
        sb_puts(o, ws(r));
        sb_putc(o, '}');
        ms->n = 0;
}

/* An unknown value: scalars, strings, and below depth 2 arrays and
 * objects whose keys may repeat the envelope's (they are nested). */
static void rand_json(sbuf *o, rng *r, int depth)
{
        static const char *const scalars[] = {
                "null", "true", "false", "0", "-1", "42", "-0.5", "1e3",
                "2.5E-3", "123456789012345678901234567890",
                "-9007199254740993", "1.7976931348623157e308",
        };
        static const char *const strs[] = {
                "", "x", E_ACUTE, NIHON "!", "tab\tnl\n", "q\"b\\s/",
                SMILE, "\x7f", "OrderPlaced",
        };
        static const char *const keys[] = {
                "id", "type", "total", "amount", "occurredAt", "payload",
                "orderId", "x",
        };
        members ms = {.n = 0};
        size_t k, n, start;

        switch (below(r, depth < 2 ? 5 : 3)) {
        case 0:
                sb_puts(o, PICK(r, scalars));
                break;
        case 1:
        case 2:
                put_jstr(o, r, PICK(r, strs));
                break;
        case 3:
                sb_putc(o, '[');
                sb_puts(o, ws(r));
                for (k = 0, n = below(r, 4); k < n; k++) {
                        if (k) {
                                sb_putc(o, ',');
                                sb_puts(o, ws(r));
                        }
                        rand_json(o, r, depth + 1);
                        sb_puts(o, ws(r));
                }
                sb_putc(o, ']');
                break;
        default:
                start = below(r, sizeof(keys) / sizeof(*keys));
                for (k = 0, n = below(r, 4); k < n; k++)
                        rand_json(member(&ms, r,
                                         keys[(start + k) % (sizeof(keys) /
                                                             sizeof(*keys))]),
                                  r, depth + 1);
                close_object(o, r, &ms);
        }
}

/* 0..max distinct unknown members from pool. */
static void add_extras(members *ms, rng *r, const char *const *pool,
                       size_t n, unsigned max)
{
        size_t start = below(r, n), k, cnt = below(r, max + 1);

        for (k = 0; k < cnt; k++)
                rand_json(member(ms, r, pool[(start + k) % n]), r, 0);
}

/* occurredAt for the instant (s, ms), as some producer might write it:
 * any offset, T or t, Z or z, 0 to 9 fraction digits (truncation to ms
 * must give ms back). Time defects replace it with a broken form. */
static void put_time(sbuf *o, rng *r, int64_t s, int ms, int defect)
{
        static const int offs[] = {0,   0,    0,   540, -330, 345, 840,
                                   -720, 60, -480, 330, -600, 570, -150};
        static const char *const bad_dates[] = {
                "2026-02-30T10:00:00Z",      "2023-02-29T12:00:00+09:00",
                "2026-04-31T00:00:00Z",      "2026-13-01T00:00:00Z",
                "2026-11-00T08:00:00-05:30", "2024-02-30T23:59:59.999Z",
        };
        static const char *const bad_years[] = {
                "0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00",
                "0000-06-01T00:00:00Z",
        };
        int off = chance(r, 5) ? (int)below(r, 2879) - 1439 : PICK(r, offs);
        char frac[16], zone[16], digits[8];
        civil t;
        int k, i;

        if (defect == D_BAD_DATE || defect == D_BAD_YEAR) {
                sb_printf(o, "\"%s\"", defect == D_BAD_DATE
                                               ? PICK(r, bad_dates)
                                               : PICK(r, bad_years));
                return;
        }
        t = to_civil(s + off * 60);
        if (t.y < 1 || t.y > 9999) {
                off = 0;
                t = to_civil(s);
        }
        do
                k = (int)below(r, 10);
        while ((k == 0 && ms % 1000) || (k == 1 && ms % 100) ||
               (k == 2 && ms % 10));
        snprintf(digits, sizeof(digits), "%03d", ms);
        frac[0] = '\0';
        if (k > 0) {
                frac[0] = '.';
                for (i = 0; i < k; i++)
                        frac[i + 1] = i < 3 ? digits[i]
                                            : (char)('0' + below(r, 10));
                frac[k + 1] = '\0';
        }
        if (defect == D_NO_OFFSET)
                zone[0] = '\0';
        else if (off == 0)
                snprintf(zone, sizeof(zone), "%s",
                         chance(r, 20) ? "z" : chance(r, 20) ? "+00:00" : "Z");
        else
                snprintf(zone, sizeof(zone), "%c%02d:%02d",
                         off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
        sb_printf(o, "\"%04" PRId64 "-%02d-%02d%c%02d:%02d:%02d%s%s\"", t.y,
                  t.mo, t.d,
                  defect == D_SPACE_T ? ' '
                  : chance(r, 20)     ? 't'
                                      : 'T',
                  t.h, t.mi, defect == D_SEC60 ? 60 : t.s, frac, zone);
}

/* A whole number in one of the spellings JSON allows for it. */
static void put_amount(sbuf *o, rng *r, int64_t a, int defect)
{
        static const char *const too_big[] = {
                "9007199254740992", "9007199254740993", "1e16",
                "18446744073709551616", "1e300", "9.007199254740992e15",
        };
        static const char *const not_num[] = {
                "\"1250\"", "null", "true", "[1250]", "{\"v\":1}",
        };
        char d[32];
        int n, tz;

        switch (defect) {
        case D_NEG:
                sb_printf(o, "-%d", 1 + (int)below(r, 1000000));
                return;
        case D_FRACTION: /* small: a.5 must not round to a whole number */
                sb_printf(o, "%d.%s", (int)(a % 1000000),
                          chance(r, 50) ? "5" : "25");
                return;
        case D_2P53:
                sb_puts(o, PICK(r, too_big));
                return;
        case D_STRING:
                sb_puts(o, PICK(r, not_num));
                return;
        }
        n = snprintf(d, sizeof(d), "%" PRId64, a);
        for (tz = 0; a && d[n - 1 - tz] == '0'; tz++)
                ;
        switch (below(r, 16)) {
        case 0:
                sb_printf(o, "%s.0", d);
                break;
        case 1:
                sb_printf(o, "%s.000", d);
                break;
        case 2: /* d.ddd e(n-1): exact, as strtod rounds correctly */
                if (n > 1) {
                        sb_printf(o, "%c.%s%s%d", d[0], d + 1,
                                  chance(r, 50) ? "e" : "E+", n - 1);
                        break;
                }
                /* fall through */
        case 3:
                if (tz > 0) {
                        d[n - tz] = '\0';
                        sb_printf(o, "%se%d", d, tz);
                        break;
                }
                /* fall through */
        default:
                sb_puts(o, d);
        }
}

static void render_payload(sbuf *o, pcase *c, const body *b, int defect)
{
        static const char *const pool[] = {
                "currency", "items", "note", "Total", "AMOUNT", "orderID",
                "customer", "total ", "discount",
        };
        rng *r = &c->r;
        members ms = {.n = 0};

        if (b->order >= 0)
                put_jstr(member(&ms, r, "orderId"), r,
                         defect == D_MISMATCH ? "o-elsewhere"
                                              : c->orders[b->order]);
        if (b->type != T_OTHER) {
                put_amount(member(&ms, r,
                                  b->type == T_PLACED ? "total" : "amount"),
                           r, b->amount, defect);
                /* the other type's field is an unknown one here */
                if (chance(r, 10))
                        rand_json(member(&ms, r,
                                         b->type == T_PLACED ? "amount"
                                                             : "total"),
                                  r, 1);
        }
        add_extras(&ms, r, pool, sizeof(pool) / sizeof(*pool), 2);
        close_object(o, r, &ms);
}

static void render_obj(sbuf *o, pcase *c, const body *b, int defect)
{
        static const char *const pool[] = {
                "meta",    "traceId",    "version", "source", "ID",
                "Type",    "aggregateID", "OccurredAt", "Payload", "",
                "id ",     "headers",    "schema",
        };
        static const char *const bad_utf8[] = {"\xff", "\xc3\x28",
                                               "\xed\xa0\x80"};
        rng *r = &c->r;
        members ms = {.n = 0};
        sbuf *v;
        int n;

        if (defect != D_NO_ID) {
                v = member(&ms, r, "id");
                if (defect == D_EMPTY_ID) {
                        sb_puts(v, "\"\"");
                } else if (defect == D_LONG_ID) {
                        n = (int)v->len;
                        sb_printf(v, "\"L%d-", b->idn);
                        while (v->len - (size_t)n < 130)
                                sb_putc(v, 'a');
                        sb_putc(v, '"');
                } else {
                        put_jstr(v, r, b->id);
                        if (defect == D_NUL_ID || defect == D_BAD_UTF8) {
                                v->len--; /* reopen the string */
                                sb_puts(v, defect == D_NUL_ID
                                                   ? "\\u0000z"
                                                   : PICK(r, bad_utf8));
                                sb_putc(v, '"');
                        }
                }
        }
        if (defect != D_NO_TYPE) {
                v = member(&ms, r, "type");
                if (defect == D_NUM_TYPE)
                        sb_puts(v, "7");
                else
                        put_jstr(v, r, b->type_name);
        }
        if (b->order >= 0)
                put_jstr(member(&ms, r, "aggregateId"), r,
                         c->orders[b->order]);
        if (b->has_at)
                put_time(member(&ms, r, "occurredAt"), r, b->at_s, b->at_ms,
                         defect);
        if (b->has_payload && defect != D_NO_PAYLOAD)
                render_payload(member(&ms, r, "payload"), c, b, defect);
        add_extras(&ms, r, pool, sizeof(pool) / sizeof(*pool), 3);
        close_object(o, r, &ms);
}

static void render_value(sbuf *o, pcase *c, const body *b, int defect)
{
        static const char *const trail[] = {"}", "x", "{}", ",", "\"s\""};
        rng *r = &c->r;
        sbuf obj = {0};

        render_obj(&obj, c, b, defect);
        switch (defect) {
        case D_CUT: /* a strict prefix of an object is never JSON */
                sb_add(o, obj.p, 1 + below(r, obj.len - 1));
                break;
        case D_TRAIL:
                sb_add(o, obj.p, obj.len);
                sb_puts(o, ws(r));
                sb_puts(o, PICK(r, trail));
                break;
        case D_NOT_OBJECT:
                switch (below(r, 4)) {
                case 0:
                        sb_putc(o, '[');
                        sb_add(o, obj.p, obj.len);
                        sb_putc(o, ']');
                        break;
                case 1:
                        sb_puts(o, "null");
                        break;
                case 2:
                        sb_puts(o, " 42 ");
                        break;
                default:
                        sb_puts(o, "\"{}\"");
                }
                break;
        default:
                sb_puts(o, ws(r));
                sb_add(o, obj.p, obj.len);
                sb_puts(o, ws(r));
        }
        sb_free(&obj);
}

static const char *defect_reason(int defect, int type)
{
        switch (defect) {
        case D_NULL:
                return OF_REASON_NO_VALUE;
        case D_CUT: /* a cut may split a UTF-8 sequence */
                return OF_REASON_JSON "|" OF_REASON_UTF8;
        case D_TRAIL:
                return OF_REASON_JSON;
        case D_NOT_OBJECT:
                return OF_REASON_NOT_OBJECT;
        case D_NEG:
        case D_FRACTION:
        case D_2P53:
        case D_STRING:
                return type == T_PLACED ? OF_REASON_TOTAL : OF_REASON_AMOUNT;
        case D_NO_ID:
        case D_EMPTY_ID:
        case D_LONG_ID:
        case D_NUL_ID:
                return OF_REASON_ID;
        case D_BAD_UTF8:
                return OF_REASON_UTF8 "|" OF_REASON_ID;
        case D_BAD_DATE:
        case D_NO_OFFSET:
        case D_SPACE_T:
        case D_SEC60:
        case D_BAD_YEAR:
                return OF_REASON_OCCURRED;
        case D_NO_TYPE:
        case D_NUM_TYPE:
                return OF_REASON_TYPE;
        case D_MISMATCH:
                return OF_REASON_MISMATCH;
        default:
                return OF_REASON_PAYLOAD;
        }
}

/* ---- the delivery log ----------------------------------------------- */

static msg *new_msg(pcase *c)
{
        msg *g;

        c->log = grow(c->log, c->nlog, &c->clog, sizeof(*g));
        g = &c->log[c->nlog++];
        memset(g, 0, sizeof(*g));
        return g;
}

/* A delivery of body bi (rendered afresh, broken by defect) with a key
 * that is the order id, another string or absent: keys are not checked. */
static void add_msg(pcase *c, int bi, int defect)
{
        const body *b = &c->bodies[bi];
        sbuf v = {0};
        msg *g = new_msg(c);
        char key[ID_CAP];

        g->body = bi;
        if (defect != D_NONE)
                g->reason = defect_reason(defect, b->type);
        if (defect != D_NULL) {
                render_value(&v, c, b, defect);
                g->value = dupbytes(v.p, v.len);
                g->value_len = v.len;
        }
        switch (below(&c->r, 5)) {
        case 0:
                break;
        case 1:
                snprintf(key, sizeof(key), "k-%u",
                         (unsigned)below(&c->r, 1000));
                g->key_len = strlen(key);
                g->key = dupbytes(key, g->key_len);
                break;
        default:
                if (b->order < 0)
                        break;
                g->key_len = strlen(c->orders[b->order]);
                g->key = dupbytes(c->orders[b->order], g->key_len);
        }
        sb_free(&v);
}

/* Deliver log entry li again at a new offset: the same bytes, or (for a
 * well-formed one) a new rendering of the same body that agrees. */
static void add_repeat(pcase *c, size_t li)
{
        msg old = c->log[li], *g;

        if (!old.reason && chance(&c->r, 50)) {
                add_msg(c, old.body, D_NONE);
                return;
        }
        g = new_msg(c);
        *g = old;
        g->key = old.key ? dupbytes(old.key, old.key_len) : NULL;
        g->value = old.value ? dupbytes(old.value, old.value_len) : NULL;
}

/* One delivery of every body, then repeats of 10-30% of the log. */
static void add_deliveries(pcase *c)
{
        unsigned rate = 10 + (unsigned)below(&c->r, 21);
        size_t i, n;

        for (i = 0; i < c->nbodies; i++)
                add_msg(c, (int)i, D_NONE);
        for (i = 0, n = c->nlog; i < n; i++)
                if (chance(&c->r, rate))
                        add_repeat(c, below(&c->r, c->nlog));
}

/* Shuffle, then give each message a random partition and the next
 * offset of that partition (partitions start at random offsets). */
static void shuffle_and_place(pcase *c)
{
        int64_t next[NPART];
        size_t i, j;
        msg tmp;
        int p;

        for (i = c->nlog; i > 1; i--) {
                j = below(&c->r, i);
                tmp = c->log[i - 1];
                c->log[i - 1] = c->log[j];
                c->log[j] = tmp;
        }
        for (p = 0; p < NPART; p++)
                next[p] = chance(&c->r, 50)
                                  ? 0
                                  : (int64_t)below(&c->r, 1000000);
        for (i = 0; i < c->nlog; i++) {
                p = (int)below(&c->r, NPART);
                c->log[i].partition = p;
                c->log[i].offset = next[p]++;
        }
}

/* The log entry at (partition, offset), or -1. */
static long find_msg(const pcase *c, int64_t partition, int64_t offset)
{
        size_t i;

        for (i = 0; i < c->nlog; i++)
                if (c->log[i].partition == partition &&
                    c->log[i].offset == offset)
                        return (long)i;
        return -1;
}

/* ---- the model ------------------------------------------------------ */

typedef struct model {
        int *acc;            /* per identity: the body accepted, or -1 */
        int *placed;         /* per order: the OrderPlaced applied, or -1 */
        int *paid;           /* per order: the OrderPaid applied, or -1 */
        int64_t sum_placed;  /* placed_amount */
        int64_t sum_paid;    /* paid_amount */
        const char **dead;   /* per log entry: its reason(s), or NULL */
} model;

static void model_init(model *m, const pcase *c)
{
        int i;

        memset(m, 0, sizeof(*m));
        m->acc = xrealloc(NULL, (size_t)c->nidn * sizeof(int));
        m->placed = xrealloc(NULL, (size_t)c->norders * sizeof(int));
        m->paid = xrealloc(NULL, (size_t)c->norders * sizeof(int));
        m->dead = xrealloc(NULL, (c->nlog + 1) * sizeof(char *));
        for (i = 0; i < c->nidn; i++)
                m->acc[i] = -1;
        for (i = 0; i < c->norders; i++)
                m->placed[i] = m->paid[i] = -1;
        memset(m->dead, 0, (c->nlog + 1) * sizeof(char *));
}

static void model_free(model *m)
{
        free(m->acc);
        free(m->placed);
        free(m->paid);
        free(m->dead);
}

/* A valid set: every body applies, whatever the order. */
static void model_from_set(model *m, const pcase *c)
{
        size_t i;

        model_init(m, c);
        for (i = 0; i < c->nbodies; i++) {
                const body *b = &c->bodies[i];

                m->acc[b->idn] = (int)i;
                if (b->type == T_PLACED) {
                        m->placed[b->order] = (int)i;
                        m->sum_placed += b->amount;
                } else if (b->type == T_PAID) {
                        m->paid[b->order] = (int)i;
                        m->sum_paid += b->amount;
                }
        }
}

static int agree(const body *a, const body *b)
{
        return a->type == b->type && !strcmp(a->type_name, b->type_name) &&
               a->order == b->order && a->has_at == b->has_at &&
               a->at_s == b->at_s && a->at_ms == b->at_ms &&
               a->amount == b->amount;
}

/* The reference interpreter: the log in order, first one wins. */
static void model_from_log(model *m, const pcase *c)
{
        size_t li;

        model_init(m, c);
        for (li = 0; li < c->nlog; li++) {
                const msg *g = &c->log[li];
                const body *b = &c->bodies[g->body];
                int *slot;
                int64_t *sum;

                if (g->reason) {
                        m->dead[li] = g->reason;
                        continue;
                }
                if (m->acc[b->idn] >= 0) {
                        if (!agree(&c->bodies[m->acc[b->idn]], b))
                                m->dead[li] = OF_REASON_CONFLICT;
                        continue;
                }
                if (b->type == T_OTHER) {
                        m->acc[b->idn] = g->body;
                        continue;
                }
                slot = b->type == T_PLACED ? &m->placed[b->order]
                                           : &m->paid[b->order];
                sum = b->type == T_PLACED ? &m->sum_placed : &m->sum_paid;
                if (*slot >= 0)
                        m->dead[li] = b->type == T_PLACED
                                              ? OF_REASON_DUP_PLACED
                                              : OF_REASON_DUP_PAID;
                else if (b->amount > INT64_MAX - *sum)
                        m->dead[li] = OF_REASON_OVERFLOW;
                else {
                        *slot = g->body;
                        *sum += b->amount;
                        m->acc[b->idn] = g->body;
                }
        }
}

/* ---- canonical dumps ------------------------------------------------ */

/* Text quoted, with control bytes, quotes and backslashes as \xNN. */
static void put_text(sbuf *o, const void *p, size_t n)
{
        const unsigned char *s = p;
        size_t i;

        sb_putc(o, '"');
        for (i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' ||
                    s[i] == '\\')
                        sb_printf(o, "\\x%02x", s[i]);
                else
                        sb_putc(o, (char)s[i]);
        sb_putc(o, '"');
}

static void put_bytes(sbuf *o, const void *p, size_t n, int null)
{
        if (null)
                sb_puts(o, "NULL");
        else
                sb_printf(o, "bytes(%zu,%016" PRIx64 ")", n, fnv1a(p, n));
}

static void put_int_or_null(sbuf *o, int present, int64_t v)
{
        if (present)
                sb_printf(o, "%" PRId64, v);
        else
                sb_puts(o, "NULL");
}

typedef struct sortkey {
        const char *s;
        long i;
} sortkey;

static int cmp_key(const void *a, const void *b)
{
        const sortkey *x = a, *y = b;
        int d = strcmp(x->s, y->s);

        return d ? d : (x->i > y->i) - (x->i < y->i);
}

/* qsort has no context argument; the log being sorted is here. */
static const pcase *qsort_log;

/* Log entries by (partition, offset), as ORDER BY sorts dead letters. */
static int cmp_log_pos(const void *a, const void *b)
{
        const msg *x = &qsort_log->log[*(const size_t *)a];
        const msg *y = &qsort_log->log[*(const size_t *)b];

        if (x->partition != y->partition)
                return x->partition < y->partition ? -1 : 1;
        return (x->offset > y->offset) - (x->offset < y->offset);
}

typedef struct day {
        char d[16]; /* YYYY-MM-DD */
        int64_t np, nq, ap, aq;
} day;

static int cmp_day(const void *a, const void *b)
{
        return strcmp(((const day *)a)->d, ((const day *)b)->d);
}

static day *day_of(day *days, size_t *n, const body *b)
{
        char ts[48];
        size_t i;

        utc_text(ts, b->at_s, b->at_ms);
        ts[10] = '\0';
        for (i = 0; i < *n; i++)
                if (!strcmp(days[i].d, ts))
                        return &days[i];
        memset(&days[*n], 0, sizeof(day));
        memcpy(days[*n].d, ts, 11);
        return &days[(*n)++];
}

static void put_offsets(sbuf *o, const int64_t next[NPART])
{
        int p;

        sb_puts(o, "== next_offsets\n");
        for (p = 0; p < NPART; p++)
                if (next[p] < 0)
                        sb_printf(o, "%d|none\n", p);
                else
                        sb_printf(o, "%d|%" PRId64 "\n", p, next[p]);
}

static void dump_model(sbuf *o, const pcase *c, const model *m)
{
        size_t n = (size_t)c->norders + (size_t)c->nidn + c->nlog + 1;
        sortkey *keys = xrealloc(NULL, n * sizeof(*keys));
        day *days = xrealloc(NULL, 2 * ((size_t)c->norders + 1) *
                                           sizeof(*days));
        size_t *dl = xrealloc(NULL, (c->nlog + 1) * sizeof(*dl));
        int64_t next[NPART] = {-1, -1, -1, -1};
        size_t nk = 0, nd = 0, i;
        int64_t np = 0, nq = 0;
        char ts[48];
        day *d;

        sb_puts(o, "== order_list\n");
        for (i = 0; i < (size_t)c->norders; i++)
                if (m->placed[i] >= 0 || m->paid[i] >= 0)
                        keys[nk++] = (sortkey){c->orders[i], (long)i};
        qsort(keys, nk, sizeof(*keys), cmp_key);
        for (i = 0; i < nk; i++) {
                const body *pl = m->placed[keys[i].i] >= 0
                                         ? &c->bodies[m->placed[keys[i].i]]
                                         : NULL;
                const body *pa = m->paid[keys[i].i] >= 0
                                         ? &c->bodies[m->paid[keys[i].i]]
                                         : NULL;

                put_text(o, keys[i].s, strlen(keys[i].s));
                sb_puts(o, pa ? "|\"PAID\"|" : "|\"ORDERED\"|");
                put_int_or_null(o, !!pl, pl ? pl->amount : 0);
                sb_putc(o, '|');
                put_int_or_null(o, !!pa, pa ? pa->amount : 0);
                sb_putc(o, '|');
                if (pl) {
                        utc_text(ts, pl->at_s, pl->at_ms);
                        put_text(o, ts, strlen(ts));
                        d = day_of(days, &nd, pl);
                        d->np++;
                        d->ap += pl->amount;
                        np++;
                } else {
                        sb_puts(o, "NULL");
                }
                sb_putc(o, '|');
                if (pa) {
                        utc_text(ts, pa->at_s, pa->at_ms);
                        put_text(o, ts, strlen(ts));
                        d = day_of(days, &nd, pa);
                        d->nq++;
                        d->aq += pa->amount;
                        nq++;
                } else {
                        sb_puts(o, "NULL");
                }
                sb_putc(o, '\n');
        }
        sb_printf(o, "== order_totals\n%" PRId64 "|%" PRId64 "|%" PRId64
                     "|%" PRId64 "\n",
                  np, nq, m->sum_placed, m->sum_paid);
        sb_puts(o, "== daily_totals\n");
        qsort(days, nd, sizeof(*days), cmp_day);
        for (i = 0; i < nd; i++) {
                put_text(o, days[i].d, strlen(days[i].d));
                sb_printf(o, "|%" PRId64 "|%" PRId64 "|%" PRId64 "|%" PRId64
                             "\n",
                          days[i].np, days[i].nq, days[i].ap, days[i].aq);
        }
        sb_puts(o, "== processed_events\n");
        for (nk = 0, i = 0; i < (size_t)c->nidn; i++)
                if (m->acc[i] >= 0)
                        keys[nk++] =
                                (sortkey){c->bodies[m->acc[i]].id, (long)i};
        qsort(keys, nk, sizeof(*keys), cmp_key);
        for (i = 0; i < nk; i++) {
                put_text(o, keys[i].s, strlen(keys[i].s));
                sb_putc(o, '\n');
        }
        sb_puts(o, "== dead_letters\n");
        for (nk = 0, i = 0; i < c->nlog; i++) {
                const msg *g = &c->log[i];

                if (next[g->partition] < g->offset + 1)
                        next[g->partition] = g->offset + 1;
                if (m->dead[i])
                        dl[nk++] = i;
        }
        qsort_log = c;
        qsort(dl, nk, sizeof(*dl), cmp_log_pos);
        for (i = 0; i < nk; i++) {
                const msg *g = &c->log[dl[i]];

                sb_printf(o, "\"" TOPIC "\"|%d|%" PRId64 "|", g->partition,
                          g->offset);
                put_text(o, m->dead[dl[i]], strlen(m->dead[dl[i]]));
                sb_putc(o, '|');
                put_bytes(o, g->key, g->key_len, !g->key);
                sb_putc(o, '|');
                put_bytes(o, g->value, g->value_len, !g->value);
                sb_puts(o, "|ok\n");
        }
        sb_puts(o, "== schema_info\n1\n");
        put_offsets(o, next);
        free(keys);
        free(days);
        free(dl);
}

/* ---- the database side ---------------------------------------------- */

static const char *const dump_name[] = {
        "order_list", "order_totals", "daily_totals", "processed_events",
        "dead_letters", "schema_info",
};

/* The contract's columns only, in the contract's keys' order. */
static const char *const dump_sql[] = {
        "SELECT order_id, status, total, paid_amount, placed_at, paid_at"
        " FROM order_list ORDER BY order_id",
        "SELECT orders_placed, orders_paid, placed_amount, paid_amount"
        " FROM order_totals",
        "SELECT day, orders_placed, orders_paid, placed_amount, paid_amount"
        " FROM daily_totals ORDER BY day",
        "SELECT event_id FROM processed_events ORDER BY event_id",
        "SELECT topic, \"partition\", \"offset\", reason, key, value,"
        " received_at FROM dead_letters"
        " ORDER BY topic, \"partition\", \"offset\"",
        "SELECT schema_version FROM schema_info",
};

/* Zero when order_totals and daily_totals are the sums over order_list
 * and every order_list row is consistent in itself. */
static const char invariant_sql[] =
        "WITH ev(day, np, nq, ap, aq) AS ("
        "  SELECT substr(placed_at, 1, 10), 1, 0, total, 0 FROM order_list"
        "   WHERE placed_at IS NOT NULL"
        "  UNION ALL"
        "  SELECT substr(paid_at, 1, 10), 0, 1, 0, paid_amount"
        "   FROM order_list WHERE paid_at IS NOT NULL),"
        " agg AS (SELECT day, sum(np), sum(nq), sum(ap), sum(aq)"
        "   FROM ev GROUP BY day),"
        " dt AS (SELECT day, orders_placed, orders_paid, placed_amount,"
        "   paid_amount FROM daily_totals)"
        " SELECT (SELECT count(*) FROM (SELECT * FROM agg"
        "          EXCEPT SELECT * FROM dt))"
        "  + (SELECT count(*) FROM (SELECT * FROM dt"
        "          EXCEPT SELECT * FROM agg))"
        "  + abs((SELECT count(*) FROM order_totals) - 1)"
        "  + (SELECT count(*) FROM order_totals t WHERE"
        "     t.orders_placed IS NOT (SELECT count(placed_at) FROM order_list)"
        "     OR t.orders_paid IS NOT (SELECT count(paid_at) FROM order_list)"
        "     OR t.placed_amount IS NOT"
        "        (SELECT coalesce(sum(total), 0) FROM order_list)"
        "     OR t.paid_amount IS NOT"
        "        (SELECT coalesce(sum(paid_amount), 0) FROM order_list))"
        "  + (SELECT count(*) FROM order_list WHERE"
        "     (status = 'PAID') IS NOT (paid_at IS NOT NULL)"
        "     OR status NOT IN ('PAID', 'ORDERED')"
        "     OR (total IS NULL) IS NOT (placed_at IS NULL)"
        "     OR (paid_amount IS NULL) IS NOT (paid_at IS NULL)"
        "     OR (placed_at IS NULL AND paid_at IS NULL))";

/* Nothing seen after an earlier batch is undone by a later one: a PAID
 * order stays PAID, a recorded id stays recorded (temp tables of the
 * reader remember them). */
static const char seen_create_sql[] =
        "CREATE TEMP TABLE seen_paid (order_id TEXT PRIMARY KEY);"
        "CREATE TEMP TABLE seen_events (event_id TEXT PRIMARY KEY);";
static const char seen_check_sql[] =
        "SELECT (SELECT count(*) FROM temp.seen_paid s WHERE NOT EXISTS"
        "   (SELECT 1 FROM main.order_list o"
        "     WHERE o.order_id = s.order_id AND o.status = 'PAID'))"
        " + (SELECT count(*) FROM temp.seen_events s WHERE NOT EXISTS"
        "   (SELECT 1 FROM main.processed_events e"
        "     WHERE e.event_id = s.event_id))";
static const char seen_add_sql[] =
        "INSERT OR IGNORE INTO temp.seen_paid"
        " SELECT order_id FROM main.order_list WHERE status = 'PAID';"
        "INSERT OR IGNORE INTO temp.seen_events"
        " SELECT event_id FROM main.processed_events;";

static void put_cell(sbuf *o, sqlite3_stmt *stmt, int col)
{
        const unsigned char *p;
        int i, n;

        switch (sqlite3_column_type(stmt, col)) {
        case SQLITE_NULL:
                sb_puts(o, "NULL");
                break;
        case SQLITE_INTEGER:
                sb_printf(o, "%lld",
                          (long long)sqlite3_column_int64(stmt, col));
                break;
        case SQLITE_FLOAT:
                sb_printf(o, "%.17gR", sqlite3_column_double(stmt, col));
                break;
        case SQLITE_TEXT:
                p = sqlite3_column_text(stmt, col);
                put_text(o, p, (size_t)sqlite3_column_bytes(stmt, col));
                break;
        default:
                p = sqlite3_column_blob(stmt, col);
                n = sqlite3_column_bytes(stmt, col);
                sb_puts(o, "x'");
                for (i = 0; i < n; i++)
                        sb_printf(o, "%02x", p[i]);
                sb_putc(o, '\'');
        }
}

/* Whether reason starts with one of the '|'-separated phrases. */
static int reason_matches(const char *reason, const char *phrases)
{
        const char *p = phrases, *bar;
        size_t n;

        for (;;) {
                bar = strchr(p, '|');
                n = bar ? (size_t)(bar - p) : strlen(p);
                if (!strncmp(reason, p, n))
                        return 1;
                if (!bar)
                        return 0;
                p = bar + 1;
        }
}

static int is_utc_ts(const unsigned char *s, int n)
{
        static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
        int i;

        if (!s || n != (int)sizeof(pat) - 1)
                return 0;
        for (i = 0; i < n; i++)
                if (pat[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != pat[i])
                        return 0;
        return 1;
}

/* A dead-letter row, with the reason shown as the model's phrase when it
 * starts with it, key and value as length and hash, received_at "ok" when
 * well-formed. */
static void put_dead_row(sbuf *o, sqlite3_stmt *stmt, const pcase *c,
                         const model *m)
{
        const char *reason = (const char *)sqlite3_column_text(stmt, 3);
        long li = find_msg(c, sqlite3_column_int64(stmt, 1),
                           sqlite3_column_int64(stmt, 2));
        const char *want = li >= 0 ? m->dead[li] : NULL;
        int col;

        for (col = 0; col < 3; col++) {
                put_cell(o, stmt, col);
                sb_putc(o, '|');
        }
        if (reason && want && reason_matches(reason, want))
                put_text(o, want, strlen(want));
        else
                put_cell(o, stmt, 3);
        for (col = 4; col < 6; col++) {
                sb_putc(o, '|');
                put_bytes(o, sqlite3_column_blob(stmt, col),
                          (size_t)sqlite3_column_bytes(stmt, col),
                          sqlite3_column_type(stmt, col) == SQLITE_NULL);
        }
        sb_putc(o, '|');
        if (is_utc_ts(sqlite3_column_text(stmt, 6),
                      sqlite3_column_bytes(stmt, 6)))
                sb_puts(o, "ok");
        else
                put_cell(o, stmt, 6);
        sb_putc(o, '\n');
}

static int dump_db(sbuf *o, sqlite3 *db, const pcase *c, const model *m,
                   const int64_t next[NPART])
{
        sqlite3_stmt *stmt = NULL;
        size_t t;
        int col, rc;

        for (t = 0; t < sizeof(dump_sql) / sizeof(*dump_sql); t++) {
                if (sqlite3_prepare_v2(db, dump_sql[t], -1, &stmt, NULL)) {
                        print_error("dump %s: %s\n", dump_name[t],
                                    sqlite3_errmsg(db));
                        return -1;
                }
                sb_printf(o, "== %s\n", dump_name[t]);
                while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                        if (!strcmp(dump_name[t], "dead_letters")) {
                                put_dead_row(o, stmt, c, m);
                                continue;
                        }
                        for (col = 0; col < sqlite3_column_count(stmt);
                             col++) {
                                if (col)
                                        sb_putc(o, '|');
                                put_cell(o, stmt, col);
                        }
                        sb_putc(o, '\n');
                }
                sqlite3_finalize(stmt);
                if (rc != SQLITE_DONE) {
                        print_error("dump %s: %s\n", dump_name[t],
                                    sqlite3_errmsg(db));
                        return -1;
                }
        }
        put_offsets(o, next);
        return 0;
}

/* ---- driving the store ---------------------------------------------- */

static const int64_t seals[] = {1, 2, 3, 7, 20, INT64_MAX};

typedef struct run {
        pcase *c;
        char path[256];    /* the case's database file */
        of_store *st;
        sqlite3 *db;       /* a reader: the invariant and the dump */
        sqlite3_stmt *inv; /* invariant_sql */
        sqlite3_stmt *mono; /* seen_check_sql */
        int64_t seal;       /* of_store_set_seal_events() for this case */
        char err[512];
} run;

/* The count stmt returns, or -1 when it fails. */
static long long step_count(sqlite3 *db, sqlite3_stmt *stmt)
{
        long long n = -1;

        if (sqlite3_step(stmt) == SQLITE_ROW)
                n = sqlite3_column_int64(stmt, 0);
        else
                print_error("%s: %s\n", sqlite3_sql(stmt), sqlite3_errmsg(db));
        sqlite3_reset(stmt);
        return n;
}

static int check_invariant(run *u, size_t from, size_t to)
{
        long long bad = step_count(u->db, u->inv);
        long long undone = step_count(u->db, u->mono);

        if (bad)
                print_error("totals are not the sums over order_list (%lld)"
                            " after slice [%zu,%zu)\n",
                            bad, from, to);
        if (undone)
                print_error("a PAID status or a processed id was undone"
                            " (%lld) after slice [%zu,%zu)\n",
                            undone, from, to);
        if (bad || undone)
                return -1;
        if (sqlite3_exec(u->db, seen_add_sql, NULL, NULL, NULL)) {
                print_error("remembering: %s\n", sqlite3_errmsg(u->db));
                return -1;
        }
        return 0;
}

/* Apply log[from, to) as one batch, with each partition's next offset,
 * then check the invariant. */
static int apply_slice(run *u, size_t from, size_t to)
{
        pcase *c = u->c;
        of_msg *msgs = xrealloc(NULL, (to - from) * sizeof(*msgs));
        of_store_pos pos[NPART];
        int64_t next[NPART] = {-1, -1, -1, -1};
        of_store_stats stats = {0};
        size_t i, npos = 0, j;
        of_store_pos tmp;
        int p, rc;

        for (i = from; i < to; i++) {
                const msg *g = &c->log[i];

                msgs[i - from] = (of_msg){
                        .topic = TOPIC,
                        .partition = g->partition,
                        .offset = g->offset,
                        .key = g->key,
                        .key_len = g->key_len,
                        .value = g->value,
                        .value_len = g->value_len,
                };
                next[g->partition] = g->offset + 1;
        }
        for (p = 0; p < NPART; p++)
                if (next[p] >= 0)
                        pos[npos++] = (of_store_pos){TOPIC, p, next[p]};
        for (i = npos; i > 1; i--) { /* any order of partitions */
                j = below(&c->r, i);
                tmp = pos[i - 1];
                pos[i - 1] = pos[j];
                pos[j] = tmp;
        }
        c->sched = grow(c->sched, c->nsched, &c->csched, sizeof(*c->sched));
        c->sched[c->nsched][0] = from;
        c->sched[c->nsched++][1] = to;
        rc = of_store_apply_batch(u->st, msgs, to - from, pos, npos, &stats,
                                  u->err, sizeof(u->err));
        free(msgs);
        if (rc != 0) {
                print_error("of_store_apply_batch [%zu,%zu): %d %s\n", from,
                            to, rc, u->err);
                return -1;
        }
        return check_invariant(u, from, to);
}

/* Random batches in log order; now and then the batch just committed is
 * delivered again, an earlier slice is replayed (a consumer that
 * restarted from an older offset), or the store is closed and reopened. */
static int drive(run *u)
{
        static const size_t maxb[] = {1, 2, 4, 8, 16, 64};
        pcase *c = u->c;
        size_t i = 0, n, max = c->maxb ? c->maxb : PICK(&c->r, maxb);
        size_t from, to;

        while (i < c->nlog) {
                n = 1 + below(&c->r, max);
                if (n > c->nlog - i)
                        n = c->nlog - i;
                if (apply_slice(u, i, i + n))
                        return -1;
                if (chance(&c->r, 10) && apply_slice(u, i, i + n))
                        return -1;
                if (chance(&c->r, 8)) {
                        from = below(&c->r, i + n);
                        to = from + 1 + below(&c->r, i + n - from);
                        if (apply_slice(u, from, to))
                                return -1;
                }
                if (chance(&c->r, 3)) {
                        of_store_close(u->st);
                        u->st = NULL;
                        if (of_store_open(&u->st, u->path, u->err,
                                          sizeof(u->err))) {
                                print_error("reopen: %s\n", u->err);
                                return -1;
                        }
                        of_store_set_seal_events(u->st, u->seal);
                }
                i += n;
        }
        return 0;
}

static void write_file(const char *path, const char *text, size_t len)
{
        FILE *f = fopen(path, "w");

        if (!f || fwrite(text, 1, len, f) != len)
                print_error("cannot write %s\n", path);
        if (f)
                fclose(f);
}

/* Both dumps and the log (what was applied, in order) under /tmp. */
static void report(const pcase *c, const char *what, const sbuf *exp,
                   const sbuf *act)
{
        char pe[128], pa[128], pl[128];
        sbuf log = {0};
        size_t i, k;

        snprintf(pe, sizeof(pe), "/tmp/orderflow-prop-%" PRIu64
                                 "-expected.txt", c->seed);
        snprintf(pa, sizeof(pa), "/tmp/orderflow-prop-%" PRIu64
                                 "-actual.txt", c->seed);
        snprintf(pl, sizeof(pl), "/tmp/orderflow-prop-%" PRIu64 "-log.txt",
                 c->seed);
        write_file(pe, exp->p ? exp->p : "", exp->len);
        write_file(pa, act->p ? act->p : "", act->len);
        for (i = 0; i < c->nlog; i++) {
                const msg *g = &c->log[i];

                sb_printf(&log, "[%zu] p%d@%" PRId64 " body %d %s key=", i,
                          g->partition, g->offset, g->body,
                          g->reason ? g->reason : "valid");
                if (g->key)
                        put_text(&log, g->key, g->key_len);
                else
                        sb_puts(&log, "NULL");
                sb_puts(&log, " value=");
                if (g->value)
                        put_text(&log, g->value, g->value_len);
                else
                        sb_puts(&log, "NULL");
                sb_putc(&log, '\n');
        }
        sb_puts(&log, "applied slices:");
        for (k = 0; k < c->nsched; k++)
                sb_printf(&log, " [%zu,%zu)", c->sched[k][0], c->sched[k][1]);
        sb_putc(&log, '\n');
        write_file(pl, log.p, log.len);
        sb_free(&log);
        print_error("%s: seed %" PRIu64 " (OF_PROP_SEED=%" PRIu64
                    " OF_PROP_CASES=1 reproduces it)\n"
                    "  diff -u %s %s\n  log: %s\n",
                    what, c->seed, c->seed, pe, pa, pl);
}

static void remove_db(const char *path)
{
        static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
        char p[300];
        size_t i;

        for (i = 0; i < sizeof(sfx) / sizeof(*sfx); i++) {
                snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
                unlink(p);
        }
}

/* More checks on the final database; 0 when they pass. */
typedef int (*extra_check)(sqlite3 *db, const pcase *c);

/* Apply the case's log to a fresh store and compare its dump with the
 * model's, then run extra (may be NULL). 0 when all agree. */
static int check_case(pcase *c, const model *m, extra_check extra)
{
        run u = {.c = c};
        sbuf exp = {0}, act = {0};
        int64_t next[NPART];
        int p, rc = -1;

        snprintf(u.path, sizeof(u.path), "%s/case.db", g_dir);
        remove_db(u.path);
        if (of_store_open(&u.st, u.path, u.err, sizeof(u.err))) {
                print_error("of_store_open: %s\n", u.err);
                goto out;
        }
        /* Sealing processed_recent into runs after almost every batch, now
         * and then, or never: ids must be found wherever they live. */
        u.seal = PICK(&c->r, seals);
        of_store_set_seal_events(u.st, u.seal);
        if (sqlite3_open_v2(u.path, &u.db, SQLITE_OPEN_READWRITE, NULL) ||
            sqlite3_busy_timeout(u.db, 5000) ||
            sqlite3_prepare_v2(u.db, invariant_sql, -1, &u.inv, NULL) ||
            sqlite3_exec(u.db, seen_create_sql, NULL, NULL, NULL) ||
            sqlite3_prepare_v2(u.db, seen_check_sql, -1, &u.mono, NULL)) {
                print_error("reader: %s\n", sqlite3_errmsg(u.db));
                goto out;
        }
        if (drive(&u))
                goto out;
        for (p = 0; p < NPART; p++) {
                int r = of_store_offset(&next[p], u.st, TOPIC, p, u.err,
                                        sizeof(u.err));

                if (r == OF_ENOTFOUND) {
                        next[p] = -1;
                } else if (r) {
                        print_error("of_store_offset: %s\n", u.err);
                        goto out;
                }
        }
        of_store_close(u.st);
        u.st = NULL;
        dump_model(&exp, c, m);
        if (dump_db(&act, u.db, c, m, next))
                goto out;
        if (strcmp(exp.p, act.p)) {
                report(c, "read model differs from the model", &exp, &act);
                goto out;
        }
        if (extra && extra(u.db, c)) {
                report(c, "extra check failed", &exp, &act);
                goto out;
        }
        rc = 0;
out:
        if (rc && !exp.p) { /* stopped early: dump what the file holds */
                int64_t none[NPART] = {-1, -1, -1, -1};

                dump_model(&exp, c, m);
                if (u.inv)
                        dump_db(&act, u.db, c, m, none);
                report(c, "store failed (see above)", &exp, &act);
        }
        sqlite3_finalize(u.inv);
        sqlite3_finalize(u.mono);
        sqlite3_close(u.db);
        of_store_close(u.st);
        remove_db(u.path);
        sb_free(&exp);
        sb_free(&act);
        return rc;
}

/* ---- the properties ------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
        const char *s = getenv(name);

        return s && *s ? strtoull(s, NULL, 0) : dflt;
}

/* A valid set, delivered shuffled with repeats: the model from the set,
 * which the in-order interpreter must reproduce (a check of the model). */
static int valid_case(uint64_t seed)
{
        sbuf a = {0}, b = {0};
        model ms, mi;
        pcase c;
        int rc;

        case_init(&c, seed);
        gen_valid_set(&c, 40);
        add_deliveries(&c);
        shuffle_and_place(&c);
        model_from_set(&ms, &c);
        model_from_log(&mi, &c);
        dump_model(&a, &c, &ms);
        dump_model(&b, &c, &mi);
        if (strcmp(a.p, b.p)) {
                report(&c, "TEST BUG: set model != log model", &a, &b);
                rc = -1;
        } else {
                rc = check_case(&c, &ms, NULL);
        }
        sb_free(&a);
        sb_free(&b);
        model_free(&ms);
        model_free(&mi);
        case_free(&c);
        return rc;
}

/* A random existing OrderPlaced/OrderPaid body, or -1. */
static int pick_known(pcase *c)
{
        size_t i, start = below(&c->r, c->nbodies), k;

        for (k = 0; k < c->nbodies; k++) {
                i = (start + k) % c->nbodies;
                if (c->bodies[i].type != T_OTHER)
                        return (int)i;
        }
        return -1;
}

/* Another body with the identity of bi, to be made to disagree. */
static int clone_body(pcase *c, int bi)
{
        c->bodies = grow(c->bodies, c->nbodies, &c->cbodies,
                         sizeof(*c->bodies));
        c->bodies[c->nbodies] = c->bodies[bi];
        return (int)c->nbodies++;
}

/* A valid set plus second OrderPlaced/OrderPaid events under new ids,
 * deliveries of known ids with disagreeing bodies, and malformed
 * messages (of known or new ids); the interpreter gives the answer. */
static int invalid_case(uint64_t seed)
{
        model m;
        pcase c;
        int k, bi, nb, rc;
        body *b;

        case_init(&c, seed);
        gen_valid_set(&c, 25);
        for (k = (int)below(&c.r, 4); k > 0; k--)
                new_body(&c, chance(&c.r, 50) ? T_PLACED : T_PAID,
                         (int)below(&c.r, (uint64_t)c.norders));
        for (k = (int)below(&c.r, 4); k > 0; k--) {
                if ((bi = pick_known(&c)) < 0)
                        break;
                nb = clone_body(&c, bi);
                b = &c.bodies[nb]; /* the same id, a body that disagrees */
                if (b->type != T_OTHER && c.norders > 1 &&
                    chance(&c.r, 33)) {
                        /* another order: its key may sort before the
                         * first's, which must still win */
                        while (b->order == c.bodies[bi].order)
                                b->order = (int)below(&c.r,
                                                      (uint64_t)c.norders);
                } else if (chance(&c.r, 50)) {
                        while (b->amount == c.bodies[bi].amount)
                                b->amount = rand_amount(&c.r);
                } else {
                        while (b->at_s == c.bodies[bi].at_s &&
                               b->at_ms == c.bodies[bi].at_ms)
                                rand_instant(&c, &b->at_s, &b->at_ms);
                }
        }
        add_deliveries(&c);
        for (k = 1 + (int)below(&c.r, 5); k > 0; k--) {
                bi = chance(&c.r, 50) ? pick_known(&c) : -1;
                if (bi < 0)
                        bi = new_body(&c, chance(&c.r, 50) ? T_PLACED
                                                           : T_PAID,
                                      (int)below(&c.r,
                                                 (uint64_t)c.norders));
                add_msg(&c, bi, 1 + (int)below(&c.r, D_COUNT - 1));
                if (chance(&c.r, 20))
                        add_repeat(&c, c.nlog - 1);
        }
        shuffle_and_place(&c);
        model_from_log(&m, &c);
        rc = check_case(&c, &m, NULL);
        model_free(&m);
        case_free(&c);
        return rc;
}

static void run_property(const char *name, int (*one)(uint64_t),
                         uint64_t dflt_cases)
{
        uint64_t seed = env_u64("OF_PROP_SEED", SEED_DEFAULT);
        uint64_t cases = env_u64("OF_PROP_CASES", dflt_cases), i;

        for (i = 0; i < cases; i++)
                if (one(seed + i))
                        fail_msg("%s: case %" PRIu64 " failed, seed %" PRIu64,
                                 name, i, seed + i);
        print_message("%s: %" PRIu64 " cases from seed %" PRIu64 "\n", name,
                      cases, seed);
}

static void test_store_any_delivery_order_gives_the_model(void **state)
{
        (void)state;
        run_property("valid sets", valid_case, CASES_VALID);
}

static void test_store_invalid_log_first_in_log_order_wins(void **state)
{
        (void)state;
        run_property("invalid logs", invalid_case, CASES_INVALID);
}

/* ---- amount overflow ------------------------------------------------ */

/* 1024 * (2^53-1) = 2^63 - 1024, so 1024 events of 2^53-1 fit and 1023
 * more reach 2^63-1 exactly; from there any positive amount overflows,
 * 0 does not. Each event is for the order numbered below; ONE and BIG
 * must be rejected. */
#define OVF_FIT     1024 /* orders 0..1023: 2^53-1 each */
#define OVF_TOP     1024 /* order 1024: 1023, the sum is now 2^63-1 */
#define OVF_ONE     1025 /* order 1025: 1, overflows */
#define OVF_ZERO    1026 /* order 1026: 0, applies */
#define OVF_AGAIN   1025 /* order 1025 under a new id: 0, applies */
#define OVF_BIG     1027 /* order 1027: 2^53-1, overflows */
#define OVF_ORDERS  1028

static int ovf_bodies[2]; /* the bodies that overflow: ONE and BIG */

static int64_t query_int(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *stmt = NULL;
        int64_t v = -1;

        if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW)
                v = sqlite3_column_int64(stmt, 0);
        else
                print_error("%s: %s\n", sql, sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
        return v;
}

/* Said outright, beside the dump comparison: the sums stop at 2^63-1,
 * three dead letters say "amount overflow", and neither rejected id is
 * in processed_events nor its order in order_list. */
static int overflow_facts(sqlite3 *db, const pcase *c, int placed)
{
        char sql[512];
        int i, bad = 0;

        snprintf(sql, sizeof(sql), "SELECT %s FROM order_totals",
                 placed ? "placed_amount" : "paid_amount");
        bad |= query_int(db, sql) != INT64_MAX;
        snprintf(sql, sizeof(sql), "SELECT %s FROM order_totals",
                 placed ? "orders_placed" : "orders_paid");
        bad |= query_int(db, sql) != OVF_FIT + 3;
        bad |= query_int(db, "SELECT count(*) FROM dead_letters WHERE"
                             " reason LIKE 'amount overflow%'") != 3;
        bad |= query_int(db, "SELECT count(*) FROM dead_letters") != 3;
        for (i = 0; i < 2; i++) {
                const body *b = &c->bodies[ovf_bodies[i]];
                sqlite3_stmt *stmt = NULL;

                if (sqlite3_prepare_v2(db,
                                       "SELECT count(*) FROM processed_events"
                                       " WHERE event_id = ?",
                                       -1, &stmt, NULL) ||
                    sqlite3_bind_text(stmt, 1, b->id, -1, SQLITE_STATIC) ||
                    sqlite3_step(stmt) != SQLITE_ROW ||
                    sqlite3_column_int64(stmt, 0) != 0)
                        bad = 1;
                sqlite3_finalize(stmt);
        }
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM order_list WHERE order_id = '%s'",
                 c->orders[OVF_BIG]);
        bad |= query_int(db, sql) != 0;
        if (bad)
                print_error("overflow facts do not hold\n");
        return bad ? -1 : 0;
}

static int placed_facts(sqlite3 *db, const pcase *c)
{
        return overflow_facts(db, c, 1);
}

static int paid_facts(sqlite3 *db, const pcase *c)
{
        return overflow_facts(db, c, 0);
}

static int add_fixed(pcase *c, int type, int order, int64_t amount)
{
        int bi = new_body(c, type, order);

        c->bodies[bi].amount = amount;
        add_msg(c, bi, D_NONE);
        return bi;
}

static void overflow_case(int type)
{
        model m;
        pcase c;
        int i, rc;

        case_init(&c, SEED_DEFAULT + (uint64_t)type);
        c.maxb = 64;
        c.norders = OVF_ORDERS;
        c.orders = xrealloc(NULL, (size_t)c.norders * ID_CAP);
        for (i = 0; i < c.norders; i++)
                snprintf(c.orders[i], ID_CAP, "o-%04d", i);
        for (i = 0; i < OVF_FIT; i++)
                add_fixed(&c, type, i, AMOUNT_MAX);
        add_fixed(&c, type, OVF_TOP, 1023);
        ovf_bodies[0] = add_fixed(&c, type, OVF_ONE, 1);
        add_fixed(&c, type, OVF_ZERO, 0);
        add_repeat(&c, c.nlog - 2); /* the same bytes at a new offset */
        add_fixed(&c, type, OVF_AGAIN, 0);
        ovf_bodies[1] = add_fixed(&c, type, OVF_BIG, AMOUNT_MAX);
        for (i = 0; i < (int)c.nlog; i++) { /* log order kept */
                c.log[i].partition = (int32_t)below(&c.r, NPART);
                c.log[i].offset = i;
        }
        model_from_log(&m, &c);
        assert_int_equal(m.sum_placed + m.sum_paid, INT64_MAX);
        rc = check_case(&c, &m, type == T_PLACED ? placed_facts : paid_facts);
        model_free(&m);
        case_free(&c);
        if (rc)
                fail_msg("amount overflow (%s)",
                         type == T_PLACED ? "OrderPlaced" : "OrderPaid");
}

static void test_store_placed_amount_overflow_is_a_dead_letter(void **state)
{
        (void)state;
        overflow_case(T_PLACED);
}

static void test_store_paid_amount_overflow_is_a_dead_letter(void **state)
{
        (void)state;
        overflow_case(T_PAID);
}

/* ---- main ------------------------------------------------------------ */

static int group_setup(void **state)
{
        struct stat sb;
        char tmpl_shm[] = "/dev/shm/orderflow-prop-XXXXXX";
        char tmpl_tmp[] = "/tmp/orderflow-prop-XXXXXX";
        char *dir = NULL;

        (void)state;
        if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode))
                dir = mkdtemp(tmpl_shm);
        if (!dir)
                dir = mkdtemp(tmpl_tmp);
        if (!dir)
                return -1;
        g_dir = strdup(dir);
        return g_dir ? 0 : -1;
}

static int group_teardown(void **state)
{
        (void)state;
        if (g_dir && rmdir(g_dir))
                fprintf(stderr, "could not remove %s\n", g_dir);
        free(g_dir);
        g_dir = NULL;
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_store_any_delivery_order_gives_the_model),
                cmocka_unit_test(
                        test_store_invalid_log_first_in_log_order_wins),
                cmocka_unit_test(
                        test_store_placed_amount_overflow_is_a_dead_letter),
                cmocka_unit_test(
                        test_store_paid_amount_overflow_is_a_dead_letter),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
