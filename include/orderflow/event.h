/* The event envelope of docs/reference.md 1: decoding a message value into a
 * validated of_event, or into a dead-letter reason; writing the envelope
 * of an outbox row. Uses cJSON internally; no cJSON node outlives a
 * call. */
#ifndef ORDERFLOW_EVENT_H
#define ORDERFLOW_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "orderflow/timestamp.h"

#define OF_ID_MAX     128 /* bytes of UTF-8 in id, aggregateId, type */
#define OF_REASON_MAX 512 /* a dead-letter reason, NUL included */
#define OF_AMOUNT_MAX 9007199254740991LL /* 2^53-1 */

/* Dead-letter reasons: the fixed phrase comes first, then optionally
 * ": detail". The first four are fixed by docs/reference.md 2. */
#define OF_REASON_DUP_PLACED "duplicate OrderPlaced for order"
#define OF_REASON_DUP_PAID   "duplicate OrderPaid for order"
#define OF_REASON_CONFLICT   "conflict"
#define OF_REASON_OVERFLOW   "amount overflow"
#define OF_REASON_NO_VALUE   "empty value"
#define OF_REASON_UTF8       "invalid UTF-8"
#define OF_REASON_JSON       "invalid JSON"
#define OF_REASON_NOT_OBJECT "not a JSON object"
#define OF_REASON_ID         "invalid id"
#define OF_REASON_TYPE       "invalid type"
#define OF_REASON_AGGREGATE  "invalid aggregateId"
#define OF_REASON_OCCURRED   "invalid occurredAt"
#define OF_REASON_PAYLOAD    "invalid payload"
#define OF_REASON_ORDER_ID   "invalid payload.orderId"
#define OF_REASON_MISMATCH   "aggregateId does not match payload.orderId"
#define OF_REASON_TOTAL      "invalid payload.total"
#define OF_REASON_AMOUNT     "invalid payload.amount"
#define OF_REASON_COUNT      17 /* the phrases above */

typedef enum of_event_type {
        OF_EVENT_OTHER = 0,  /* any other type: recorded, applied to nothing */
        OF_EVENT_PLACED = 1, /* OrderPlaced */
        OF_EVENT_PAID = 2,   /* OrderPaid */
} of_event_type;

/* A validated event. All strings are NUL-terminated UTF-8 without U+0000.
 * For OF_EVENT_OTHER only id and type_name are guaranteed; aggregate_id
 * and occurred_at are filled when the message has valid ones (else ""),
 * and amount is -1. */
typedef struct of_event {
        of_event_type type;
        char id[OF_ID_MAX + 1];           /* the event's identity */
        char type_name[OF_ID_MAX + 1];    /* the `type` string as sent */
        char aggregate_id[OF_ID_MAX + 1]; /* == payload.orderId */
        char occurred_at[OF_TS_LEN + 1];  /* normalised UTC, ms */
        int64_t amount; /* payload.total or payload.amount, minor unit */
} of_event;

/* Decode one message value (value may be NULL: a tombstone; it need not be
 * NUL-terminated). Returns 0 and fills *out for a valid event; returns 1
 * (a dead letter) and writes the reason, fixed phrase first, into reason.
 * Malformed input is data, not an error: the only failure is OF_ERROR when
 * memory ran out (reason: "out of memory"), so that a valid event is never
 * recorded as a dead letter for want of memory. */
int of_event_parse(of_event *out, const void *value, size_t value_len,
                   char *reason, size_t reason_size);

/* Where of_event_parse_at() found a valid event's strings in the value:
 * the offset of the very bytes of id, type_name, aggregate_id and
 * occurred_at in it, or -1 where they are not there as they are (escaped
 * in JSON, or an occurredAt that was not normalised already). A batch
 * keeps offsets instead of copies. */
typedef struct of_event_at {
        int32_t id, type_name, aggregate_id, occurred_at;
} of_event_at;

/* of_event_parse(), telling where the strings are (at may be NULL). */
int of_event_parse_at(of_event *out, of_event_at *at, const void *value,
                      size_t value_len, char *reason, size_t reason_size);

/* The same verdict by the general path alone (cJSON), which
 * of_event_parse() takes for anything but plain ASCII JSON: tests compare
 * the two. */
int of_event_parse_general(of_event *out, const void *value, size_t value_len,
                           char *reason, size_t reason_size);

/* Whether two valid deliveries of one id agree (docs/reference.md 1: type,
 * aggregateId, normalised occurredAt and amount equal). */
int of_event_agrees(const of_event *a, const of_event *b);

/* The fixed phrase number i (0 <= i < OF_REASON_COUNT) of the list above,
 * in its order. */
const char *of_event_reason_phrase(int i);

/* The number of the fixed phrase that reason starts with (the phrase
 * alone, or followed by ": detail"), or -1 when it starts with none. */
int of_event_reason_index(const char *reason);

/* Write the envelope of a valid OrderPlaced/OrderPaid event (docs/reference.md
 * 1) as compact JSON into *out (NUL-terminated; the caller frees it with
 * free()). Bytes of its strings that are not UTF-8 are written as they
 * are, so that of_event_parse() of the result says so. Returns 0, or
 * OF_ERROR when out of memory. */
int of_event_format(char **out, const of_event *ev);

#endif
