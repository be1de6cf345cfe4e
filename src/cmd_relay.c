/* orderflow relay: options, signals and exit code around of_relay_run(). */
#include <inttypes.h>
#include <stdio.h>

#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/relay.h"

#define CMD "relay"

/* What the options fill. */
typedef struct relay_args {
        const char *db;         /* --db */
        of_cli_kafka kafka;     /* -b, -t, -F, -X, -v, -q */
        of_cli_metrics metrics; /* --metrics-* */
        of_relay_opts ro;       /* the rest; ro.ko from kafka */
} relay_args;

static const relay_args defaults = {
        .kafka = OF_CLI_KAFKA_INIT,
        .metrics = OF_CLI_METRICS_INIT,
        .ro = OF_RELAY_OPTS_INIT,
};

static const of_cli_spec specs[] = {
        OF_CLI_OPT_STRING(relay_args, db, "db", 0, OF_CLI_REQUIRED, 1, 0, NULL,
                          "PATH", "the application database"),
        OF_CLI_GROUP_AT(relay_args, kafka, of_cli_kafka_specs),
        OF_CLI_OPT_FLAG(relay_args, ro.once, "once", 0,
                        "publish what is due now, then exit"),
        OF_CLI_OPT_INT(relay_args, ro.batch_max, "batch", 0, 0, 1, 100000, "N",
                       "rows per claim"),
        OF_CLI_OPT_INT(relay_args, ro.poll_ms, "interval-ms", 0, 0, 1, 3600000,
                       "N",
                       "longest wait on an idle outbox (a commit ends it "
                       "sooner)"),
        OF_CLI_OPT_INT(relay_args, ro.backoff.max_attempts, "max-attempts", 0,
                       0, 1, 1000, "N", "failed attempts before DEAD"),
        OF_CLI_OPT_INT(
                relay_args, ro.backoff.base_ms, "backoff-ms", 0, 0, 1, 3600000,
                "N",
                "first retry delay, doubling at each failure up "
                "to " OF_CLI_QUOTE(OF_BACKOFF_CAP_MS) " ms or N if larger"),
        OF_CLI_OPT_INT(relay_args, ro.lease_ms, "lease-ms", 0, 0, 1000,
                       86400000, "N", "how long claimed rows are ours"),
        OF_CLI_GROUP_AT(relay_args, metrics, of_cli_metrics_specs),
        OF_CLI_OPT_END,
};

static const of_cli_cmd relay_cmd = {
        CMD,
        specs,
        &defaults,
        "Publish the pending outbox rows of the application database at "
        "PATH to Kafka,\nin the order they were committed (key: the order "
        "id; headers event_id and\nevent_type; value: the stored "
        "envelope), and mark them SENT. A failed row\nis retried with "
        "exponential backoff and becomes DEAD after --max-attempts;\nthe "
        "later rows of its order wait for it, the other orders go on.\n"
        "Runs until SIGINT, SIGTERM or SIGHUP; with --once, publishes every "
        "row due now\nand exits (0 when none failed, 1 when any failed), "
        "saying how many rows wait\nbehind DEAD ones.",
        NULL,
};

/* After --once: the DEAD rows and the rows they hold back, which no run
 * publishes until a person retries them. */
static void say_dead(of_appdb *app)
{
        int64_t dead, behind;
        char errstr[512];

        if (of_appdb_outbox_behind_dead(app, &dead, &behind, errstr,
                                        sizeof(errstr))) {
                of_log(OF_LOG_WARN, "%s", errstr);
                return;
        }
        if (dead)
                of_log(OF_LOG_WARN,
                       "%" PRId64 " DEAD outbox row(s), %" PRId64
                       " later row(s) of their orders waiting behind them: "
                       "see 'orderflow outbox list --dead' and 'outbox "
                       "retry'",
                       dead, behind);
}

/* The run's counts (info) and its latency (a measurement: debug). */
static void say_summary(const of_relay_stats *stats)
{
        char waited[96], delivered[96];

        of_log(OF_LOG_INFO,
               "published %llu, failed attempts %llu, held back %llu, dead "
               "%llu, in %llu batches",
               (unsigned long long)stats->published,
               (unsigned long long)stats->failed,
               (unsigned long long)stats->held,
               (unsigned long long)stats->dead,
               (unsigned long long)stats->batches);
        if (stats->outbox_wait.n)
                of_log(OF_LOG_DEBUG,
                       "latency: commit to claim %s; claim to delivery "
                       "report %s",
                       of_lathist_format(&stats->outbox_wait, waited,
                                         sizeof(waited)),
                       of_lathist_format(&stats->delivery, delivered,
                                         sizeof(delivered)));
}

int cmd_relay(int argc, char **argv)
{
        relay_args a = defaults;
        of_relay_stats stats = {0};
        of_metrics *metrics = NULL;
        of_appdb *app = NULL, *metrics_app = NULL;
        char errstr[1024];
        long hook_left;
        int rc;

        if (of_cli_parse(&rc, &relay_cmd, &a, argc, argv) ||
            (rc = of_cli_kafka_check(&a.kafka, &a.metrics, CMD)))
                return rc;
        a.ro.ko = a.kafka.ko;
        if (a.ro.backoff.cap_ms < a.ro.backoff.base_ms)
                a.ro.backoff.cap_ms = a.ro.backoff.base_ms;
        /* Test hook: die after the Nth batch is delivered, before its
         * rows are marked. */
        if ((hook_left = of_cli_test_hook(
                     "ORDERFLOW_TEST_RELAY_EXIT_AFTER_PRODUCE")) > 0) {
                a.ro.after_produce = of_cli_crash_hook;
                a.ro.hook_opaque = &hook_left;
        }
        if ((rc = of_cli_catch_stop(CMD)))
                return rc;
        a.ro.stop = &of_cli_stop;
        if (of_appdb_open_existing(&app, a.db, errstr, sizeof(errstr))) {
                of_cli_error(CMD, "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        /* The outbox gauges are read at each scrape on a connection of
         * their own, used only by the metrics server's thread. */
        if (a.metrics.port >= 0 &&
            of_appdb_open_existing(&metrics_app, a.db, errstr,
                                   sizeof(errstr))) {
                of_cli_error(CMD, "%s", errstr);
                of_appdb_close(app);
                return OF_EXIT_FAILURE;
        }
        if ((rc = of_cli_metrics_start(&metrics, &a.metrics, CMD))) {
                of_appdb_close(metrics_app);
                of_appdb_close(app);
                return rc;
        }
        if (metrics)
                of_relay_metrics_outbox(metrics, metrics_app);
        a.ro.metrics = metrics;
        rc = of_relay_run(app, &a.ro, &stats, errstr, sizeof(errstr));
        if (a.ro.once && !rc)
                say_dead(app);
        of_metrics_free(metrics);
        of_appdb_close(metrics_app);
        of_appdb_close(app);
        say_summary(&stats);
        if (rc) {
                of_cli_error(CMD, "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        if (a.ro.once && stats.failed) {
                of_cli_error(CMD,
                             "%llu row(s) failed; they stay pending "
                             "with a backoff",
                             (unsigned long long)stats.failed);
                return OF_EXIT_FAILURE;
        }
        return OF_EXIT_OK;
}
