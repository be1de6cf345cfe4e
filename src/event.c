/* Decoding one message value into a validated of_event (CONTRACT 1). UTF-8
 * and the lexical rules cJSON is lax about are checked here, the grammar is
 * left to cJSON, and amounts are judged exactly from their decimal text.
 * What happens to an event afterwards is store.c's business. */
#include <assert.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "orderflow/error.h"
#include "orderflow/event.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

/* Writes "phrase" or "phrase: detail" into reason; returns 1 (dead). */
static int dead(char *reason, size_t reason_size, const char *phrase,
                const char *detail)
{
        if (detail)
                of_errf(reason, reason_size, "%s: %s", phrase, detail);
        else
                of_errf(reason, reason_size, "%s", phrase);
        return 1;
}

/* ---- The fixed phrases of the reasons ---- */

static const char *const phrases[] = {
        OF_REASON_DUP_PLACED, OF_REASON_DUP_PAID,    OF_REASON_CONFLICT,
        OF_REASON_OVERFLOW,   OF_REASON_NO_VALUE,    OF_REASON_UTF8,
        OF_REASON_JSON,       OF_REASON_NOT_OBJECT,  OF_REASON_ID,
        OF_REASON_TYPE,       OF_REASON_AGGREGATE,   OF_REASON_OCCURRED,
        OF_REASON_PAYLOAD,    OF_REASON_ORDER_ID,    OF_REASON_MISMATCH,
        OF_REASON_TOTAL,      OF_REASON_AMOUNT,
};

_Static_assert(sizeof(phrases) / sizeof(phrases[0]) == OF_REASON_COUNT,
               "OF_REASON_COUNT counts the phrases");

const char *of_event_reason_phrase(int i)
{
        assert(i >= 0 && i < OF_REASON_COUNT);
        return phrases[i];
}

int of_event_reason_index(const char *reason)
{
        int i;

        for (i = 0; i < OF_REASON_COUNT; i++) {
                size_t len = strlen(phrases[i]);

                /* "invalid payload" must not take "invalid payload.total". */
                if (!strncmp(reason, phrases[i], len) &&
                    (reason[len] == '\0' || reason[len] == ':'))
                        return i;
        }
        return -1;
}

/* ---- Bytes: UTF-8 and JSON lexical rules ---- */

/* The offset of the first byte that does not start a well-formed UTF-8
 * sequence (RFC 3629: no overlongs, no surrogates, nothing above
 * U+10FFFF), or len when there is none. */
static size_t utf8_check(const unsigned char *s, size_t len)
{
        size_t i = 0, n, k;
        unsigned char lo, hi;

        while (i < len) {
                if (s[i] < 0x80) {
                        i++;
                        continue;
                }
                lo = 0x80; /* the range of the second byte */
                hi = 0xBF;
                if (s[i] >= 0xC2 && s[i] <= 0xDF) {
                        n = 1;
                } else if (s[i] >= 0xE0 && s[i] <= 0xEF) {
                        n = 2;
                        lo = s[i] == 0xE0 ? 0xA0 : lo; /* overlong */
                        hi = s[i] == 0xED ? 0x9F : hi; /* surrogates */
                } else if (s[i] >= 0xF0 && s[i] <= 0xF4) {
                        n = 3;
                        lo = s[i] == 0xF0 ? 0x90 : lo; /* overlong */
                        hi = s[i] == 0xF4 ? 0x8F : hi; /* > U+10FFFF */
                } else {
                        return i; /* continuation, C0, C1 or F5-FF */
                }
                if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
                        return i;
                for (k = 2; k <= n; k++)
                        if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                                return i;
                i += n + 1;
        }
        return len;
}

/* JSON allows no raw control character inside a string and only space,
 * tab, LF and CR between tokens; cJSON copies any byte into a string (a
 * raw NUL would cut it short) and skips any byte up to 0x20 between
 * tokens. scan() enforces JSON's rule and counts the real \u0000
 * escapes (inside a string, the backslash not itself escaped) into *nuls.
 * When out is not NULL it also copies s there with each such escape (6
 * bytes) replaced by one 0xFF byte. Returns 0, or -1 with *what saying
 * what is wrong. */
