/* of_event_parse() and of_event_agrees(): docs/reference.md 1 as tables of
 * message values with their verdicts, the contract's own examples decoded
 * field by field, and inputs too big for a table (deep nesting, MiB-long
 * fields). */
#include "testutil.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "orderflow/error.h"
#include "orderflow/event.h"

#define TS "2026-11-27T10:15:30.123Z"

/* An envelope with the parts a row varies. */
#define ENV(id, type, agg, at, payload)                                       \
        "{\"id\":\"" id "\",\"type\":\"" type "\",\"aggregateId\":\"" agg     \
        "\",\"occurredAt\":\"" at "\",\"payload\":" payload "}"
#define PLACED(total)                                                         \
        ENV("e-1", "OrderPlaced", "o-1", TS,                                  \
            "{\"orderId\":\"o-1\",\"total\":" total "}")
#define PAID(amount)                                                          \
        ENV("e-1", "OrderPaid", "o-1", TS,                                    \
            "{\"orderId\":\"o-1\",\"amount\":" amount "}")
#define WITH_ID(id)                                                           \
        ENV(id, "OrderPlaced", "o-1", TS, "{\"orderId\":\"o-1\",\"total\":1}")
#define WITH_AT(at)                                                           \
        ENV("e-1", "OrderPlaced", "o-1", at,                                  \
            "{\"orderId\":\"o-1\",\"total\":1}")
#define WITH_AGG(agg, order_id)                                               \
        ENV("e-1", "OrderPlaced", agg, TS,                                    \
            "{\"orderId\":\"" order_id "\",\"total\":1}")
#define WITH_PAYLOAD(payload) ENV("e-1", "OrderPlaced", "o-1", TS, payload)
#define WITH_TYPE(type)       ENV("e-1", type, "o-1", TS, "{\"orderId\":\"o-1\"}")

#define X4(s)   s s s s
#define X16(s)  X4(X4(s))
#define X64(s)  X4(X16(s))
#define A128    X64("a") X64("a")
#define E_ACUTE "\xc3\xa9"     /* U+00E9, 2 bytes */
#define EURO    "\xe2\x82\xac" /* U+20AC, 3 bytes */
#define EURO42  X16(EURO) X16(EURO) X4(EURO) X4(EURO) EURO EURO

struct parse_case {
        const char *value;  /* NULL: a tombstone */
        const char *reason; /* NULL: valid; else the reason's start */
        long long amount;   /* valid: the amount it must have */
        const char *at;     /* valid, not NULL: its occurred_at */
        const char *id;     /* valid, not NULL: its id */
        size_t len;         /* 0: strlen(value) */
};

#define OK(v, amount)                                                         \
        {                                                                     \
                v, NULL, amount, NULL, NULL, 0                                \
        }
#define DEAD(v, why)                                                          \
        {                                                                     \
                v, why, 0, NULL, NULL, 0                                      \
        }

