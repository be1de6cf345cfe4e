/* orderflow place and orderflow pay: the writer. Each checks its options
 * and hands the change to appdb, which stores it with its outbox row in
 * one transaction; publishing the row is the relay's job. The two commands
 * differ only in the table entry below. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "orderflow/appdb.h"
#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/event.h"

typedef struct writer_cmd {
        const char *name;   /* the subcommand */
        const char *amount; /* its amount option: "total" or "amount" */
        const char *what;   /* help: what it does */
        int (*change)(of_appdb *app, of_event *out, const char *order_id,
                      int64_t amount, char *errstr, size_t errstr_size);
} writer_cmd;

static const writer_cmd place_cmd = {
        "place", "total",
        "Place order ID: insert it into the application database at PATH\n"
        "(created if missing) together with its OrderPlaced outbox row, in "
        "one\ntransaction. An order that exists already is an error "
        "(exit 1).",
        of_appdb_place,
};

static const writer_cmd pay_cmd = {
        "pay", "amount",
        "Pay order ID: mark it paid in the application database at PATH "
        "and insert\nits OrderPaid outbox row, in one transaction. An "
        "unknown order or one paid\nalready is an error (exit 1).",
        of_appdb_pay,
};

typedef struct writer_opts {
        const char *db;    /* --db */
        const char *order; /* --order */
        int64_t amount;    /* --total or --amount, minor unit; -1: none */
} writer_opts;

static void print_help(const writer_cmd *wc)
{
        char label[32];

        snprintf(label, sizeof(label), "--%s N", wc->amount);
        printf("usage: orderflow %s --db PATH --order ID --%s N\n\n%s\n"
               "`orderflow relay` publishes the row. Prints the event id "
               "(a UUIDv7).\n\noptions:\n"
               "      --db PATH     the application database (required)\n"
               "      --order ID    the order id: 1 to %d bytes of UTF-8 "
               "(required)\n"
               "      %-12s  in the currency's minor unit, 0 to %lld\n"
               "                    (required)\n"
               "  -h, --help        print this help\n",
               wc->name, wc->amount, wc->what, OF_ID_MAX, label,
               (long long)OF_AMOUNT_MAX);
}

/* Fill *o from argv: 0, -1 for --help, or OF_EXIT_USAGE (reported). */
static int parse_args(const writer_cmd *wc, writer_opts *o, int argc,
                      char **argv)
{
        const struct option longopts[] = {
                {"db", required_argument, NULL, 'd'},
                {"order", required_argument, NULL, 'o'},
                {wc->amount, required_argument, NULL, 'A'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *cmd = wc->name;
        int opt;

        opterr = 0;
        optind = 1;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'd':
                        if (!*optarg)
                                return of_cli_usage(cmd, "--db: empty path");
                        o->db = optarg;
                        break;
                case 'o':
                        if (!*optarg)
                                return of_cli_usage(cmd, "--order: empty id");
                        if (strlen(optarg) > OF_ID_MAX)
                                return of_cli_usage(cmd,
                                                    "--order: longer than "
                                                    "%d bytes",
                                                    OF_ID_MAX);
                        o->order = optarg;
                        break;
                case 'A':
                        if (of_cli_parse_int(&o->amount, optarg, 0,
                                             OF_AMOUNT_MAX))
                                return of_cli_usage(cmd,
                                                    "--%s: not an integer "
                                                    "from 0 to %lld",
                                                    wc->amount,
                                                    (long long)OF_AMOUNT_MAX);
                        break;
                case 'h':
                        return -1;
                default:
                        return of_cli_bad_option(cmd, opt, argv);
                }
        }
        if (optind < argc)
                return of_cli_usage(cmd, "%s: unexpected argument",
                                    argv[optind]);
        if (!o->db)
                return of_cli_usage(cmd, "--db: required");
        if (!o->order)
                return of_cli_usage(cmd, "--order: required");
        if (o->amount < 0)
                return of_cli_usage(cmd, "--%s: required", wc->amount);
        return 0;
}

static int run(const writer_cmd *wc, int argc, char **argv)
{
        writer_opts o = {.db = NULL, .amount = -1};
        of_appdb *app = NULL;
        of_event ev;
        char errstr[512];
        int rc;

        rc = parse_args(wc, &o, argc, argv);
        if (rc == -1) {
                print_help(wc);
                return of_cli_close_stdout(wc->name);
        }
        if (rc != 0)
                return rc;
        rc = OF_EXIT_FAILURE;
        /* appdb's messages name the order: "order o-1 exists already". */
        if (of_appdb_open(&app, o.db, errstr, sizeof(errstr)) ||
            wc->change(app, &ev, o.order, o.amount, errstr, sizeof(errstr))) {
                of_cli_error(wc->name, "%s", errstr);
                goto out;
        }
        printf("%s\n", ev.id);
        rc = of_cli_close_stdout(wc->name);
out:
        of_appdb_close(app);
        return rc;
}

int cmd_place(int argc, char **argv)
{
        return run(&place_cmd, argc, argv);
}

int cmd_pay(int argc, char **argv)
{
        return run(&pay_cmd, argc, argv);
}
