/* orderflow project: options, signals and exit code around
 * of_projector_run(). */
#include <stdio.h>
#include <sys/resource.h>

#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/projector.h"

#define CMD "project"

/* What the options fill. */
typedef struct project_args {
        const char *db;         /* --db */
        of_cli_kafka kafka;     /* -b, -t, -F, -X, -v, -q */
        of_cli_metrics metrics; /* --metrics-* */
        of_projector_opts po;   /* the rest; po.ko from kafka */
} project_args;

static const project_args defaults = {
        .kafka = OF_CLI_KAFKA_INIT,
        .metrics = OF_CLI_METRICS_INIT,
        .po = OF_PROJECTOR_OPTS_INIT,
};

static const of_cli_spec specs[] = {
        OF_CLI_OPT_STRING(project_args, db, "db", 0, OF_CLI_REQUIRED, 1, 0,
                          NULL, "PATH", "the read-model SQLite file"),
        OF_CLI_GROUP_AT(project_args, kafka, of_cli_kafka_specs),
        OF_CLI_OPT_STRING(project_args, po.group, "group", 'g', 0, 1, 0, NULL,
                          "NAME", "consumer group"),
        OF_CLI_OPT_FLAG(project_args, po.exit_at_end, "exit-at-end", 'e',
                        "exit 0 once every partition is applied up to its "
                        "end offset at the start (for a lone projector: "
                        "scripts, tests)"),
        OF_CLI_OPT_INT(project_args, po.batch_max, "batch-max", 0, 0, 1,
                       1000000, "N", "messages per transaction"),
        OF_CLI_OPT_INT(project_args, po.batch_ms, "batch-ms", 0, 0, 1, 600000,
                       "N", "longest a batch stays open, ms"),
        OF_CLI_GROUP_AT(project_args, metrics, of_cli_metrics_specs),
        OF_CLI_OPT_DURATION(project_args, po.dedupe_retention_ms,
                            "dedupe-retention", 0, 0, "DURATION",
                            "forget event ids applied longer ago than "
                            "DURATION, e.g. 30s, 90m, 36h, 7d (default: "
                            "keep every id for ever); a copy of an event "
                            "delivered after that counts as new: choose "
                            "it longer than any redelivery can come late "
                            "(docs/operations.md)"),
        OF_CLI_OPT_END,
};

static const of_cli_cmd project_cmd = {
        CMD,
        specs,
        &defaults,
        "Consume order events and apply each exactly once to the read "
        "model at PATH\n(created if missing), until SIGINT, SIGTERM or "
        "SIGHUP. Partitions resume from\nthe offsets stored in the read "
        "model, not from the group's committed offsets.",
        NULL,
};

int cmd_project(int argc, char **argv)
{
        project_args a = defaults;
        of_metrics *metrics = NULL;
        of_store *st = NULL;
        of_store_stats stats = {0};
        char errstr[1024];
        struct rusage ru;
        long hook_left;
        int rc;

        if (of_cli_parse(&rc, &project_cmd, &a, argc, argv) ||
            (rc = of_cli_kafka_check(&a.kafka, &a.metrics, CMD)))
                return rc;
        a.po.ko = a.kafka.ko;
        /* Test hook: die right after the Nth database commit, before the
         * Kafka commit. */
        if ((hook_left = of_cli_test_hook(
                     "ORDERFLOW_TEST_EXIT_AFTER_COMMITS")) > 0) {
                a.po.after_db_commit = of_cli_crash_hook;
                a.po.hook_opaque = &hook_left;
        }
        if ((rc = of_cli_catch_stop(CMD)))
                return rc;
        a.po.stop = &of_cli_stop;

        if (of_store_open(&st, a.db, errstr, sizeof(errstr))) {
                of_cli_error(CMD, "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        if ((rc = of_cli_metrics_start(&metrics, &a.metrics, CMD))) {
                of_store_close(st);
                return rc;
        }
        a.po.metrics = metrics;
        rc = of_projector_run(st, &a.po, &stats, errstr, sizeof(errstr));
        of_metrics_free(metrics);
        of_store_close(st);
        getrusage(RUSAGE_SELF, &ru);
        of_log(OF_LOG_INFO,
               "applied %llu, ignored %llu, duplicates %llu, dead letters "
               "%llu, in %llu batches (%llu in log order, not key order);"
               " peak RSS %ld KiB",
               (unsigned long long)stats.applied,
               (unsigned long long)stats.ignored,
               (unsigned long long)stats.duplicates,
               (unsigned long long)stats.dead,
               (unsigned long long)stats.batches,
               (unsigned long long)stats.in_log_order, ru.ru_maxrss);
        if (rc) {
                of_cli_error(CMD, "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        return OF_EXIT_OK;
}