static const struct parse_case cases[] = {
        /* amounts: judged from the decimal text, not from a double */
        OK(PLACED("1250"), 1250),
        OK(PAID("1250"), 1250),
        OK(PLACED("9007199254740991"), 9007199254740991LL),
        DEAD(PLACED("9007199254740992"), "invalid payload.total: above"),
        DEAD(PLACED("10000000000000000"), "invalid payload.total: above"),
        OK(PLACED("1250.0"), 1250),
        OK(PLACED("1.25e3"), 1250),
        OK(PLACED("1.25E+3"), 1250),
        OK(PLACED("125000e-2"), 1250),
        OK(PLACED("12500000000e-7"), 1250),
        OK(PLACED("9.007199254740991e15"), 9007199254740991LL),
        OK(PLACED("9007199254740991.000"), 9007199254740991LL),
        OK(PLACED("1" X16("000") "00e-50"), 1),
        OK(PLACED("0"), 0),
        OK(PLACED("-0"), 0),
        OK(PLACED("-0.0e5"), 0),
        OK(PLACED("0e400"), 0),
        OK(PLACED("0.5e1"), 5),
        DEAD(PLACED("1.5"), "invalid payload.total: not a whole number"),
        DEAD(PLACED("1.0000000000000001"),
             "invalid payload.total: not a whole number"),
        DEAD(PLACED("9007199254740990.5"),
             "invalid payload.total: not a whole number"),
        DEAD(PLACED("1e-400"), "invalid payload.total: not a whole number"),
        DEAD(PLACED("-1"), "invalid payload.total: negative"),
        DEAD(PLACED("-1.5"), "invalid payload.total: negative"),
        DEAD(PLACED("1e400"), "invalid payload.total: above 2^53-1"),
        DEAD(PLACED("1e16"), "invalid payload.total: above 2^53-1"),
        DEAD(PLACED("\"1250\""), "invalid payload.total: not a number"),
        DEAD(PLACED("true"), "invalid payload.total: not a number"),
        DEAD(PLACED("null"), "invalid payload.total: not a number"),
        DEAD(PLACED("[1250]"), "invalid payload.total: not a number"),
        /* cJSON takes these; JSON does not */
        DEAD(PLACED("01"), "invalid payload.total: malformed number"),
        DEAD(PLACED("1."), "invalid payload.total: malformed number"),
        DEAD(PLACED("-.5"), "invalid payload.total: malformed number"),
        DEAD(PAID("1.5"), "invalid payload.amount: not a whole number"),
        DEAD(PAID("9007199254740992"), "invalid payload.amount: above"),
        DEAD(WITH_PAYLOAD("{\"orderId\":\"o-1\"}"),
             "invalid payload.total: missing"),
        DEAD(ENV("e-1", "OrderPaid", "o-1", TS,
                 "{\"orderId\":\"o-1\",\"total\":1}"),
             "invalid payload.amount: missing"),
        /* the raw text found is the member cJSON returned */
        OK(WITH_PAYLOAD("{\"orderId\":\"o-1\",\"total\":7,\"total\":8}"), 7),
        OK(WITH_PAYLOAD("{\"orderId\":\"o-1\",\"tot\\u0061l\":77}"), 77),
        OK(WITH_PAYLOAD("{\"x\":{\"total\":5},\"n\":\"\\\"total\\\":6\","
                        "\"orderId\":\"o-1\",\"total\" : 1.5e1 }"),
           15),
        OK("{\"p\\u0061yload\":{\"orderId\":\"o-1\",\"total\":9},"
           "\"payload\":{\"total\":3},\"id\":\"e\",\"type\":\"OrderPlaced\","
           "\"aggregateId\":\"o-1\",\"occurredAt\":\"" TS "\"}",
           9),

        /* ids: bytes of UTF-8, not characters */
        OK(WITH_ID(A128), 1),
        DEAD(WITH_ID(A128 "a"), "invalid id: longer than 128 bytes"),
        OK(WITH_ID(X64(E_ACUTE)), 1),
        OK(WITH_ID(EURO42 "\\u00e9"), 1), /* 126 + 2 bytes */
        DEAD(WITH_ID(EURO42 EURO), "invalid id: longer than 128 bytes"),
        DEAD(WITH_ID(""), "invalid id: empty"),
        DEAD("{\"id\":5,\"type\":\"OrderPlaced\"}", "invalid id: not a str"),
        DEAD("{\"type\":\"OrderPlaced\"}", "invalid id: missing"),
        {.value = WITH_ID("\\ud83d\\ude00"),
         .amount = 1,
         .id = "\xf0\x9f\x98\x80"},

        /* U+0000 as an escape must not cut a string short */
        DEAD(WITH_ID("a\\u0000b"), "invalid id: contains U+0000"),
        DEAD(WITH_ID("\\u0000"), "invalid id: contains U+0000"),
        DEAD(WITH_AGG("o-1\\u0000x", "o-1\\u0000x"),
             "invalid aggregateId: contains U+0000"),
        DEAD(WITH_AGG("o-1", "o-1\\u0000"),
             "invalid payload.orderId: contains U+0000"),
        DEAD(WITH_TYPE("OrderPlaced\\u0000"), "invalid type: contains U+0"),
        OK(WITH_PAYLOAD("{\"orderId\":\"o-1\",\"note\":\"\\u0000\","
                        "\"total\":3}"),
           3),
        {.value = "{\"id\\u0000\":\"x\",\"id\":\"e-1\",\"type\":\"T\"}",
         .amount = -1,
         .id = "e-1"},
        /* an escaped backslash, then the text u0000: a literal */
        {.value = WITH_ID("a\\\\u0000"), .amount = 1, .id = "a\\u0000"},
        {.value = WITH_ID("a\\\\\\u0000"), .reason = "invalid id: contains"},
        /* a raw NUL is no better (and not JSON) */
        {.value = WITH_ID("a\0b"),
         .reason = "invalid JSON: control char",
         .len = sizeof(WITH_ID("a\0b")) - 1},

        /* type */
        DEAD(WITH_TYPE(""), "invalid type: empty"),
        DEAD(WITH_TYPE(A128 "a"), "invalid type: longer than 128 bytes"),
        DEAD("{\"id\":\"e-1\",\"type\":5}", "invalid type: not a string"),
        DEAD("{\"id\":\"e-1\",\"type\":null}", "invalid type: not a string"),
        DEAD("{\"id\":\"e-1\",\"aggregateId\":\"o-1\"}",
             "invalid type: missing"),
        OK("{\"id\":\"e-9\",\"type\":\"OrderShipped\"}", -1),
        OK(WITH_TYPE("orderplaced"), -1),
        OK(WITH_TYPE(A128), -1),
        DEAD("{\"type\":\"OrderShipped\"}", "invalid id: missing"),
        {.value = ENV("e-1", "OrderShipped", "o-1",
                      "2026-11-27T10:15:30+09:00", "7"),
         .amount = -1,
         .at = "2026-11-27T01:15:30.000Z"},
        {.value = ENV("e-1", "OrderShipped", "o-1", "yesterday", "7"),
         .amount = -1,
         .at = ""},

        /* occurredAt */
        {.value = WITH_AT("2026-11-27T10:15:30.123+09:00"),
         .amount = 1,
         .at = "2026-11-27T01:15:30.123Z"},
        {.value = WITH_AT("2026-01-01T01:00:00.5+02:00"),
         .amount = 1,
         .at = "2025-12-31T23:00:00.500Z"},
        {.value = WITH_AT("2026-11-27t10:15:30.123z"), .amount = 1, .at = TS},
        {.value = WITH_AT("2026-11-27T10:15:30.123999Z"),
         .amount = 1,
         .at = TS},
        DEAD(WITH_AT("2026-02-30T10:15:30Z"),
             "invalid occurredAt: no such day: 2026-02-30"),
        DEAD(WITH_AT("2026-11-27T10:15:60Z"),
             "invalid occurredAt: seconds above 59"),
        DEAD(WITH_AT("2026-11-27 10:15:30Z"),
             "invalid occurredAt: a space instead of T"),
        DEAD(WITH_AT("2026-11-27T10:15:30"),
             "invalid occurredAt: no UTC offset"),
        DEAD(WITH_AT(""), "invalid occurredAt: empty"),
        DEAD(WITH_AT("\\u0000"), "invalid occurredAt: not a date"),
        DEAD("{\"id\":\"e\",\"type\":\"OrderPaid\",\"aggregateId\":\"o\"}",
             "invalid occurredAt: missing"),

        /* aggregateId, payload, orderId */
        DEAD(WITH_AGG("o-1", "o-2"),
             "aggregateId does not match payload.orderId"),
        DEAD(WITH_AGG("o-1", "O-1"),
             "aggregateId does not match payload.orderId"),
        DEAD(WITH_AGG("", ""), "invalid aggregateId: empty"),
        DEAD(WITH_AGG(A128 "a", A128 "a"), "invalid aggregateId: longer"),
        DEAD("{\"id\":\"e\",\"type\":\"OrderPaid\"}",
             "invalid aggregateId: missing"),
        DEAD(WITH_AGG("o-1", ""), "invalid payload.orderId: empty"),
        DEAD(WITH_PAYLOAD("{\"total\":1}"), "invalid payload.orderId: miss"),
        DEAD(WITH_PAYLOAD("{\"orderId\":1,\"total\":1}"),
             "invalid payload.orderId: not a string"),
        DEAD(WITH_PAYLOAD("[]"), "invalid payload: not an object"),
        DEAD(WITH_PAYLOAD("\"o-1\""), "invalid payload: not an object"),
        DEAD("{\"id\":\"e\",\"type\":\"OrderPaid\",\"aggregateId\":\"o\","
             "\"occurredAt\":\"" TS "\"}",
             "invalid payload: missing"),
        /* unknown fields anywhere are ignored */
        OK("{\"v\":2,\"meta\":{\"a\":[1,{\"b\":null}],\"id\":\"x\"},"
           "\"id\":\"e-1\",\"type\":\"OrderPlaced\",\"aggregateId\":\"o-1\","
           "\"occurredAt\":\"" TS "\",\"payload\":{\"lines\":[{\"total\":9}],"
           "\"orderId\":\"o-1\",\"currency\":\"JPY\",\"total\":1250,"
           "\"x\":-1.5e999},\"z\":true}",
           1250),

        /* UTF-8 */
        DEAD(WITH_ID("\xc3\x28"), "invalid UTF-8: at byte 7"),
        DEAD(WITH_ID("\xff"), "invalid UTF-8"),
        DEAD(WITH_ID("\xc0\xaf"), "invalid UTF-8"),
        DEAD(WITH_ID("\xe0\x80\xaf"), "invalid UTF-8"),
        DEAD(WITH_ID("\xed\xa0\x80"), "invalid UTF-8"),
        DEAD(WITH_ID("\xf4\x90\x80\x80"), "invalid UTF-8"),
        DEAD(PLACED("1") "\xc3", "invalid UTF-8"),
        {.value = WITH_ID("\xf4\x8f\xbf\xbf"),
         .amount = 1,
         .id = "\xf4\x8f\xbf\xbf"},
        OK("\xef\xbb\xbf" PLACED("4"), 4), /* cJSON skips a BOM */

        /* not one JSON object */
        DEAD(NULL, "empty value"),
        DEAD("", "empty value"),
        DEAD(" ", "invalid JSON"),
        DEAD("{", "invalid JSON"),
        DEAD(PLACED("1") "x", "invalid JSON: data after"),
        DEAD(PLACED("1") "{}", "invalid JSON: data after"),
        DEAD(PLACED("1") "\x01", "invalid JSON: control character"),
        DEAD(WITH_ID("a\tb"), "invalid JSON: control character in a str"),
        DEAD("{\x01\"id\":\"e\",\"type\":\"T\"}", "invalid JSON: control"),
        DEAD(WITH_ID("\\ud800"), "invalid JSON"),
        DEAD("{\"id\":\"e\",\"type\":\"T\",}", "invalid JSON"),
        DEAD("{\"id\":\"e\",\"type\":\"T\"", "invalid JSON"),
        DEAD("{\"id\":\"e\\", "invalid JSON"),
        DEAD("[" PLACED("1") "]", "not a JSON object"),
        DEAD("\"x\"", "not a JSON object"),
        DEAD("null", "not a JSON object"),
        OK(" \r\n\t" PLACED("2") " \r\n\t", 2),
};