static int scan(const char *s, size_t len, char *out, size_t *nuls,
                const char **what)
{
        size_t i, o = 0;
        unsigned char c;
        int in_str = 0;

        *nuls = 0;
        for (i = 0; i < len; i++) {
                c = (unsigned char)s[i];
                if (c < 0x20 &&
                    (in_str || (c != '\t' && c != '\n' && c != '\r'))) {
                        *what = in_str ? "control character in a string"
                                       : "control character between tokens";
                        return -1;
                }
                if (in_str && c == '\\' && len - i >= 6 &&
                    memcmp(s + i, "\\u0000", 6) == 0) {
                        (*nuls)++;
                        if (out)
                                out[o++] = (char)0xFF;
                        i += 5;
                        continue;
                }
                if (out)
                        out[o++] = s[i];
                if (in_str && c == '\\' && i + 1 < len) {
                        i++; /* the escaped byte never ends the string */
                        if (out)
                                out[o++] = s[i];
                } else if (c == '"') {
                        in_str = !in_str;
                }
        }
        return 0;
}

static int is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The common case, settled in one cheap pass: printable ASCII without a
 * backslash is valid UTF-8 and has no control character and no escape,
 * so utf8_check() and scan() have nothing to find. */
static int plain_ascii(const char *s, size_t len)
{
        unsigned bad = 0;
        size_t i;

        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                bad |= (c < 0x20) | (c > 0x7E) | (c == '\\');
        }
        return !bad;
}

/* ---- cJSON's memory ----
 * cJSON allocates every node and string of a document separately; one
 * event is a dozen small blocks that live for one call. They come from a
 * per-thread arena reset at each parse; whatever does not fit (a huge
 * value) and every allocation outside of_event_parse() falls back to
 * malloc(), and free() is skipped for arena blocks only. */

#define ARENA_SIZE 16384

static _Thread_local struct {
        _Alignas(max_align_t) char buf[ARENA_SIZE];
        size_t used;
        int active;
        int oom; /* a fallback malloc() failed during the parse */
} arena;

static void *arena_alloc(size_t n)
{
        size_t at = (arena.used + _Alignof(max_align_t) - 1) &
                    ~(size_t)(_Alignof(max_align_t) - 1);

        void *p;

        if (arena.active && n <= ARENA_SIZE - at) {
                arena.used = at + n;
                return arena.buf + at;
        }
        if (!(p = malloc(n)) && arena.active)
                arena.oom = 1;
        return p;
}

static void arena_free(void *p)
{
        if ((char *)p >= arena.buf && (char *)p < arena.buf + ARENA_SIZE)
                return;
        free(p);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void hooks_init(void)
{
        cJSON_Hooks hooks = {arena_alloc, arena_free};

        cJSON_InitHooks(&hooks);
}

/* ---- Raw text of a number ----
 * cJSON keeps only a double, which cannot tell 1.0000000000000001 from 1
 * or 2^53 from 2^53+1, so the raw text of payload.total/amount is found
 * again. The n-th member of an object in the text is the n-th child cJSON
 * made of it (cJSON keeps document order), which settles escaped keys and
 * duplicates exactly as cJSON_GetObjectItemCaseSensitive() did. The text
 * is one cJSON accepted and scan() approved, hence well-formed; bounds are
 * still checked everywhere, and a miss yields len. */

static size_t skip_ws(const char *s, size_t len, size_t i)
{
        while (i < len && is_ws(s[i]))
                i++;
        return i;
}

/* s[i] is an opening quote: the index after the closing one. */
static size_t skip_string(const char *s, size_t len, size_t i)
{
        for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\')
                        i++;
        return i < len ? i + 1 : len;
}

/* The index just after the value that starts at s[i]. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
        size_t depth = 0;

        if (i < len && s[i] == '"')
                return skip_string(s, len, i);
        if (i < len && s[i] != '{' && s[i] != '[') {
                /* a number, true, false or null */
                while (i < len && !is_ws(s[i]) && s[i] != ',' &&
                       s[i] != '}' && s[i] != ']')
                        i++;
                return i;
        }
        while (i < len) {
                if (s[i] == '"') {
                        i = skip_string(s, len, i);
                        continue;
                }
                if (s[i] == '{' || s[i] == '[')
                        depth++;
                else if ((s[i] == '}' || s[i] == ']') && --depth == 0)
                        return i + 1;
                i++;
        }
        return len;
}

