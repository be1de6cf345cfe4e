/* orderflow outbox: operations on the outbox of an existing application
 * database: status (counts, oldest pending age), retry (DEAD rows back to
 * PENDING) and prune (delete old SENT rows). The SQL: appdb.c, outbox.c. */
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "orderflow/outbox.h"
#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"

#define CMD "outbox"

static void print_help(void)
{
        printf("usage: orderflow outbox status|retry|prune --db PATH "
               "[OPTIONS]\n"
               "\n"
               "Look after the outbox of the application database at PATH "
               "(written by\n"
               "`orderflow place` and `orderflow pay`, published by "
               "`orderflow relay`):\n"
               "  status   pending, sent and dead rows, the age of the "
               "oldest pending row\n"
               "  retry    dead rows back to pending, attempts reset\n"
               "  prune    delete rows sent longer ago than a duration\n"
               "\n"
               "'orderflow outbox COMMAND --help' describes one of them.\n");
}

static void print_status_help(void)
{
        printf("usage: orderflow outbox status --db PATH [--json]\n"
               "\n"
               "Print the number of pending, sent and dead outbox rows and "
               "the age of the\n"
               "oldest pending row (from its commit time), all from one "
               "snapshot.\n"
               "\n"
               "With --json: one line,\n"
               "  {\"pending\":N,\"sent\":N,\"dead\":N,"
               "\"oldest_pending_age_s\":X}\n"
               "where X is the age in seconds, or null when nothing is "
               "pending.\n"
               "\n"
               "options:\n"
               "      --db PATH   the application database (required; "
               "never created)\n"
               "      --json      one JSON object instead of a table\n"
               "  -h, --help      print this help\n");
}

static void print_retry_help(void)
{
        printf("usage: orderflow outbox retry --db PATH (--id ID | "
               "--all-dead)\n"
               "\n"
               "Put DEAD outbox rows (those that failed too often) back to "
               "PENDING with\n"
               "their attempts reset, so the next `orderflow relay` "
               "publishes them and the\n"
               "rows of the same orders behind them. Prints how many rows "
               "were reset.\n"
               "\n"
               "options:\n"
               "      --db PATH    the application database (required; "
               "never created)\n"
               "      --id ID      the DEAD row with event id ID (exit 1 "
               "when there is none)\n"
               "      --all-dead   every DEAD row\n"
               "  -h, --help       print this help\n");
}

static void print_prune_help(void)
{
        printf("usage: orderflow outbox prune --db PATH --older-than "
               "DURATION\n"
               "\n"
               "Delete the SENT outbox rows sent more than DURATION ago, "
               "in small\n"
               "transactions so that a running relay never waits long. "
               "PENDING and DEAD\n"
               "rows are kept. Prints how many rows were deleted.\n"
               "\n"
               "DURATION is a whole number with a unit: s (seconds), m "
               "(minutes), h (hours)\n"
               "or d (days), e.g. 30s, 15m, 12h, 7d; from 1s to 3650d (10 "
               "years).\n"
               "\n"
               "options:\n"
               "      --db PATH              the application database "
               "(required; never\n"
               "                             created)\n"
               "      --older-than DURATION  the age of the rows to delete "
               "(required)\n"
               "  -h, --help                 print this help\n");
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

/* ---- status ---- */

static int outbox_status(int argc, char **argv)
{
        static const char cmd[] = CMD " status";
        static const struct option longopts[] = {
                {"db", required_argument, NULL, 'd'},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        of_appdb *app = NULL;
        of_outbox_status s;
        const char *db = NULL;
        char errstr[512], age[32];
        int opt, json = 0, rc;

        opterr = 0;
        optind = 1;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'd':
                        if (!*optarg)
                                return of_cli_usage(cmd, "--db: empty path");
                        db = optarg;
                        break;
                case 'j':
                        json = 1;
                        break;
                case 'h':
                        print_status_help();
                        return of_cli_close_stdout(cmd);
                default:
                        return of_cli_bad_option(cmd, opt, argv);
                }
        }
        if (optind < argc)
                return of_cli_usage(cmd, "%s: unexpected argument",
                                    argv[optind]);
        if (!db)
                return of_cli_usage(cmd, "--db: required");

        if ((rc = open_existing(&app, cmd, db)))
                goto out;
        rc = OF_EXIT_FAILURE;
        if (of_appdb_outbox_status(app, &s, errstr, sizeof(errstr))) {
                of_cli_error(cmd, "%s", errstr);
                goto out;
        }
        if (s.oldest_pending_age_s < 0)
                snprintf(age, sizeof(age), "%s", json ? "null" : "none");
        else
                snprintf(age, sizeof(age), "%.3f%s", s.oldest_pending_age_s,
                         json ? "" : " s");
        if (json)
                printf("{\"pending\":%" PRId64 ",\"sent\":%" PRId64
                       ",\"dead\":%" PRId64 ",\"oldest_pending_age_s\":%s}\n",
                       s.pending, s.sent, s.dead, age);
        else
                printf("pending             %" PRId64 "\n"
                       "sent                %" PRId64 "\n"
                       "dead                %" PRId64 "\n"
                       "oldest pending age  %s\n",
                       s.pending, s.sent, s.dead, age);
        rc = of_cli_close_stdout(cmd);
out:
        of_appdb_close(app);
        return rc;
}

