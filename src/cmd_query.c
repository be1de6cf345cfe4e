/* orderflow query: print one relation of the read model as an aligned
 * table for people or as JSON Lines for programs (CONTRACT 3). Reads only
 * through store.h's cursors; which SQL runs is store_query.c's business. */
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/store.h"

#define CMD "query"

/* Key and value of a dead letter are cut to this many columns in the
 * table ("..." included); --json always prints them whole. */
#define BLOB_CELL_MAX 60

static const struct {
        const char *name;     /* on the command line */
        const char *relation; /* in the read model (CONTRACT 2) */
} targets[] = {
        {"orders", "order_list"},
        {"totals", "order_totals"},
        {"daily", "daily_totals"},
        {"dead-letters", "dead_letters"},
};

typedef struct query_opts {
        const char *db;       /* --db */
        const char *relation; /* from targets[] */
        int json;             /* --json */
} query_opts;

static void print_help(void)
{
        printf("usage: orderflow query orders|totals|daily|dead-letters "
               "--db PATH [--json]\n"
               "\n"
               "Print one relation of the read model at PATH (opened "
               "read-only; it may be\n"
               "in use by a running projector):\n"
               "  orders        order_list, by order_id\n"
               "  totals        order_totals, its one row\n"
               "  daily         daily_totals, by day\n"
               "  dead-letters  dead_letters, by topic, partition, offset\n"
               "\n"
               "Without --json: an aligned table with a header row. NULL "
               "is an empty cell;\n"
               "control characters and bytes that are not UTF-8 are shown "
               "as \\n, \\t, \\r\n"
               "or \\xHH, and dead letters' key and value are cut to %d "
               "columns.\n"
               "\n"
               "With --json: JSON Lines, one object per row keyed by the "
               "column names;\n"
               "integers are numbers, NULL is null, text is a string. The "
               "key and value of\n"
               "a dead letter (the bytes received) are strings too: valid "
               "UTF-8 as is, and\n"
               "each byte that is not part of valid UTF-8 becomes U+FFFD "
               "(\\ufffd). The\n"
               "exact bytes stay in the file: sqlite3 PATH \"SELECT "
               "hex(value) ...\".\n"
               "\n"
               "options:\n"
               "      --db PATH   the read model (required)\n"
               "      --json      JSON Lines instead of a table\n"
               "  -h, --help      print this help\n",
               BLOB_CELL_MAX);
}

/* Fill *o from argv: 0, -1 for --help, or OF_EXIT_USAGE (reported). */
static int parse_args(query_opts *o, int argc, char **argv)
{
        static const struct option longopts[] = {
                {"db", required_argument, NULL, 'd'},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *name;
        size_t i;
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'd':
                        if (!*optarg)
                                return of_cli_usage(CMD, "--db: empty path");
                        o->db = optarg;
                        break;
                case 'j':
                        o->json = 1;
                        break;
                case 'h':
                        return -1;
                default:
                        return of_cli_bad_option(CMD, opt, argv);
                }
        }
        if (optind == argc)
                return of_cli_usage(CMD, "missing what to print (orders, "
                                         "totals, daily or dead-letters)");
        name = argv[optind++];
        for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
                if (!strcmp(name, targets[i].name))
                        o->relation = targets[i].relation;
        if (!o->relation)
                return of_cli_usage(CMD,
                                    "%s: unknown relation (expected orders, "
                                    "totals, daily or dead-letters)",
                                    name);
        if (optind < argc)
                return of_cli_usage(CMD, "%s: unexpected argument",
                                    argv[optind]);
        if (!o->db)
                return of_cli_usage(CMD, "--db: required");
        return 0;
}

/* ---- UTF-8 ---- */

/* The length of the valid UTF-8 sequence at p (n > 0 bytes available), or
 * 0 when p[0] does not start one: no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
        uint32_t cp;
        size_t len, i;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf) {
                len = 2;
                cp = p[0] & 0x1f;
        } else if ((p[0] & 0xf0) == 0xe0) {
                len = 3;
                cp = p[0] & 0x0f;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                len = 4;
                cp = p[0] & 0x07;
        } else {
                return 0;
        }
        if (n < len)
                return 0;
        for (i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
                return 0;
        if (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
                return 0;
        return len;
}

/* ---- JSON Lines ---- */

