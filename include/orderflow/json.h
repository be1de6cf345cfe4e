/* The one JSON writer: the event envelope and every --json printer write
 * through it, into a FILE or a growing buffer. Strings are escaped the way
 * cJSON escapes them; commas between members and elements come from the
 * writer. Also the one UTF-8 check of the program. */
#ifndef ORDERFLOW_JSON_H
#define ORDERFLOW_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A writer: zero-initialised ({0}) it writes into buf; with f set, into
 * f. Writing never fails on a FILE (the caller checks ferror()); on the
 * buffer, a failed allocation sets oom and later writes are dropped. */
typedef struct of_json {
        FILE *f;        /* the output; NULL: buf */
        char *buf;      /* NUL-terminated once written to; caller frees */
        size_t len;     /* bytes in buf, the NUL not counted */
        size_t cap;     /* bytes allocated for buf */
        int oom;        /* an allocation failed: buf holds what fitted */
        int keep_bytes; /* 0: a byte that is not UTF-8 becomes \ufffd;
                         * 1: it is written as it is (for a reader that
                         * judges it, as cJSON's printer did) */
        char last;      /* the last byte written: where commas go */
} of_json;

/* The length of the well-formed UTF-8 sequence at p (n > 0 bytes there),
 * or 0 when p[0] does not start one (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF, none cut short by the end). */
size_t of_json_utf8_len(const void *p, size_t n);

/* The length of the longest prefix of p[0..n) that is well-formed UTF-8:
 * n when all of it is, else the offset of the first bad byte. */
size_t of_json_utf8_valid(const void *p, size_t n);

/* The n bytes at p as they are, with no comma: for text that is JSON
 * already, or to use the buffer as a plain growing string. */
void of_json_put(of_json *j, const void *p, size_t n);

/* '{', '}', '[' and ']', a comma first where a value came before. */
void of_json_object_begin(of_json *j);
void of_json_object_end(of_json *j);
void of_json_array_begin(of_json *j);
void of_json_array_end(of_json *j);

/* A member's name and its ':' (the value follows by its own call). */
void of_json_key(of_json *j, const char *key);

/* Values. A string's n bytes: '"', '\\' and control characters escaped
 * (\b \f \n \r \t, else \u00XX), valid UTF-8 as it is, other bytes by
 * keep_bytes. of_json_fixed writes v with decimals digits after the
 * point. */
void of_json_string(of_json *j, const void *p, size_t n);
void of_json_text(of_json *j, const char *s); /* NUL-terminated */
void of_json_int(of_json *j, int64_t v);
void of_json_fixed(of_json *j, double v, int decimals);
void of_json_null(of_json *j);

/* '\n': the end of one JSON Lines record; the next value starts anew. */
void of_json_end_line(of_json *j);

#endif
