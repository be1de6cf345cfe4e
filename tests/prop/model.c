/* The model: what the read model must hold after a case, computed from
 * the case's bodies and log alone (no src/, no SQL), and its canonical
 * dump, the text db.c's dump of the database is compared with. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "prop.h"

/* ---- the model ------------------------------------------------------ */

static void model_init(prop_model *m, const prop_case *c)
{
        int i;

        memset(m, 0, sizeof(*m));
        m->acc = prop_xrealloc(NULL, (size_t)c->nidn * sizeof(int));
        m->placed = prop_xrealloc(NULL, (size_t)c->norders * sizeof(int));
        m->paid = prop_xrealloc(NULL, (size_t)c->norders * sizeof(int));
        m->dead = prop_xrealloc(NULL, (c->nlog + 1) * sizeof(char *));
        for (i = 0; i < c->nidn; i++)
                m->acc[i] = -1;
        for (i = 0; i < c->norders; i++)
                m->placed[i] = m->paid[i] = -1;
        memset(m->dead, 0, (c->nlog + 1) * sizeof(char *));
}

void prop_model_free(prop_model *m)
{
        free(m->acc);
        free(m->placed);
        free(m->paid);
        free(m->dead);
}

/* A valid set: every body applies, whatever the order. */
void prop_model_from_set(prop_model *m, const prop_case *c)
{
        size_t i;

        model_init(m, c);
        for (i = 0; i < c->nbodies; i++) {
                const prop_body *b = &c->bodies[i];

                m->acc[b->idn] = (int)i;
                if (b->type == PROP_PLACED) {
                        m->placed[b->order] = (int)i;
                        m->sum_placed += b->amount;
                } else if (b->type == PROP_PAID) {
                        m->paid[b->order] = (int)i;
                        m->sum_paid += b->amount;
                }
        }
}

static int agree(const prop_body *a, const prop_body *b)
{
        return a->type == b->type && !strcmp(a->type_name, b->type_name) &&
               a->order == b->order && a->has_at == b->has_at &&
               a->at_s == b->at_s && a->at_ms == b->at_ms &&
               a->amount == b->amount;
}

/* The reference interpreter: the log in order, first one wins. */
void prop_model_from_log(prop_model *m, const prop_case *c)
{
        size_t li;

        model_init(m, c);
        for (li = 0; li < c->nlog; li++) {
                const prop_msg *g = &c->log[li];
                const prop_body *b = &c->bodies[g->body];
                int *slot;
                int64_t *sum;

                if (g->reason) {
                        m->dead[li] = g->reason;
                        continue;
                }
                if (m->acc[b->idn] >= 0) {
                        if (!agree(&c->bodies[m->acc[b->idn]], b))
                                m->dead[li] = PROP_REASON_CONFLICT;
                        continue;
                }
                if (b->type == PROP_OTHER) {
                        m->acc[b->idn] = g->body;
                        continue;
                }
                slot = b->type == PROP_PLACED ? &m->placed[b->order]
                                              : &m->paid[b->order];
                sum = b->type == PROP_PLACED ? &m->sum_placed : &m->sum_paid;
                if (*slot >= 0)
                        m->dead[li] = b->type == PROP_PLACED
                                              ? PROP_REASON_DUP_PLACED
                                              : PROP_REASON_DUP_PAID;
                else if (b->amount > INT64_MAX - *sum)
                        m->dead[li] = PROP_REASON_OVERFLOW;
                else {
                        *slot = g->body;
                        *sum += b->amount;
                        m->acc[b->idn] = g->body;
                }
        }
}

/* ---- canonical dump ------------------------------------------------- */

static void put_int_or_null(prop_sbuf *o, int present, int64_t v)
{
        if (present)
                prop_sb_printf(o, "%" PRId64, v);
        else
                prop_sb_puts(o, "NULL");
}

typedef struct sortkey {
        const char *s;
        long i;
} sortkey;

static int cmp_key(const void *a, const void *b)
{
        const sortkey *x = a, *y = b;
        int d = strcmp(x->s, y->s);

        return d ? d : (x->i > y->i) - (x->i < y->i);
}

/* qsort has no context argument; the log being sorted is here. */
static const prop_case *qsort_log;

/* Log entries by (partition, offset), as ORDER BY sorts dead letters. */
static int cmp_log_pos(const void *a, const void *b)
{
        const prop_msg *x = &qsort_log->log[*(const size_t *)a];
        const prop_msg *y = &qsort_log->log[*(const size_t *)b];

        if (x->partition != y->partition)
                return x->partition < y->partition ? -1 : 1;
        return (x->offset > y->offset) - (x->offset < y->offset);
}

typedef struct day {
        char d[16]; /* YYYY-MM-DD */
        int64_t np, nq, ap, aq;
} day;

static int cmp_day(const void *a, const void *b)
{
        return strcmp(((const day *)a)->d, ((const day *)b)->d);
}

static day *day_of(day *days, size_t *n, const prop_body *b)
{
        char ts[48];
        size_t i;

        prop_utc_text(ts, b->at_s, b->at_ms);
        ts[10] = '\0';
        for (i = 0; i < *n; i++)
                if (!strcmp(days[i].d, ts))
                        return &days[i];
        memset(&days[*n], 0, sizeof(day));
        memcpy(days[*n].d, ts, 11);
        return &days[(*n)++];
}

/* An instant column of an order_list row (NULL without b), counted into
 * its day as a placing (paid 0) or a payment. */
