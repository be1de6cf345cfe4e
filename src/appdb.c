/* The writer's application database: orders and their outbox rows, each
 * change with its outbox row in one transaction, and the outbox's counts;
 * the relay's side of the outbox (claim, lease, mark, retry, prune). The
 * envelope's JSON is event.c's; publishing is the relay's. */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <sqlite3.h>

#include "orderflow/appdb.h"
#include "orderflow/error.h"
#include "orderflow/timestamp.h"

#include "schema.h"
#include "sqldb.h"

/* One window of PRUNE_SEQS seq: prune walks the table window by window,
 * each its own short transaction. */
#define PRUNE_SEQS 1000

/* The statements of orders and outbox rows; of the relay's side. */
enum { APP_BEGIN, APP_COMMIT, APP_ROLLBACK, APP_ORDER_GET, APP_ORDER_PUT,
       APP_ORDER_PAY, APP_OUTBOX_PUT, APP_PAYLOAD_PUT, APP_COUNT_ROWS,
       APP_OLDEST, APP_COUNT };
enum { OB_BEGIN, OB_COMMIT, OB_ROLLBACK, OB_LEASES, OB_DUE, OB_LEASE,
       OB_RELEASE, OB_SENT, OB_HELD, OB_FAILED, OB_RETRY_ONE, OB_RETRY_ALL,
       OB_PRUNE, OB_SEQS, OB_COUNT };

struct of_appdb {
        /* the connection; orders with their outbox rows */
        sqlite3 *db;
        sqlite3_stmt *stmt[APP_COUNT];

        /* the relay's side of the outbox */
        sqlite3_stmt *ob[OB_COUNT];
        char *json;        /* mark's lists of seqs, kept for the next mark */
        size_t json_cap;
        char *behind_json;
        size_t behind_cap;
};

static const char *const appdb_sql[APP_COUNT] = {
        [APP_BEGIN] = "BEGIN IMMEDIATE",
        [APP_COMMIT] = "COMMIT",
        [APP_ROLLBACK] = "ROLLBACK",
        [APP_ORDER_GET] = "SELECT status FROM orders WHERE order_id = ?1",
        [APP_ORDER_PUT] = "INSERT INTO orders (order_id, status, total,"
                          " placed_at) VALUES (?1, 'ORDERED', ?2, ?3)",
        [APP_ORDER_PAY] = "UPDATE orders SET status = 'PAID',"
                          " paid_amount = ?2, paid_at = ?3"
                          " WHERE order_id = ?1",
        [APP_OUTBOX_PUT] = "INSERT INTO outbox_messages (id, type,"
                           " aggregate_id, occurred_at)"
                           " VALUES (?1, ?2, ?3, ?4)",
        [APP_PAYLOAD_PUT] = "INSERT INTO outbox_payloads (seq, payload)"
                            " VALUES (last_insert_rowid(), ?1)",
        /* Literal statuses, so that the partial indexes answer; SENT
         * rows are the rest, so their count needs no index of its own. */
        [APP_COUNT_ROWS] =
                "SELECT (SELECT count(*) FROM outbox_messages),"
                " (SELECT count(*) FROM outbox_messages"
                " WHERE status = 'PENDING'),"
                " (SELECT count(*) FROM outbox_messages"
                " WHERE status = 'DEAD')",
        [APP_OLDEST] = "SELECT occurred_at FROM outbox_messages"
                       " WHERE status = 'PENDING' ORDER BY seq LIMIT 1",
};

