/* The rules of docs/reference.md 1: the verdict on the fields a decoder found
 * (event_fast.c, event_general.c) and its reason, amounts judged exactly
 * from their decimal text; and the envelope an outbox row carries, written
 * through json.h. What happens to an event afterwards is the store's. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/json.h"

#include "event_int.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

/* ---- The fixed phrases of the reasons ---- */

static const char *const phrases[] = {
        OF_REASON_DUP_PLACED, OF_REASON_DUP_PAID,   OF_REASON_CONFLICT,
        OF_REASON_OVERFLOW,   OF_REASON_NO_VALUE,   OF_REASON_UTF8,
        OF_REASON_JSON,       OF_REASON_NOT_OBJECT, OF_REASON_ID,
        OF_REASON_TYPE,       OF_REASON_AGGREGATE,  OF_REASON_OCCURRED,
        OF_REASON_PAYLOAD,    OF_REASON_ORDER_ID,   OF_REASON_MISMATCH,
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

/* ---- Amounts ---- */

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

/* ---- The field rules ---- */

/* Copies a string field into dst (OF_ID_MAX + 1 bytes) if it has 1 to
 * OF_ID_MAX bytes and no U+0000 (a 0xFF byte, see scan() in
 * event_general.c). Returns NULL, or what is wrong (then dst is
 * untouched). */
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

/* The field rules of docs/reference.md 1 in a fixed order: the first failure
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
        if ((what = get_amount(&out->amount, &m[placed ? M_TOTAL : M_AMOUNT])))
                return dead(reason, reason_size,
                            placed ? OF_REASON_TOTAL : OF_REASON_AMOUNT, what);
        return 0;
}

/* ---- Decoding ---- */

static int parse_general(of_event *out, const char *text, size_t len,
                         char *reason, size_t reason_size)
{
        field m[M_COUNT] = {0};
        event_doc doc = {0};
        int rc;

        rc = event_general_fields(m, &doc, text, len, reason, reason_size);
        if (rc == 0)
                rc = decode(out, m, reason, reason_size);
        event_general_free(&doc);
        return rc;
}

int of_event_parse_general(of_event *out, const void *value, size_t value_len,
                           char *reason, size_t reason_size)
{
        memset(out, 0, sizeof(*out));
        out->amount = -1;
        if (!value || value_len == 0)
                return dead(reason, reason_size, OF_REASON_NO_VALUE, NULL);
        return parse_general(out, value, value_len, reason, reason_size);
}

/* The offset of field f's bytes in value when f is a string there (the
 * fast path's fields point into value), else -1. */
static int32_t offset_of(const char *value, size_t value_len, const field *f)
{
        if (f->kind != F_STRING || f->p < value ||
            f->p + f->len > value + value_len || value_len > INT32_MAX)
                return -1;
        return (int32_t)(f->p - value);
}

/* Where the fast path's fields of a valid event are: get_id() copied id,
 * type and aggregateId as they are (an aggregateId it refused, for another
 * type, is ""); occurredAt is there only when already normalised. */
static void locate(of_event_at *at, const of_event *ev, const char *value,
                   size_t value_len, const field *m)
{
        const field *t = &m[M_OCCURRED];

        at->id = offset_of(value, value_len, &m[M_ID]);
        at->type_name = offset_of(value, value_len, &m[M_TYPE]);
        at->aggregate_id = ev->aggregate_id[0] ? offset_of(value, value_len,
                                                           &m[M_AGGREGATE])
                                               : -1;
        at->occurred_at = -1;
        if (ev->occurred_at[0] && t->len == OF_TS_LEN &&
            memcmp(t->p, ev->occurred_at, OF_TS_LEN) == 0)
                at->occurred_at = offset_of(value, value_len, t);
}

int of_event_parse_at(of_event *out, of_event_at *at, const void *value,
                      size_t value_len, char *reason, size_t reason_size)
{
        field m[M_COUNT] = {0};
        int rc;

        memset(out, 0, sizeof(*out));
        out->amount = -1;
        if (at)
                *at = (of_event_at){-1, -1, -1, -1};
        if (!value || value_len == 0)
                return dead(reason, reason_size, OF_REASON_NO_VALUE, NULL);
        if (event_fast_fields(m, value, value_len) != 0)
                return parse_general(out, value, value_len, reason,
                                     reason_size);
        rc = decode(out, m, reason, reason_size);
        if (rc == 0 && at)
                locate(at, out, value, value_len, m);
        return rc;
}

int of_event_parse(of_event *out, const void *value, size_t value_len,
                   char *reason, size_t reason_size)
{
        return of_event_parse_at(out, NULL, value, value_len, reason,
                                 reason_size);
}

int of_event_agrees(const of_event *a, const of_event *b)
{
        return strcmp(a->type_name, b->type_name) == 0 &&
               strcmp(a->aggregate_id, b->aggregate_id) == 0 &&
               strcmp(a->occurred_at, b->occurred_at) == 0 &&
               a->amount == b->amount;
}

/* ---- The envelope ---- */

int of_event_format(char **out, const of_event *ev)
{
        int placed = ev->type == OF_EVENT_PLACED;
        /* Bytes that are not UTF-8 stay, so that decoding says so. */
        of_json j = {.keep_bytes = 1};

        assert(ev->type != OF_EVENT_OTHER);
        of_json_object_begin(&j);
        of_json_key(&j, "id");
        of_json_text(&j, ev->id);
        of_json_key(&j, "type");
        of_json_text(&j, placed ? "OrderPlaced" : "OrderPaid");
        of_json_key(&j, "aggregateId");
        of_json_text(&j, ev->aggregate_id);
        of_json_key(&j, "occurredAt");
        of_json_text(&j, ev->occurred_at);
        of_json_key(&j, "payload");
        of_json_object_begin(&j);
        of_json_key(&j, "orderId");
        of_json_text(&j, ev->aggregate_id);
        of_json_key(&j, placed ? "total" : "amount");
        of_json_int(&j, ev->amount);
        of_json_object_end(&j);
        of_json_object_end(&j);
        if (j.oom) {
                free(j.buf);
                j.buf = NULL;
        }
        *out = j.buf;
        return *out ? 0 : OF_ERROR;
}