static void check_case(const struct parse_case *c, size_t row)
{
        size_t len = c->value ? (c->len ? c->len : strlen(c->value)) : 0;
        char *copy = c->value ? malloc(len ? len : 1) : NULL;
        const char *shown = c->value ? c->value : "(tombstone)";
        char reason[OF_REASON_MAX] = "";
        of_event ev;
        int rc;

        /* an exact-size copy: no NUL after it, overreads are caught */
        if (copy)
                memcpy(copy, c->value, len);
        rc = of_event_parse(&ev, copy, len, reason, sizeof(reason));
        free(copy);
        if (c->reason) {
                if (rc != 1)
                        fail_msg("row %zu (%.60s): valid, want '%s'", row,
                                 shown, c->reason);
                if (strncmp(reason, c->reason, strlen(c->reason)) != 0)
                        fail_msg("row %zu (%.60s): '%s', want '%s...'", row,
                                 shown, reason, c->reason);
                return;
        }
        if (rc != 0)
                fail_msg("row %zu (%.60s): dead letter '%s'", row, shown,
                         reason);
        if (ev.amount != c->amount)
                fail_msg("row %zu: amount %lld, want %lld", row,
                         (long long)ev.amount, c->amount);
        if (c->at && strcmp(ev.occurred_at, c->at) != 0)
                fail_msg("row %zu: occurred_at '%s', want '%s'", row,
                         ev.occurred_at, c->at);
        if (c->id && strcmp(ev.id, c->id) != 0)
                fail_msg("row %zu: id '%s', want '%s'", row, ev.id, c->id);
}

