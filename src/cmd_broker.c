/* orderflow broker: run the embedded mock cluster (broker.c) until SIGINT
 * or SIGTERM. Its bootstrap address is the first line on stdout, so that
 * scripts can read it; everything else goes to stderr. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "orderflow/broker.h"
#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/kafka.h"
#include "orderflow/log.h"

#define CMD "broker"

#define BROKER_MAX_BROKERS    32
#define BROKER_MAX_PARTITIONS 1000
#define BROKER_TOPIC_MAX      249 /* Kafka's limit on a topic name */

typedef struct broker_opts {
        const char *topic; /* created at start */
        int partitions;    /* of topic */
        int brokers;       /* in the cluster */
} broker_opts;

static void print_help(void)
{
        printf("usage: orderflow broker [-t TOPIC] [-p N] [--brokers N]\n"
               "\n"
               "Run an embedded Kafka-protocol broker (librdkafka's mock "
               "cluster) on\n"
               "127.0.0.1, on ports chosen by the system, for local use "
               "and tests. Its\n"
               "bootstrap address (\"127.0.0.1:PORT,...\") is printed as "
               "the first line\n"
               "on stdout; it serves until SIGINT or SIGTERM, then exits "
               "0. Data is kept\n"
               "in memory only.\n"
               "\n"
               "options:\n"
               "  -t, --topic NAME     topic to create (default "
               OF_DEFAULT_TOPIC ")\n"
               "  -p, --partitions N   its partitions, 1 to %d (default 4)\n"
               "      --brokers N      brokers in the cluster, 1 to %d "
               "(default 1)\n"
               "  -v, --verbose        also log librdkafka's debug lines\n"
               "  -h, --help           print this help\n",
               BROKER_MAX_PARTITIONS, BROKER_MAX_BROKERS);
}

/* Kafka's rule: 1 to 249 of [a-zA-Z0-9._-]. */
static int topic_is_valid(const char *s)
{
        size_t n = strlen(s);

        return n > 0 && n <= BROKER_TOPIC_MAX &&
               strspn(s, "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* Fill *o from argv: 0, -1 for --help, or OF_EXIT_USAGE (reported). */
static int parse_args(broker_opts *o, int argc, char **argv)
{
        static const struct option longopts[] = {
                {"topic", required_argument, NULL, 't'},
                {"partitions", required_argument, NULL, 'p'},
                {"brokers", required_argument, NULL, 'B'},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        int64_t n;
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":t:p:vh", longopts, NULL)) !=
               -1) {
                switch (opt) {
                case 't':
                        if (!topic_is_valid(optarg))
                                return of_cli_usage(
                                    CMD,
                                    "--topic: '%s' is not a topic name "
                                    "(1 to %d of a-z A-Z 0-9 . _ -)",
                                    optarg, BROKER_TOPIC_MAX);
                        o->topic = optarg;
                        break;
                case 'p':
                        if (of_cli_parse_int(&n, optarg, 1,
                                             BROKER_MAX_PARTITIONS) != 0)
                                return of_cli_usage(
                                    CMD,
                                    "--partitions: '%s' is not a whole "
                                    "number from 1 to %d",
                                    optarg, BROKER_MAX_PARTITIONS);
                        o->partitions = (int)n;
                        break;
                case 'B':
                        if (of_cli_parse_int(&n, optarg, 1,
                                             BROKER_MAX_BROKERS) != 0)
                                return of_cli_usage(
                                    CMD,
                                    "--brokers: '%s' is not a whole "
                                    "number from 1 to %d",
                                    optarg, BROKER_MAX_BROKERS);
                        o->brokers = (int)n;
                        break;
                case 'v':
                        of_log_verbosity = OF_LOG_DEBUG;
                        break;
                case 'h':
                        return -1;
                default:
                        return of_cli_bad_option(CMD, opt, argv);
                }
        }
        if (optind < argc)
                return of_cli_usage(CMD, "%s: unexpected argument",
                                    argv[optind]);
        return 0;
}

int cmd_broker(int argc, char **argv)
{
        broker_opts o = {
                .topic = OF_DEFAULT_TOPIC,
                .partitions = 4,
                .brokers = 1,
        };
        /* Sleep between checks of the stop flag: a signal cuts it short. */
        const struct timespec tick = {.tv_sec = 0, .tv_nsec = 100000000};
        of_broker *b = NULL;
        char errstr[512];
        int rc;

        rc = parse_args(&o, argc, argv);
        if (rc == -1) {
                print_help();
                return of_cli_close_stdout(CMD);
        }
        if (rc != 0)
                return rc;
        /* Before the address is out, so a quick SIGTERM from a script that
         * read it still means a clean stop. */
        if (of_cli_catch_stop() != 0) {
                fprintf(stderr, "orderflow %s: sigaction: %s\n", CMD,
                        strerror(errno));
                return OF_EXIT_FAILURE;
        }
        if (of_broker_start(&b, o.brokers, o.topic, o.partitions, errstr,
                            sizeof(errstr)) != 0) {
                fprintf(stderr, "orderflow %s: %s\n", CMD, errstr);
                return OF_EXIT_FAILURE;
        }
        printf("%s\n", of_broker_bootstraps(b));
        if (fflush(stdout) != 0) {
                rc = of_cli_close_stdout(CMD);
                goto out;
        }
        of_log(OF_LOG_INFO,
               "broker: %d broker(s) on %s, topic %s with %d partition(s); "
               "stop with SIGINT or SIGTERM",
               o.brokers, of_broker_bootstraps(b), o.topic, o.partitions);
        while (!of_cli_stop)
                nanosleep(&tick, NULL);
        of_log(OF_LOG_INFO, "broker: stopping");
        rc = of_cli_close_stdout(CMD);
out:
        of_broker_stop(b);
        return rc;
}