/* The index of the value of member n (from 0) of the object at s[i]. */
static size_t member_value(const char *s, size_t len, size_t i, size_t n)
{
        if (i >= len || s[i] != '{')
                return len;
        for (i++;; i++) {
                i = skip_ws(s, len, i);
                if (i >= len || s[i] != '"')
                        return len;
                i = skip_ws(s, len, skip_string(s, len, i));
                if (i >= len || s[i] != ':')
                        return len;
                i = skip_ws(s, len, i + 1);
                if (n-- == 0)
                        return i;
                i = skip_ws(s, len, skip_value(s, len, i));
                if (i >= len || s[i] != ',')
                        return len;
        }
}

static size_t child_index(const cJSON *obj, const cJSON *item)
{
        const cJSON *c;
        size_t n = 0;

        for (c = obj->child; c != item; c = c->next)
                n++;
        return n;
}

static int is_digit(const char *s, size_t len, size_t i)
{
        return i < len && s[i] >= '0' && s[i] <= '9';
}

/* The place of the mantissa digit s[k] of a number whose integer digits
 * end before s[int1] and whose fraction digits start at s[frac0]. */
static long long place(size_t k, size_t int1, size_t frac0)
{
        return k < int1 ? (long long)(int1 - 1 - k)
                        : -(long long)(k - frac0 + 1);
}

/* Judges the JSON number at s[i] exactly, without floating point. A
 * mantissa digit d at place p (..., 1, 0 before the point, -1, -2, ...
 * after it) adds d * 10^(p + exp). So the number is whole iff its lowest
 * non-zero digit has p + exp >= 0, and below 10^16 iff its highest one
 * has p + exp <= 15. Returns NULL and sets *out, or what is wrong. */
static const char *judge_number(int64_t *out, const char *s, size_t len,
                                size_t i)
{
        size_t int0, int1, frac0, frac1, k;
        long long exp = 0, pmax = 0, pmin = 0, p;
        int neg = 0, eneg = 0, any = 0;
        uint64_t v = 0, scale;

        if (i < len && s[i] == '-') {
                neg = 1;
                i++;
        }
        for (int0 = i; is_digit(s, len, i); i++)
                ;
        int1 = frac0 = frac1 = i;
        if (int1 == int0 || (s[int0] == '0' && int1 - int0 > 1))
                return "malformed number";
        if (i < len && s[i] == '.') {
                for (frac0 = ++i; is_digit(s, len, i); i++)
                        ;
                if ((frac1 = i) == frac0)
                        return "malformed number";
        }
        if (i < len && (s[i] == 'e' || s[i] == 'E')) {
                if (++i < len && (s[i] == '+' || s[i] == '-'))
                        eneg = s[i++] == '-';
                if (!is_digit(s, len, i))
                        return "malformed number";
                /* Saturates far beyond any digit count in memory. */
                for (; is_digit(s, len, i); i++)
                        if (exp < 1000000000000000LL)
                                exp = exp * 10 + (s[i] - '0');
                exp = eneg ? -exp : exp;
        }
        if (i < len && (is_digit(s, len, i) || strchr(".eE+-", s[i])))
                return "malformed number"; /* cJSON took 01, 1. and -.5 */

        /* The integer digits, then (skipping the point) the fraction. */
        for (k = int0; k < frac1; k = k + 1 == int1 ? frac0 : k + 1) {
                p = place(k, int1, frac0);
                if (s[k] != '0') {
                        pmax = any ? pmax : p;
                        pmin = p;
                        any = 1;
                }
        }
        if (!any) {
                *out = 0; /* 0, -0, 0.0e99 */
                return NULL;
        }
        if (neg)
                return "negative";
        if (pmin + exp < 0)
                return "not a whole number";
        if (pmax + exp > 15)
                return "above 2^53-1";
        for (k = int0; k < frac1; k = k + 1 == int1 ? frac0 : k + 1) {
                if (s[k] == '0')
                        continue; /* its place may be far out of range */
                for (scale = 1, p = place(k, int1, frac0); p + exp > 0; p--)
                        scale *= 10;
                v += (uint64_t)(s[k] - '0') * scale;
        }
        if (v > (uint64_t)OF_AMOUNT_MAX)
                return "above 2^53-1";
        *out = (int64_t)v;
        return NULL;
}

