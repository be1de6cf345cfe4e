/* The database side of test_property, its only part that touches src/:
 * of_store_apply_batch() driven through a case's log in random batches,
 * with replays and reopenings, the totals checked after each batch from a
 * second connection, and the read model's dump to compare with the model's. */
#include "testutil.h"

#include <inttypes.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/store.h"

#include "prop.h"

/* ---- the read model's canonical dump -------------------------------- */

static const char *const dump_name[] = {
        "order_list",       "order_totals", "daily_totals",
        "processed_events", "dead_letters", "schema_info",
};

/* The contract's columns only, in the contract's keys' order. */
static const char *const dump_sql[] = {
        "SELECT order_id, status, total, paid_amount, placed_at, paid_at"
        " FROM order_list ORDER BY order_id",
        "SELECT orders_placed, orders_paid, placed_amount, paid_amount"
        " FROM order_totals",
        "SELECT day, orders_placed, orders_paid, placed_amount, paid_amount"
        " FROM daily_totals ORDER BY day",
        "SELECT event_id FROM processed_events ORDER BY event_id",
        "SELECT topic, \"partition\", \"offset\", reason, key, value,"
        " received_at FROM dead_letters"
        " ORDER BY topic, \"partition\", \"offset\"",
        "SELECT schema_version FROM schema_info",
};

/* Zero when order_totals and daily_totals are the sums over order_list
 * and every order_list row is consistent in itself. */
static const char invariant_sql[] =
        "WITH ev(day, np, nq, ap, aq) AS ("
        "  SELECT substr(placed_at, 1, 10), 1, 0, total, 0 FROM order_list"
        "   WHERE placed_at IS NOT NULL"
        "  UNION ALL"
        "  SELECT substr(paid_at, 1, 10), 0, 1, 0, paid_amount"
        "   FROM order_list WHERE paid_at IS NOT NULL),"
        " agg AS (SELECT day, sum(np), sum(nq), sum(ap), sum(aq)"
        "   FROM ev GROUP BY day),"
        " dt AS (SELECT day, orders_placed, orders_paid, placed_amount,"
        "   paid_amount FROM daily_totals)"
        " SELECT (SELECT count(*) FROM (SELECT * FROM agg"
        "          EXCEPT SELECT * FROM dt))"
        "  + (SELECT count(*) FROM (SELECT * FROM dt"
        "          EXCEPT SELECT * FROM agg))"
        "  + abs((SELECT count(*) FROM order_totals) - 1)"
        "  + (SELECT count(*) FROM order_totals t WHERE"
        "     t.orders_placed IS NOT (SELECT count(placed_at) FROM order_list)"
        "     OR t.orders_paid IS NOT (SELECT count(paid_at) FROM order_list)"
        "     OR t.placed_amount IS NOT"
        "        (SELECT coalesce(sum(total), 0) FROM order_list)"
        "     OR t.paid_amount IS NOT"
        "        (SELECT coalesce(sum(paid_amount), 0) FROM order_list))"
        "  + (SELECT count(*) FROM order_list WHERE"
        "     (status = 'PAID') IS NOT (paid_at IS NOT NULL)"
        "     OR status NOT IN ('PAID', 'ORDERED')"
        "     OR (total IS NULL) IS NOT (placed_at IS NULL)"
        "     OR (paid_amount IS NULL) IS NOT (paid_at IS NULL)"
        "     OR (placed_at IS NULL AND paid_at IS NULL))";

/* Nothing seen after an earlier batch is undone by a later one: a PAID
 * order stays PAID, a recorded id stays recorded (temp tables of the
 * reader remember them). */
static const char seen_create_sql[] =
        "CREATE TEMP TABLE seen_paid (order_id TEXT PRIMARY KEY);"
        "CREATE TEMP TABLE seen_events (event_id TEXT PRIMARY KEY);";
