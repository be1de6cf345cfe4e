/* Printing a cursor (print.h): JSON Lines through the JSON writer, and
 * the aligned table, whose cells are escaped for a terminal and measured
 * in columns. The cursor and its SQL are the store's or the outbox's; the
 * choice among them is cmd_query.c's and cmd_outbox.c's. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/error.h"
#include "orderflow/json.h"
#include "orderflow/print.h"
#include "orderflow/cursor.h"

/* ---- JSON Lines ---- */

int of_print_json_lines(FILE *f, of_cursor *cur, char *errstr,
                        size_t errstr_size)
{
        int ncols = of_cursor_columns(cur);
        of_json j = {.f = f};
        const void *p;
        size_t len;
        int rc, c;

        while ((rc = of_cursor_next(cur, errstr, errstr_size)) == 1) {
                of_json_object_begin(&j);
                for (c = 0; c < ncols; c++) {
                        of_json_key(&j, of_cursor_name(cur, c));
                        switch (of_cursor_type(cur, c)) {
                        case OF_COL_NULL:
                                of_json_null(&j);
                                break;
                        case OF_COL_INT:
                                of_json_int(&j, of_cursor_int(cur, c));
                                break;
                        case OF_COL_TEXT:
                        case OF_COL_BLOB:
                                p = of_cursor_bytes(cur, c, &len);
                                of_json_string(&j, p, len);
                                break;
                        }
                }
                of_json_object_end(&j);
                of_json_end_line(&j);
        }
        return rc;
}

/* ---- The table ---- */

typedef struct cell {
        char *s;  /* NUL-terminated, escaped for a terminal */
        size_t w; /* display width in columns */
} cell;

typedef struct table {
        int ncols;
        cell *cells;   /* row-major; row 0 is the header */
        size_t nrows;  /* rows in cells, header included */
        size_t cap;    /* rows allocated */
        size_t *width; /* per column: widest cell */
        int *numeric;  /* per column: every non-NULL cell an integer */
} table;

/* Append the n bytes at p to b as terminal-safe text of at most max
 * columns: printable UTF-8 as is; control characters (C1 included) and
 * bytes that are not UTF-8 as \n, \t, \r or \xHH. Backslashes stay as
 * they are: JSON in a value reads better that way. Returns the width
 * written; *cut is set when the input did not fit. */