/* ---- Fields ----
 * The rules see the members they judge through a field: what kind of
 * value it is and, for a string, its decoded bytes; for a number, where
 * its text starts (and how much of the document follows, so judge_number()
 * also sees the byte after it). Both parsers below fill the same fields,
 * so one set of rules gives every verdict. */

typedef enum fkind {
        F_MISSING = 0,
        F_STRING,
        F_NUMBER,
        F_OBJECT,
        F_OTHER, /* true, false, null, an array */
} fkind;

typedef struct field {
        fkind kind;
        const char *p; /* F_STRING: the bytes; F_NUMBER: the text */
        size_t len;    /* F_STRING: their count; F_NUMBER: bytes to the end */
} field;

/* The members of CONTRACT 1, the first of each name (as cJSON finds it). */
enum {
        M_ID,
        M_TYPE,
        M_AGGREGATE,
        M_OCCURRED,
        M_PAYLOAD,
        M_ROOT_COUNT,
        M_ORDER_ID = M_ROOT_COUNT, /* members of payload */
        M_TOTAL,
        M_AMOUNT,
        M_COUNT,
};

static const char *const root_names[M_ROOT_COUNT] = {
        "id", "type", "aggregateId", "occurredAt", "payload",
};
static const char *const payload_names[M_COUNT - M_ROOT_COUNT] = {
        "orderId", "total", "amount",
};

/* Copies a string field into dst (OF_ID_MAX + 1 bytes) if it has 1 to
 * OF_ID_MAX bytes and no U+0000 (a 0xFF byte, see scan()). Returns NULL,
 * or what is wrong (then dst is untouched). */
static const char *get_id(char *dst, const field *f)
{
        if (f->kind == F_MISSING)
                return "missing";
        if (f->kind != F_STRING)
                return "not a string";
        if (f->len == 0)
                return "empty";
        if (f->len > OF_ID_MAX)
                return "longer than " STR(OF_ID_MAX) " bytes";
        if (memchr(f->p, 0xFF, f->len))
                return "contains U+0000";
        memcpy(dst, f->p, f->len);
        dst[f->len] = '\0';
        return NULL;
}

/* occurredAt, normalised into dst; NULL or what is wrong (in errstr). */
static const char *get_time(char *dst, const field *f, char *errstr,
                            size_t errstr_size)
{
        if (f->kind == F_MISSING)
                return "missing";
        if (f->kind != F_STRING)
                return "not a string";
        if (of_timestamp_normalise(dst, f->p, f->len, errstr, errstr_size))
                return errstr;
        return NULL;
}

static const char *get_amount(int64_t *out, const field *f)
{
        if (f->kind == F_MISSING)
                return "missing";
        if (f->kind != F_NUMBER)
                return "not a number";
        return judge_number(out, f->p, f->len, 0);
}

/* The field rules of CONTRACT 1 in a fixed order: the first failure
 * wins, so a reason names one problem. */
static int decode(of_event *out, const field *m, char *reason,
                  size_t reason_size)
{
        char order_id[OF_ID_MAX + 1];
        char ts_err[96];
        const char *what;
        int placed;

        if ((what = get_id(out->id, &m[M_ID])))
                return dead(reason, reason_size, OF_REASON_ID, what);
        if ((what = get_id(out->type_name, &m[M_TYPE])))
                return dead(reason, reason_size, OF_REASON_TYPE, what);
        if (strcmp(out->type_name, "OrderPlaced") == 0) {
                out->type = OF_EVENT_PLACED;
        } else if (strcmp(out->type_name, "OrderPaid") == 0) {
                out->type = OF_EVENT_PAID;
        } else {
                /* Forward compatibility: another type needs only its id;
                 * valid aggregateId and occurredAt are kept for the record
                 * and anything else about it is ignored. */
                out->type = OF_EVENT_OTHER;
                (void)get_id(out->aggregate_id, &m[M_AGGREGATE]);
                if (get_time(out->occurred_at, &m[M_OCCURRED], ts_err,
                             sizeof(ts_err)))
                        out->occurred_at[0] = '\0';
                return 0;
        }

        if ((what = get_id(out->aggregate_id, &m[M_AGGREGATE])))
                return dead(reason, reason_size, OF_REASON_AGGREGATE, what);
        if ((what = get_time(out->occurred_at, &m[M_OCCURRED], ts_err,
                             sizeof(ts_err))))
                return dead(reason, reason_size, OF_REASON_OCCURRED, what);
        if (m[M_PAYLOAD].kind != F_OBJECT)
                return dead(reason, reason_size, OF_REASON_PAYLOAD,
                            m[M_PAYLOAD].kind ? "not an object" : "missing");
        if ((what = get_id(order_id, &m[M_ORDER_ID])))
                return dead(reason, reason_size, OF_REASON_ORDER_ID, what);
        if (strcmp(order_id, out->aggregate_id) != 0)
                return dead(reason, reason_size, OF_REASON_MISMATCH, NULL);
        placed = out->type == OF_EVENT_PLACED;
        if ((what = get_amount(&out->amount,
                               &m[placed ? M_TOTAL : M_AMOUNT])))
                return dead(reason, reason_size,
                            placed ? OF_REASON_TOTAL : OF_REASON_AMOUNT,
                            what);
        return 0;
}