static const char *const outbox_sql[OB_COUNT] = {
        [OB_BEGIN] = "BEGIN IMMEDIATE",
        [OB_COMMIT] = "COMMIT",
        [OB_ROLLBACK] = "ROLLBACK",
        /* The ranges of the live leases of every relay, this one's
         * earlier claims included: the claim reads the gaps between
         * them. */
        [OB_LEASES] = "SELECT first_seq, last_seq FROM outbox_leases"
                      " WHERE lease_until > ?1 ORDER BY first_seq",
        /* The due rows of one gap, [?2, ?3], in commit order: read from
         * the pending index in seq order (so no sort, and a leased range
         * is never walked, nor a SENT row); CROSS JOIN keeps it the outer
         * loop. The last column lists the seq of the earlier rows of the
         * row's order that are not SENT, NULL when none (the common case;
         * an order has a row or two): the claim takes the row only when
         * those are all in this claim or in the relay's batch in flight.
         * No LIMIT: a row held back is stepped over, and the claim stops
         * stepping once it has its rows. */
        [OB_DUE] =
                "SELECT m.seq, m.id, m.type, m.aggregate_id, p.payload,"
                " m.attempts,"
                " (SELECT group_concat(e.seq) FROM outbox_messages e"
                "  WHERE e.aggregate_id = m.aggregate_id AND e.seq < m.seq"
                "  AND e.status != 'SENT')"
                " FROM outbox_messages m INDEXED BY outbox_pending"
                " CROSS JOIN outbox_payloads p"
                " ON p.seq = m.seq"
                " WHERE m.status = 'PENDING' AND m.seq BETWEEN ?2 AND ?3"
                " AND m.next_attempt_at <= ?1"
                " ORDER BY m.seq",
        /* One row leases the whole claim: no row of it is written. */
        [OB_LEASE] = "INSERT INTO outbox_leases (owner, first_seq,"
                     " last_seq, lease_until) VALUES (?1, ?2, ?3, ?4)",
        /* A marked claim gives its range back; so does a lease run out
         * (its relay died, or took longer than the lease). */
        [OB_RELEASE] = "DELETE FROM outbox_leases"
                       " WHERE id = ?1 OR lease_until <= ?2",
        /* ?1 is a JSON array of the delivered rows' seq: one statement a
         * batch (stepping one a row costs more). */
        [OB_SENT] = "UPDATE outbox_messages SET status = 'SENT',"
                    " sent_at = ?2"
                    " WHERE seq IN (SELECT value FROM json_each(?1))",
        /* ?1: the seq of the rows claimed behind earlier unsent rows of
         * their order (row.behind > 0), delivered or not; ?2: every
         * delivered row's seq. Those of ?1 with an earlier row of their
         * order that stays unsent (neither SENT nor delivered now: it
         * failed, or is DEAD, or was itself held back) are held back. */
        [OB_HELD] =
                "SELECT c.value FROM json_each(?1) c"
                " WHERE EXISTS (SELECT 1 FROM outbox_messages m"
                "  JOIN outbox_messages e ON e.aggregate_id = m.aggregate_id"
                "  AND e.seq < m.seq"
                "  WHERE m.seq = c.value AND e.status != 'SENT'"
                "  AND e.seq NOT IN (SELECT value FROM json_each(?2)))",
        [OB_FAILED] =
                "UPDATE outbox_messages SET attempts = attempts + 1,"
                " last_error = ?2, next_attempt_at = ?3,"
                " status = CASE WHEN attempts + 1 >= ?4 THEN 'DEAD'"
                " ELSE status END"
                " WHERE seq = ?1"
                " RETURNING status = 'DEAD'",
        [OB_RETRY_ONE] = "UPDATE outbox_messages SET status = 'PENDING',"
                         " attempts = 0, next_attempt_at = 0"
                         " WHERE status = 'DEAD' AND id = ?1",
        [OB_RETRY_ALL] = "UPDATE outbox_messages SET status = 'PENDING',"
                         " attempts = 0, next_attempt_at = 0"
                         " WHERE status = 'DEAD'",
        [OB_PRUNE] = "DELETE FROM outbox_messages WHERE seq >= ?1"
                     " AND seq < ?2 AND status = 'SENT' AND sent_at < ?3",
        [OB_SEQS] = "SELECT min(seq), max(seq) FROM outbox_messages",
};

static int outbox_open(of_appdb *app, char *errstr, size_t errstr_size)
{
        return sqldb_prepare_all(app->db, app->ob, outbox_sql, OB_COUNT,
                                 errstr, errstr_size);
}

static void outbox_close(of_appdb *app)
{
        sqldb_finalize_all(app->ob, OB_COUNT);
        free(app->json);
        free(app->behind_json);
}

/* ---- the file and its migrations ---- */

/* A database from before the envelope moved to outbox_payloads has it in
 * outbox_messages.payload: move it over, once (in open's transaction). */
static int move_payloads(sqlite3 *db, char **msg)
{
        int has, rc = sqldb_has_column(&has, db, "outbox_messages",
                                       "payload");

        if (rc != SQLITE_OK || !has)
                return rc;
        return sqlite3_exec(db,
                            "INSERT OR IGNORE INTO outbox_payloads (seq,"
                            " payload) SELECT seq, payload FROM"
                            " outbox_messages;"
                            "ALTER TABLE outbox_messages DROP COLUMN payload",
                            NULL, NULL, msg);
}

