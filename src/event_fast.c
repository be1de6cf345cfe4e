/* The event decoder's fast path: most messages are printable ASCII
 * without a backslash, in JSON's plain form, and one pass over them finds
 * the members of docs/reference.md 1 with no allocation. Whatever it is not
 * sure of goes to the general path (event_general.c); the rules are event.c's.
 */
#include <stddef.h>
#include <string.h>

#include "event_int.h"

/* The common case, settled in one cheap pass: printable ASCII without a
 * backslash is valid UTF-8 and has no control character and no escape,
 * so the general path's checks have nothing to find. */
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

/* ---- One pass ----
 * What it is not sure of (an array, a literal or number cJSON might read
 * otherwise, deep nesting, stray bytes) is FAST_NO: the general path then
 * gives the verdict, the same one (test_event checks this). */

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

int event_fast_fields(field *m, const char *s, size_t len)
{
        size_t i;

        if (!plain_ascii(s, len))
                return -1;
        if ((i = skip_sp(s, len, 0)) >= len || s[i] != '{')
                return -1;
        i = fast_object(s, len, i, 1, m, 0, M_ROOT_COUNT);
        if (i == FAST_NO || skip_sp(s, len, i) != len)
                return -1;
        return 0;
}