/* ---- retry ---- */

static int outbox_retry(int argc, char **argv)
{
        static const char cmd[] = CMD " retry";
        static const struct option longopts[] = {
                {"db", required_argument, NULL, 'd'},
                {"id", required_argument, NULL, 'i'},
                {"all-dead", no_argument, NULL, 'a'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        of_appdb *app = NULL;
        const char *db = NULL, *id = NULL;
        char errstr[512];
        int64_t changed = 0;
        int opt, all = 0, rc, err;

        opterr = 0;
        optind = 1;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'd':
                        if (!*optarg)
                                return of_cli_usage(cmd, "--db: empty path");
                        db = optarg;
                        break;
                case 'i':
                        if (!*optarg)
                                return of_cli_usage(cmd, "--id: empty id");
                        id = optarg;
                        break;
                case 'a':
                        all = 1;
                        break;
                case 'h':
                        print_retry_help();
                        return of_cli_close_stdout(cmd);
                default:
                        return of_cli_bad_option(cmd, opt, argv);
                }
        }
        if (optind < argc)
                return of_cli_usage(cmd, "%s: unexpected argument",
                                    argv[optind]);
        if (!db)
                return of_cli_usage(cmd, "--db: required");
        if (!id == !all)
                return of_cli_usage(cmd, "expected exactly one of --id and "
                                         "--all-dead");

        if ((rc = open_existing(&app, cmd, db)))
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

static int outbox_prune(int argc, char **argv)
{
        static const char cmd[] = CMD " prune";
        static const struct option longopts[] = {
                {"db", required_argument, NULL, 'd'},
                {"older-than", required_argument, NULL, 'o'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        of_appdb *app = NULL;
        const char *db = NULL;
        char errstr[512];
        int64_t older_ms = -1, deleted = 0;
        int opt, rc;

        opterr = 0;
        optind = 1;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'd':
                        if (!*optarg)
                                return of_cli_usage(cmd, "--db: empty path");
                        db = optarg;
                        break;
                case 'o':
                        if (of_cli_parse_duration(&older_ms, optarg))
                                return of_cli_usage(cmd,
                                                    "--older-than: %s: not a "
                                                    "duration like 90m, 36h "
                                                    "or 7d (at least 1s)",
                                                    optarg);
                        break;
                case 'h':
                        print_prune_help();
                        return of_cli_close_stdout(cmd);
                default:
                        return of_cli_bad_option(cmd, opt, argv);
                }
        }
        if (optind < argc)
                return of_cli_usage(cmd, "%s: unexpected argument",
                                    argv[optind]);
        if (!db)
                return of_cli_usage(cmd, "--db: required");
        if (older_ms < 0)
                return of_cli_usage(cmd, "--older-than: required");

        if ((rc = open_existing(&app, cmd, db)))
                goto out;
        rc = OF_EXIT_FAILURE;
        if (of_outbox_prune(app, older_ms, &deleted, errstr,
                            sizeof(errstr))) {
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
                {"retry", outbox_retry},
                {"prune", outbox_prune},
        };
        size_t i;

        if (argc < 2)
                return of_cli_usage(CMD, "missing what to do (status, retry "
                                         "or prune)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                print_help();
                return of_cli_close_stdout(CMD);
        }
        for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
                if (!strcmp(argv[1], subs[i].name))
                        return subs[i].fn(argc - 1, argv + 1);
        return of_cli_usage(CMD, "%s: unknown subcommand (expected status, "
                                 "retry or prune)",
                            argv[1]);
}