/* A database from before orders.status said ORDERED has 'PLACED' in its
 * rows and in the table's CHECK, which SQLite cannot alter: rebuild the
 * table (in open's transaction, once). The old table is renamed first so
 * that the schema text makes the new one; nothing else (no index beyond
 * the key, trigger, view or foreign key) refers to orders. */
static int order_status_ordered(sqlite3 *db, char **msg)
{
        int has, rc = sqldb_exists(&has, db,
                                   "SELECT 1 FROM sqlite_master WHERE type ="
                                   " 'table' AND name = 'orders' AND"
                                   " instr(sql, '''PLACED''') > 0",
                                   NULL, NULL);

        if (rc != SQLITE_OK || !has)
                return rc;
        rc = sqlite3_exec(db, "ALTER TABLE orders RENAME TO orders_placed",
                          NULL, NULL, msg);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, of_schema_appdb, NULL, NULL, msg);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db,
                                  "INSERT INTO orders (order_id, status,"
                                  " total, paid_amount, placed_at, paid_at)"
                                  " SELECT order_id, CASE status WHEN"
                                  " 'PLACED' THEN 'ORDERED' ELSE status END,"
                                  " total, paid_amount, placed_at, paid_at"
                                  " FROM orders_placed;"
                                  "DROP TABLE orders_placed",
                                  NULL, NULL, msg);
        return rc;
}

/* Bring a database written by an older orderflow up to date. */
static int migrate(sqlite3 *db, char **msg)
{
        int rc = move_payloads(db, msg);

        return rc == SQLITE_OK ? order_status_ordered(db, msg) : rc;
}

/* The application database as a kind of file (sqldb_open()). */
static const sqldb_kind appdb_kind = {
        .name = "an application database",
        .schema = of_schema_appdb,
        .other_table = "order_list",
        .other_name = "a read model",
        .pragmas = "PRAGMA journal_mode = WAL;"
                   "PRAGMA synchronous = FULL;",
        .after = migrate,
};

static int open_with(of_appdb **out, const char *path, int flags,
                     char *errstr, size_t errstr_size)
{
        of_appdb *app = calloc(1, sizeof(*app));
        int err;

        *out = NULL;
        if (!app)
                return of_errf(errstr, errstr_size, "out of memory");
        if ((err = sqldb_open(&app->db, path, flags | SQLITE_OPEN_NOMUTEX,
                              &appdb_kind, 5000, errstr, errstr_size))) {
                if (err == OF_ENOTFOUND)
                        of_errf(errstr, errstr_size,
                                "no application database at %s", path);
                goto fail;
        }
        if (sqldb_setup(app->db, path, &appdb_kind, errstr, errstr_size) ||
            sqldb_prepare_all(app->db, app->stmt, appdb_sql, APP_COUNT,
                              errstr, errstr_size) ||
            outbox_open(app, errstr, errstr_size))
                goto fail;
        *out = app;
        return 0;
fail:
        of_appdb_close(app);
        return OF_ERROR;
}

int of_appdb_open(of_appdb **out, const char *path, char *errstr,
                  size_t errstr_size)
{
        return open_with(out, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                         errstr, errstr_size);
}

int of_appdb_open_existing(of_appdb **out, const char *path, char *errstr,
                           size_t errstr_size)
{
        return open_with(out, path, SQLITE_OPEN_READWRITE, errstr,
                         errstr_size);
}

void of_appdb_close(of_appdb *app)
{
        if (!app)
                return;
        outbox_close(app);
        sqldb_finalize_all(app->stmt, APP_COUNT);
        sqlite3_close(app->db);
        free(app);
}

/* ---- event ids and times ---- */

int of_appdb_uuid7(char out[37], char *errstr, size_t errstr_size)
{
        unsigned char b[16];
        uint64_t ms = (uint64_t)of_timestamp_now_ms();
        int i;

        if (getrandom(b + 6, 10, 0) != 10)
                return of_errf(errstr, errstr_size, "getrandom failed");
        for (i = 0; i < 6; i++)
                b[i] = (unsigned char)(ms >> (40 - 8 * i));
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x70); /* version 7 */
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
        snprintf(out, 37,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                 b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}

/* ---- place and pay ---- */

/* The order's status: 1 and *paid set when it exists, 0 when not. */
static int order_status(of_appdb *app, int *paid, const char *order_id,
                        char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->stmt[APP_ORDER_GET];
        int rc, found = 0;

        sqlite3_bind_text(stmt, 1, order_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
                found = 1;
                *paid = !strcmp((const char *)sqlite3_column_text(stmt, 0),
                                "PAID");
        } else if (rc != SQLITE_DONE) {
                found = sqldb_fail(app->db, rc, "reading orders", errstr,
                                   errstr_size);
        }
        sqlite3_reset(stmt);
        return found;
}

