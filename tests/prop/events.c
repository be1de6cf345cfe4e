/* The events of a property case: its orders, ids and instants drawn at
 * random (odd UTF-8, 128-byte ids, days at the ends of the calendar) and
 * the bodies that carry them. Rendering them as JSON is json.c's, their
 * deliveries delivery.c's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prop.h"

static const struct window {
        int y, mo, d; /* the first UTC day */
        int days;     /* its length */
        int weight;   /* how often a case picks it */
} windows[] = {
        {2026, 11, 26, 4, 70}, {2024, 2, 27, 4, 12}, {2026, 12, 30, 4, 12},
        {1, 1, 1, 2, 3},       {9999, 12, 30, 2, 3},
};

void prop_case_init(prop_case *c, uint64_t seed)
{
        unsigned w = (unsigned)prop_below(&(prop_rng){seed}, 100), i = 0;

        memset(c, 0, sizeof(*c));
        c->seed = seed;
        c->r.s = seed;
        while (w >= (unsigned)windows[i].weight)
                w -= (unsigned)windows[i++].weight;
        c->t0 = prop_days_from_civil(windows[i].y, windows[i].mo,
                                     windows[i].d) *
                86400;
        c->span = (int64_t)windows[i].days * 86400;
}

void prop_case_free(prop_case *c)
{
        size_t i;

        for (i = 0; i < c->nlog; i++) {
                free(c->log[i].key);
                free(c->log[i].value);
        }
        free(c->log);
        free(c->bodies);
        free(c->orders);
        free(c->sched);
}

static void make_order(char *out, prop_rng *r, int i)
{
        int n;

        switch (prop_below(r, 10)) {
        case 6:
                snprintf(out, PROP_ID_CAP, "o-" PROP_NIHON "-%d", i);
                break;
        case 7:
                snprintf(out, PROP_ID_CAP, "ORD %d/" PROP_E_ACUTE, i);
                break;
        case 8:
                snprintf(out, PROP_ID_CAP, "o-%d-" PROP_SMILE, i);
                break;
        case 9: /* exactly the 128 bytes allowed */
                n = snprintf(out, PROP_ID_CAP, "o%d-", i);
                memset(out + n, 'z', (size_t)(128 - n));
                out[128] = '\0';
                break;
        default:
                snprintf(out, PROP_ID_CAP, "o-%d", i);
        }
}

static void make_id(char *out, prop_rng *r, int idn)
{
        int n;

        switch (prop_below(r, 10)) {
        case 6:
                snprintf(out, PROP_ID_CAP, "evt \"%d\" \\ " PROP_E_ACUTE, idn);
                break;
        case 7:
                snprintf(out, PROP_ID_CAP,
                         PROP_E_ACUTE "v" PROP_E_ACUTE "nement/%d", idn);
                break;
        case 8:
                snprintf(out, PROP_ID_CAP, PROP_GCLEF "-%d-" PROP_NIHON, idn);
                break;
        case 9:
                n = snprintf(out, PROP_ID_CAP, "e%d-", idn);
                memset(out + n, 'y', (size_t)(128 - n));
                out[128] = '\0';
                break;
        default:
                snprintf(out, PROP_ID_CAP,
                         "%08" PRIx32 "-%04x-4%03x-a%03x-%012x",
                         (uint32_t)prop_rnd(r),
                         (unsigned)prop_below(r, 0x10000),
                         (unsigned)prop_below(r, 0x1000),
                         (unsigned)prop_below(r, 0x1000), (unsigned)idn);
        }
}

int64_t prop_rand_amount(prop_rng *r)
{
        switch (prop_below(r, 20)) {
        case 0:
                return 0;
        case 1:
        case 2:
                return PROP_AMOUNT_MAX;
        case 3:
        case 4:
                return (int64_t)prop_below(r, PROP_AMOUNT_MAX + 1ULL);
        case 5:
        case 6:
                return (int64_t)prop_below(r, 1000000000);
        default:
                return (int64_t)prop_below(r, 100000);
        }
}

void prop_rand_instant(prop_case *c, int64_t *s, int *ms)
{
        *s = c->t0 + (int64_t)prop_below(&c->r, (uint64_t)c->span);
        switch (prop_below(&c->r, 4)) {
        case 0:
                *ms = 0;
                break;
        case 1:
                *ms = 100 * (int)prop_below(&c->r, 10);
                break;
        case 2:
                *ms = 10 * (int)prop_below(&c->r, 100);
                break;
        default:
                *ms = (int)prop_below(&c->r, 1000);
        }
}

static const char *const other_types[] = {
        "OrderShipped", "OrderCancelled", "orderplaced",
        "ORDERPAID",    "OrderPlacedV2",  "Order Paid",
};

/* A new body with a new identity; returns its index. */
int prop_new_body(prop_case *c, int type, int order)
{
        prop_body *b;

        c->bodies = prop_grow(c->bodies, c->nbodies, &c->cbodies, sizeof(*b));
        b = &c->bodies[c->nbodies];
        memset(b, 0, sizeof(*b));
        b->type = type;
        b->type_name = type == PROP_PLACED ? "OrderPlaced"
                       : type == PROP_PAID ? "OrderPaid"
                                           : PROP_PICK(&c->r, other_types);
        b->idn = c->nidn++;
        make_id(b->id, &c->r, b->idn);
        b->order = order;
        b->has_at = type != PROP_OTHER || prop_chance(&c->r, 50);
        prop_rand_instant(c, &b->at_s, &b->at_ms);
        b->amount = type == PROP_OTHER ? -1 : prop_rand_amount(&c->r);
        b->has_payload = type != PROP_OTHER || prop_chance(&c->r, 50);
        return (int)c->nbodies++;
}

/* 1..max_orders orders, each placed (~85%) and paid (~70%), plus a few
 * events of other types: a valid set, every id with one body. */
void prop_gen_valid_set(prop_case *c, int max_orders)
{
        int o, k;

        c->norders = 1 + (int)prop_below(&c->r, (uint64_t)max_orders);
        c->orders = prop_xrealloc(NULL, (size_t)c->norders * PROP_ID_CAP);
        for (o = 0; o < c->norders; o++) {
                make_order(c->orders[o], &c->r, o);
                if (prop_chance(&c->r, 85))
                        prop_new_body(c, PROP_PLACED, o);
                if (prop_chance(&c->r, 70))
                        prop_new_body(c, PROP_PAID, o);
        }
        for (k = (int)prop_below(&c->r, 4); k > 0; k--)
                prop_new_body(
                        c, PROP_OTHER,
                        prop_chance(&c->r, 50)
                                ? (int)prop_below(&c->r, (uint64_t)c->norders)
                                : -1);
}

/* A random existing OrderPlaced/OrderPaid body, or -1. */
int prop_pick_known(prop_case *c)
{
        size_t i, start = prop_below(&c->r, c->nbodies), k;

        for (k = 0; k < c->nbodies; k++) {
                i = (start + k) % c->nbodies;
                if (c->bodies[i].type != PROP_OTHER)
                        return (int)i;
        }
        return -1;
}

/* Another body with the identity of bi, to be made to disagree. */
int prop_clone_body(prop_case *c, int bi)
{
        c->bodies = prop_grow(c->bodies, c->nbodies, &c->cbodies,
                              sizeof(*c->bodies));
        c->bodies[c->nbodies] = c->bodies[bi];
        return (int)c->nbodies++;
}
