/* Private to the event module: the fields both decoders fill from a
 * message (the fast path, event_fast.c; the general path on cJSON,
 * event_general.c) and the rules of event.c judge, so that one set of
 * rules gives every verdict. */
#ifndef ORDERFLOW_EVENT_INT_H
#define ORDERFLOW_EVENT_INT_H

#include <stddef.h>

#include "orderflow/error.h"
#include "orderflow/event.h"

/* Writes "phrase" or "phrase: detail" into reason; returns 1 (dead). */
static inline int dead(char *reason, size_t reason_size, const char *phrase,
                       const char *detail)
{
        if (detail)
                of_errf(reason, reason_size, "%s: %s", phrase, detail);
        else
                of_errf(reason, reason_size, "%s", phrase);
        return 1;
}

static inline int is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline int is_digit(const char *s, size_t len, size_t i)
{
        return i < len && s[i] >= '0' && s[i] <= '9';
}

/* ---- Fields ----
 * The rules see the members they judge through a field: what kind of
 * value it is and, for a string, its decoded bytes; for a number, where
 * its text starts (and how much of the document follows, so the rules
 * also see the byte after it). */

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

/* The members of docs/reference.md 1, the first of each name (as cJSON finds
 * it). */
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
        "orderId",
        "total",
        "amount",
};

/* The fast path: when s is printable ASCII without a backslash, in JSON's
 * plain form, fills m (zeroed by the caller) in one pass with no
 * allocation and returns 0; else -1: take the general path, which gives
 * the same verdict. The fields point into s. */
int event_fast_fields(field *m, const char *s, size_t len);

/* What the general path's fields point into, alive until
 * event_general_free(). */
typedef struct event_doc {
        struct cJSON *root; /* the document */
        char *copy;         /* the text with \u0000 replaced (scan()) */
} event_doc;

/* The general path: UTF-8 and JSON's lexical rules checked, the grammar
 * left to cJSON, m (zeroed by the caller) filled from the document that
 * *doc keeps. Returns 0; 1 for a dead letter, its reason written; or
 * OF_ERROR when memory ran out (reason: "out of memory"). Either way the
 * caller frees doc with event_general_free() afterwards. */
int event_general_fields(field *m, event_doc *doc, const char *text,
                         size_t len, char *reason, size_t reason_size);

void event_general_free(event_doc *doc);

#endif