/* Build the event, check it decodes as a valid event (so nothing we
 * publish can be a dead letter), and insert its outbox row. */
static int put_outbox(of_appdb *app, of_event *ev, of_event_type type,
                      const char *order_id, int64_t amount, char *errstr,
                      size_t errstr_size)
{
        sqlite3_stmt *stmt = app->stmt[APP_OUTBOX_PUT];
        char reason[OF_REASON_MAX], *json = NULL;
        of_event back;
        int err;

        memset(ev, 0, sizeof(*ev));
        ev->type = type;
        if (strlen(order_id) > OF_ID_MAX)
                return of_errf(errstr, errstr_size,
                               "order id longer than %d bytes", OF_ID_MAX);
        snprintf(ev->aggregate_id, sizeof(ev->aggregate_id), "%s", order_id);
        snprintf(ev->type_name, sizeof(ev->type_name), "%s",
                 type == OF_EVENT_PLACED ? "OrderPlaced" : "OrderPaid");
        ev->amount = amount;
        of_timestamp_from_ms(ev->occurred_at, of_timestamp_now_ms());
        if ((err = of_appdb_uuid7(ev->id, errstr, errstr_size)))
                return err;
        if (of_event_format(&json, ev))
                return of_errf(errstr, errstr_size, "out of memory");
        if ((err = of_event_parse(&back, json, strlen(json), reason,
                                  sizeof(reason))) < 0) {
                err = of_errf(errstr, errstr_size, "%s", reason);
                goto out;
        }
        if (err) {
                /* The only input is the order id. */
                err = of_errf(errstr, errstr_size, "order id: %s",
                              strncmp(reason, OF_REASON_UTF8,
                                      strlen(OF_REASON_UTF8))
                                      ? reason
                                      : OF_REASON_UTF8);
                goto out;
        }
        sqlite3_bind_text(stmt, 1, ev->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, ev->type_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, ev->aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, ev->occurred_at, -1, SQLITE_STATIC);
        if ((err = sqldb_step(app->db, stmt, errstr, errstr_size)))
                goto out;
        stmt = app->stmt[APP_PAYLOAD_PUT];
        sqlite3_bind_text(stmt, 1, json, -1, SQLITE_STATIC);
        err = sqldb_step(app->db, stmt, errstr, errstr_size);
out:
        free(json);
        return err;
}

static int change(of_appdb *app, of_event *out, of_event_type type,
                  const char *order_id, int64_t amount, char *errstr,
                  size_t errstr_size)
{
        sqlite3_stmt *stmt;
        of_event ev;
        int err, paid = 0, found;

        if ((err = sqldb_step(app->db, app->stmt[APP_BEGIN], errstr,
                              errstr_size)))
                return err;
        found = order_status(app, &paid, order_id, errstr, errstr_size);
        if (found < 0) {
                err = found;
                goto out;
        }
        if (type == OF_EVENT_PLACED && found) {
                err = OF_EEXISTS;
                of_errf(errstr, errstr_size, "order %s exists already",
                        order_id);
                goto out;
        }
        if (type == OF_EVENT_PAID && (!found || paid)) {
                err = found ? OF_EEXISTS : OF_ENOTFOUND;
                of_errf(errstr, errstr_size, "order %s %s", order_id,
                        found ? "is paid already" : "does not exist");
                goto out;
        }
        if ((err = put_outbox(app, &ev, type, order_id, amount, errstr,
                              errstr_size)))
                goto out;
        stmt = app->stmt[type == OF_EVENT_PLACED ? APP_ORDER_PUT
                                                 : APP_ORDER_PAY];
        sqlite3_bind_text(stmt, 1, order_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, amount);
        sqlite3_bind_text(stmt, 3, ev.occurred_at, -1, SQLITE_STATIC);
        if ((err = sqldb_step(app->db, stmt, errstr, errstr_size)) ||
            (err = sqldb_step(app->db, app->stmt[APP_COMMIT], errstr,
                              errstr_size)))
                goto out;
        if (out)
                *out = ev;
out:
        if (err)
                sqldb_rollback(app->db, app->stmt[APP_ROLLBACK]);
        return err;
}

int of_appdb_place(of_appdb *app, of_event *out, const char *order_id,
                   int64_t total, char *errstr, size_t errstr_size)
{
        return change(app, out, OF_EVENT_PLACED, order_id, total, errstr,
                      errstr_size);
}