static size_t escape_cell(of_json *b, const unsigned char *p, size_t n,
                          size_t max, int *cut)
{
        char esc[16];
        const void *out; /* what one unit of input becomes */
        size_t i = 0, w = 0, len, olen, uw, k;

        *cut = 0;
        while (i < n) {
                out = p + i;
                len = of_json_utf8_len(p + i, n - i);
                /* U+0080..U+009F (C2 80..C2 9F) can drive a terminal. */
                if (len == 0 ||
                    (len == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) {
                        len = len ? len : 1;
                        for (k = 0; k < len; k++)
                                snprintf(esc + 4 * k, sizeof(esc) - 4 * k,
                                         "\\x%02X", p[i + k]);
                        out = esc;
                        olen = uw = 4 * len;
                } else if (len > 1) {
                        olen = len;
                        uw = 1;
                } else if (p[i] == '\n' || p[i] == '\t' || p[i] == '\r') {
                        esc[0] = '\\';
                        esc[1] = p[i] == '\n' ? 'n' : p[i] == '\t' ? 't' : 'r';
                        out = esc;
                        olen = uw = 2;
                } else if (p[i] < 0x20 || p[i] == 0x7f) {
                        snprintf(esc, sizeof(esc), "\\x%02X", p[i]);
                        out = esc;
                        olen = uw = 4;
                } else {
                        olen = uw = 1;
                }
                if (w + uw > max) {
                        *cut = 1;
                        break;
                }
                of_json_put(b, out, olen);
                i += len;
                w += uw;
        }
        return w;
}

/* Append the current row (or the header when header is set). */
static int table_add_row(table *t, of_cursor *cur, int header)
{
        char num[32];
        cell *row, *nc;
        const void *p;
        size_t len, ncap;
        of_col_type type;
        of_json b;
        int c, cut;

        if (t->nrows == t->cap) {
                ncap = t->cap ? t->cap * 2 : 16;
                nc = realloc(t->cells, ncap * (size_t)t->ncols * sizeof(*nc));
                if (!nc)
                        return OF_ERROR;
                t->cells = nc;
                t->cap = ncap;
        }
        row = t->cells + t->nrows * (size_t)t->ncols;
        memset(row, 0, (size_t)t->ncols * sizeof(*row));
        t->nrows++; /* now the row's cells are freed with the table */
        for (c = 0; c < t->ncols; c++) {
                memset(&b, 0, sizeof(b));
                of_json_put(&b, "", 0);
                type = header ? OF_COL_TEXT : of_cursor_type(cur, c);
                if (header) {
                        p = of_cursor_name(cur, c);
                        row[c].w =
                                escape_cell(&b, p, strlen(p), SIZE_MAX, &cut);
                } else if (type == OF_COL_INT) {
                        snprintf(num, sizeof(num), "%" PRId64,
                                 of_cursor_int(cur, c));
                        of_json_put(&b, num, strlen(num));
                        row[c].w = strlen(num);
                } else if (type == OF_COL_TEXT) {
                        p = of_cursor_bytes(cur, c, &len);
                        row[c].w = escape_cell(&b, p, len, SIZE_MAX, &cut);
                } else if (type == OF_COL_BLOB) {
                        p = of_cursor_bytes(cur, c, &len);
                        row[c].w = escape_cell(&b, p, len, OF_PRINT_BLOB_MAX,
                                               &cut);
                        if (cut) {
                                /* Again, leaving room for the "...". */
                                b.len = 0;
                                row[c].w = escape_cell(&b, p, len,
                                                       OF_PRINT_BLOB_MAX - 3,
                                                       &cut);
                                of_json_put(&b, "...", 3);
                                row[c].w += 3;
                        }
                }
                row[c].s = b.buf;
                if (b.oom)
                        return OF_ERROR;
                if (row[c].w > t->width[c])
                        t->width[c] = row[c].w;
                if (!header && type != OF_COL_NULL && type != OF_COL_INT)
                        t->numeric[c] = 0;
        }
        return 0;
}

/* Print the table to f; every cell is padded to its column's width, numbers
 * to the right and text to the left. Returns OF_ERROR when out of memory. */
static int table_print(FILE *f, const table *t)
{
        static const char blanks[] = "                ";
        const cell *row;
        size_t r, pad, n;
        of_json line = {0};
        int c;

        for (r = 0; r < t->nrows; r++) {
                row = t->cells + r * (size_t)t->ncols;
                line.len = 0;
                for (c = 0; c < t->ncols; c++) {
                        if (c > 0)
                                of_json_put(&line, "  ", 2);
                        pad = t->width[c] - row[c].w;
                        if (!t->numeric[c])
                                of_json_put(&line, row[c].s, strlen(row[c].s));
                        for (; pad > 0; pad -= n) {
                                n = pad < sizeof(blanks) - 1
                                            ? pad
                                            : sizeof(blanks) - 1;
                                of_json_put(&line, blanks, n);
                        }
                        if (t->numeric[c])
                                of_json_put(&line, row[c].s, strlen(row[c].s));
                }
                if (line.oom)
                        break;
                /* No trailing blanks (a NULL or short cell at the end). */
                while (line.len > 0 && line.buf[line.len - 1] == ' ')
                        line.len--;
                fwrite(line.buf, 1, line.len, f);
                putc('\n', f);
        }
        free(line.buf);
        return line.oom ? OF_ERROR : 0;
}

int of_print_table(FILE *f, of_cursor *cur, size_t max_rows, char *errstr,
                   size_t errstr_size)
{
        table t = {.ncols = of_cursor_columns(cur)};
        size_t i;
        int rc = OF_ERROR;
        int c;

        t.width = calloc((size_t)t.ncols, sizeof(*t.width));
        t.numeric = calloc((size_t)t.ncols, sizeof(*t.numeric));
        if (!t.width || !t.numeric) {
                of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        for (c = 0; c < t.ncols; c++)
                t.numeric[c] = 1;
        if (table_add_row(&t, cur, 1) != 0) {
                of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        /* Every row is read before printing: widths need them all. */
        while ((rc = of_cursor_next(cur, errstr, errstr_size)) == 1) {
                if (table_add_row(&t, cur, 0) != 0) {
                        rc = of_errf(errstr, errstr_size, "out of memory");
                        goto out;
                }
                if (max_rows && t.nrows > max_rows) { /* the header too */
                        rc = 0;
                        break;
                }
        }
        if (rc == 0 && table_print(f, &t) != 0)
                rc = of_errf(errstr, errstr_size, "out of memory");
out:
        for (i = 0; i < t.nrows * (size_t)t.ncols; i++)
                free(t.cells[i].s);
        free(t.cells);
        free(t.width);
        free(t.numeric);
        return rc;
}
