/* orderflow query: print one relation of the read model as an aligned
 * table for people or as JSON Lines for programs (docs/reference.md 4): the
 * options and the choice of relation. Reads through store.h's cursors; print.c
 * prints them, and which SQL runs is store_query.c's business. */
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
        const char *relation; /* in the read model (docs/reference.md 2) */
} targets[] = {
        {"orders", "order_list"},
        {"totals", "order_totals"},
        {"daily", "daily_totals"},
        {"dead-letters", "dead_letters"},
};

typedef struct query_opts {
        const char *db;       /* --db */
        const char *target;   /* as named on the command line */
        const char *relation; /* its relation, from targets[] */
        int json;             /* --json */
} query_opts;

/* The relation of the target named into o->relation. */
static int on_target(void *base, const char *cmd, const char *name)
{
        query_opts *o = base;
        size_t i;

        for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
                if (!strcmp(name, targets[i].name))
                        o->relation = targets[i].relation;
        if (!o->relation)
                return of_cli_usage(cmd,
                                    "%s: unknown relation (expected orders, "
                                    "totals, daily or dead-letters)",
                                    name);
        return 0;
}

static const query_opts defaults = {.db = NULL};

static const of_cli_spec specs[] = {
        OF_CLI_OPERAND(query_opts, target, OF_CLI_REQUIRED, on_target,
                       "orders|totals|daily|dead-letters",
                       "what to print (orders, totals, daily or "
                       "dead-letters)"),
        OF_CLI_OPT_STRING(query_opts, db, "db", 0, OF_CLI_REQUIRED, 1, 0, NULL,
                          "PATH", "the read model"),
        OF_CLI_OPT_FLAG(query_opts, json, "json", 0,
                        "JSON Lines instead of a table"),
        OF_CLI_OPT_END,
};

static const of_cli_cmd query_cmd = {
        CMD,
        specs,
        &defaults,
        "Print one relation of the read model at PATH (opened read-only; it "
        "may be\nin use by a running projector):\n"
        "  orders        order_list, by order_id\n"
        "  totals        order_totals, its one row\n"
        "  daily         daily_totals, by day\n"
        "  dead-letters  dead_letters, by topic, partition, offset\n"
        "\n"
        "Without --json: an aligned table with a header row. NULL is an "
        "empty cell;\ncontrol characters and bytes that are not UTF-8 are "
        "shown as \\n, \\t, \\r\nor \\xHH, and dead letters' key and "
        "value are cut to " OF_CLI_QUOTE(
                BLOB_CELL_MAX) " columns.\n"
                               "\n"
                               "With --json: JSON Lines, one object per row "
                               "keyed by the column "
                               "names;\nintegers are numbers, NULL is null, "
                               "text is a string. The "
                               "key and value of\na dead letter (the bytes "
                               "received) are strings "
                               "too: valid UTF-8 as is, and\neach byte that "
                               "is not part of valid "
                               "UTF-8 becomes U+FFFD (\\ufffd). The\nexact "
                               "bytes stay in the "
                               "file: sqlite3 PATH \"SELECT hex(value) ...\".",
        NULL,
};

int cmd_query(int argc, char **argv)
{
        query_opts o = defaults;
        of_cursor *cur = NULL;
        char errstr[512];
        int rc;

        if (of_cli_parse(&rc, &query_cmd, &o, argc, argv))
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
                rc = of_print_table(stdout, cur, 0, errstr, sizeof(errstr));
        if (rc < 0) {
                of_cli_error(CMD, "%s", errstr);
                rc = OF_EXIT_FAILURE;
                goto out;
        }
        rc = of_cli_close_stdout(CMD);
out:
        of_cursor_close(cur);
        return rc;
}
