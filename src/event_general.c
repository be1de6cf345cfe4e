/* The event decoder's general path, for whatever the fast path
 * (event_fast.c) leaves: UTF-8 and the lexical rules cJSON is lax about
 * are checked here, the grammar is left to cJSON, and the raw text of an
 * amount is found again for the rules (event.c) to judge exactly. */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "orderflow/json.h"

#include "event_int.h"

/* ---- JSON lexical rules ---- */

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
                while (i < len && !is_ws(s[i]) && s[i] != ',' && s[i] != '}' &&
                       s[i] != ']')
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

int event_general_fields(field *m, event_doc *doc, const char *text,
                         size_t len, char *reason, size_t reason_size)
{
        const char *what = NULL;
        const char *end = NULL;
        size_t nuls = 0, bad, i;
        char detail[48];

        if ((bad = of_json_utf8_valid(text, len)) < len) {
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
                if (!(doc->copy = malloc(len)))
                        return of_errf(reason, reason_size, "out of memory");
                scan(text, len, doc->copy, &nuls, &what);
                text = doc->copy;
                len -= 5 * nuls;
        }

        /* Not require_null_terminated: cJSON would then look for a NUL
         * the value does not have. Trailing bytes are checked below. */
        pthread_once(&hooks_once, hooks_init);
        arena.used = 0;
        arena.oom = 0;
        arena.active = 1;
        doc->root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        arena.active = 0;
        if (!doc->root && arena.oom)
                return of_errf(reason, reason_size, "out of memory");
        if (!doc->root)
                return dead(reason, reason_size, OF_REASON_JSON,
                            "malformed or nested too deep");
        for (i = (size_t)(end - text); i < len; i++)
                if (!is_ws(text[i]))
                        return dead(reason, reason_size, OF_REASON_JSON,
                                    "data after the top-level value");
        if (!cJSON_IsObject(doc->root))
                return dead(reason, reason_size, OF_REASON_NOT_OBJECT, NULL);
        cjson_fields(m, doc->root, text, len);
        return 0;
}

void event_general_free(event_doc *doc)
{
        cJSON_Delete(doc->root);
        free(doc->copy);
}
