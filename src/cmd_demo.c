/* orderflow demo: the whole pipeline in one process on the embedded
 * broker: place and pay orders (writer), publish the outbox (relay),
 * apply the topic (projector), then show and check the read model. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "orderflow/appdb.h"
#include "orderflow/broker.h"
#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/print.h"
#include "orderflow/projector.h"
#include "orderflow/relay.h"
#include "orderflow/store.h"

#define CMD "demo"

/* What the writer did, to check the read model against. */
typedef struct expected {
        int64_t placed, paid, placed_amount, paid_amount;
} expected;

/* What the options fill. */
typedef struct demo_args {
        int64_t orders;  /* --orders */
        const char *dir; /* --dir; NULL: a new folder under /tmp */
} demo_args;

static const demo_args defaults = {.orders = 1000};

static const of_cli_spec specs[] = {
        OF_CLI_OPT_INT(demo_args, orders, "orders", 0, 0, 1, 1000000, "N",
                       "orders to place"),
        OF_CLI_OPT_STRING(demo_args, dir, "dir", 0, 0, 0, 0, NULL, "DIR",
                          "where the databases go (default: a new folder "
                          "under /tmp)"),
        OF_CLI_INCLUDE(of_cli_log_specs),
        OF_CLI_OPT_END,
};

static const of_cli_cmd demo_cmd = {
        CMD,
        specs,
        &defaults,
        "Run the whole outbox pipeline on an embedded broker: place N orders "
        "and pay\ntwo in three (writer, DIR/app.db), publish the outbox "
        "(relay), apply the\ntopic to DIR/readmodel.db (projector), then "
        "print the totals, checked\nagainst what was written, and the "
        "first orders.",
        NULL,
};

static int write_orders(of_appdb *app, int n, expected *ex, char *errstr,
                        size_t errstr_size)
{
        char id[32];
        int i, err;

        for (i = 0; i < n && !of_cli_stop; i++) {
                int64_t total = 500 + (int64_t)(i * 7919 % 99500);

                snprintf(id, sizeof(id), "o-%06d", i);
                if ((err = of_appdb_place(app, NULL, id, total, errstr,
                                          errstr_size)))
                        return err;
                ex->placed++;
                ex->placed_amount += total;
                if (i % 3 == 2)
                        continue;
                if ((err = of_appdb_pay(app, NULL, id, total, errstr,
                                        errstr_size)))
                        return err;
                ex->paid++;
                ex->paid_amount += total;
        }
        return 0;
}

/* Print the first max rows of order_list as a table. */
static int show(const char *path, size_t max, char *errstr, size_t errstr_size)
{
        of_cursor *cur = NULL;
        int err;

        if (of_store_cursor_open(&cur, path, "order_list", errstr,
                                 errstr_size))
                return OF_ERROR;
        err = of_print_table(stdout, cur, max, errstr, errstr_size);
        of_cursor_close(cur);
        return err;
}

/* The totals row, compared with what the writer did. */
static int check_totals(const char *path, const expected *ex, char *errstr,
                        size_t errstr_size)
{
        of_cursor *cur = NULL;
        int64_t got[4] = {-1, -1, -1, -1};
        const int64_t want[4] = {ex->placed, ex->paid, ex->placed_amount,
                                 ex->paid_amount};
        int c, err = 0;

        if (of_store_cursor_open(&cur, path, "order_totals", errstr,
                                 errstr_size))
                return OF_ERROR;
        if (of_cursor_next(cur, errstr, errstr_size) != 1) {
                of_cursor_close(cur);
                return OF_ERROR;
        }
        for (c = 0; c < 4; c++) {
                got[c] = of_cursor_int(cur, c);
                printf("  %-14s %12" PRId64 "   (written: %" PRId64 ")\n",
                       of_cursor_name(cur, c), got[c], want[c]);
                if (got[c] != want[c])
                        err = of_errf(errstr, errstr_size,
                                      "%s is %" PRId64 ", expected %" PRId64,
                                      of_cursor_name(cur, c), got[c], want[c]);
        }
        of_cursor_close(cur);
        return err;
}

/* The relay publishes every outbox row once. */
static int relay_all(of_appdb *app, const of_broker *b, char *errstr,
                     size_t errstr_size)
{
        of_relay_opts ro = OF_RELAY_OPTS_INIT;
        of_relay_stats rs = {0};

        ro.ko.brokers = of_broker_bootstraps(b);
        ro.once = 1;
        ro.stop = &of_cli_stop;
        if (of_relay_run(app, &ro, &rs, errstr, errstr_size))
                return OF_ERROR;
        printf("relay: published %" PRIu64 " events in %" PRIu64 " batches\n",
               rs.published, rs.batches);
        fflush(stdout);
        if (rs.failed && !of_cli_stop)
                return of_errf(errstr, errstr_size,
                               "the relay failed %" PRIu64 " time(s)",
                               rs.failed);
        return 0;
}