static const char seen_check_sql[] =
        "SELECT (SELECT count(*) FROM temp.seen_paid s WHERE NOT EXISTS"
        "   (SELECT 1 FROM main.order_list o"
        "     WHERE o.order_id = s.order_id AND o.status = 'PAID'))"
        " + (SELECT count(*) FROM temp.seen_events s WHERE NOT EXISTS"
        "   (SELECT 1 FROM main.processed_events e"
        "     WHERE e.event_id = s.event_id))";
static const char seen_add_sql[] =
        "INSERT OR IGNORE INTO temp.seen_paid"
        " SELECT order_id FROM main.order_list WHERE status = 'PAID';"
        "INSERT OR IGNORE INTO temp.seen_events"
        " SELECT event_id FROM main.processed_events;";

static void put_cell(prop_sbuf *o, sqlite3_stmt *stmt, int col)
{
        const unsigned char *p;
        int i, n;

        switch (sqlite3_column_type(stmt, col)) {
        case SQLITE_NULL:
                prop_sb_puts(o, "NULL");
                break;
        case SQLITE_INTEGER:
                prop_sb_printf(o, "%lld",
                               (long long)sqlite3_column_int64(stmt, col));
                break;
        case SQLITE_FLOAT:
                prop_sb_printf(o, "%.17gR", sqlite3_column_double(stmt, col));
                break;
        case SQLITE_TEXT:
                p = sqlite3_column_text(stmt, col);
                prop_put_text(o, p, (size_t)sqlite3_column_bytes(stmt, col));
                break;
        default:
                p = sqlite3_column_blob(stmt, col);
                n = sqlite3_column_bytes(stmt, col);
                prop_sb_puts(o, "x'");
                for (i = 0; i < n; i++)
                        prop_sb_printf(o, "%02x", p[i]);
                prop_sb_putc(o, '\'');
        }
}

/* Whether reason starts with one of the '|'-separated phrases. */
static int reason_matches(const char *reason, const char *phrases)
{
        const char *p = phrases, *bar;
        size_t n;

        for (;;) {
                bar = strchr(p, '|');
                n = bar ? (size_t)(bar - p) : strlen(p);
                if (!strncmp(reason, p, n))
                        return 1;
                if (!bar)
                        return 0;
                p = bar + 1;
        }
}

static int is_utc_ts(const unsigned char *s, int n)
{
        static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
        int i;

        if (!s || n != (int)sizeof(pat) - 1)
                return 0;
        for (i = 0; i < n; i++)
                if (pat[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != pat[i])
                        return 0;
        return 1;
}

/* A dead-letter row, with the reason shown as the model's phrase when it
 * starts with it, key and value as length and hash, received_at "ok" when
 * well-formed. */
static void put_dead_row(prop_sbuf *o, sqlite3_stmt *stmt, const prop_case *c,
                         const prop_model *m)
{
        const char *reason = (const char *)sqlite3_column_text(stmt, 3);
        long li = prop_find_msg(c, sqlite3_column_int64(stmt, 1),
                                sqlite3_column_int64(stmt, 2));
        const char *want = li >= 0 ? m->dead[li] : NULL;
        int col;

        for (col = 0; col < 3; col++) {
                put_cell(o, stmt, col);
                prop_sb_putc(o, '|');
        }
        if (reason && want && reason_matches(reason, want))
                prop_put_text(o, want, strlen(want));
        else
                put_cell(o, stmt, 3);
        for (col = 4; col < 6; col++) {
                prop_sb_putc(o, '|');
                prop_put_bytes(o, sqlite3_column_blob(stmt, col),
                               (size_t)sqlite3_column_bytes(stmt, col),
                               sqlite3_column_type(stmt, col) == SQLITE_NULL);
        }
        prop_sb_putc(o, '|');
        if (is_utc_ts(sqlite3_column_text(stmt, 6),
                      sqlite3_column_bytes(stmt, 6)))
                prop_sb_puts(o, "ok");
        else
                put_cell(o, stmt, 6);
        prop_sb_putc(o, '\n');
}

static int dump_db(prop_sbuf *o, sqlite3 *db, const prop_case *c,
                   const prop_model *m, const int64_t next[PROP_NPART])
{
        sqlite3_stmt *stmt = NULL;
        size_t t;
        int col, rc;

        for (t = 0; t < sizeof(dump_sql) / sizeof(*dump_sql); t++) {
                if (sqlite3_prepare_v2(db, dump_sql[t], -1, &stmt, NULL)) {
                        print_error("dump %s: %s\n", dump_name[t],
                                    sqlite3_errmsg(db));
                        return -1;
                }
                prop_sb_printf(o, "== %s\n", dump_name[t]);
                while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                        if (!strcmp(dump_name[t], "dead_letters")) {
                                put_dead_row(o, stmt, c, m);
                                continue;
                        }
                        for (col = 0; col < sqlite3_column_count(stmt);
                             col++) {
                                if (col)
                                        prop_sb_putc(o, '|');
                                put_cell(o, stmt, col);
                        }
                        prop_sb_putc(o, '\n');
                }
                sqlite3_finalize(stmt);
                if (rc != SQLITE_DONE) {
                        print_error("dump %s: %s\n", dump_name[t],
                                    sqlite3_errmsg(db));
                        return -1;
                }
        }
        prop_put_offsets(o, next);
        return 0;
}

