/* Reading the contract's relations (CONTRACT 2) from a read model that a
 * projector may be writing at the same time: a read-only connection, one
 * fixed SELECT per relation, rows in a stable order. Opening it, writing,
 * migrating and the schema itself belong to store.c. */
#include <assert.h>
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

struct of_store_cursor {
        sqlite3 *db;        /* read-only connection */
        sqlite3_stmt *stmt; /* the relation's SELECT */
        int ncols;          /* result columns */
        of_col_type *types; /* per column, for the current row */
};

static const char *relation_sql(const char *relation)
{
        size_t i;

        for (i = 0; i < sizeof(relations) / sizeof(relations[0]); i++)
                if (!strcmp(relation, relations[i].relation))
                        return relations[i].sql;
        return NULL;
}

int of_store_cursor_open(of_store_cursor **out, const char *path,
                         const char *relation, char *errstr,
                         size_t errstr_size)
{
        of_store_cursor *cur = NULL;
        const char *sql = relation_sql(relation);
        int rc = OF_ERROR;
        int src;

        *out = NULL;
        if (!sql)
                return of_errf(errstr, errstr_size, "unknown relation: %s",
                               relation);
        cur = calloc(1, sizeof(*cur));
        if (!cur)
                return of_errf(errstr, errstr_size, "out of memory");
        if ((rc = store_open_ro(&cur->db, path, errstr, errstr_size))) {
                free(cur);
                return rc;
        }
        rc = OF_ERROR;
        src = sqlite3_prepare_v2(cur->db, sql, -1, &cur->stmt, NULL);
        if (src != SQLITE_OK) {
                /* The usual cause: some other SQLite file, or none at all
                 * ("file is not a database", "no such table"). */
                rc = sqldb_code_of(cur->db, src);
                of_errf(errstr, errstr_size, "%s is not a read model: %s",
                        path, sqlite3_errmsg(cur->db));
                goto out;
        }
        cur->ncols = sqlite3_column_count(cur->stmt);
        cur->types = calloc((size_t)cur->ncols, sizeof(*cur->types));
        if (!cur->types) {
                of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        *out = cur;
        cur = NULL; /* owned by the caller now */
        rc = 0;
out:
        of_store_cursor_close(cur);
        return rc;
}

int of_store_cursor_next(of_store_cursor *cur, char *errstr,
                         size_t errstr_size)
{
        int src = sqlite3_step(cur->stmt);
        int i;

        if (src == SQLITE_DONE)
                return 0;
        if (src != SQLITE_ROW)
                return sqldb_fail(cur->db, src, "reading the read model",
                                  errstr, errstr_size);
        /* Taken now: sqlite3_column_type() is undefined once a value has
         * been converted by reading it as another type. */
        for (i = 0; i < cur->ncols; i++) {
                switch (sqlite3_column_type(cur->stmt, i)) {
                case SQLITE_NULL:
                        cur->types[i] = OF_COL_NULL;
                        break;
                case SQLITE_INTEGER:
                        cur->types[i] = OF_COL_INT;
                        break;
                case SQLITE_BLOB:
                        cur->types[i] = OF_COL_BLOB;
                        break;
                default: /* TEXT, or a REAL read as its text */
                        cur->types[i] = OF_COL_TEXT;
                        break;
                }
        }
        return 1;
}

int of_store_cursor_columns(of_store_cursor *cur)
{
        return cur->ncols;
}

const char *of_store_cursor_name(of_store_cursor *cur, int col)
{
        assert(col >= 0 && col < cur->ncols);
        return sqlite3_column_name(cur->stmt, col);
}

of_col_type of_store_cursor_type(of_store_cursor *cur, int col)
{
        assert(col >= 0 && col < cur->ncols);
        return cur->types[col];
}

int64_t of_store_cursor_int(of_store_cursor *cur, int col)
{
        assert(col >= 0 && col < cur->ncols);
        return sqlite3_column_int64(cur->stmt, col);
}

const void *of_store_cursor_bytes(of_store_cursor *cur, int col, size_t *len)
{
        const void *p;

        assert(col >= 0 && col < cur->ncols);
        *len = 0;
        if (cur->types[col] == OF_COL_NULL)
                return NULL;
        /* The pointer first, then its length (SQLite's advice). */
        if (cur->types[col] == OF_COL_BLOB)
                p = sqlite3_column_blob(cur->stmt, col);
        else
                p = sqlite3_column_text(cur->stmt, col);
        *len = (size_t)sqlite3_column_bytes(cur->stmt, col);
        /* An empty blob comes back as NULL: keep NULL for SQL NULL. */
        return p ? p : "";
}

void of_store_cursor_close(of_store_cursor *cur)
{
        if (!cur)
                return;
        sqlite3_finalize(cur->stmt);
        sqlite3_close(cur->db);
        free(cur->types);
        free(cur);
}
