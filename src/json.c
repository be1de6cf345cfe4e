/* The JSON writer (json.h): bytes into a FILE or a growing buffer,
 * strings escaped as cJSON escapes them, commas placed from the last byte
 * written; and the UTF-8 check that the event decoder, the writer and the
 * query printer share. Reading JSON is the event module's business. */
#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/json.h"

/* ---- UTF-8 ---- */

size_t of_json_utf8_len(const void *p, size_t n)
{
        const unsigned char *s = p;
        unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
        size_t len, k;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xC2 && s[0] <= 0xDF) {
                len = 2;
        } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
                len = 3;
                lo = s[0] == 0xE0 ? 0xA0 : lo; /* overlong */
                hi = s[0] == 0xED ? 0x9F : hi; /* surrogates */
        } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
                len = 4;
                lo = s[0] == 0xF0 ? 0x90 : lo; /* overlong */
                hi = s[0] == 0xF4 ? 0x8F : hi; /* above U+10FFFF */
        } else {
                return 0; /* a continuation byte, C0, C1 or F5-FF */
        }
        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (k = 2; k < len; k++)
                if (s[k] < 0x80 || s[k] > 0xBF)
                        return 0;
        return len;
}

size_t of_json_utf8_valid(const void *p, size_t n)
{
        const unsigned char *s = p;
        size_t i = 0, len;

        while (i < n) {
                if (s[i] < 0x80) {
                        i++;
                        continue;
                }
                if ((len = of_json_utf8_len(s + i, n - i)) == 0)
                        break;
                i += len;
        }
        return i;
}

/* ---- Bytes out ---- */

void of_json_put(of_json *j, const void *p, size_t n)
{
        size_t cap;
        char *nb;

        if (j->f) {
                if (n > 0)
                        fwrite(p, 1, n, j->f);
        } else {
                if (j->oom)
                        return;
                if (j->len + n + 1 > j->cap) {
                        for (cap = j->cap ? j->cap : 64; j->len + n + 1 > cap;
                             cap *= 2)
                                ;
                        if (!(nb = realloc(j->buf, cap))) {
                                j->oom = 1;
                                return;
                        }
                        j->buf = nb;
                        j->cap = cap;
                }
                if (n > 0) /* p may be NULL then */
                        memcpy(j->buf + j->len, p, n);
                j->len += n;
                j->buf[j->len] = '\0';
        }
        if (n > 0)
                j->last = ((const char *)p)[n - 1];
}

/* A comma, unless this is the first thing in an object, an array, after
 * a key, or on a line. */
static void sep(of_json *j)
{
        if (j->last && !strchr("{[:\n", j->last))
                of_json_put(j, ",", 1);
}

/* ---- Structure ---- */

void of_json_object_begin(of_json *j)
{
        sep(j);
        of_json_put(j, "{", 1);
}

void of_json_object_end(of_json *j)
{
        of_json_put(j, "}", 1);
}

void of_json_array_begin(of_json *j)
{
        sep(j);
        of_json_put(j, "[", 1);
}

void of_json_array_end(of_json *j)
{
        of_json_put(j, "]", 1);
}

void of_json_key(of_json *j, const char *key)
{
        of_json_text(j, key);
        of_json_put(j, ":", 1);
}

void of_json_end_line(of_json *j)
{
        of_json_put(j, "\n", 1);
}

/* ---- Values ---- */

/* The escape of the one-byte character c, or NULL when it stands as it
 * is; esc has room for \u00XX. */
static const char *escape(unsigned char c, char esc[8])
{
        switch (c) {
        case '"':
                return "\\\"";
        case '\\':
                return "\\\\";
        case '\b':
                return "\\b";
        case '\f':
                return "\\f";
        case '\n':
                return "\\n";
        case '\r':
                return "\\r";
        case '\t':
                return "\\t";
        default:
                if (c >= 0x20)
                        return NULL;
                snprintf(esc, 8, "\\u%04x", c);
                return esc;
        }
}

void of_json_string(of_json *j, const void *p, size_t n)
{
        const unsigned char *s = p;
        size_t i = 0, run = 0, len;
        const char *e;
        char esc[8];

        sep(j);
        of_json_put(j, "\"", 1);
        /* Bytes that stand as they are go out in runs. */
        while (i < n) {
                if (s[i] >= 0x80) {
                        len = j->keep_bytes ? 1
                                            : of_json_utf8_len(s + i, n - i);
                        if (len > 0) {
                                i += len;
                                continue;
                        }
                        e = "\\ufffd";
                } else if (!(e = escape(s[i], esc))) {
                        i++;
                        continue;
                }
                of_json_put(j, s + run, i - run);
                of_json_put(j, e, strlen(e));
                run = ++i;
        }
        if (n > run) /* s may be NULL when n is 0 */
                of_json_put(j, s + run, n - run);
        of_json_put(j, "\"", 1);
}

void of_json_text(of_json *j, const char *s)
{
        of_json_string(j, s, strlen(s));
}

void of_json_int(of_json *j, int64_t v)
{
        char num[24];

        sep(j);
        of_json_put(j, num, (size_t)snprintf(num, sizeof(num), "%" PRId64, v));
}

void of_json_fixed(of_json *j, double v, int decimals)
{
        char num[400]; /* DBL_MAX has 309 digits */

        assert(decimals >= 0 && decimals <= 20);
        sep(j);
        of_json_put(j, num,
                    (size_t)snprintf(num, sizeof(num), "%.*f", decimals, v));
}

void of_json_null(of_json *j)
{
        sep(j);
        of_json_put(j, "null", 4);
}
