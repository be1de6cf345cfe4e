/* A batch decoded before its transaction: each message's value parsed once
 * (event.c's rules) into a compact form, its ids hashed and the batch's key
 * order chosen, so that the batch transaction holds the write lock for SQL
 * only. Applying it is store.c's and store_apply.c's. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/error.h"
#include "orderflow/idfilter.h"
#include "orderflow/timestamp.h"

#include "store_int.h"

int of_store_batch_new(of_store_batch **out, char *errstr, size_t errstr_size)
{
        if (!(*out = calloc(1, sizeof(**out))))
                return of_errf(errstr, errstr_size, "out of memory");
        return 0;
}

void of_store_batch_free(of_store_batch *b)
{
        if (!b)
                return;
        free(b->d);
        free(b->text);
        free(b->order);
        free(b);
}

/* Append the n bytes at p and a NUL to b's text; *at gets where, with
 * IN_TEXT. */
static int text_put(of_store_batch *b, uint32_t *at, const char *p, size_t n)
{
        size_t cap = b->text_cap ? b->text_cap : 64 * 1024;
        char *text;

        if (b->text_len + n + 1 > b->text_cap) {
                while (cap < b->text_len + n + 1)
                        cap *= 2;
                if (cap >= IN_TEXT || !(text = realloc(b->text, cap)))
                        return OF_ERROR;
                b->text = text;
                b->text_cap = cap;
        }
        memcpy(b->text + b->text_len, p, n);
        b->text[b->text_len + n] = '\0';
        *at = (uint32_t)b->text_len | IN_TEXT;
        b->text_len += n + 1;
        return 0;
}

/* The bytes at of message i of b. */
static const char *bytes_at(const of_store_batch *b, size_t i, uint32_t at)
{
        if (at & IN_TEXT)
                return b->text + (at & ~IN_TEXT);
        return (const char *)b->msgs[i].value + at;
}

/* Decode m into d: 0, or OF_ERROR when memory runs out. A string the
 * value holds as it is stays there; the rest is copied into the text. */
static int decode_one(of_store_batch *b, decoded *d, const of_msg *m)
{
        char reason[OF_REASON_MAX];
        of_event ev;
        of_event_at where;
        const char *s[3];
        int32_t src[3];
        size_t len;
        int rc, i;

        rc = of_event_parse_at(&ev, &where, m->value, m->value_len, reason,
                               sizeof(reason));
        if (rc < 0)
                return OF_ERROR;
        memset(d, 0, sizeof(*d));
        if (rc) {
                d->type = DEAD;
                return text_put(b, &d->at[0], reason, strlen(reason));
        }
        s[0] = ev.id;
        s[1] = ev.type_name;
        s[2] = ev.aggregate_id;
        src[0] = where.id;
        src[1] = where.type_name;
        src[2] = where.aggregate_id;
        for (i = 0; i < 3; i++) {
                len = strlen(s[i]);
                assert(len <= OF_ID_MAX);
                d->len[i] = (uint8_t)len;
                if (src[i] >= 0)
                        d->at[i] = (uint32_t)src[i];
                else if (text_put(b, &d->at[i], s[i], len))
                        return OF_ERROR;
        }
        if (!ev.occurred_at[0])
                d->time = NO_TIME;
        else if (where.occurred_at >= 0)
                d->time = AT_VALUE | where.occurred_at;
        else
                d->time = of_timestamp_pack(ev.occurred_at);
        d->type = (int8_t)ev.type;
        d->amount = ev.amount;
        return 0;
}

/* Key order: by aggregateId (a dead letter's is ""), then log order. */
static int key_cmp(const void *pa, const void *pb, void *arg)
{
        const of_store_batch *b = arg;
        uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
        const decoded *da = &b->d[ia], *db = &b->d[ib];
        size_t la = da->type == DEAD ? 0 : da->len[2];
        size_t lb = db->type == DEAD ? 0 : db->len[2];
        int c = la && lb
                        ? memcmp(bytes_at(b, ia, da->at[2]),
                                 bytes_at(b, ib, db->at[2]), la < lb ? la : lb)
                        : 0;

        if (c)
                return c;
        if (la != lb)
                return la < lb ? -1 : 1;
        return ia < ib ? -1 : ia > ib;
}

/* The key order: by aggregateId (the order id), then log order, so that
 * order_list is visited in its own order, page after page, instead of all
 * over. Without the memory for it the batch goes in log order. */
static void choose_order(of_store_batch *b)
{
        uint32_t *o;
        size_t i;

        b->keyed = 0;
        if (b->n < 2 || b->n > UINT32_MAX)
                return;
        if (b->n > b->order_cap) {
                if (!(o = realloc(b->order, b->n * sizeof(*o))))
                        return;
                b->order = o;
                b->order_cap = b->n;
        }
        for (i = 0; i < b->n; i++)
                b->order[i] = (uint32_t)i;
        qsort_r(b->order, b->n, sizeof(*b->order), key_cmp, b);
        b->keyed = 1;
}

int of_store_batch_decode(of_store_batch *b, const of_msg *msgs, size_t n,
                          char *errstr, size_t errstr_size)
{
        decoded *d;
        size_t i;

        b->msgs = msgs;
        b->n = 0;
        b->text_len = 0;
        b->keyed = 0;
        if (n > b->cap) {
                if (!(d = realloc(b->d, n * sizeof(*d))))
                        goto oom;
                b->d = d;
                b->cap = n;
        }
        for (i = 0; i < n; i++)
                if (decode_one(b, &b->d[i], &msgs[i]))
                        goto oom;
        b->n = n;
        choose_order(b);
        return 0;
oom:
        return of_errf(errstr, errstr_size, "decoding: out of memory");
}

void store_batch_event(of_event *out, const of_store_batch *b, size_t at)
{
        const decoded *d = &b->d[at];
        char *dst[3];
        int i;

        assert(at < b->n && d->type != DEAD);
        dst[0] = out->id;
        dst[1] = out->type_name;
        dst[2] = out->aggregate_id;
        for (i = 0; i < 3; i++) {
                memcpy(dst[i], bytes_at(b, at, d->at[i]), d->len[i]);
                dst[i][d->len[i]] = '\0';
        }
        if (d->time == NO_TIME) {
                out->occurred_at[0] = '\0';
        } else if (d->time >= AT_VALUE) { /* packed times are below */
                memcpy(out->occurred_at,
                       (const char *)b->msgs[at].value + (d->time & ~AT_VALUE),
                       OF_TS_LEN);
                out->occurred_at[OF_TS_LEN] = '\0';
        } else {
                of_timestamp_unpack(out->occurred_at, d->time);
        }
        out->type = (of_event_type)d->type;
        out->amount = d->amount;
}

const char *store_batch_reason(const of_store_batch *b, size_t at)
{
        assert(at < b->n && b->d[at].type == DEAD);
        return bytes_at(b, at, b->d[at].at[0]);
}