int of_appdb_pay(of_appdb *app, of_event *out, const char *order_id,
                 int64_t amount, char *errstr, size_t errstr_size)
{
        return change(app, out, OF_EVENT_PAID, order_id, amount, errstr,
                      errstr_size);
}

/* ---- the outbox's state ---- */

static int count(of_appdb *app, of_outbox_status *out, char *errstr,
                 size_t errstr_size)
{
        sqlite3_stmt *stmt = app->stmt[APP_COUNT_ROWS];
        int rc, err = 0;

        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
                out->pending = sqlite3_column_int64(stmt, 1);
                out->dead = sqlite3_column_int64(stmt, 2);
                out->sent = sqlite3_column_int64(stmt, 0) - out->pending -
                            out->dead;
        } else {
                err = sqldb_fail(app->db, rc, "counting outbox rows", errstr,
                                 errstr_size);
        }
        sqlite3_reset(stmt);
        return err;
}

/* Seconds since the UTC time text ts (YYYY-MM-DDTHH:MM:SS.sssZ). */
static double age_s(const char *ts)
{
        struct tm tm = {0};
        struct timespec now;
        double age;
        int ms = 0;

        if (sscanf(ts, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon,
                   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                   &ms) != 7)
                return 0;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        clock_gettime(CLOCK_REALTIME, &now);
        age = (double)(now.tv_sec - timegm(&tm)) +
              (double)now.tv_nsec / 1e9 - ms / 1000.0;
        return age < 0 ? 0 : age; /* the clock went back */
}

int of_appdb_outbox_status(of_appdb *app, of_outbox_status *out,
                           char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->stmt[APP_OLDEST];
        int rc, err;

        memset(out, 0, sizeof(*out));
        /* One read transaction, so the four figures agree. */
        if ((rc = sqlite3_exec(app->db, "BEGIN", NULL, NULL, NULL)) !=
            SQLITE_OK)
                return sqldb_fail(app->db, rc, "BEGIN", errstr, errstr_size);
        if ((err = count(app, out, errstr, errstr_size)))
                goto out;
        out->oldest_pending_age_s = -1;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                out->oldest_pending_age_s =
                        age_s((const char *)sqlite3_column_text(stmt, 0));
        else if (rc != SQLITE_DONE)
                err = sqldb_fail(app->db, rc, "reading the outbox", errstr,
                                 errstr_size);
        sqlite3_reset(stmt);
out:
        sqlite3_exec(app->db, "COMMIT", NULL, NULL, NULL);
        return err;
}

/* ---- the relay's side ---- */

void of_appdb_batch_free(of_outbox_batch *b)
{
        if (!b)
                return;
        free(b->rows);
        free(b->text);
        memset(b, 0, sizeof(*b));
}

/* Room for need more bytes of text. A move rebases the rows' strings
 * (malloc, copy, free: their offsets are taken while the old buffer is
 * still there). */
static int text_reserve(of_outbox_batch *b, size_t need)
{
        size_t cap = b->text_cap ? b->text_cap : 64 * 1024, i;
        char *text;

        if (b->text_len + need <= b->text_cap)
                return 0;
        while (cap < b->text_len + need)
                cap *= 2;
        if (!(text = malloc(cap)))
                return OF_ERROR;
        if (b->text_len)
                memcpy(text, b->text, b->text_len);
        for (i = 0; i < b->n; i++) {
                of_outbox_row *r = &b->rows[i];

                r->id = text + (r->id - b->text);
                r->type = text + (r->type - b->text);
                r->aggregate_id = text + (r->aggregate_id - b->text);
                r->payload = text + (r->payload - b->text);
        }
        free(b->text);
        b->text = text;
        b->text_cap = cap;
        return 0;
}

/* Column col of the current row, copied into b's text with a NUL. */
static char *text_put(of_outbox_batch *b, sqlite3_stmt *stmt, int col)
{
        const void *p = sqlite3_column_blob(stmt, col);
        size_t n = (size_t)sqlite3_column_bytes(stmt, col);
        char *s = b->text + b->text_len;

        if (n)
                memcpy(s, p, n);
        s[n] = '\0';
        b->text_len += n + 1;
        return s;
}

/* The seq of each result as a JSON array, for json_each(), in *buf
 * (reused: a fresh 200 KiB a batch costs more than its writing): of the
 * delivered rows not held back, or with behind of the rows claimed behind
 * earlier unsent rows of their order. NULL when out of memory. */
