/* Reading the contract's relations (docs/reference.md 2) from a read model
 * that a projector may be writing at the same time: a read-only connection,
 * one fixed SELECT per relation, rows in a stable order. Opening it, writing,
 * migrating and the schema itself belong to store.c. */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/store.h"

#include "store_int.h"

/* The whole query surface. Statements come only from this table, so no
 * SQL is ever built from the caller's input. */
static const struct {
        const char *relation;
        const char *sql;
} relations[] = {
        {"order_list", "SELECT order_id, status, total, paid_amount, "
                       "placed_at, paid_at FROM order_list "
                       "ORDER BY order_id"},
        {"order_totals", "SELECT orders_placed, orders_paid, placed_amount, "
                         "paid_amount FROM order_totals"},
        {"daily_totals", "SELECT day, orders_placed, orders_paid, "
                         "placed_amount, paid_amount FROM daily_totals "
                         "ORDER BY day"},
        {"dead_letters", "SELECT topic, \"partition\", \"offset\", key, "
                         "value, reason, received_at FROM dead_letters "
                         "ORDER BY topic, \"partition\", \"offset\""},
        {"processed_events", "SELECT event_id, event_type, aggregate_id, "
                             "occurred_at, amount FROM processed_events "
                             "ORDER BY event_id"},
        {"schema_info", "SELECT schema_version FROM schema_info"},
};

static const char *relation_sql(const char *relation)
{
        size_t i;

        for (i = 0; i < sizeof(relations) / sizeof(relations[0]); i++)
                if (!strcmp(relation, relations[i].relation))
                        return relations[i].sql;
        return NULL;
}

int of_store_cursor_open(of_cursor **out, const char *path,
                         const char *relation, char *errstr,
                         size_t errstr_size)
{
        const char *sql = relation_sql(relation);
        sqlite3_stmt *stmt = NULL;
        sqlite3 *db = NULL;
        int rc, src;

        *out = NULL;
        if (!sql)
                return of_errf(errstr, errstr_size, "unknown relation: %s",
                               relation);
        if ((rc = store_open_ro(&db, path, errstr, errstr_size)))
                return rc;
        src = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
        if (src != SQLITE_OK) {
                /* The usual cause: some other SQLite file, or none at all
                 * ("file is not a database", "no such table"). */
                rc = sqldb_code_of(db, src);
                of_errf(errstr, errstr_size, "%s: not a read model: %s", path,
                        sqlite3_errmsg(db));
                sqlite3_close(db);
                return rc;
        }
        /* stmt and db are the cursor's, also when this fails. */
        return sqldb_cursor_new(out, db, 1, stmt, "reading the read model",
                                errstr, errstr_size);
}

const char *of_store_sqlite_version(void)
{
        return sqlite3_libversion();
}

const char *of_store_path(const of_store *st)
{
        return st->path;
}