/* The projector applies the topic to the read model at rm_path, to the
 * end. */
static int project_all(const char *rm_path, const of_broker *b, char *errstr,
                       size_t errstr_size)
{
        static const char *props[] = {"session.timeout.ms=6000",
                                      "heartbeat.interval.ms=500"};
        of_projector_opts po = OF_PROJECTOR_OPTS_INIT;
        of_store_stats ps = {0};
        of_store *st = NULL;
        int err;

        po.ko.brokers = of_broker_bootstraps(b);
        po.ko.props = props;
        po.ko.props_cnt = 2;
        po.group = "orderflow-demo";
        po.exit_at_end = 1;
        po.stop = &of_cli_stop;
        if ((err = of_store_open(&st, rm_path, errstr, errstr_size)))
                return err;
        err = of_projector_run(st, &po, &ps, errstr, errstr_size);
        of_store_close(st);
        if (err || of_cli_stop)
                return err;
        printf("projector: applied %" PRIu64 " events (%" PRIu64
               " duplicates, %" PRIu64 " dead letters)\n\n",
               ps.applied, ps.duplicates, ps.dead);
        return 0;
}

/* The demo's folder: dir (created if missing), or a new one in /tmp
 * (tmpl, overwritten); NULL after the error line. */
static const char *demo_dir(const char *dir, char *tmpl)
{
        if (!dir && !(dir = mkdtemp(tmpl))) {
                of_cli_error(CMD, "%s: %s", tmpl, strerror(errno));
                return NULL;
        }
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                of_cli_error(CMD, "%s: %s", dir, strerror(errno));
                return NULL;
        }
        return dir;
}

/* Write, relay, project, then show and check the read model. */
static int demo(const char *dir, int orders, char *errstr, size_t errstr_size)
{
        char app_path[4200], rm_path[4200];
        expected ex = {0};
        of_broker *b = NULL;
        of_appdb *app = NULL;
        int err;

        snprintf(app_path, sizeof(app_path), "%s/app.db", dir);
        snprintf(rm_path, sizeof(rm_path), "%s/readmodel.db", dir);
        if ((err = of_broker_start(&b, 1, OF_DEFAULT_TOPIC, 4, errstr,
                                   errstr_size)))
                goto out;
        printf("embedded broker: %s (topic %s, 4 partitions)\n",
               of_broker_bootstraps(b), OF_DEFAULT_TOPIC);
        fflush(stdout);
        if ((err = of_appdb_open(&app, app_path, errstr, errstr_size)) ||
            (err = write_orders(app, orders, &ex, errstr, errstr_size)))
                goto out;
        printf("writer: placed %" PRId64 " orders and paid %" PRId64
               " (each with its outbox row, in one transaction)\n",
               ex.placed, ex.paid);
        fflush(stdout);
        if (of_cli_stop || (err = relay_all(app, b, errstr, errstr_size)) ||
            of_cli_stop ||
            (err = project_all(rm_path, b, errstr, errstr_size)) ||
            of_cli_stop)
                goto out;
        printf("order_totals:\n");
        if ((err = check_totals(rm_path, &ex, errstr, errstr_size)))
                goto out;
        printf("\nfirst orders:\n");
        if ((err = show(rm_path, 5, errstr, errstr_size)))
                goto out;
        printf("\nlook further:\n"
               "  sqlite3 %s 'SELECT * FROM daily_totals'\n"
               "  orderflow query orders --db %s\n"
               "  orderflow outbox status --db %s\n",
               rm_path, rm_path, app_path);
out:
        of_appdb_close(app);
        of_broker_stop(b);
        return err;
}

int cmd_demo(int argc, char **argv)
{
        demo_args a = defaults;
        const char *dir;
        char tmpl[] = "/tmp/orderflow-demo-XXXXXX";
        char errstr[1024];
        int rc, err;

        of_log_verbosity = OF_LOG_WARN; /* the demo prints its own story */
        if (of_cli_parse(&rc, &demo_cmd, &a, argc, argv))
                return rc;
        if (!(dir = demo_dir(a.dir, tmpl)))
                return OF_EXIT_FAILURE;
        if ((rc = of_cli_catch_stop(CMD)))
                return rc;
        printf("demo folder: %s\n", dir);
        fflush(stdout);
        err = demo(dir, (int)a.orders, errstr, sizeof(errstr));
        /* SIGINT, SIGTERM, SIGHUP: each stage stopped cleanly (the relay's
         * batches marked, the projector's batch committed): a clean stop,
         * not a failure. */
        if (of_cli_stop && !err) {
                printf("\ninterrupted: the databases are left in %s\n", dir);
                return of_cli_close_stdout(CMD);
        }
        if (err) {
                fflush(stdout);
                of_cli_error(CMD, "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        return of_cli_close_stdout(CMD);
}
