/* The parts of test_property: the types a case is made of and what each
 * part offers. util.c, events.c, json.c, delivery.c and model.c compute the
 * expected outcome from the contract alone; db.c drives the store and reads
 * the read model, and is the only part that touches src/. */
#ifndef ORDERFLOW_PROP_H
#define ORDERFLOW_PROP_H

/* The model is independent of src/: no part but db.c includes an orderflow
 * header or sqlite3.h, or calls of_*; this lists db.c alone:
 *   grep -rlE 'orderflow/|sqlite3|of_[a-z]' --include='*.c' tests/prop
 * So this header includes neither, and the model spells the contract's
 * dead-letter phrases itself: a phrase changed in src/ fails the test. */
#include <stddef.h>
#include <stdint.h>

#define PROP_TOPIC      "orders"
#define PROP_NPART      4
#define PROP_ID_CAP     160 /* id and order buffers: 129 bytes + NUL fit */
#define PROP_AMOUNT_MAX 9007199254740991LL /* 2^53-1 */

/* UTF-8 pieces, kept apart so that no \x escape swallows a letter. */
#define PROP_E_ACUTE "\xc3\xa9"
#define PROP_NIHON   "\xe6\x97\xa5\xe6\x9c\xac"
#define PROP_GCLEF   "\xf0\x9d\x84\x9e"
#define PROP_SMILE   "\xf0\x9f\x98\x80"

/* The dead-letter reasons' fixed phrases (docs/reference.md 2). */
#define PROP_REASON_DUP_PLACED "duplicate OrderPlaced for order"
#define PROP_REASON_DUP_PAID   "duplicate OrderPaid for order"
#define PROP_REASON_CONFLICT   "conflict"
#define PROP_REASON_OVERFLOW   "amount overflow"
#define PROP_REASON_NO_VALUE   "empty value"
#define PROP_REASON_UTF8       "invalid UTF-8"
#define PROP_REASON_JSON       "invalid JSON"
#define PROP_REASON_NOT_OBJECT "not a JSON object"
#define PROP_REASON_ID         "invalid id"
#define PROP_REASON_TYPE       "invalid type"
#define PROP_REASON_OCCURRED   "invalid occurredAt"
#define PROP_REASON_PAYLOAD    "invalid payload"
#define PROP_REASON_MISMATCH   "aggregateId does not match payload.orderId"
#define PROP_REASON_TOTAL      "invalid payload.total"
#define PROP_REASON_AMOUNT     "invalid payload.amount"

/* ---- util.c: memory, random numbers, strings, calendar -------------- */

typedef struct prop_rng {
        uint64_t s; /* splitmix64 state */
} prop_rng;

typedef struct prop_sbuf {
        char *p;    /* NUL-terminated once anything was added */
        size_t len; /* bytes, NUL excluded */
        size_t cap;
} prop_sbuf;

typedef struct prop_civil {
        int64_t y;
        int mo, d, h, mi, s;
} prop_civil;

/* realloc that aborts when out of memory; n 0 allocates 1 byte. */
void *prop_xrealloc(void *p, size_t n);
/* A malloc'ed copy of the n bytes at s. */
void *prop_dupbytes(const void *s, size_t n);
/* p with room for element n of size bytes, *cap grown as needed. */
void *prop_grow(void *p, size_t n, size_t *cap, size_t size);

uint64_t prop_rnd(prop_rng *r);
/* Uniform in [0, n); 0 when n is 0. */
uint64_t prop_below(prop_rng *r, uint64_t n);
/* True percent times in 100. */
int prop_chance(prop_rng *r, unsigned percent);

#define PROP_PICK(r, arr)                                                     \
        ((arr)[prop_below((r), sizeof(arr) / sizeof(*(arr)))])