static void test_event_parse_gives_each_value_its_verdict(void **state)
{
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                check_case(&cases[i], i);
}

static void test_event_parse_decodes_contract_examples(void **state)
{
        static const char placed[] =
                "{\"id\":\"9f1c2a70-5b1e-4c43-a1de-0d7d2a1b9e01\","
                "\"type\":\"OrderPlaced\",\"aggregateId\":\"o-1001\",\n"
                " \"occurredAt\":\"2026-11-27T10:15:30.123Z\","
                "\"payload\":{\"orderId\":\"o-1001\",\"total\":1250}}";
        static const char paid[] =
                "{\"id\":\"3b7e8c11-0f2d-4f6e-9a55-5c0e4f3b2a10\","
                "\"type\":\"OrderPaid\",\"aggregateId\":\"o-1001\",\n"
                " \"occurredAt\":\"2026-11-27T10:16:02.000Z\","
                "\"payload\":{\"orderId\":\"o-1001\",\"amount\":1250}}";
        char reason[OF_REASON_MAX] = "";
        of_event ev;

        (void)state;
        assert_int_equal(of_event_parse(&ev, placed, strlen(placed), reason,
                                        sizeof(reason)),
                         0);
        assert_int_equal(ev.type, OF_EVENT_PLACED);
        assert_string_equal(ev.id, "9f1c2a70-5b1e-4c43-a1de-0d7d2a1b9e01");
        assert_string_equal(ev.type_name, "OrderPlaced");
        assert_string_equal(ev.aggregate_id, "o-1001");
        assert_string_equal(ev.occurred_at, "2026-11-27T10:15:30.123Z");
        assert_int_equal(ev.amount, 1250);

        assert_int_equal(of_event_parse(&ev, paid, strlen(paid), reason,
                                        sizeof(reason)),
                         0);
        assert_int_equal(ev.type, OF_EVENT_PAID);
        assert_string_equal(ev.id, "3b7e8c11-0f2d-4f6e-9a55-5c0e4f3b2a10");
        assert_string_equal(ev.type_name, "OrderPaid");
        assert_string_equal(ev.aggregate_id, "o-1001");
        assert_string_equal(ev.occurred_at, "2026-11-27T10:16:02.000Z");
        assert_int_equal(ev.amount, 1250);
}