/* ---- The fast path ----
 * Most events are printable ASCII without a backslash, in JSON's plain
 * form. For those one pass finds the members with no allocation. Whatever
 * it is not sure of (an array, a literal or number cJSON might read
 * otherwise, deep nesting, stray bytes) sends the event to the general
 * path, so both give the same verdict (test_event checks this). */

#define FAST_DEPTH 16
#define FAST_NO    ((size_t)-1) /* "take the general path" */

static size_t skip_sp(const char *s, size_t len, size_t i)
{
        while (i < len && s[i] == ' ')
                i++;
        return i;
}

/* A number in JSON's grammar followed by a delimiter: the index after
 * it, else FAST_NO. */
static size_t fast_number(const char *s, size_t len, size_t i)
{
        if (i < len && s[i] == '-')
                i++;
        if (i < len && s[i] == '0')
                i++;
        else if (is_digit(s, len, i))
                while (is_digit(s, len, i))
                        i++;
        else
                return FAST_NO;
        if (i < len && s[i] == '.') {
                if (!is_digit(s, len, ++i))
                        return FAST_NO;
                while (is_digit(s, len, i))
                        i++;
        }
        if (i < len && (s[i] == 'e' || s[i] == 'E')) {
                if (++i < len && (s[i] == '+' || s[i] == '-'))
                        i++;
                if (!is_digit(s, len, i))
                        return FAST_NO;
                while (is_digit(s, len, i))
                        i++;
        }
        if (i < len && s[i] != ',' && s[i] != '}' && s[i] != ' ')
                return FAST_NO;
        return i;
}

static size_t fast_object(const char *s, size_t len, size_t i, int depth,
                          field *m, int first, int count);

/* The value at s[i] into *f (f may be NULL): the index after it, or
 * FAST_NO. m and depth serve a payload object found at the root. */
static size_t fast_value(const char *s, size_t len, size_t i, int depth,
                         field *f, field *m, int payload)
{
        const char *q;
        size_t j;

        if (i >= len)
                return FAST_NO;
        switch (s[i]) {
        case '"':
                if (!(q = memchr(s + i + 1, '"', len - i - 1)))
                        return FAST_NO;
                if (f)
                        *f = (field){F_STRING, s + i + 1,
                                     (size_t)(q - s) - i - 1};
                return (size_t)(q - s) + 1;
        case '{':
                j = payload ? fast_object(s, len, i, depth + 1, m,
                                          M_ROOT_COUNT, M_COUNT)
                            : fast_object(s, len, i, depth + 1, NULL, 0, 0);
                if (f && j != FAST_NO)
                        *f = (field){F_OBJECT, NULL, 0};
                return j;
        case 't':
        case 'f':
        case 'n':
                for (j = 0; j < 3; j++) {
                        static const char *const lit[] = {"true", "false",
                                                          "null"};
                        size_t n = strlen(lit[j]);

                        if (len - i >= n && memcmp(s + i, lit[j], n) == 0) {
                                if (f)
                                        *f = (field){F_OTHER, NULL, 0};
                                return i + n;
                        }
                }
                return FAST_NO;
        default:
                if ((j = fast_number(s, len, i)) != FAST_NO && f)
                        *f = (field){F_NUMBER, s + i, len - i};
                return j;
        }
}

/* The object at s[i] ('{'): records members named in the names of
 * m[first..count) the first time each appears (m may be NULL). */
