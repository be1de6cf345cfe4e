/* orderflow project: options, signals and exit code around
 * of_projector_run(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/projector.h"

static void print_help(void)
{
        printf("usage: orderflow project --db PATH [-b LIST] [-t NAME] "
               "[-g GROUP] [-e] [-F FILE] [-X key=value]...\n"
               "       [--metrics-port N [--metrics-addr ADDR]] "
               "[--dedupe-retention DURATION]\n\n"
               "Consume order events and apply each exactly once to the "
               "read model at PATH\n(created if missing), until SIGINT, "
               "SIGTERM or SIGHUP. Partitions resume from\nthe offsets "
               "stored in the read model, not from the group's committed "
               "offsets.\n\n"
               "options:\n"
               "  --db PATH            the read-model SQLite file "
               "(required)\n" OF_CLI_KAFKA_HELP
               "  -g, --group GROUP    consumer group (default "
               OF_DEFAULT_GROUP ")\n"
               "  -e, --exit-at-end    exit 0 once every partition is "
               "applied up to its end\n"
               "                       offset at the start (for a lone "
               "projector: scripts, tests)\n"
               "  --batch-max N        messages per transaction (default "
               "%d)\n"
               "  --batch-ms N         longest a batch stays open, ms "
               "(default %d)\n" OF_CLI_METRICS_HELP
               "  --dedupe-retention DURATION\n"
               "                       forget event ids applied longer ago "
               "than DURATION\n"
               "                       (30s, 90m, 36h, 7d; up to 3650d); "
               "a copy of an event\n"
               "                       delivered after that counts as new. "
               "Choose it longer\n"
               "                       than any redelivery can come late "
               "(README). Default:\n"
               "                       keep every id for ever\n"
               "  -h, --help           this help\n",
               OF_DEFAULT_BATCH_MAX, OF_DEFAULT_BATCH_MS);
}

int cmd_project(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"db", required_argument, NULL, 'D'},
                OF_CLI_KAFKA_LONGOPTS,
                {"group", required_argument, NULL, 'g'},
                {"exit-at-end", no_argument, NULL, 'e'},
                {"batch-max", required_argument, NULL, 'M'},
                {"batch-ms", required_argument, NULL, 'T'},
                OF_CLI_METRICS_LONGOPTS,
                {"dedupe-retention", required_argument, NULL, 'R'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        of_projector_opts o = OF_PROJECTOR_OPTS_INIT;
        of_cli_kafka ck;
        of_cli_metrics cm = OF_CLI_METRICS_INIT;
        of_metrics *metrics = NULL;
        of_store *st = NULL;
        of_store_stats stats = {0};
        const char *db = NULL;
        const char *hook = getenv("ORDERFLOW_TEST_EXIT_AFTER_COMMITS");
        char errstr[1024];
        struct rusage ru;
        long hook_left = 0;
        int64_t n;
        int opt, rc;

        of_cli_kafka_init(&ck);
        opterr = 0;
        optind = 1;
        while ((opt = getopt_long(argc, argv,
                                  ":" OF_CLI_KAFKA_SHORTOPTS "g:eh",
                                  longopts, NULL)) != -1) {
                rc = of_cli_kafka_opt(&ck, "project", opt, optarg);
                if (rc == 1)
                        rc = of_cli_metrics_opt(&cm, "project", opt, optarg);
                if (rc != 1) {
                        if (rc)
                                return rc;
                        continue;
                }
                switch (opt) {
                case 'D':
                        db = optarg;
                        break;
                case 'g':
                        if (!*optarg)
                                return of_cli_usage("project",
                                                    "--group: empty name");
                        o.group = optarg;
                        break;
                case 'e':
                        o.exit_at_end = 1;
                        break;
                case 'M':
                        if (of_cli_parse_int(&n, optarg, 1, 1000000))
                                return of_cli_usage("project",
                                                    "--batch-max: not an "
                                                    "integer from 1 to "
                                                    "1000000");
                        o.batch_max = (size_t)n;
                        break;
                case 'T':
                        if (of_cli_parse_int(&n, optarg, 1, 600000))
                                return of_cli_usage("project",
                                                    "--batch-ms: not an "
                                                    "integer from 1 to "
                                                    "600000");
                        o.batch_ms = (int)n;
                        break;
                case 'R':
                        if (of_cli_parse_duration(&n, optarg) || n == 0)
                                return of_cli_usage("project",
                                                    "--dedupe-retention: %s:"
                                                    " not a duration like "
                                                    "90m, 36h or 7d (at "
                                                    "least 1s)",
                                                    optarg);
                        o.dedupe_retention_ms = n;
                        break;
                case 'h':
                        print_help();
                        return of_cli_close_stdout("project");
                default:
                        return of_cli_bad_option("project", opt, argv);
                }
        }
        if (optind < argc)
                return of_cli_usage("project", "%s: unexpected argument",
                                    argv[optind]);
        if (!db)
                return of_cli_usage("project", "--db: required");
        if ((rc = of_cli_metrics_check(&cm, "project")))
                return rc;
        o.ko = ck.ko;
        if (of_kafka_check_opts(&o.ko, errstr, sizeof(errstr)))
                return of_cli_usage("project", "%s", errstr);
        /* Test hook: die right after the Nth database commit, before the
         * Kafka commit. */
        if (hook && (hook_left = atol(hook)) > 0) {
                o.after_db_commit = of_cli_crash_hook;
                o.hook_opaque = &hook_left;
        }

        if (of_cli_catch_stop()) {
                of_cli_error("project", "sigaction: %s",
                        strerror(errno));
                return OF_EXIT_FAILURE;
        }
        o.stop = &of_cli_stop;

        if (of_store_open(&st, db, errstr, sizeof(errstr))) {
                of_cli_error("project", "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        if ((rc = of_cli_metrics_start(&metrics, &cm, "project"))) {
                of_store_close(st);
                return rc;
        }
        o.metrics = metrics;
        rc = of_projector_run(st, &o, &stats, errstr, sizeof(errstr));
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
                of_cli_error("project", "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        return OF_EXIT_OK;
}