/* ---- driving the store ---------------------------------------------- */

static const int64_t seals[] = {1, 2, 3, 7, 20, INT64_MAX};

typedef struct run {
        prop_case *c;
        char path[256]; /* the case's database file */
        of_store *st;
        sqlite3 *db;        /* a reader: the invariant and the dump */
        sqlite3_stmt *inv;  /* invariant_sql */
        sqlite3_stmt *mono; /* seen_check_sql */
        int64_t seal;       /* of_store_set_seal_events() for this case */
        char err[512];
} run;

/* The count stmt returns, or -1 when it fails. */
static long long step_count(sqlite3 *db, sqlite3_stmt *stmt)
{
        long long n = -1;

        if (sqlite3_step(stmt) == SQLITE_ROW)
                n = sqlite3_column_int64(stmt, 0);
        else
                print_error("%s: %s\n", sqlite3_sql(stmt), sqlite3_errmsg(db));
        sqlite3_reset(stmt);
        return n;
}

static int check_invariant(run *u, size_t from, size_t to)
{
        long long bad = step_count(u->db, u->inv);
        long long undone = step_count(u->db, u->mono);

        if (bad)
                print_error("totals are not the sums over order_list (%lld)"
                            " after slice [%zu,%zu)\n",
                            bad, from, to);
        if (undone)
                print_error("a PAID status or a processed id was undone"
                            " (%lld) after slice [%zu,%zu)\n",
                            undone, from, to);
        if (bad || undone)
                return -1;
        if (sqlite3_exec(u->db, seen_add_sql, NULL, NULL, NULL)) {
                print_error("remembering: %s\n", sqlite3_errmsg(u->db));
                return -1;
        }
        return 0;
}

/* Apply log[from, to) as one batch, with each partition's next offset,
 * then check the invariant. */
static int apply_slice(run *u, size_t from, size_t to)
{
        prop_case *c = u->c;
        of_msg *msgs = prop_xrealloc(NULL, (to - from) * sizeof(*msgs));
        of_store_pos pos[PROP_NPART];
        int64_t next[PROP_NPART] = {-1, -1, -1, -1};
        of_store_stats stats = {0};
        size_t i, npos = 0, j;
        of_store_pos tmp;
        int p, rc;

        for (i = from; i < to; i++) {
                const prop_msg *g = &c->log[i];

                msgs[i - from] = (of_msg){
                        .topic = PROP_TOPIC,
                        .partition = g->partition,
                        .offset = g->offset,
                        .key = g->key,
                        .key_len = g->key_len,
                        .value = g->value,
                        .value_len = g->value_len,
                };
                next[g->partition] = g->offset + 1;
        }
        for (p = 0; p < PROP_NPART; p++)
                if (next[p] >= 0)
                        pos[npos++] = (of_store_pos){PROP_TOPIC, p, next[p]};
        for (i = npos; i > 1; i--) { /* any order of partitions */
                j = prop_below(&c->r, i);
                tmp = pos[i - 1];
                pos[i - 1] = pos[j];
                pos[j] = tmp;
        }
        c->sched =
                prop_grow(c->sched, c->nsched, &c->csched, sizeof(*c->sched));
        c->sched[c->nsched][0] = from;
        c->sched[c->nsched++][1] = to;
        rc = of_store_apply_batch(u->st, msgs, to - from, pos, npos, &stats,
                                  u->err, sizeof(u->err));
        free(msgs);
        if (rc != 0) {
                print_error("of_store_apply_batch [%zu,%zu): %d %s\n", from,
                            to, rc, u->err);
                return -1;
        }
        return check_invariant(u, from, to);
}