static size_t fast_object(const char *s, size_t len, size_t i, int depth,
                          field *m, int first, int count)
{
        const char *const *names = first == 0 ? root_names : payload_names;
        const char *q;
        size_t klen;
        field *f;
        int k;

        if (depth > FAST_DEPTH)
                return FAST_NO;
        if ((i = skip_sp(s, len, i + 1)) < len && s[i] == '}')
                return i + 1;
        for (;;) {
                if (i >= len || s[i] != '"' ||
                    !(q = memchr(s + i + 1, '"', len - i - 1)))
                        return FAST_NO;
                klen = (size_t)(q - s) - i - 1;
                f = NULL;
                for (k = first; m && k < count; k++) {
                        if (strlen(names[k - first]) == klen &&
                            memcmp(names[k - first], s + i + 1, klen) == 0) {
                                if (m[k].kind == F_MISSING)
                                        f = &m[k];
                                break;
                        }
                }
                i = skip_sp(s, len, (size_t)(q - s) + 1);
                if (i >= len || s[i] != ':')
                        return FAST_NO;
                i = skip_sp(s, len, i + 1);
                i = fast_value(s, len, i, depth, f, m,
                               m && first == 0 && f == &m[M_PAYLOAD]);
                if (i == FAST_NO)
                        return FAST_NO;
                if ((i = skip_sp(s, len, i)) >= len)
                        return FAST_NO;
                if (s[i] == '}')
                        return i + 1;
                if (s[i] != ',')
                        return FAST_NO;
                i = skip_sp(s, len, i + 1);
        }
}

/* 0: m holds the members of the plain text s; FAST_NO otherwise. */
static int fast_fields(field *m, const char *s, size_t len)
{
        size_t i = skip_sp(s, len, 0);

        if (i >= len || s[i] != '{')
                return -1;
        i = fast_object(s, len, i, 1, m, 0, M_ROOT_COUNT);
        if (i == FAST_NO || skip_sp(s, len, i) != len)
                return -1;
        return 0;
}

/* ---- The general path: cJSON ---- */

static void cjson_field(field *f, const cJSON *item)
{
        if (!item)
                *f = (field){F_MISSING, NULL, 0};
        else if (cJSON_IsString(item))
                *f = (field){F_STRING, item->valuestring,
                             strlen(item->valuestring)};
        else if (cJSON_IsNumber(item))
                *f = (field){F_NUMBER, NULL, 0}; /* text: number_text() */
        else if (cJSON_IsObject(item))
                *f = (field){F_OBJECT, NULL, 0};
        else
                *f = (field){F_OTHER, NULL, 0};
}

/* Where the text of payload member item of root is in text[0..len). */
static void number_text(field *f, const cJSON *root, const cJSON *payload,
                        const cJSON *item, const char *text, size_t len)
{
        size_t i = 0;

        if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
                i = 3; /* cJSON skips a byte order mark */
        i = skip_ws(text, len, i);
        i = member_value(text, len, i, child_index(root, payload));
        i = member_value(text, len, i, child_index(payload, item));
        f->p = text + i;
        f->len = len - i;
}

static void cjson_fields(field *m, const cJSON *root, const char *text,
                         size_t len)
{
        const cJSON *payload, *item;
        int k;

        for (k = 0; k < M_ROOT_COUNT; k++)
                cjson_field(&m[k], cJSON_GetObjectItemCaseSensitive(
                                           root, root_names[k]));
        if (m[M_PAYLOAD].kind != F_OBJECT)
                return;
        payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
        for (k = M_ROOT_COUNT; k < M_COUNT; k++) {
                item = cJSON_GetObjectItemCaseSensitive(
                        payload, payload_names[k - M_ROOT_COUNT]);
                cjson_field(&m[k], item);
                if (m[k].kind == F_NUMBER)
                        number_text(&m[k], root, payload, item, text, len);
        }
}

