/* orderflow outbox: operations on the outbox of an existing application
 * database: status (counts, oldest pending age), list (the rows), retry
 * (DEAD rows back to PENDING) and prune (delete old SENT rows). The SQL:
 * appdb.c, outbox_view.c, outbox.c. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "orderflow/outbox.h"
#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/json.h"
#include "orderflow/print.h"

#define CMD "outbox"

static void print_help(void)
{
        printf("usage: orderflow outbox status|list|retry|prune --db PATH "
               "[OPTIONS]\n"
               "\n"
               "Look after the outbox of the application database at PATH "
               "(written by\n"
               "`orderflow place` and `orderflow pay`, published by "
               "`orderflow relay`):\n"
               "  status   pending, sent and dead rows, the age of the "
               "oldest pending row\n"
               "  list     the rows: id, type, order, status, attempts, "
               "last error\n"
               "  retry    dead rows back to pending, attempts reset\n"
               "  prune    delete rows sent longer ago than a duration\n"
               "\n"
               "'orderflow outbox COMMAND --help' describes one of them.\n");
}

/* Open the application database at path, which must exist: an outbox
 * operation on a mistyped path must not leave a new, empty database
 * behind. 0, or OF_EXIT_FAILURE (reported). */
static int open_existing(of_appdb **out, const char *cmd, const char *path)
{
        char errstr[512];

        if (of_appdb_open_existing(out, path, errstr, sizeof(errstr))) {
                of_cli_error(cmd, "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        return 0;
}

/* What the options of the three fill. */
typedef struct outbox_args {
        const char *db;   /* --db */
        int json;         /* status, list --json */
        int dead;         /* list --dead */
        int pending;      /* list --pending */
        int64_t limit;    /* list --limit; 0: every row */
        const char *id;   /* retry --id */
        int all;          /* retry --all-dead */
        int64_t older_ms; /* prune --older-than; -1: none */
} outbox_args;

static const outbox_args defaults = {.older_ms = -1, .limit = 100};

static const of_cli_spec db_specs[] = {
        OF_CLI_OPT_STRING(outbox_args, db, "db", 0, OF_CLI_REQUIRED, 1, 0,
                          NULL, "PATH",
                          "the application database, never "
                          "created"),
        OF_CLI_OPT_END,
};

/* ---- status ---- */

static void print_status(const of_outbox_status *s)
{
        printf("pending             %" PRId64 "\n"
               "sent                %" PRId64 "\n"
               "dead                %" PRId64 "\n",
               s->pending, s->sent, s->dead);
        if (s->oldest_pending_age_s < 0)
                printf("oldest pending age  none\n");
        else
                printf("oldest pending age  %.3f s\n",
                       s->oldest_pending_age_s);
}

/* One line; the age is null when nothing is pending. */
static void print_status_json(const of_outbox_status *s)
{
        of_json j = {.f = stdout};

        of_json_object_begin(&j);
        of_json_key(&j, "pending");
        of_json_int(&j, s->pending);
        of_json_key(&j, "sent");
        of_json_int(&j, s->sent);
        of_json_key(&j, "dead");
        of_json_int(&j, s->dead);
        of_json_key(&j, "oldest_pending_age_s");
        if (s->oldest_pending_age_s < 0)
                of_json_null(&j);
        else
                of_json_fixed(&j, s->oldest_pending_age_s, 3);
        of_json_object_end(&j);
        of_json_end_line(&j);
}

static const of_cli_spec status_specs[] = {
        OF_CLI_INCLUDE(db_specs),
        OF_CLI_OPT_FLAG(outbox_args, json, "json", 0,
                        "one JSON object instead of a table"),
        OF_CLI_OPT_END,
};

static const of_cli_cmd status_cmd = {
        CMD " status",
        status_specs,
        &defaults,
        "Print the number of pending, sent and dead outbox rows and the "
        "age of the\noldest pending row (from its commit time), all from "
        "one snapshot.\n\nWith --json: one line,\n"
        "  {\"pending\":N,\"sent\":N,\"dead\":N,"
        "\"oldest_pending_age_s\":X}\nwhere X is the age in seconds, or "
        "null when nothing is pending.",
        NULL,
};

static int outbox_status(int argc, char **argv)
{
        const char *cmd = status_cmd.name;
        outbox_args a = defaults;
        of_appdb *app = NULL;
        of_outbox_status s;
        char errstr[512];
        int json, rc;

        if (of_cli_parse(&rc, &status_cmd, &a, argc, argv))
                return rc;
        json = a.json;
        if ((rc = open_existing(&app, cmd, a.db)))
                goto out;
        rc = OF_EXIT_FAILURE;
        if (of_appdb_outbox_status(app, &s, errstr, sizeof(errstr))) {
                of_cli_error(cmd, "%s", errstr);
                goto out;
        }
        if (json)
                print_status_json(&s);
        else
                print_status(&s);
        rc = of_cli_close_stdout(cmd);
out:
        of_appdb_close(app);
        return rc;
}

/* ---- list ---- */

static const of_cli_spec list_specs[] = {
        OF_CLI_INCLUDE(db_specs),
        OF_CLI_OPT_FLAG(outbox_args, dead, "dead", 0, "only the DEAD rows"),
        OF_CLI_OPT_FLAG(outbox_args, pending, "pending", 0,
                        "only the PENDING rows"),
        OF_CLI_OPT_INT(outbox_args, limit, "limit", 0, 0, 0, INT64_MAX, "N",
                       "print the first N rows; 0: every row"),
        OF_CLI_OPT_FLAG(outbox_args, json, "json", 0,
                        "JSON Lines instead of a table"),
        OF_CLI_OPT_END,
};

static const of_cli_cmd list_cmd = {
        CMD " list",
        list_specs,
        &defaults,
        "Print the outbox rows in commit order (the order the relay "
        "publishes them):\nseq, id (the event id), type, order_id, status "
        "(PENDING, SENT or DEAD),\nattempts (failed so far), "
        "next_attempt_at (UTC, when a PENDING row that failed\nis tried "
        "again; empty when it is due now) and last_error (why the last\n"
        "attempt failed). A DEAD row holds back the later rows of its "
        "order until\n`orderflow outbox retry --id ID` puts it back to "
        "PENDING.\n\nWithout --json: an aligned table. With --json: JSON "
        "Lines, one object per\nrow keyed by those names; null where "
        "there is no value.",
        NULL,
};

static int outbox_list(int argc, char **argv)
{
        const char *cmd = list_cmd.name;
        outbox_args a = defaults;
        of_outbox_which which = OF_OUTBOX_ALL;
        of_appdb *app = NULL;
        of_cursor *cur = NULL;
        char errstr[512];
        int rc;

        if (of_cli_parse(&rc, &list_cmd, &a, argc, argv))
                return rc;
        if (a.dead && a.pending)
                return of_cli_usage(cmd, "--dead and --pending: at most one "
                                         "of them");
        if (a.dead)
                which = OF_OUTBOX_DEAD;
        else if (a.pending)
                which = OF_OUTBOX_PENDING;
        if ((rc = open_existing(&app, cmd, a.db)))
                goto out;
        rc = OF_EXIT_FAILURE;
        if (of_appdb_outbox_list(&cur, app, which, a.limit, errstr,
                                 sizeof(errstr)) ||
            (a.json ? of_print_json_lines(stdout, cur, errstr, sizeof(errstr))
                    : of_print_table(stdout, cur, 0, errstr,
                                     sizeof(errstr)))) {
                of_cli_error(cmd, "%s", errstr);
                goto out;
        }
        rc = of_cli_close_stdout(cmd);
out:
        of_cursor_close(cur);
        of_appdb_close(app);
        return rc;
}

/* ---- retry ---- */

static const of_cli_spec retry_specs[] = {
        OF_CLI_INCLUDE(db_specs),
        OF_CLI_OPT_STRING(outbox_args, id, "id", 0, 0, 1, 0, NULL, "ID",
                          "the DEAD row with event id ID (exit 1 when there "
                          "is none)"),
        OF_CLI_OPT_FLAG(outbox_args, all, "all-dead", 0, "every DEAD row"),
        OF_CLI_OPT_END,
};

static const of_cli_cmd retry_cmd = {
        CMD " retry",
        retry_specs,
        &defaults,
        "Put DEAD outbox rows (those that failed too often) back to PENDING "
        "with\ntheir attempts reset, so the next `orderflow relay` "
        "publishes them and the\nrows of the same orders behind them. "
        "Prints how many rows were reset.\nExactly one of --id and "
        "--all-dead.",
        NULL,
};

static int outbox_retry(int argc, char **argv)
{
        const char *cmd = retry_cmd.name;
        outbox_args a = defaults;
        of_appdb *app = NULL;
        const char *id;
        char errstr[512];
        int64_t changed = 0;
        int rc, err;

        if (of_cli_parse(&rc, &retry_cmd, &a, argc, argv))
                return rc;
        if (!a.id == !a.all)
                return of_cli_usage(cmd, "expected exactly one of --id and "
                                         "--all-dead");
        id = a.id;
        if ((rc = open_existing(&app, cmd, a.db)))
                goto out;
        rc = OF_EXIT_FAILURE;
        err = of_outbox_retry(app, id, &changed, errstr, sizeof(errstr));
        if (err) { /* OF_ENOTFOUND says "no DEAD outbox row with id ..." */
                of_cli_error(cmd, "%s", errstr);
                goto out;
        }
        printf("%" PRId64 " %s reset from DEAD to PENDING\n", changed,
               changed == 1 ? "row" : "rows");
        rc = of_cli_close_stdout(cmd);
out:
        of_appdb_close(app);
        return rc;
}

/* ---- prune ---- */

static const of_cli_spec prune_specs[] = {
        OF_CLI_INCLUDE(db_specs),
        OF_CLI_OPT_DURATION(outbox_args, older_ms, "older-than", 0,
                            OF_CLI_REQUIRED, "DURATION",
                            "the age of the rows to delete: a whole number "
                            "with a unit, s (seconds), m (minutes), h "
                            "(hours) or d (days), e.g. 30s, 15m, 12h, 7d"),
        OF_CLI_OPT_END,
};

static const of_cli_cmd prune_cmd = {
        CMD " prune",
        prune_specs,
        &defaults,
        "Delete the SENT outbox rows sent more than DURATION ago, in small\n"
        "transactions so that a running relay never waits long. PENDING "
        "and DEAD\nrows are kept. Prints how many rows were deleted.",
        NULL,
};

static int outbox_prune(int argc, char **argv)
{
        const char *cmd = prune_cmd.name;
        outbox_args a = defaults;
        of_appdb *app = NULL;
        char errstr[512];
        int64_t older_ms, deleted = 0;
        int rc;

        if (of_cli_parse(&rc, &prune_cmd, &a, argc, argv))
                return rc;
        older_ms = a.older_ms;
        if ((rc = open_existing(&app, cmd, a.db)))
                goto out;
        rc = OF_EXIT_FAILURE;
        if (of_outbox_prune(app, older_ms, &deleted, errstr, sizeof(errstr))) {
                of_cli_error(cmd, "%s", errstr);
                goto out;
        }
        printf("%" PRId64 " SENT %s deleted\n", deleted,
               deleted == 1 ? "row" : "rows");
        rc = of_cli_close_stdout(cmd);
out:
        of_appdb_close(app);
        return rc;
}

int cmd_outbox(int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(int argc, char **argv);
        } subs[] = {
                {"status", outbox_status},
                {"list", outbox_list},
                {"retry", outbox_retry},
                {"prune", outbox_prune},
        };
        size_t i;

        if (argc < 2)
                return of_cli_usage(CMD, "missing what to do (status, list, "
                                         "retry or prune)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                print_help();
                return of_cli_close_stdout(CMD);
        }
        for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
                if (!strcmp(argv[1], subs[i].name))
                        return subs[i].fn(argc - 1, argv + 1);
        return of_cli_usage(CMD,
                            "%s: unknown subcommand (expected status, "
                            "list, retry or prune)",
                            argv[1]);
}
