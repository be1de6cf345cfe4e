/* orderflow relay: options, signals and exit code around of_relay_run(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/relay.h"

#define CMD "relay"

static void print_help(void)
{
        printf("usage: orderflow relay --db PATH [-b LIST] [-t NAME] "
               "[--once] [-F FILE] [-X key=value]...\n"
               "       [--metrics-port N [--metrics-addr ADDR]]\n\n"
               "Publish the pending outbox rows of the application database "
               "at PATH to Kafka,\nin the order they were committed (key: "
               "the order id; headers event_id and\nevent_type; value: the "
               "stored envelope), and mark them SENT. A failed row\nis "
               "retried with exponential backoff and becomes DEAD after "
               "--max-attempts;\nthe later rows of its order wait for it, "
               "the other orders go on.\nRuns until SIGINT or SIGTERM; with "
               "--once, "
               "publishes every row due now and\nexits (0 when none failed, "
               "1 when any failed).\n\noptions:\n"
               "  --db PATH            the application database (required)\n"
               OF_CLI_KAFKA_HELP
               "  --once               publish what is due now, then exit\n"
               "  --batch N            rows per claim (default %d)\n"
               "  --interval-ms N      wait on an idle outbox (default %d)\n"
               "  --max-attempts N     failed attempts before DEAD "
               "(default 10)\n"
               "  --backoff-ms N       first retry delay, doubling "
               "(default 500, cap 60000)\n"
               "  --lease-ms N         how long claimed rows are ours "
               "(default %d)\n" OF_CLI_METRICS_HELP
               "  -h, --help           this help\n",
               OF_DEFAULT_RELAY_BATCH, OF_DEFAULT_RELAY_POLL,
               OF_DEFAULT_RELAY_LEASE);
}

static int int_opt(int64_t *out, const char *name, const char *arg,
                   int64_t min, int64_t max)
{
        if (of_cli_parse_int(out, arg, min, max))
                return of_cli_usage(CMD, "%s: not an integer from %lld to "
                                         "%lld", name, (long long)min,
                                    (long long)max);
        return 0;
}

int cmd_relay(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"db", required_argument, NULL, 'D'},
                OF_CLI_KAFKA_LONGOPTS,
                {"once", no_argument, NULL, 'o'},
                {"batch", required_argument, NULL, 'n'},
                {"interval-ms", required_argument, NULL, 'i'},
                {"max-attempts", required_argument, NULL, 'm'},
                {"backoff-ms", required_argument, NULL, 'k'},
                {"lease-ms", required_argument, NULL, 'l'},
                OF_CLI_METRICS_LONGOPTS,
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        of_relay_opts o = OF_RELAY_OPTS_INIT;
        of_relay_stats stats = {0};
        of_cli_kafka ck;
        of_cli_metrics cm = OF_CLI_METRICS_INIT;
        of_metrics *metrics = NULL;
        of_appdb *app = NULL, *metrics_app = NULL;
        const char *db = NULL;
        const char *hook = getenv("ORDERFLOW_TEST_RELAY_EXIT_AFTER_PRODUCE");
        char errstr[1024];
        long hook_left = 0;
        int64_t n;
        int opt, rc;

        of_cli_kafka_init(&ck);
        opterr = 0;
        optind = 1;
        while ((opt = getopt_long(argc, argv,
                                  ":" OF_CLI_KAFKA_SHORTOPTS "h", longopts,
                                  NULL)) != -1) {
                rc = of_cli_kafka_opt(&ck, CMD, opt, optarg);
                if (rc == 1)
                        rc = of_cli_metrics_opt(&cm, CMD, opt, optarg);
                if (rc != 1) {
                        if (rc)
                                return rc;
                        continue;
                }
                switch (opt) {
                case 'D':
                        db = optarg;
                        break;
                case 'o':
                        o.once = 1;
                        break;
                case 'n':
                        if ((rc = int_opt(&n, "--batch", optarg, 1, 100000)))
                                return rc;
                        o.batch_max = (size_t)n;
                        break;
                case 'i':
                        if ((rc = int_opt(&n, "--interval-ms", optarg, 1,
                                          3600000)))
                                return rc;
                        o.poll_ms = (int)n;
                        break;
                case 'm':
                        if ((rc = int_opt(&n, "--max-attempts", optarg, 1,
                                          1000)))
                                return rc;
                        o.backoff.max_attempts = (int)n;
                        break;
                case 'k':
                        if ((rc = int_opt(&n, "--backoff-ms", optarg, 1,
                                          3600000)))
                                return rc;
                        o.backoff.base_ms = (int)n;
                        if (o.backoff.cap_ms < o.backoff.base_ms)
                                o.backoff.cap_ms = o.backoff.base_ms;
                        break;
                case 'l':
                        if ((rc = int_opt(&n, "--lease-ms", optarg, 1000,
                                          86400000)))
                                return rc;
                        o.lease_ms = (int)n;
                        break;
                case 'h':
                        print_help();
                        return of_cli_close_stdout(CMD);
                default:
                        return of_cli_bad_option(CMD, opt, argv);
                }
        }
        if (optind < argc)
                return of_cli_usage(CMD, "%s: unexpected argument",
                                    argv[optind]);
        if (!db)
                return of_cli_usage(CMD, "--db: required");
        if ((rc = of_cli_metrics_check(&cm, CMD)))
                return rc;
        o.ko = ck.ko;
        if (of_kafka_check_opts(&o.ko, errstr, sizeof(errstr)))
                return of_cli_usage(CMD, "%s", errstr);
        /* Test hook: die after the Nth batch is delivered, before its
         * rows are marked. */
        if (hook && (hook_left = atol(hook)) > 0) {
                o.after_produce = of_cli_crash_hook;
                o.hook_opaque = &hook_left;
        }
        if (of_cli_catch_stop()) {
                of_cli_error(CMD, "sigaction: %s",
                        strerror(errno));
                return OF_EXIT_FAILURE;
        }
        o.stop = &of_cli_stop;
        if (of_appdb_open_existing(&app, db, errstr, sizeof(errstr))) {
                of_cli_error(CMD, "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        /* The outbox gauges are read at each scrape on a connection of
         * their own, used only by the metrics server's thread. */
        if (cm.port >= 0 && of_appdb_open_existing(&metrics_app, db, errstr,
                                                   sizeof(errstr))) {
                of_cli_error(CMD, "%s", errstr);
                of_appdb_close(app);
                return OF_EXIT_FAILURE;
        }
        if ((rc = of_cli_metrics_start(&metrics, &cm, CMD))) {
                of_appdb_close(metrics_app);
                of_appdb_close(app);
                return rc;
        }
        if (metrics)
                of_relay_metrics_outbox(metrics, metrics_app);
        o.metrics = metrics;
        rc = of_relay_run(app, &o, &stats, errstr, sizeof(errstr));
        of_metrics_free(metrics);
        of_appdb_close(metrics_app);
        of_appdb_close(app);
        of_log(OF_LOG_INFO,
               "published %llu, failed attempts %llu, held back %llu, dead "
               "%llu, in %llu batches",
               (unsigned long long)stats.published,
               (unsigned long long)stats.failed,
               (unsigned long long)stats.held,
               (unsigned long long)stats.dead,
               (unsigned long long)stats.batches);
        if (rc) {
                of_cli_error(CMD, "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        if (o.once && stats.failed) {
                of_cli_error(CMD, "%llu row(s) failed; they stay pending "
                             "with a backoff",
                             (unsigned long long)stats.failed);
                return OF_EXIT_FAILURE;
        }
        return OF_EXIT_OK;
}
