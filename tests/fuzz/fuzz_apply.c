/* libFuzzer target: decode + apply into a read model. The input is split
 * at newlines into messages (key: the text before the first '|', if any),
 * applied as one batch, then applied again at the same offsets. Checked
 * after each: order_totals and daily_totals equal the sums over
 * order_list, and the second delivery changed nothing at all (exactly-once
 * effect). Runs are sealed after every few ids, so they are fuzzed too. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/store.h"

#define MAX_MSGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUTS_PER_FILE 2000 /* then a fresh file: memory stays bounded */

static of_store *st;
static sqlite3 *db; /* a reader: the checks */
static int64_t next_offset;
static unsigned inputs;

static const char check_sql[] =
        "SELECT (SELECT count(*) FROM order_list WHERE placed_at IS NOT NULL)"
        " = orders_placed AND (SELECT count(*) FROM order_list WHERE paid_at"
        " IS NOT NULL) = orders_paid AND (SELECT coalesce(sum(total), 0)"
        " FROM order_list) = placed_amount AND (SELECT coalesce("
        "sum(paid_amount), 0) FROM order_list) = paid_amount AND (SELECT"
        " coalesce(sum(orders_placed), 0) FROM daily_totals) = orders_placed"
        " AND (SELECT coalesce(sum(placed_amount), 0) FROM daily_totals) ="
        " placed_amount AND (SELECT coalesce(sum(paid_amount), 0) FROM"
        " daily_totals) = paid_amount FROM order_totals";
static const char state_sql[] =
        "SELECT (SELECT count(*) FROM processed_events) || ',' || (SELECT"
        " count(*) FROM dead_letters) || ',' || (SELECT count(*) FROM"
        " order_list) || ',' || orders_placed || ',' || orders_paid || ','"
        " || placed_amount || ',' || paid_amount FROM order_totals";

static void remove_files(const char *path)
{
        char p[80];

        unlink(path);
        snprintf(p, sizeof(p), "%s-wal", path);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", path);
        unlink(p);
}

static char path[64];

static void at_exit(void)
{
        sqlite3_close(db);
        of_store_close(st);
        remove_files(path);
}

static void setup(void)
{
        char err[512];

        snprintf(path, sizeof(path), "/tmp/orderflow-fuzz-%d.db", getpid());
        if (!st)
                atexit(at_exit);
        if (st) {
                sqlite3_close(db);
                of_store_close(st);
        }
        remove_files(path);
        if (of_store_open(&st, path, err, sizeof(err)) ||
            sqlite3_open(path, &db) != SQLITE_OK) {
                fprintf(stderr, "fuzz_apply: %s\n", err);
                abort();
        }
        sqlite3_busy_timeout(db, 5000);
        of_store_set_seal_events(st, 7);
}

static void query(const char *sql, char *out, size_t out_size)
{
        sqlite3_stmt *stmt = NULL;

        if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK ||
            sqlite3_step(stmt) != SQLITE_ROW)
                abort();
        snprintf(out, out_size, "%s",
                 (const char *)sqlite3_column_text(stmt, 0));
        sqlite3_finalize(stmt);
}

static void apply(const of_msg *msgs, size_t n)
{
        of_store_pos pos = {"fuzz", 0, msgs[n - 1].offset + 1};
        of_store_stats stats = {0};
        char err[512], ok[8];

        if (of_store_apply_batch(st, msgs, n, &pos, 1, &stats, err,
                                 sizeof(err)) != 0) {
                fprintf(stderr, "fuzz_apply: %s\n", err);
                abort(); /* bad input is data, never a failure */
        }
        query(check_sql, ok, sizeof(ok));
        if (strcmp(ok, "1") != 0)
                __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *p = (const char *)data, *end = p + size, *nl, *bar;
        of_msg msgs[MAX_MSGS];
        char before[256], after[256];
        size_t n = 0;

        if (!st || ++inputs % INPUTS_PER_FILE == 0)
                setup();
        while (p < end && n < MAX_MSGS) {
                nl = memchr(p, '\n', (size_t)(end - p));
                nl = nl ? nl : end;
                bar = memchr(p, '|', (size_t)(nl - p));
                msgs[n] = (of_msg){
                        .topic = "fuzz",
                        .partition = 0,
                        .offset = next_offset++,
                        .key = bar ? p : NULL,
                        .key_len = bar ? (size_t)(bar - p) : 0,
                        .value = bar ? bar + 1 : p,
                        .value_len = (size_t)(nl - (bar ? bar + 1 : p)),
                };
                n++;
                p = nl + 1;
        }
        if (n == 0)
                return 0;
        apply(msgs, n);
        query(state_sql, before, sizeof(before));
        apply(msgs, n); /* the same messages delivered again */
        query(state_sql, after, sizeof(after));
        if (strcmp(before, after) != 0)
                __builtin_trap();
        return 0;
}