static char *seqs_json(char **buf, size_t *cap, const of_outbox_result *res,
                       size_t n, int behind)
{
        char *p;
        size_t i;

        if (*cap < n * 21 + 3) {
                free(*buf);
                *cap = n * 21 + 3;
                if (!(*buf = malloc(*cap))) {
                        *cap = 0;
                        return NULL;
                }
        }
        p = *buf;
        *p++ = '[';
        for (i = 0; i < n; i++) {
                if (behind ? res[i].behind <= 0
                           : res[i].error || res[i].held)
                        continue;
                if (p[-1] != '[')
                        *p++ = ',';
                p += sprintf(p, "%lld", (long long)res[i].seq);
        }
        *p++ = ']';
        *p = '\0';
        return *buf;
}

/* The index of the first of the n elements of size bytes at base (rows
 * or results, in seq order: seq is their first member) whose seq is at
 * least seq; n when none is. */
static size_t seq_index(const void *base, size_t n, size_t size, int64_t seq)
{
        size_t lo = 0, hi = n, mid;
        int64_t at;

        _Static_assert(offsetof(of_outbox_row, seq) == 0, "seq first");
        _Static_assert(offsetof(of_outbox_result, seq) == 0, "seq first");
        while (lo < hi) {
                mid = lo + (hi - lo) / 2;
                memcpy(&at, (const char *)base + mid * size, sizeof(at));
                if (at < seq)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* ---- the claim ---- */

/* Whether b (NULL: none) holds the row with seq. */
static int has_seq(const of_outbox_batch *b, int64_t seq)
{
        size_t i;

        if (!b)
                return 0;
        i = seq_index(b->rows, b->n, sizeof(b->rows[0]), seq);
        return i < b->n && b->rows[i].seq == seq;
}

/* How many seqs the list ("12,15") names when every one is on its way:
 * in b (the claim so far) or in in_flight; -1 when one is not. */
static int on_their_way(const char *list, const of_outbox_batch *b,
                        const of_outbox_batch *in_flight)
{
        int n = 0;
        char *end;

        for (; *list; list = *end ? end + 1 : end, n++) {
                int64_t seq = strtoll(list, &end, 10);

                if (!has_seq(b, seq) && !has_seq(in_flight, seq))
                        return -1;
        }
        return n;
}

/* Append the due rows with seq in [lo, hi] to b, up to max rows in all,
 * taking a row only when the earlier rows of its order that are not SENT
 * are all on their way: in in_flight, or taken into b already. */
static int read_due(of_appdb *app, of_outbox_batch *b,
                    const of_outbox_batch *in_flight, int64_t lo,
                    int64_t hi, size_t max, int64_t now_ms, char *errstr,
                    size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_DUE];
        int rc = SQLITE_DONE;

        sqlite3_bind_int64(stmt, 1, now_ms);
        sqlite3_bind_int64(stmt, 2, lo);
        sqlite3_bind_int64(stmt, 3, hi);
        while (b->n < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                of_outbox_row *r = &b->rows[b->n];
                const char *before =
                        (const char *)sqlite3_column_text(stmt, 6);
                size_t need = 4;
                int col, behind = 0;

                /* An earlier row failed, is DEAD, waits out a backoff or
                 * lies in another relay's lease: the row waits too. */
                if (before &&
                    (behind = on_their_way(before, b, in_flight)) < 0)
                        continue;
                for (col = 1; col <= 4; col++)
                        need += (size_t)sqlite3_column_bytes(stmt, col);
                if (text_reserve(b, need)) {
                        rc = SQLITE_NOMEM;
                        break;
                }
                r->seq = sqlite3_column_int64(stmt, 0);
                r->id = text_put(b, stmt, 1);
                r->type = text_put(b, stmt, 2);
                r->aggregate_id = text_put(b, stmt, 3);
                r->payload = text_put(b, stmt, 4);
                r->payload_len = (size_t)sqlite3_column_bytes(stmt, 4);
                r->attempts = sqlite3_column_int(stmt, 5);
                r->behind = behind;
                b->n++;
        }
        sqlite3_reset(stmt);
        if (rc == SQLITE_NOMEM)
                return of_errf(errstr, errstr_size, "out of memory");
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                return sqldb_fail(app->db, rc, "claiming outbox rows",
                                  errstr, errstr_size);
        return 0;
}

/* Read the due rows outside every live lease into b, in seq order. */
static int read_gaps(of_appdb *app, of_outbox_batch *b,
                     const of_outbox_batch *in_flight, size_t max,
                     int64_t now_ms, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_LEASES];
        int64_t lo = 0, first, last;
        int rc = SQLITE_DONE, err = 0;

        sqlite3_bind_int64(stmt, 1, now_ms);
        while (b->n < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                first = sqlite3_column_int64(stmt, 0);
                last = sqlite3_column_int64(stmt, 1);
                if (first > lo &&
                    (err = read_due(app, b, in_flight, lo, first - 1, max,
                                    now_ms, errstr, errstr_size)))
                        break;
                if (last >= lo) /* ranges may overlap */
                        lo = last + 1;
        }
        sqlite3_reset(stmt);
        if (err)
                return err;
        if (b->n < max && rc != SQLITE_DONE)
                return sqldb_fail(app->db, rc, "reading outbox leases",
                                  errstr, errstr_size);
        if (b->n < max)
                err = read_due(app, b, in_flight, lo, INT64_MAX, max,
                               now_ms, errstr, errstr_size);
        return err;
}

