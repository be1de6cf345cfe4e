/* The writer's application database: opening it (schema, migrations),
 * placing and paying orders, each change with its outbox row in one
 * transaction, and the outbox's counts. The relay's side of the outbox is
 * outbox.c's; the envelope's JSON is event.c's; event ids are uuid.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "orderflow/appdb.h"
#include "orderflow/error.h"
#include "orderflow/timestamp.h"
#include "orderflow/uuid.h"

#include "appdb_int.h"
#include "schema.h"

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
        [APP_COUNT_ROWS] = "SELECT (SELECT count(*) FROM outbox_messages),"
                           " (SELECT count(*) FROM outbox_messages"
                           " WHERE status = 'PENDING'),"
                           " (SELECT count(*) FROM outbox_messages"
                           " WHERE status = 'DEAD')",
        [APP_OLDEST] = "SELECT occurred_at FROM outbox_messages"
                       " WHERE status = 'PENDING' ORDER BY seq LIMIT 1",
        [APP_DATA_VERSION] = "PRAGMA data_version",
};

/* ---- the file and its migrations ---- */

/* A database from before the envelope moved to outbox_payloads has it in
 * outbox_messages.payload: move it over, once (in open's transaction). */
static int move_payloads(sqlite3 *db, char **msg)
{
        int has, rc = sqldb_has_column(&has, db, "outbox_messages", "payload");

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

static int open_with(of_appdb **out, const char *path, int flags, char *errstr,
                     size_t errstr_size)
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
            sqldb_prepare_all(app->db, app->stmt, appdb_sql, APP_COUNT, errstr,
                              errstr_size) ||
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
        if ((err = of_uuid7(ev->id, errstr, errstr_size)))
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
                err = of_errf(
                        errstr, errstr_size, "order id: %s",
                        strncmp(reason, OF_REASON_UTF8, strlen(OF_REASON_UTF8))
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
                   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
                return 0;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        clock_gettime(CLOCK_REALTIME, &now);
        age = (double)(now.tv_sec - timegm(&tm)) + (double)now.tv_nsec / 1e9 -
              ms / 1000.0;
        return age < 0 ? 0 : age; /* the clock went back */
}

int of_appdb_outbox_status(of_appdb *app, of_outbox_status *out, char *errstr,
                           size_t errstr_size)
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

const char *of_appdb_filename(of_appdb *app)
{
        return sqlite3_db_filename(app->db, "main");
}

int64_t of_appdb_data_version(of_appdb *app)
{
        sqlite3_stmt *stmt = app->stmt[APP_DATA_VERSION];
        int64_t v = -1;

        if (sqlite3_step(stmt) == SQLITE_ROW)
                v = sqlite3_column_int64(stmt, 0);
        sqlite3_reset(stmt);
        return v;
}

int of_appdb_relay_durability(of_appdb *app, char *errstr, size_t errstr_size)
{
        int rc = sqlite3_exec(app->db, "PRAGMA synchronous = NORMAL", NULL,
                              NULL, NULL);

        return rc == SQLITE_OK ? 0
                               : sqldb_fail(app->db, rc, "PRAGMA synchronous",
                                            errstr, errstr_size);
}
