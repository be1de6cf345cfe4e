/* orderflow place and orderflow pay: the writer. Each checks its options
 * and hands the change to appdb, which stores it with its outbox row in
 * one transaction; publishing the row is the relay's job. The two commands
 * differ only in their entries below (amount option, texts, change). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "orderflow/appdb.h"
#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/event.h"

typedef struct writer_opts {
        const char *db;    /* --db */
        const char *order; /* --order */
        int64_t amount;    /* --total or --amount, minor unit; -1: none */
} writer_opts;

static const writer_opts defaults = {.amount = -1};

/* What place and pay share. */
static const of_cli_spec order_specs[] = {
        OF_CLI_OPT_STRING(writer_opts, db, "db", 0, OF_CLI_REQUIRED, 1, 0,
                          NULL, "PATH", "the application database"),
        OF_CLI_OPT_STRING(writer_opts, order, "order", 0, OF_CLI_REQUIRED, 1,
                          OF_ID_MAX, NULL, "ID", "the order id, UTF-8"),
        OF_CLI_OPT_END,
};

static const of_cli_spec place_specs[] = {
        OF_CLI_INCLUDE(order_specs),
        OF_CLI_OPT_INT(writer_opts, amount, "total", 0, OF_CLI_REQUIRED, 0,
                       OF_AMOUNT_MAX, "N", "in the currency's minor unit"),
        OF_CLI_OPT_END,
};

static const of_cli_spec pay_specs[] = {
        OF_CLI_INCLUDE(order_specs),
        OF_CLI_OPT_INT(writer_opts, amount, "amount", 0, OF_CLI_REQUIRED, 0,
                       OF_AMOUNT_MAX, "N", "in the currency's minor unit"),
        OF_CLI_OPT_END,
};

/* The end of both commands' about text. */
#define PUBLISHED                                                             \
        "\n`orderflow relay` publishes the row. Prints the event id (a "      \
        "UUIDv7)."

typedef struct writer_cmd {
        of_cli_cmd cli; /* its name, options and help */
        int (*change)(of_appdb *app, of_event *out, const char *order_id,
                      int64_t amount, char *errstr, size_t errstr_size);
        int create; /* the database may be created (place) */
} writer_cmd;

static const writer_cmd place_cmd = {
        {"place", place_specs, &defaults,
         "Place order ID: insert it into the application database at PATH\n"
         "(created if missing) together with its OrderPlaced outbox row, in "
         "one\ntransaction. An order that exists already is an error "
         "(exit 1)." PUBLISHED,
         NULL},
        of_appdb_place,
        1,
};

static const writer_cmd pay_cmd = {
        {"pay", pay_specs, &defaults,
         "Pay order ID: mark it paid in the application database at PATH "
         "(which must\nexist) and insert its OrderPaid outbox row, in one "
         "transaction. An unknown\norder or one paid already is an error "
         "(exit 1)." PUBLISHED,
         NULL},
        of_appdb_pay,
        0,
};

static int run(const writer_cmd *wc, int argc, char **argv)
{
        writer_opts o = defaults;
        of_appdb *app = NULL;
        of_event ev;
        char errstr[512];
        int rc;

        if (of_cli_parse(&rc, &wc->cli, &o, argc, argv))
                return rc;
        rc = OF_EXIT_FAILURE;
        /* appdb's messages name the order: "order o-1 exists already". */
        /* Paying needs an order, so a database: a mistyped path must not
         * leave a new, empty one behind. */
        if ((wc->create ? of_appdb_open(&app, o.db, errstr, sizeof(errstr))
                        : of_appdb_open_existing(&app, o.db, errstr,
                                                 sizeof(errstr))) ||
            wc->change(app, &ev, o.order, o.amount, errstr, sizeof(errstr))) {
                of_cli_error(wc->cli.name, "%s", errstr);
                goto out;
        }
        printf("%s\n", ev.id);
        rc = of_cli_close_stdout(wc->cli.name);
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