/* The offsets point at the very bytes; an escaped string or an occurredAt
 * that normalising changed is not in the value as it is: -1. */
static void test_event_parse_at_finds_the_strings_in_the_value(void **state)
{
        static const char plain[] =
                "{\"id\":\"e-1\",\"type\":\"OrderPlaced\",\"aggregateId\":"
                "\"o-1\",\"occurredAt\":\"2026-11-27T10:15:30.123Z\","
                "\"payload\":{\"orderId\":\"o-1\",\"total\":5}}";
        static const char offset[] =
                "{\"id\":\"e-2\",\"type\":\"OrderPaid\",\"aggregateId\":"
                "\"o-2\",\"occurredAt\":\"2026-11-27T11:15:30+01:00\","
                "\"payload\":{\"orderId\":\"o-2\",\"amount\":5}}";
        static const char escaped[] =
                "{\"id\":\"e\\u002d3\",\"type\":\"OrderPaid\",\"aggregateId\":"
                "\"o-3\",\"occurredAt\":\"2026-11-27T10:15:30.000Z\","
                "\"payload\":{\"orderId\":\"o-3\",\"amount\":5}}";
        char reason[OF_REASON_MAX];
        of_event ev;
        of_event_at at;

        (void)state;
        assert_int_equal(of_event_parse_at(&ev, &at, plain, strlen(plain),
                                           reason, sizeof(reason)),
                         0);
        assert_memory_equal(plain + at.id, "e-1", 3);
        assert_memory_equal(plain + at.type_name, "OrderPlaced", 11);
        assert_memory_equal(plain + at.aggregate_id, "o-1", 3);
        assert_memory_equal(plain + at.occurred_at, "2026-11-27T10:15:30.123Z",
                            24);
        /* Normalising changed occurredAt: not in the value. */
        assert_int_equal(of_event_parse_at(&ev, &at, offset, strlen(offset),
                                           reason, sizeof(reason)),
                         0);
        assert_memory_equal(offset + at.id, "e-2", 3);
        assert_int_equal(at.occurred_at, -1);
        assert_string_equal(ev.occurred_at, "2026-11-27T10:15:30.000Z");
        /* An escape: the general path, whose strings are its own. */
        assert_int_equal(of_event_parse_at(&ev, &at, escaped, strlen(escaped),
                                           reason, sizeof(reason)),
                         0);
        assert_string_equal(ev.id, "e-3");
        assert_int_equal(at.id, -1);
        assert_int_equal(at.aggregate_id, -1);
}

static void test_event_parse_other_type_needs_only_an_id(void **state)
{
        static const char v[] = "{\"type\":\"OrderShipped\",\"id\":\"e-7\"}";
        char reason[OF_REASON_MAX] = "";
        of_event ev;

        (void)state;
        assert_int_equal(
                of_event_parse(&ev, v, strlen(v), reason, sizeof(reason)), 0);
        assert_int_equal(ev.type, OF_EVENT_OTHER);
        assert_string_equal(ev.id, "e-7");
        assert_string_equal(ev.type_name, "OrderShipped");
        assert_string_equal(ev.aggregate_id, "");
        assert_string_equal(ev.occurred_at, "");
        assert_int_equal(ev.amount, -1);
}

/* The outbox's envelope, byte for byte as cJSON's printer wrote it before
 * json.c did: compact, members in docs/reference.md 1's order, the amount in
 * plain digits, '"', '\\' and control characters escaped, UTF-8 as it is; and
 * it decodes to the same event. */
static void test_event_format_writes_the_envelope(void **state)
{
        of_event ev = {
                .type = OF_EVENT_PLACED,
                .id = "e-\"\\\x01/" E_ACUTE,
                .type_name = "OrderPlaced",
                .aggregate_id = "o-" EURO,
                .occurred_at = TS,
                .amount = 1000000000000000LL,
        };
        char reason[OF_REASON_MAX] = "", *text = NULL;
        of_event back;

        (void)state;
        assert_int_equal(of_event_format(&text, &ev), 0);
        assert_string_equal(
                text, "{\"id\":\"e-\\\"\\\\\\u0001/" E_ACUTE "\","
                      "\"type\":\"OrderPlaced\",\"aggregateId\":\"o-" EURO
                      "\",\"occurredAt\":\"" TS "\",\"payload\":{"
                      "\"orderId\":\"o-" EURO "\",\"total\":"
                      "1000000000000000}}");
        assert_int_equal(of_event_parse(&back, text, strlen(text), reason,
                                        sizeof(reason)),
                         0);
        assert_true(of_event_agrees(&ev, &back));
        assert_string_equal(back.id, ev.id);
        free(text);

        ev.type = OF_EVENT_PAID;
        ev.amount = 7;
        assert_int_equal(of_event_format(&text, &ev), 0);
        assert_non_null(strstr(text, "\"type\":\"OrderPaid\""));
        assert_non_null(
                strstr(text, "{\"orderId\":\"o-" EURO "\",\"amount\":7}}"));
        free(text);
}