/* Random batches in log order; now and then the batch just committed is
 * delivered again, an earlier slice is replayed (a consumer that
 * restarted from an older offset), or the store is closed and reopened. */
static int drive(run *u)
{
        static const size_t maxb[] = {1, 2, 4, 8, 16, 64};
        prop_case *c = u->c;
        size_t i = 0, n, max = c->maxb ? c->maxb : PROP_PICK(&c->r, maxb);
        size_t from, to;

        while (i < c->nlog) {
                n = 1 + prop_below(&c->r, max);
                if (n > c->nlog - i)
                        n = c->nlog - i;
                if (apply_slice(u, i, i + n))
                        return -1;
                if (prop_chance(&c->r, 10) && apply_slice(u, i, i + n))
                        return -1;
                if (prop_chance(&c->r, 8)) {
                        from = prop_below(&c->r, i + n);
                        to = from + 1 + prop_below(&c->r, i + n - from);
                        if (apply_slice(u, from, to))
                                return -1;
                }
                if (prop_chance(&c->r, 3)) {
                        of_store_close(u->st);
                        u->st = NULL;
                        if (of_store_open(&u->st, u->path, u->err,
                                          sizeof(u->err))) {
                                print_error("reopen: %s\n", u->err);
                                return -1;
                        }
                        of_store_set_seal_events(u->st, u->seal);
                }
                i += n;
        }
        return 0;
}

/* The database file at path and its companions, gone if they were there. */
static void remove_db(const char *path)
{
        static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
        char p[300];
        size_t i;

        for (i = 0; i < sizeof(sfx) / sizeof(*sfx); i++) {
                snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
                unlink(p);
        }
}

/* ---- the overflow facts --------------------------------------------- */

/* The integer sql returns, or -1 when it fails. */
static int64_t query_int(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *stmt = NULL;
        int64_t v = -1;

        if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW)
                v = sqlite3_column_int64(stmt, 0);
        else
                print_error("%s: %s\n", sql, sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
        return v;
}

/* Said outright, beside the dump comparison: the sum column stops at
 * ovf->sum over ovf->applied orders, ovf->dead dead letters all say
 * "amount overflow", and neither rejected id is in processed_events nor
 * the absent order in order_list. */
static int overflow_facts(sqlite3 *db, const prop_case *c,
                          const prop_overflow *ovf)
{
        char sql[512];
        int i, bad = 0;

        snprintf(sql, sizeof(sql), "SELECT %s FROM order_totals",
                 ovf->placed ? "placed_amount" : "paid_amount");
        bad |= query_int(db, sql) != ovf->sum;
        snprintf(sql, sizeof(sql), "SELECT %s FROM order_totals",
                 ovf->placed ? "orders_placed" : "orders_paid");
        bad |= query_int(db, sql) != ovf->applied;
        bad |= query_int(db, "SELECT count(*) FROM dead_letters WHERE"
                             " reason LIKE 'amount overflow%'") != ovf->dead;
        bad |= query_int(db, "SELECT count(*) FROM dead_letters") != ovf->dead;
        for (i = 0; i < 2; i++) {
                const prop_body *b = &c->bodies[ovf->rejected[i]];
                sqlite3_stmt *stmt = NULL;

                if (sqlite3_prepare_v2(db,
                                       "SELECT count(*) FROM processed_events"
                                       " WHERE event_id = ?",
                                       -1, &stmt, NULL) ||
                    sqlite3_bind_text(stmt, 1, b->id, -1, SQLITE_STATIC) ||
                    sqlite3_step(stmt) != SQLITE_ROW ||
                    sqlite3_column_int64(stmt, 0) != 0)
                        bad = 1;
                sqlite3_finalize(stmt);
        }
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM order_list WHERE order_id = '%s'",
                 c->orders[ovf->absent]);
        bad |= query_int(db, sql) != 0;
        if (bad)
                print_error("overflow facts do not hold\n");
        return bad ? -1 : 0;
}