int of_appdb_claim(of_appdb *app, of_outbox_batch *out, size_t max,
                   const of_outbox_batch *in_flight, int64_t now_ms,
                   int lease_ms, const char *owner, char *errstr,
                   size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_LEASE];
        int err;

        out->n = 0;
        out->text_len = 0;
        out->lease = 0;
        if (out->cap < max) {
                of_outbox_row *rows = realloc(out->rows,
                                              max * sizeof(*rows));

                if (!rows)
                        return of_errf(errstr, errstr_size, "out of memory");
                out->rows = rows;
                out->cap = max;
        }
        assert(in_flight != out);
        if ((err = sqldb_step(app->db, app->ob[OB_BEGIN], errstr,
                              errstr_size)))
                return err;
        if ((err = read_gaps(app, out, in_flight, max, now_ms, errstr,
                             errstr_size)))
                goto out;
        if (out->n) {
                sqlite3_bind_text(stmt, 1, owner, -1, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, 2, out->rows[0].seq);
                sqlite3_bind_int64(stmt, 3, out->rows[out->n - 1].seq);
                sqlite3_bind_int64(stmt, 4, now_ms + lease_ms);
                if (!(err = sqldb_step(app->db, stmt, errstr, errstr_size)))
                        out->lease = sqlite3_last_insert_rowid(app->db);
        }
        if (!err)
                err = sqldb_step(app->db, app->ob[OB_COMMIT], errstr,
                                 errstr_size);
out:
        if (err) {
                sqldb_rollback(app->db, app->ob[OB_ROLLBACK]);
                out->n = 0;
                out->lease = 0;
        }
        return err;
}

/* ---- the mark ---- */

/* The wait before attempt number attempts+1, in ms. */
static int64_t backoff_ms(const of_backoff *bo, int attempts)
{
        int64_t d = bo->base_ms;
        uint32_t r = 0;

        while (attempts-- > 0 && d < bo->cap_ms)
                d *= 2;
        if (d > bo->cap_ms)
                d = bo->cap_ms;
        /* Up to 20% less, so relays that failed together spread out. */
        if (getrandom(&r, sizeof(r), 0) == sizeof(r) && d >= 5)
                d -= (int64_t)(r % (uint32_t)(d / 5 + 1));
        return d;
}

/* Set held on the results that must stay PENDING behind an earlier row
 * of their order that stays unsent. Only rows claimed behind unsent rows
 * can be: for the others every earlier row was SENT at the claim. res is
 * in seq order. */
static int find_held(of_appdb *app, of_outbox_result *res, size_t n,
                     char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_HELD];
        char *behind, *delivered;
        size_t i;
        int rc;

        for (i = 0; i < n && res[i].behind <= 0; i++)
                ;
        if (i == n)
                return 0;
        behind = seqs_json(&app->behind_json, &app->behind_cap, res, n, 1);
        delivered = seqs_json(&app->json, &app->json_cap, res, n, 0);
        if (!behind || !delivered)
                return of_errf(errstr, errstr_size, "out of memory");
        sqlite3_bind_text(stmt, 1, behind, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, delivered, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                i = seq_index(res, n, sizeof(res[0]),
                              sqlite3_column_int64(stmt, 0));
                assert(i < n);
                res[i].held = 1;
        }
        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE)
                return sqldb_fail(app->db, rc, "reading held rows", errstr,
                                  errstr_size);
        return 0;
}

/* Mark the failed rows of res[0..n) not held back: attempts + 1, the next
 * attempt backed off, or DEAD; *went_dead counts those. */