void prop_sb_add(prop_sbuf *b, const void *s, size_t n);
void prop_sb_puts(prop_sbuf *b, const char *s);
void prop_sb_putc(prop_sbuf *b, char c);
/* Up to 399 bytes of output, or abort(). */
void prop_sb_printf(prop_sbuf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Frees b's bytes and empties it. */
void prop_sb_free(prop_sbuf *b);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t prop_days_from_civil(int64_t y, int m, int d);
/* The UTC date and time of secs since 1970. */
prop_civil prop_to_civil(int64_t secs);
/* The contract's normalised form: YYYY-MM-DDTHH:MM:SS.sssZ. */
void prop_utc_text(char out[48], int64_t secs, int ms);

/* The pieces of a canonical dump both sides write alike: text quoted with
 * control bytes, quotes and backslashes as \xNN; bytes as length and hash
 * (or NULL); each partition's next offset ("none" when below 0). */
void prop_put_text(prop_sbuf *o, const void *p, size_t n);
void prop_put_bytes(prop_sbuf *o, const void *p, size_t n, int null);
void prop_put_offsets(prop_sbuf *o, const int64_t next[PROP_NPART]);

/* ---- events.c: the events of a case --------------------------------- */

enum { PROP_PLACED, PROP_PAID, PROP_OTHER };

/* Ways to break a message; each maps to the reason(s) it must get. */
enum prop_defect {
        PROP_D_NONE,
        PROP_D_NULL,
        PROP_D_CUT,
        PROP_D_TRAIL,
        PROP_D_NOT_OBJECT,
        PROP_D_NEG,
        PROP_D_FRACTION,
        PROP_D_2P53,
        PROP_D_STRING,
        PROP_D_NO_ID,
        PROP_D_EMPTY_ID,
        PROP_D_LONG_ID,
        PROP_D_NUL_ID,
        PROP_D_BAD_UTF8,
        PROP_D_BAD_DATE,
        PROP_D_NO_OFFSET,
        PROP_D_SPACE_T,
        PROP_D_SEC60,
        PROP_D_BAD_YEAR,
        PROP_D_NO_TYPE,
        PROP_D_NUM_TYPE,
        PROP_D_MISMATCH,
        PROP_D_NO_PAYLOAD,
        PROP_D_COUNT
};

typedef struct prop_body {
        int type;              /* PROP_PLACED, PROP_PAID or PROP_OTHER */
        const char *type_name; /* the type string sent */
        int idn;               /* identity: equal idn <=> equal id */
        char id[PROP_ID_CAP];  /* the id, decoded UTF-8 */
        int order;             /* index into the case's orders, -1 none */
        int has_at;            /* occurredAt sent (always for known types) */
        int64_t at_s;          /* occurredAt: UTC seconds since 1970 */
        int at_ms;             /* and the milliseconds kept of it */
        int64_t amount;        /* total or amount; -1 for PROP_OTHER */
        int has_payload;       /* a payload object is sent */
} prop_body;

typedef struct prop_msg {
        int32_t partition;
        int64_t offset;
        unsigned char *key; /* exactly key_len bytes; NULL: no key */
        size_t key_len;
        unsigned char *value; /* exactly value_len bytes, no NUL; or NULL */
        size_t value_len;
        int body;           /* the body it carries */
        const char *reason; /* malformed: the reason phrase(s), '|' */
} prop_msg;

typedef struct prop_case {
        uint64_t seed;
        prop_rng r;
        int64_t t0;                  /* the case's time window: first second */
        int64_t span;                /* and its length in seconds */
        char (*orders)[PROP_ID_CAP]; /* order ids */
        int norders;
        prop_body *bodies;
        size_t nbodies, cbodies;
        int nidn;      /* identities handed out */
        prop_msg *log; /* the delivery log, in log order */
        size_t nlog, clog;
        size_t maxb;        /* largest batch; 0: chosen at random */
        size_t (*sched)[2]; /* the slices applied, in order */
        size_t nsched, csched;
} prop_case;

/* An empty case drawn from seed: its random state and time window. */
void prop_case_init(prop_case *c, uint64_t seed);
void prop_case_free(prop_case *c);
int64_t prop_rand_amount(prop_rng *r);
/* An instant in the case's window, *ms its milliseconds. */
void prop_rand_instant(prop_case *c, int64_t *s, int *ms);
/* A new body with a new identity; returns its index. */
int prop_new_body(prop_case *c, int type, int order);
/* 1..max_orders orders, each placed (~85%) and paid (~70%), plus a few
 * events of other types: a valid set, every id with one body. */
void prop_gen_valid_set(prop_case *c, int max_orders);
/* A random existing OrderPlaced/OrderPaid body, or -1. */
int prop_pick_known(prop_case *c);
/* Another body with the identity of bi, to be made to disagree; returns
 * its index. */
int prop_clone_body(prop_case *c, int bi);

/* ---- json.c: a body as a message value ------------------------------ */

/* Body b rendered into o as some producer might write it, broken by
 * defect (PROP_D_NONE: well-formed), drawing on c's random state. */
void prop_render_value(prop_sbuf *o, prop_case *c, const prop_body *b,
                       int defect);
/* The reason phrase(s) a defect must get, '|'-separated. */
const char *prop_defect_reason(int defect, int type);

/* ---- delivery.c: the delivery log ----------------------------------- */

/* A delivery of body bi (rendered afresh, broken by defect) with a key
 * that is the order id, another string or absent: keys are not checked. */
void prop_add_msg(prop_case *c, int bi, int defect);
/* Deliver log entry li again at a new offset: the same bytes, or (for a
 * well-formed one) a new rendering of the same body that agrees. */
void prop_add_repeat(prop_case *c, size_t li);
/* One delivery of every body, then repeats of 10-30% of the log. */
void prop_add_deliveries(prop_case *c);
/* Shuffle, then give each message a random partition and the next
 * offset of that partition (partitions start at random offsets). */
void prop_shuffle_and_place(prop_case *c);
/* The log entry at (partition, offset), or -1. */
long prop_find_msg(const prop_case *c, int64_t partition, int64_t offset);
/* Both dumps and the log (what was applied, in order) under /tmp, and a
 * line on stderr saying what differed and how to reproduce it. */
void prop_report(const prop_case *c, const char *what, const prop_sbuf *exp,
                 const prop_sbuf *act);

/* ---- model.c: the expected read model ------------------------------- */

typedef struct prop_model {
        int *acc;           /* per identity: the body accepted, or -1 */
        int *placed;        /* per order: the OrderPlaced applied, or -1 */
        int *paid;          /* per order: the OrderPaid applied, or -1 */
        int64_t sum_placed; /* placed_amount */
        int64_t sum_paid;   /* paid_amount */
        const char **dead;  /* per log entry: its reason(s), or NULL */
} prop_model;

/* A valid set: every body applies, whatever the order. */
void prop_model_from_set(prop_model *m, const prop_case *c);
/* The reference interpreter: the log in order, first one wins. */
void prop_model_from_log(prop_model *m, const prop_case *c);
void prop_model_free(prop_model *m);
/* The canonical dump of the six relations the model expects. */
void prop_dump_model(prop_sbuf *o, const prop_case *c, const prop_model *m);

/* ---- db.c: the store driven, the read model read -------------------- */

/* What the amount-overflow cases check besides the dumps. */
typedef struct prop_overflow {
        int placed;      /* 1: OrderPlaced (placed_*), 0: OrderPaid */
        int64_t sum;     /* the amount column of order_totals */
        int64_t applied; /* the count column of order_totals */
        int64_t dead;    /* dead letters, all "amount overflow" */
        int rejected[2]; /* bodies whose ids are not in processed_events */
        int absent;      /* the order not in order_list */
} prop_overflow;

/* Apply the case's log to a fresh store in dir, in random batches with
 * replays and reopenings, checking the totals after each; compare its
 * dump with the model's, then check ovf (may be NULL). 0 when all agree;
 * otherwise the dumps are written (prop_report). */
int prop_check_case(prop_case *c, const prop_model *m, const char *dir,
                    const prop_overflow *ovf);

#endif