/* Parses the len bytes at v (which it frees), expecting the verdict rc
 * and a reason that starts with want (when rc is 1). */
static void expect_verdict(char *v, size_t len, int rc, const char *want,
                           long long amount)
{
        char reason[OF_REASON_MAX] = "";
        of_event ev;

        assert_int_equal(of_event_parse(&ev, v, len, reason, sizeof(reason)),
                         rc);
        free(v);
        if (rc == 1)
                assert_true(strncmp(reason, want, strlen(want)) == 0);
        else
                assert_int_equal(ev.amount, amount);
        /* a reason never echoes a long input */
        assert_true(strlen(reason) < 100);
}

static void test_event_parse_survives_10000_deep_nesting(void **state)
{
        static const char head[] = "{\"id\":\"e-1\",\"type\":\"T\",\"x\":";
        const size_t depth = 10000;
        size_t hl = strlen(head), i;
        char *v;

        (void)state;
        v = malloc(2 * depth);
        assert_non_null(v);
        memset(v, '[', depth);
        memset(v + depth, ']', depth);
        expect_verdict(v, 2 * depth, 1, "invalid JSON", 0);

        /* the same inside an unknown field: as bad */
        v = malloc(hl + 2 * depth + 1);
        assert_non_null(v);
        memcpy(v, head, hl);
        memset(v + hl, '[', depth);
        memset(v + hl + depth, ']', depth);
        v[hl + 2 * depth] = '}';
        expect_verdict(v, hl + 2 * depth + 1, 1, "invalid JSON", 0);

        /* 500 deep is within cJSON's limit of 1000, and is skipped over
         * on the way to the total */
        v = malloc(strlen(PLACED("5")) + 2000);
        assert_non_null(v);
        i = (size_t)sprintf(v, "{\"x\":");
        memset(v + i, '[', 500);
        memset(v + i + 500, ']', 500);
        i += 1000;
        i += (size_t)sprintf(v + i, ",%s", &PLACED("5")[1]); /* no { */
        expect_verdict(v, i, 0, NULL, 5);
}

static void test_event_parse_ignores_a_mib_long_unknown_field(void **state)
{
        const size_t big = 6u << 20;
        const char *tail = &PLACED("1.25e3")[1]; /* without its { */
        size_t n, len;
        char *v;

        (void)state;
        len = 16 + big + strlen(tail);
        v = malloc(len);
        assert_non_null(v);
        n = (size_t)sprintf(v, "{\"pad\":\"");
        memset(v + n, 'x', big);
        n += big;
        v[n++] = '"';
        v[n++] = ',';
        memcpy(v + n, tail, strlen(tail));
        n += strlen(tail);
        assert_true(n <= len);
        expect_verdict(v, n, 0, NULL, 1250);

        /* and one with a U+0000 somewhere in it: the slow path */
        v = malloc(len);
        assert_non_null(v);
        n = (size_t)sprintf(v, "{\"pad\":\"\\u0000");
        memset(v + n, 'x', big - 6);
        n += big - 6;
        v[n++] = '"';
        v[n++] = ',';
        memcpy(v + n, tail, strlen(tail));
        n += strlen(tail);
        assert_true(n <= len);
        expect_verdict(v, n, 0, NULL, 1250);
}

struct agree_case {
        const char *a, *b;
        int agrees;
};

static const struct agree_case agree_cases[] = {
        {PLACED("1250"), PLACED("1250"), 1},
        /* white space, key order and unknown fields do not matter */
        {PLACED("1250"),
         "{ \"payload\" : { \"total\" : 1250.0, \"orderId\" : \"o-1\" },\n"
         "  \"occurredAt\" : \"2026-11-27T19:15:30.123+09:00\", \"x\": [],\n"
         "  \"aggregateId\" : \"o-1\", \"type\" : \"OrderPlaced\",\n"
         "  \"id\" : \"e-1\" }\n",
         1},
        /* nor does the id: deliveries are compared once ids match */
        {PLACED("1250"),
         ENV("e-2", "OrderPlaced", "o-1", TS,
             "{\"orderId\":\"o-1\",\"total\":125e1}"),
         1},
        {PLACED("1250"), PLACED("1251"), 0},
        {PLACED("1250"), PAID("1250"), 0},
        {PLACED("1"), WITH_AT("2026-11-27T10:15:30.124Z"), 0},
        {PLACED("1"), WITH_AGG("o-2", "o-2"), 0},
        {WITH_TYPE("OrderShipped"), WITH_TYPE("OrderShipped"), 1},
        {WITH_TYPE("OrderShipped"), WITH_TYPE("OrderPacked"), 0},
};

