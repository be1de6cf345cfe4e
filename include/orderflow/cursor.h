/* Rows of a query, one at a time, for printing (print.h): the read
 * model's relations (of_store_cursor_open, store.h) and the outbox's rows
 * (of_appdb_outbox_list, appdb.h). The SQL behind a cursor is its
 * opener's; this says only what a row holds. */
#ifndef ORDERFLOW_CURSOR_H
#define ORDERFLOW_CURSOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct of_cursor of_cursor;

typedef enum of_col_type {
        OF_COL_NULL = 0,
        OF_COL_INT = 1,
        OF_COL_TEXT = 2,
        OF_COL_BLOB = 3,
} of_col_type;

/* Step to the next row: 1 a row, 0 the end, OF_ERROR a failure (in
 * errstr). */
int of_cursor_next(of_cursor *cur, char *errstr, size_t errstr_size);
int of_cursor_columns(of_cursor *cur);
const char *of_cursor_name(of_cursor *cur, int col);
/* The type of column col of the current row. */
of_col_type of_cursor_type(of_cursor *cur, int col);
int64_t of_cursor_int(of_cursor *cur, int col);
/* Text or blob bytes of the current row (NULL for NULL); valid until the
 * next step. */
const void *of_cursor_bytes(of_cursor *cur, int col, size_t *len);
/* Finalize its statement, close the connection it owns; cur may be
 * NULL. */
void of_cursor_close(of_cursor *cur);

#endif