/* A JSON string of n bytes: control characters escaped, valid UTF-8
 * as is, each other byte replaced by U+FFFD (see the help). */
static void json_string(FILE *f, const unsigned char *p, size_t n)
{
        size_t i = 0, len;

        putc('"', f);
        while (i < n) {
                len = utf8_len(p + i, n - i);
                if (len == 0) {
                        fputs("\\ufffd", f);
                        i++;
                        continue;
                }
                if (len > 1) {
                        fwrite(p + i, 1, len, f);
                        i += len;
                        continue;
                }
                switch (p[i]) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\b':
                        fputs("\\b", f);
                        break;
                case '\f':
                        fputs("\\f", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (p[i] < 0x20)
                                fprintf(f, "\\u%04x", p[i]);
                        else
                                putc(p[i], f);
                        break;
                }
                i++;
        }
        putc('"', f);
}

static int print_json(of_store_cursor *cur, char *errstr, size_t errstr_size)
{
        int ncols = of_store_cursor_columns(cur);
        const char *name;
        const void *p;
        size_t len;
        int rc, c;

        while ((rc = of_store_cursor_next(cur, errstr, errstr_size)) == 1) {
                putchar('{');
                for (c = 0; c < ncols; c++) {
                        if (c > 0)
                                putchar(',');
                        name = of_store_cursor_name(cur, c);
                        json_string(stdout, (const unsigned char *)name,
                                    strlen(name));
                        putchar(':');
                        switch (of_store_cursor_type(cur, c)) {
                        case OF_COL_NULL:
                                fputs("null", stdout);
                                break;
                        case OF_COL_INT:
                                printf("%" PRId64,
                                       of_store_cursor_int(cur, c));
                                break;
                        case OF_COL_TEXT:
                        case OF_COL_BLOB:
                                p = of_store_cursor_bytes(cur, c, &len);
                                json_string(stdout, p, len);
                                break;
                        }
                }
                fputs("}\n", stdout);
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

typedef struct buf {
        char *p;
        size_t len, cap;
        int oom; /* an allocation failed; p holds what fitted */
} buf;

static void buf_add(buf *b, const void *s, size_t n)
{
        char *np;
        size_t ncap;

        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                ncap = b->cap ? b->cap : 64;
                while (b->len + n + 1 > ncap)
                        ncap *= 2;
                np = realloc(b->p, ncap);
                if (!np) {
                        b->oom = 1;
                        return;
                }
                b->p = np;
                b->cap = ncap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

/* Append the n bytes at p to b as terminal-safe text of at most max
 * columns: printable UTF-8 as is; control characters (C1 included) and
 * bytes that are not UTF-8 as \n, \t, \r or \xHH. Backslashes stay as
 * they are: JSON in a value reads better that way. Returns the width
 * written; *cut is set when the input did not fit. */
static size_t escape_cell(buf *b, const unsigned char *p, size_t n, size_t max,
                          int *cut)
{
        char esc[16];
        const void *out; /* what one unit of input becomes */
        size_t i = 0, w = 0, len, olen, uw, k;

        *cut = 0;
        while (i < n) {
                out = p + i;
                len = utf8_len(p + i, n - i);
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
                        esc[1] = p[i] == '\n'   ? 'n'
                                 : p[i] == '\t' ? 't'
                                                : 'r';
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
                buf_add(b, out, olen);
                i += len;
                w += uw;
        }
        return w;
}

/* Append the current row (or the header when header is set). */
static int table_add_row(table *t, of_store_cursor *cur, int header)
{
        char num[32];
        cell *row, *nc;
        const void *p;
        size_t len, ncap;
        of_col_type type;
        buf b;
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
                buf_add(&b, "", 0);
                type = header ? OF_COL_TEXT : of_store_cursor_type(cur, c);
                if (header) {
                        p = of_store_cursor_name(cur, c);
                        row[c].w =
                            escape_cell(&b, p, strlen(p), SIZE_MAX, &cut);
                } else if (type == OF_COL_INT) {
                        snprintf(num, sizeof(num), "%" PRId64,
                                 of_store_cursor_int(cur, c));
                        buf_add(&b, num, strlen(num));
                        row[c].w = strlen(num);
                } else if (type == OF_COL_TEXT) {
                        p = of_store_cursor_bytes(cur, c, &len);
                        row[c].w = escape_cell(&b, p, len, SIZE_MAX, &cut);
                } else if (type == OF_COL_BLOB) {
                        p = of_store_cursor_bytes(cur, c, &len);
                        row[c].w = escape_cell(&b, p, len, BLOB_CELL_MAX,
                                               &cut);
                        if (cut) {
                                /* Again, leaving room for the "...". */
                                b.len = 0;
                                row[c].w = escape_cell(
                                        &b, p, len, BLOB_CELL_MAX - 3, &cut);
                                buf_add(&b, "...", 3);
                                row[c].w += 3;
                        }
                }
                row[c].s = b.p;
                if (b.oom)
                        return OF_ERROR;
                if (row[c].w > t->width[c])
                        t->width[c] = row[c].w;
                if (!header && type != OF_COL_NULL && type != OF_COL_INT)
                        t->numeric[c] = 0;
        }
        return 0;
}

/* Print the table; every cell is padded to its column's width, numbers
 * to the right and text to the left. Returns OF_ERROR when out of memory. */
static int table_print(const table *t)
{
        static const char blanks[] = "                ";
        const cell *row;
        size_t r, pad, n;
        buf line = {.p = NULL};
        int c;

        for (r = 0; r < t->nrows; r++) {
                row = t->cells + r * (size_t)t->ncols;
                line.len = 0;
                for (c = 0; c < t->ncols; c++) {
                        if (c > 0)
                                buf_add(&line, "  ", 2);
                        pad = t->width[c] - row[c].w;
                        if (!t->numeric[c])
                                buf_add(&line, row[c].s, strlen(row[c].s));
                        for (; pad > 0; pad -= n) {
                                n = pad < sizeof(blanks) - 1
                                        ? pad
                                        : sizeof(blanks) - 1;
                                buf_add(&line, blanks, n);
                        }
                        if (t->numeric[c])
                                buf_add(&line, row[c].s, strlen(row[c].s));
                }
                if (line.oom)
                        break;
                /* No trailing blanks (a NULL or short cell at the end). */
                while (line.len > 0 && line.p[line.len - 1] == ' ')
                        line.len--;
                fwrite(line.p, 1, line.len, stdout);
                putchar('\n');
        }
        free(line.p);
        return line.oom ? OF_ERROR : 0;
}

static int print_table(of_store_cursor *cur, char *errstr, size_t errstr_size)
{
        table t = {.ncols = of_store_cursor_columns(cur)};
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
        while ((rc = of_store_cursor_next(cur, errstr, errstr_size)) == 1) {
                if (table_add_row(&t, cur, 0) != 0) {
                        rc = of_errf(errstr, errstr_size, "out of memory");
                        goto out;
                }
        }
        if (rc == 0 && table_print(&t) != 0)
                rc = of_errf(errstr, errstr_size, "out of memory");
out:
        for (i = 0; i < t.nrows * (size_t)t.ncols; i++)
                free(t.cells[i].s);
        free(t.cells);
        free(t.width);
        free(t.numeric);
        return rc;
}

int cmd_query(int argc, char **argv)
{
        query_opts o = {.db = NULL};
        of_store_cursor *cur = NULL;
        char errstr[512];
        int rc;

        rc = parse_args(&o, argc, argv);
        if (rc == -1) {
                print_help();
                return of_cli_close_stdout(CMD);
        }
        if (rc != 0)
                return rc;
        if (of_store_cursor_open(&cur, o.db, o.relation, errstr,
                                 sizeof(errstr)) != 0) {
                of_cli_error(CMD, "%s", errstr);
                rc = OF_EXIT_FAILURE;
                goto out;
        }
        if (o.json)
                rc = print_json(cur, errstr, sizeof(errstr));
        else
                rc = print_table(cur, errstr, sizeof(errstr));
        if (rc < 0) {
                of_cli_error(CMD, "%s", errstr);
                rc = OF_EXIT_FAILURE;
                goto out;
        }
        rc = of_cli_close_stdout(CMD);
out:
        of_store_cursor_close(cur);
        return rc;
}