static void test_event_agrees_on_type_aggregate_time_and_amount(void **state)
{
        char reason[OF_REASON_MAX];
        of_event a, b;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(agree_cases) / sizeof(agree_cases[0]); i++) {
                const struct agree_case *c = &agree_cases[i];

                if (of_event_parse(&a, c->a, strlen(c->a), reason,
                                   sizeof(reason)) != 0 ||
                    of_event_parse(&b, c->b, strlen(c->b), reason,
                                   sizeof(reason)) != 0)
                        fail_msg("row %zu: dead letter '%s'", i, reason);
                if (of_event_agrees(&a, &b) != c->agrees ||
                    of_event_agrees(&b, &a) != c->agrees)
                        fail_msg("row %zu: agrees should be %d", i, c->agrees);
        }
}

/* ---- the fast path against the general one ---- */

/* Both paths on the len bytes at v: the same verdict, reason and event. */
static void expect_same_verdict(const char *v, size_t len, const char *what)
{
        char r1[OF_REASON_MAX] = "", r2[OF_REASON_MAX] = "";
        of_event e1, e2;
        int rc1 = of_event_parse(&e1, v, len, r1, sizeof(r1));
        int rc2 = of_event_parse_general(&e2, v, len, r2, sizeof(r2));

        if (rc1 != rc2 || strcmp(r1, r2) != 0 ||
            memcmp(&e1, &e2, sizeof(e1)) != 0)
                fail_msg("%s (%.*s): %d '%s' vs general %d '%s'", what,
                         (int)(len < 200 ? len : 200), v, rc1, r1, rc2, r2);
}

static uint64_t xorshift(uint64_t *x)
{
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        return *x;
}

/* Every table row, then 300,000 mutants of the plain rows: bytes replaced,
 * inserted or deleted with JSON's own characters, so most stay on the
 * fast path or just fall off it. The first difference fails. */
static void test_event_fast_path_agrees_with_general_path(void **state)
{
        static const char alphabet[] =
                "{}[]\":,.-+eE0123456789 tfnrulsa1OrderPaidPlacedtotal";
        char buf[512], what[64];
        uint64_t x = 0x9e3779b97f4a7c15u;
        size_t i, n, len, at, rows = sizeof(cases) / sizeof(cases[0]);
        int k, edits;

        (void)state;
        for (i = 0; i < rows; i++) {
                if (!cases[i].value)
                        continue;
                len = cases[i].len ? cases[i].len : strlen(cases[i].value);
                snprintf(what, sizeof(what), "row %zu", i);
                expect_same_verdict(cases[i].value, len, what);
        }
        for (n = 0; n < 300000; n++) {
                const char *base = cases[xorshift(&x) % rows].value;

                if (!base || (len = strlen(base)) >= sizeof(buf) - 8)
                        continue;
                memcpy(buf, base, len);
                edits = 1 + (int)(xorshift(&x) % 3);
                for (k = 0; k < edits && len > 0; k++) {
                        at = xorshift(&x) % len;
                        switch (xorshift(&x) % 3) {
                        case 0:
                                buf[at] = alphabet[xorshift(&x) %
                                                   (sizeof(alphabet) - 1)];
                                break;
                        case 1:
                                memmove(buf + at + 1, buf + at, len - at);
                                buf[at] = alphabet[xorshift(&x) %
                                                   (sizeof(alphabet) - 1)];
                                len++;
                                break;
                        default:
                                memmove(buf + at, buf + at + 1, len - at - 1);
                                len--;
                        }
                }
                snprintf(what, sizeof(what), "mutant %zu", n);
                expect_same_verdict(buf, len, what);
        }
}

/* Numbers cJSON reads differently from JSON's grammar (it stops copying
 * a number at 63 bytes) take the general path. */
static void test_event_long_numbers_match_cjson(void **state)
{
        char v[600];
        int digits;

        (void)state;
        for (digits = 55; digits < 70; digits++) {
                snprintf(v, sizeof(v),
                         "{\"id\":\"e\",\"type\":\"X\",\"n\":%.*s}", digits,
                         "1000000000000000000000000000000000000000000000000"
                         "0000000000000000000000000000000000000");
                expect_same_verdict(v, strlen(v), "long number");
                snprintf(v, sizeof(v), PLACED("%.*s"), digits,
                         "1000000000000000000000000000000000000000000000000"
                         "0000000000000000000000000000000000000");
                expect_same_verdict(v, strlen(v), "long total");
        }
}

/* Found by fuzz_apply: an object inside an unknown member (the fast path
 * parses it without recording members) made the parser offset a null
 * pointer (UBSan). */
