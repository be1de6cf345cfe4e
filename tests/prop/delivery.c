/* The delivery log of a property case: each body delivered once, then
 * repeats (the same bytes or a new rendering that agrees), shuffled over
 * the partitions; and on failure, the report that writes the expected and
 * actual dumps and this log under /tmp for a diff. */
#include "testutil.h"

#include <inttypes.h>

#include "prop.h"

static prop_msg *new_msg(prop_case *c)
{
        prop_msg *g;

        c->log = prop_grow(c->log, c->nlog, &c->clog, sizeof(*g));
        g = &c->log[c->nlog++];
        memset(g, 0, sizeof(*g));
        return g;
}

/* A delivery of body bi (rendered afresh, broken by defect) with a key
 * that is the order id, another string or absent: keys are not checked. */
void prop_add_msg(prop_case *c, int bi, int defect)
{
        const prop_body *b = &c->bodies[bi];
        prop_sbuf v = {0};
        prop_msg *g = new_msg(c);
        char key[PROP_ID_CAP];

        g->body = bi;
        if (defect != PROP_D_NONE)
                g->reason = prop_defect_reason(defect, b->type);
        if (defect != PROP_D_NULL) {
                prop_render_value(&v, c, b, defect);
                g->value = prop_dupbytes(v.p, v.len);
                g->value_len = v.len;
        }
        switch (prop_below(&c->r, 5)) {
        case 0:
                break;
        case 1:
                snprintf(key, sizeof(key), "k-%u",
                         (unsigned)prop_below(&c->r, 1000));
                g->key_len = strlen(key);
                g->key = prop_dupbytes(key, g->key_len);
                break;
        default:
                if (b->order < 0)
                        break;
                g->key_len = strlen(c->orders[b->order]);
                g->key = prop_dupbytes(c->orders[b->order], g->key_len);
        }
        prop_sb_free(&v);
}

/* Deliver log entry li again at a new offset: the same bytes, or (for a
 * well-formed one) a new rendering of the same body that agrees. */
void prop_add_repeat(prop_case *c, size_t li)
{
        prop_msg old = c->log[li], *g;

        if (!old.reason && prop_chance(&c->r, 50)) {
                prop_add_msg(c, old.body, PROP_D_NONE);
                return;
        }
        g = new_msg(c);
        *g = old;
        g->key = old.key ? prop_dupbytes(old.key, old.key_len) : NULL;
        g->value = old.value ? prop_dupbytes(old.value, old.value_len) : NULL;
}

/* One delivery of every body, then repeats of 10-30% of the log. */
void prop_add_deliveries(prop_case *c)
{
        unsigned rate = 10 + (unsigned)prop_below(&c->r, 21);
        size_t i, n;

        for (i = 0; i < c->nbodies; i++)
                prop_add_msg(c, (int)i, PROP_D_NONE);
        for (i = 0, n = c->nlog; i < n; i++)
                if (prop_chance(&c->r, rate))
                        prop_add_repeat(c, prop_below(&c->r, c->nlog));
}

/* Shuffle, then give each message a random partition and the next
 * offset of that partition (partitions start at random offsets). */
void prop_shuffle_and_place(prop_case *c)
{
        int64_t next[PROP_NPART];
        size_t i, j;
        prop_msg tmp;
        int p;

        for (i = c->nlog; i > 1; i--) {
                j = prop_below(&c->r, i);
                tmp = c->log[i - 1];
                c->log[i - 1] = c->log[j];
                c->log[j] = tmp;
        }
        for (p = 0; p < PROP_NPART; p++)
                next[p] = prop_chance(&c->r, 50)
                                  ? 0
                                  : (int64_t)prop_below(&c->r, 1000000);
        for (i = 0; i < c->nlog; i++) {
                p = (int)prop_below(&c->r, PROP_NPART);
                c->log[i].partition = p;
                c->log[i].offset = next[p]++;
        }
}

/* The log entry at (partition, offset), or -1. */
long prop_find_msg(const prop_case *c, int64_t partition, int64_t offset)
{
        size_t i;

        for (i = 0; i < c->nlog; i++)
                if (c->log[i].partition == partition &&
                    c->log[i].offset == offset)
                        return (long)i;
        return -1;
}

/* ---- the report of a failed case ------------------------------------ */

static void write_file(const char *path, const char *text, size_t len)
{
        FILE *f = fopen(path, "w");

        if (!f || fwrite(text, 1, len, f) != len)
                print_error("cannot write %s\n", path);
        if (f)
                fclose(f);
}

/* Both dumps and the log (what was applied, in order) under /tmp. */
void prop_report(const prop_case *c, const char *what, const prop_sbuf *exp,
                 const prop_sbuf *act)
{
        char pe[128], pa[128], pl[128];
        prop_sbuf log = {0};
        size_t i, k;

        snprintf(pe, sizeof(pe),
                 "/tmp/orderflow-prop-%" PRIu64 "-expected.txt", c->seed);
        snprintf(pa, sizeof(pa), "/tmp/orderflow-prop-%" PRIu64 "-actual.txt",
                 c->seed);
        snprintf(pl, sizeof(pl), "/tmp/orderflow-prop-%" PRIu64 "-log.txt",
                 c->seed);
        write_file(pe, exp->p ? exp->p : "", exp->len);
        write_file(pa, act->p ? act->p : "", act->len);
        for (i = 0; i < c->nlog; i++) {
                const prop_msg *g = &c->log[i];

                prop_sb_printf(&log,
                               "[%zu] p%d@%" PRId64 " body %d %s key=", i,
                               g->partition, g->offset, g->body,
                               g->reason ? g->reason : "valid");
                if (g->key)
                        prop_put_text(&log, g->key, g->key_len);
                else
                        prop_sb_puts(&log, "NULL");
                prop_sb_puts(&log, " value=");
                if (g->value)
                        prop_put_text(&log, g->value, g->value_len);
                else
                        prop_sb_puts(&log, "NULL");
                prop_sb_putc(&log, '\n');
        }
        prop_sb_puts(&log, "applied slices:");
        for (k = 0; k < c->nsched; k++)
                prop_sb_printf(&log, " [%zu,%zu)", c->sched[k][0],
                               c->sched[k][1]);
        prop_sb_putc(&log, '\n');
        write_file(pl, log.p, log.len);
        prop_sb_free(&log);
        print_error("%s: seed %" PRIu64 " (OF_PROP_SEED=%" PRIu64
                    " OF_PROP_CASES=1 reproduces it)\n"
                    "  diff -u %s %s\n  log: %s\n",
                    what, c->seed, c->seed, pe, pa, pl);
}