static int mark_failed(of_appdb *app, const of_outbox_result *res,
                       size_t n, const of_backoff *bo, int64_t now_ms,
                       size_t *went_dead, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_FAILED];
        size_t i;
        int rc;

        for (i = 0; i < n; i++) {
                if (!res[i].error || res[i].held)
                        continue;
                sqlite3_bind_int64(stmt, 1, res[i].seq);
                sqlite3_bind_text(stmt, 2, res[i].error, -1, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, 3,
                                   now_ms + backoff_ms(bo, res[i].attempts));
                sqlite3_bind_int(stmt, 4, bo->max_attempts);
                rc = sqlite3_step(stmt);
                if (rc == SQLITE_ROW) {
                        *went_dead += sqlite3_column_int(stmt, 0) != 0;
                        rc = sqlite3_step(stmt);
                }
                sqlite3_reset(stmt);
                if (rc != SQLITE_DONE)
                        return sqldb_fail(app->db, rc, "marking a failed row",
                                          errstr, errstr_size);
        }
        return 0;
}

int of_appdb_mark(of_appdb *app, int64_t lease, of_outbox_result *res,
                  size_t n, const of_backoff *bo, int64_t now_ms,
                  size_t *dead, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_SENT];
        char now[OF_TS_LEN + 1], *json;
        size_t i, went_dead = 0;
        int err;

        of_timestamp_from_ms(now, now_ms);
        for (i = 0; i < n; i++)
                res[i].held = 0;
        if ((err = sqldb_step(app->db, app->ob[OB_BEGIN], errstr,
                              errstr_size)))
                return err;
        if ((err = find_held(app, res, n, errstr, errstr_size)))
                goto out;
        if (!(json = seqs_json(&app->json, &app->json_cap, res, n, 0))) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        sqlite3_bind_text(stmt, 1, json, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, now, -1, SQLITE_STATIC);
        if ((err = sqldb_step(app->db, stmt, errstr, errstr_size)) ||
            (err = mark_failed(app, res, n, bo, now_ms, &went_dead, errstr,
                               errstr_size)))
                goto out;
        stmt = app->ob[OB_RELEASE];
        sqlite3_bind_int64(stmt, 1, lease);
        sqlite3_bind_int64(stmt, 2, now_ms);
        if (!(err = sqldb_step(app->db, stmt, errstr, errstr_size)))
                err = sqldb_step(app->db, app->ob[OB_COMMIT], errstr,
                                 errstr_size);
out:
        if (err)
                sqldb_rollback(app->db, app->ob[OB_ROLLBACK]);
        if (!err && dead)
                *dead = went_dead;
        return err;
}

/* ---- operations ---- */

int of_appdb_retry(of_appdb *app, const char *id, int64_t *changed,
                   char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[id ? OB_RETRY_ONE : OB_RETRY_ALL];
        int err;

        if (id)
                sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        if ((err = sqldb_step(app->db, stmt, errstr, errstr_size)))
                return err;
        *changed = sqlite3_changes(app->db);
        if (id && !*changed) {
                of_errf(errstr, errstr_size, "no DEAD outbox row with id %s",
                        id);
                return OF_ENOTFOUND;
        }
        return 0;
}

int of_appdb_prune(of_appdb *app, int64_t older_than_ms, int64_t *deleted,
                   char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = app->ob[OB_SEQS];
        char cutoff[OF_TS_LEN + 1];
        int64_t lo = 0, last = -1;
        int err, rc;

        of_timestamp_from_ms(cutoff, of_timestamp_now_ms() - older_than_ms);
        *deleted = 0;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
                lo = sqlite3_column_int64(stmt, 0);
                last = sqlite3_column_int64(stmt, 1);
        }
        sqlite3_reset(stmt);
        if (rc != SQLITE_ROW)
                return sqldb_fail(app->db, rc, "reading the outbox", errstr,
                                  errstr_size);
        /* Each DELETE is its own short transaction: a relay waiting for the
         * write lock gets it between two of them. Rows committed after
         * last are younger than the cutoff anyway. */
        stmt = app->ob[OB_PRUNE];
        for (; lo <= last; lo += PRUNE_SEQS) {
                sqlite3_bind_int64(stmt, 1, lo);
                sqlite3_bind_int64(stmt, 2, lo + PRUNE_SEQS);
                sqlite3_bind_text(stmt, 3, cutoff, -1, SQLITE_STATIC);
                if ((err = sqldb_step(app->db, stmt, errstr, errstr_size)))
                        return err;
                *deleted += sqlite3_changes(app->db);
        }
        return 0;
}
