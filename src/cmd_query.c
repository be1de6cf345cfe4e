/* orderflow query: print one relation of the read model as an aligned
 * table for people or as JSON Lines for programs (CONTRACT 3): the options
 * and the choice of relation. Reads through store.h's cursors; print.c
 * prints them, and which SQL runs is store_query.c's business. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/print.h"
#include "orderflow/store.h"

#define CMD "query"

/* Key and value of a dead letter are cut to this many columns in the
 * table ("..." included); --json always prints them whole. */
#define BLOB_CELL_MAX OF_PRINT_BLOB_MAX

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
                rc = of_print_json_lines(stdout, cur, errstr, sizeof(errstr));
        else
                rc = of_print_table(stdout, cur, errstr, sizeof(errstr));
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