static void test_event_fast_path_nested_unknown_object(void **state)
{
        static const char v[] =
                "{\"id\":\"e-9\",\"x\":{\"payload\":{\"a\":1}},\"type\":"
                "\"OrderPlaced\",\"aggregateId\":\"o-9\",\"occurredAt\":"
                "\"2026-11-27T10:15:30Z\",\"payload\":{\"orderId\":\"o-9\","
                "\"total\":9,\"y\":{\"z\":[]}}}";
        char reason[OF_REASON_MAX] = "";
        of_event ev;

        (void)state;
        assert_int_equal(
                of_event_parse(&ev, v, strlen(v), reason, sizeof(reason)), 0);
        assert_int_equal(ev.amount, 9);
        expect_same_verdict(v, strlen(v), "nested unknown object");
}

/* Memory running out while decoding is an error (the caller stops and
 * tries again later), never a dead letter: a valid event must not be lost
 * for want of memory. The general path's copy of a 48 MiB string fails
 * under an address-space limit, in a child process. */
/* The reason's fixed phrase, as the projector's metrics label it. */
static void test_event_reason_index_takes_the_fixed_phrase(void **state)
{
        static const struct {
                const char *reason;
                const char *phrase; /* NULL: none */
        } reasons[] = {
                {"invalid JSON", OF_REASON_JSON},
                {"invalid JSON: unexpected end at byte 6", OF_REASON_JSON},
                {"invalid payload", OF_REASON_PAYLOAD},
                {"invalid payload: not an object", OF_REASON_PAYLOAD},
                {"invalid payload.total: a fraction", OF_REASON_TOTAL},
                {"invalid payload.orderId: missing", OF_REASON_ORDER_ID},
                {"duplicate OrderPaid for order: o-1", OF_REASON_DUP_PAID},
                {"conflict: event e1 was applied with another type",
                 OF_REASON_CONFLICT},
                {"aggregateId does not match payload.orderId",
                 OF_REASON_MISMATCH},
                {"invalid JSONx", NULL},
                {"conflicting", NULL},
                {"", NULL},
        };
        size_t i;
        int k;

        (void)state;
        for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
                k = of_event_reason_index(reasons[i].reason);
                if (!reasons[i].phrase)
                        assert_int_equal(k, -1);
                else
                        assert_string_equal(of_event_reason_phrase(k),
                                            reasons[i].phrase);
        }
        /* Each phrase is its own index. */
        for (k = 0; k < OF_REASON_COUNT; k++)
                assert_int_equal(
                        of_event_reason_index(of_event_reason_phrase(k)), k);
}

static void test_event_out_of_memory_is_an_error(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
        (void)state;
        skip(); /* ASan's shadow memory needs the address space */
#else
        const size_t big = 48u << 20;
        int status;
        pid_t pid;

        (void)state;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char reason[OF_REASON_MAX] = "", *v = malloc(big + 64);
                unsigned long pages = 0;
                struct rlimit rl;
                of_event ev;
                FILE *f;
                int n, rc;

                if (!v)
                        _exit(2);
                n = sprintf(v, "{\"id\":\"e-\xc3\xa9\",\"type\":\"X\","
                               "\"big\":\"");
                memset(v + n, 'a', big);
                memcpy(v + n + big, "\"}", 2);
                f = fopen("/proc/self/statm", "r");
                if (!f || fscanf(f, "%lu", &pages) != 1)
                        _exit(3);
                fclose(f);
                /* room for small allocations, not for a copy of big */
                rl.rlim_cur = rl.rlim_max =
                        pages * (rlim_t)sysconf(_SC_PAGESIZE) + (16u << 20);
                if (setrlimit(RLIMIT_AS, &rl))
                        _exit(4);
                rc = of_event_parse(&ev, v, (size_t)n + big + 2, reason,
                                    sizeof(reason));
                _exit(rc == OF_ERROR && strcmp(reason, "out of memory") == 0
                              ? 0
                              : 10 + rc);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_event_parse_gives_each_value_its_verdict),
                cmocka_unit_test(test_event_parse_decodes_contract_examples),
                cmocka_unit_test(test_event_parse_other_type_needs_only_an_id),
                cmocka_unit_test(
                        test_event_parse_at_finds_the_strings_in_the_value),
                cmocka_unit_test(test_event_format_writes_the_envelope),
                cmocka_unit_test(test_event_parse_survives_10000_deep_nesting),
                cmocka_unit_test(
                        test_event_parse_ignores_a_mib_long_unknown_field),
                cmocka_unit_test(
                        test_event_agrees_on_type_aggregate_time_and_amount),
                cmocka_unit_test(
                        test_event_fast_path_agrees_with_general_path),
                cmocka_unit_test(test_event_long_numbers_match_cjson),
                cmocka_unit_test(test_event_fast_path_nested_unknown_object),
                cmocka_unit_test(
                        test_event_reason_index_takes_the_fixed_phrase),
                cmocka_unit_test(test_event_out_of_memory_is_an_error),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