static int parse_general(of_event *out, const char *text, size_t len,
                         char *reason, size_t reason_size)
{
        field m[M_COUNT] = {0};
        const char *what = NULL;
        const char *end = NULL;
        size_t nuls = 0, bad, i;
        char *copy = NULL;
        cJSON *root = NULL;
        char detail[48];
        int rc;

        if ((bad = utf8_check((const unsigned char *)text, len)) < len) {
                snprintf(detail, sizeof(detail), "at byte %zu", bad);
                return dead(reason, reason_size, OF_REASON_UTF8, detail);
        }
        if (scan(text, len, NULL, &nuls, &what) != 0)
                return dead(reason, reason_size, OF_REASON_JSON, what);
        if (nuls > 0) {
                /* cJSON decodes \u0000 to a NUL that ends the C string
                 * early, so "a\u0000b" would be the id "a". Parse a copy
                 * in which it is the byte 0xFF instead: valid UTF-8 never
                 * has it, so a checked field holding it held U+0000. */
                copy = malloc(len);
                if (!copy)
                        return of_errf(reason, reason_size, "out of memory");
                scan(text, len, copy, &nuls, &what);
                text = copy;
                len -= 5 * nuls;
        }

        /* Not require_null_terminated: cJSON would then look for a NUL
         * the value does not have. Trailing bytes are checked below. */
        pthread_once(&hooks_once, hooks_init);
        arena.used = 0;
        arena.oom = 0;
        arena.active = 1;
        root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        arena.active = 0;
        if (!root && arena.oom) {
                rc = of_errf(reason, reason_size, "out of memory");
                goto out;
        }
        if (!root) {
                rc = dead(reason, reason_size, OF_REASON_JSON,
                          "malformed or nested too deep");
                goto out;
        }
        for (i = (size_t)(end - text); i < len; i++) {
                if (!is_ws(text[i])) {
                        rc = dead(reason, reason_size, OF_REASON_JSON,
                                  "data after the top-level value");
                        goto out;
                }
        }
        if (!cJSON_IsObject(root)) {
                rc = dead(reason, reason_size, OF_REASON_NOT_OBJECT, NULL);
                goto out;
        }
        cjson_fields(m, root, text, len);
        rc = decode(out, m, reason, reason_size);
out:
        cJSON_Delete(root);
        free(copy);
        return rc;
}

int of_event_parse_general(of_event *out, const void *value,
                           size_t value_len, char *reason,
                           size_t reason_size)
{
        memset(out, 0, sizeof(*out));
        out->amount = -1;
        if (!value || value_len == 0)
                return dead(reason, reason_size, OF_REASON_NO_VALUE, NULL);
        return parse_general(out, value, value_len, reason, reason_size);
}

int of_event_parse(of_event *out, const void *value, size_t value_len,
                   char *reason, size_t reason_size)
{
        field m[M_COUNT] = {0};

        memset(out, 0, sizeof(*out));
        out->amount = -1;
        if (!value || value_len == 0)
                return dead(reason, reason_size, OF_REASON_NO_VALUE, NULL);
        if (plain_ascii(value, value_len) &&
            fast_fields(m, value, value_len) == 0)
                return decode(out, m, reason, reason_size);
        return parse_general(out, value, value_len, reason, reason_size);
}

int of_event_agrees(const of_event *a, const of_event *b)
{
        return strcmp(a->type_name, b->type_name) == 0 &&
               strcmp(a->aggregate_id, b->aggregate_id) == 0 &&
               strcmp(a->occurred_at, b->occurred_at) == 0 &&
               a->amount == b->amount;
}

int of_event_format(char **out, const of_event *ev)
{
        cJSON *root = cJSON_CreateObject(), *payload = NULL;
        int placed = ev->type == OF_EVENT_PLACED;
        char *text = NULL, digits[24];

        assert(ev->type != OF_EVENT_OTHER);
        /* Raw digits: cJSON would print 10^15 as 1e+15. */
        snprintf(digits, sizeof(digits), "%lld", (long long)ev->amount);
        *out = NULL;
        if (!root || !cJSON_AddStringToObject(root, "id", ev->id) ||
            !cJSON_AddStringToObject(root, "type",
                                     placed ? "OrderPlaced" : "OrderPaid") ||
            !cJSON_AddStringToObject(root, "aggregateId", ev->aggregate_id) ||
            !cJSON_AddStringToObject(root, "occurredAt", ev->occurred_at) ||
            !(payload = cJSON_AddObjectToObject(root, "payload")) ||
            !cJSON_AddStringToObject(payload, "orderId", ev->aggregate_id) ||
            !cJSON_AddRawToObject(payload, placed ? "total" : "amount",
                                  digits))
                goto out;
        text = cJSON_PrintUnformatted(root);
out:
        cJSON_Delete(root);
        *out = text;
        return text ? 0 : OF_ERROR;
}