/* ---- one case ------------------------------------------------------- */

/* A fresh store at dir/case.db, sealing at random, and the reader beside
 * it with its statements; 0 on success. */
static int open_case(run *u, const char *dir)
{
        snprintf(u->path, sizeof(u->path), "%s/case.db", dir);
        remove_db(u->path);
        if (of_store_open(&u->st, u->path, u->err, sizeof(u->err))) {
                print_error("of_store_open: %s\n", u->err);
                return -1;
        }
        /* Sealing processed_recent into runs after almost every batch, now
         * and then, or never: ids must be found wherever they live. */
        u->seal = PROP_PICK(&u->c->r, seals);
        of_store_set_seal_events(u->st, u->seal);
        if (sqlite3_open_v2(u->path, &u->db, SQLITE_OPEN_READWRITE, NULL) ||
            sqlite3_busy_timeout(u->db, 5000) ||
            sqlite3_prepare_v2(u->db, invariant_sql, -1, &u->inv, NULL) ||
            sqlite3_exec(u->db, seen_create_sql, NULL, NULL, NULL) ||
            sqlite3_prepare_v2(u->db, seen_check_sql, -1, &u->mono, NULL)) {
                print_error("reader: %s\n", sqlite3_errmsg(u->db));
                return -1;
        }
        return 0;
}

/* Each partition's next offset as the store holds it (-1: none). */
static int read_offsets(run *u, int64_t next[PROP_NPART])
{
        int p, rc;

        for (p = 0; p < PROP_NPART; p++) {
                rc = of_store_offset(&next[p], u->st, PROP_TOPIC, p, u->err,
                                     sizeof(u->err));
                if (rc == OF_ENOTFOUND) {
                        next[p] = -1;
                } else if (rc) {
                        print_error("of_store_offset: %s\n", u->err);
                        return -1;
                }
        }
        return 0;
}

int prop_check_case(prop_case *c, const prop_model *m, const char *dir,
                    const prop_overflow *ovf)
{
        run u = {.c = c};
        prop_sbuf exp = {0}, act = {0};
        int64_t next[PROP_NPART];
        int rc = -1;

        if (open_case(&u, dir) || drive(&u) || read_offsets(&u, next))
                goto out;
        of_store_close(u.st);
        u.st = NULL;
        prop_dump_model(&exp, c, m);
        if (dump_db(&act, u.db, c, m, next))
                goto out;
        if (strcmp(exp.p, act.p)) {
                prop_report(c, "read model differs from the model", &exp,
                            &act);
                goto out;
        }
        if (ovf && overflow_facts(u.db, c, ovf)) {
                prop_report(c, "extra check failed", &exp, &act);
                goto out;
        }
        rc = 0;
out:
        if (rc && !exp.p) { /* stopped early: dump what the file holds */
                int64_t none[PROP_NPART] = {-1, -1, -1, -1};

                prop_dump_model(&exp, c, m);
                if (u.inv)
                        dump_db(&act, u.db, c, m, none);
                prop_report(c, "store failed (see above)", &exp, &act);
        }
        sqlite3_finalize(u.inv);
        sqlite3_finalize(u.mono);
        sqlite3_close(u.db);
        of_store_close(u.st);
        remove_db(u.path);
        prop_sb_free(&exp);
        prop_sb_free(&act);
        return rc;
}
