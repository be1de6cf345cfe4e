/* A cursor over one prepared SELECT (cursor.h), for the SQLite modules
 * that open one (store_query.c, appdb.c) through sqldb_cursor_new(). What
 * the SELECT reads and in what order is theirs. */
#include <assert.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "orderflow/cursor.h"
#include "orderflow/error.h"

#include "sqldb.h"

struct of_cursor {
        sqlite3 *db;        /* the statement's connection */
        int own_db;         /* closed with the cursor */
        sqlite3_stmt *stmt; /* the SELECT */
        const char *what;   /* "reading the read model" (borrowed) */
        int ncols;          /* result columns */
        of_col_type *types; /* per column, for the current row */
};

int sqldb_cursor_new(of_cursor **out, sqlite3 *db, int own_db,
                     sqlite3_stmt *stmt, const char *what, char *errstr,
                     size_t errstr_size)
{
        of_cursor *cur = calloc(1, sizeof(*cur));

        *out = NULL;
        if (cur) {
                cur->ncols = sqlite3_column_count(stmt);
                cur->types =
                        calloc((size_t)cur->ncols + 1, sizeof(*cur->types));
        }
        if (!cur || !cur->types) {
                free(cur);
                sqlite3_finalize(stmt);
                if (own_db)
                        sqlite3_close(db);
                return of_errf(errstr, errstr_size, "out of memory");
        }
        cur->db = db;
        cur->own_db = own_db;
        cur->stmt = stmt;
        cur->what = what;
        *out = cur;
        return 0;
}

int of_cursor_next(of_cursor *cur, char *errstr, size_t errstr_size)
{
        int src = sqlite3_step(cur->stmt);
        int i;

        if (src == SQLITE_DONE)
                return 0;
        if (src != SQLITE_ROW)
                return sqldb_fail(cur->db, src, cur->what, errstr,
                                  errstr_size);
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

int of_cursor_columns(of_cursor *cur)
{
        return cur->ncols;
}

const char *of_cursor_name(of_cursor *cur, int col)
{
        assert(col >= 0 && col < cur->ncols);
        return sqlite3_column_name(cur->stmt, col);
}

of_col_type of_cursor_type(of_cursor *cur, int col)
{
        assert(col >= 0 && col < cur->ncols);
        return cur->types[col];
}

int64_t of_cursor_int(of_cursor *cur, int col)
{
        assert(col >= 0 && col < cur->ncols);
        return sqlite3_column_int64(cur->stmt, col);
}

const void *of_cursor_bytes(of_cursor *cur, int col, size_t *len)
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

void of_cursor_close(of_cursor *cur)
{
        if (!cur)
                return;
        sqlite3_finalize(cur->stmt);
        if (cur->own_db)
                sqlite3_close(cur->db);
        free(cur->types);
        free(cur);
}