static void put_instant(prop_sbuf *o, const prop_body *b, day *days,
                        size_t *nd, int paid)
{
        char ts[48];
        day *d;

        if (!b) {
                prop_sb_puts(o, "NULL");
                return;
        }
        prop_utc_text(ts, b->at_s, b->at_ms);
        prop_put_text(o, ts, strlen(ts));
        d = day_of(days, nd, b);
        if (paid) {
                d->nq++;
                d->aq += b->amount;
        } else {
                d->np++;
                d->ap += b->amount;
        }
}

/* order_list, order_totals and daily_totals; keys has room for every
 * order. */
static void dump_orders(prop_sbuf *o, const prop_case *c, const prop_model *m,
                        sortkey *keys)
{
        day *days = prop_xrealloc(NULL, 2 * ((size_t)c->norders + 1) *
                                                sizeof(*days));
        size_t nk = 0, nd = 0, i;
        int64_t np = 0, nq = 0;

        prop_sb_puts(o, "== order_list\n");
        for (i = 0; i < (size_t)c->norders; i++)
                if (m->placed[i] >= 0 || m->paid[i] >= 0)
                        keys[nk++] = (sortkey){c->orders[i], (long)i};
        qsort(keys, nk, sizeof(*keys), cmp_key);
        for (i = 0; i < nk; i++) {
                int bpl = m->placed[keys[i].i], bpa = m->paid[keys[i].i];
                const prop_body *pl = bpl >= 0 ? &c->bodies[bpl] : NULL;
                const prop_body *pa = bpa >= 0 ? &c->bodies[bpa] : NULL;

                prop_put_text(o, keys[i].s, strlen(keys[i].s));
                prop_sb_puts(o, pa ? "|\"PAID\"|" : "|\"ORDERED\"|");
                put_int_or_null(o, !!pl, pl ? pl->amount : 0);
                prop_sb_putc(o, '|');
                put_int_or_null(o, !!pa, pa ? pa->amount : 0);
                prop_sb_putc(o, '|');
                put_instant(o, pl, days, &nd, 0);
                prop_sb_putc(o, '|');
                put_instant(o, pa, days, &nd, 1);
                prop_sb_putc(o, '\n');
                np += pl != NULL;
                nq += pa != NULL;
        }
        prop_sb_printf(o,
                       "== order_totals\n%" PRId64 "|%" PRId64 "|%" PRId64
                       "|%" PRId64 "\n",
                       np, nq, m->sum_placed, m->sum_paid);
        prop_sb_puts(o, "== daily_totals\n");
        qsort(days, nd, sizeof(*days), cmp_day);
        for (i = 0; i < nd; i++) {
                prop_put_text(o, days[i].d, strlen(days[i].d));
                prop_sb_printf(o,
                               "|%" PRId64 "|%" PRId64 "|%" PRId64 "|%" PRId64
                               "\n",
                               days[i].np, days[i].nq, days[i].ap, days[i].aq);
        }
        free(days);
}

/* processed_events, sorted; keys has room for every identity. */
static void dump_processed(prop_sbuf *o, const prop_case *c,
                           const prop_model *m, sortkey *keys)
{
        size_t nk = 0, i;

        prop_sb_puts(o, "== processed_events\n");
        for (i = 0; i < (size_t)c->nidn; i++)
                if (m->acc[i] >= 0)
                        keys[nk++] =
                                (sortkey){c->bodies[m->acc[i]].id, (long)i};
        qsort(keys, nk, sizeof(*keys), cmp_key);
        for (i = 0; i < nk; i++) {
                prop_put_text(o, keys[i].s, strlen(keys[i].s));
                prop_sb_putc(o, '\n');
        }
}

/* dead_letters, sorted as ORDER BY sorts them; next gets each partition's
 * next offset (-1: nothing delivered there). */
static void dump_dead(prop_sbuf *o, const prop_case *c, const prop_model *m,
                      int64_t next[PROP_NPART])
{
        size_t *dl = prop_xrealloc(NULL, (c->nlog + 1) * sizeof(*dl));
        size_t nk = 0, i;

        prop_sb_puts(o, "== dead_letters\n");
        for (i = 0; i < c->nlog; i++) {
                const prop_msg *g = &c->log[i];

                if (next[g->partition] < g->offset + 1)
                        next[g->partition] = g->offset + 1;
                if (m->dead[i])
                        dl[nk++] = i;
        }
        qsort_log = c;
        qsort(dl, nk, sizeof(*dl), cmp_log_pos);
        for (i = 0; i < nk; i++) {
                const prop_msg *g = &c->log[dl[i]];

                prop_sb_printf(o, "\"" PROP_TOPIC "\"|%d|%" PRId64 "|",
                               g->partition, g->offset);
                prop_put_text(o, m->dead[dl[i]], strlen(m->dead[dl[i]]));
                prop_sb_putc(o, '|');
                prop_put_bytes(o, g->key, g->key_len, !g->key);
                prop_sb_putc(o, '|');
                prop_put_bytes(o, g->value, g->value_len, !g->value);
                prop_sb_puts(o, "|ok\n");
        }
        free(dl);
}

void prop_dump_model(prop_sbuf *o, const prop_case *c, const prop_model *m)
{
        size_t n = (size_t)c->norders + (size_t)c->nidn + c->nlog + 1;
        sortkey *keys = prop_xrealloc(NULL, n * sizeof(*keys));
        int64_t next[PROP_NPART] = {-1, -1, -1, -1};

        dump_orders(o, c, m, keys);
        dump_processed(o, c, m, keys);
        dump_dead(o, c, m, next);
        prop_sb_puts(o, "== schema_info\n1\n");
        prop_put_offsets(o, next);
        free(keys);
}
