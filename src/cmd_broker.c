/* orderflow broker: run the embedded mock cluster (broker.c) until SIGINT,
 * SIGTERM or SIGHUP. Its bootstrap address is the first line on stdout, so
 * that scripts can read it; each fault-injection command read from stdin gets
 * one reply line on stdout; everything else goes to stderr. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
        printf("usage: orderflow broker [-t TOPIC] [-p N] [--brokers N] "
               "[-v|-q]\n"
               "\n"
               "Run an embedded Kafka-protocol broker (librdkafka's mock "
               "cluster) on\n"
               "127.0.0.1, on ports chosen by the system, for local use "
               "and tests. Its\n"
               "bootstrap address (\"127.0.0.1:PORT,...\") is printed as "
               "the first line\n"
               "on stdout; it serves until SIGINT, SIGTERM or SIGHUP, then "
               "exits 0. Data is\n"
               "kept in memory only.\n"
               "\n"
               "Faults are injected by lines on stdin (end of input only "
               "stops reading);\n"
               "each gets one line on stdout, \"ok COMMAND\" or "
               "\"error: COMMAND: REASON\":\n"
               "  down ID, up ID         broker ID (1, 2, ... or all) "
               "refuses connections\n"
               "                         (drops those open) or accepts "
               "them again\n"
               "  rtt ID MS              delay broker ID's responses by "
               "MS ms (0: none)\n"
               "  errors API N ERR       the next N requests of type API "
               "(Produce, Fetch,\n"
               "                         ListOffsets, Metadata, "
               "OffsetCommit, OffsetFetch,\n"
               "                         FindCoordinator, JoinGroup, "
               "Heartbeat, SyncGroup,\n"
               "                         ... or a number) fail with ERR, "
               "a librdkafka error\n"
               "                         name (NOT_LEADER_FOR_PARTITION, "
               "_TRANSPORT: disconnect)\n"
               "                         or number\n"
               "  coordinator group|transaction KEY ID   move a "
               "coordinator to broker ID\n"
               "  leader TOPIC PARTITION ID              move a "
               "partition's leader\n"
               "\n"
               "options:\n"
               "  -t, --topic NAME     topic to create (default "
               OF_DEFAULT_TOPIC ")\n"
               "  -p, --partitions N   its partitions, 1 to %d (default 4)\n"
               "      --brokers N      brokers in the cluster, 1 to %d "
               "(default 1)\n"
               OF_CLI_LOG_HELP
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
                OF_CLI_LOG_LONGOPTS,
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        int64_t n;
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":t:p:" OF_CLI_LOG_SHORTOPTS "h",
                                  longopts, NULL)) != -1) {
                if (!of_cli_log_opt(opt))
                        continue;
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

#define CONTROL_LINE_MAX 512

/* Fault-injection commands from stdin, read without blocking the loop. */
typedef struct control {
        int fd;                      /* stdin, -1 once at its end */
        char line[CONTROL_LINE_MAX]; /* the line being read */
        size_t len;                  /* bytes in line */
        int overlong;                /* the line outgrew line: skip it */
} control;

/* Run one command line and answer it on stdout: 0, or OF_EXIT_FAILURE if
 * stdout is gone. */
static int control_run(of_broker *b, control *c)
{
        char errstr[256];

        if (c->len == 0 && !c->overlong)
                return 0; /* blank line */
        if (c->overlong) {
                printf("error: line longer than %d bytes\n",
                       CONTROL_LINE_MAX - 1);
        } else if (of_broker_control(b, c->line, errstr, sizeof(errstr)) !=
                   0) {
                printf("error: %s: %s\n", c->line, errstr);
                of_log(OF_LOG_INFO, "broker: %s: %s", c->line, errstr);
        } else {
                printf("ok %s\n", c->line);
                of_log(OF_LOG_INFO, "broker: %s", c->line);
        }
        c->len = 0;
        c->overlong = 0;
        return fflush(stdout) == 0 ? 0 : OF_EXIT_FAILURE;
}

/* Wait up to 100 ms for input on stdin (or a signal) and run the complete
 * lines that came: 0, or OF_EXIT_FAILURE if stdout is gone. */
static int control_poll(of_broker *b, control *c)
{
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        char buf[4096];
        ssize_t n, i;
        int rc;

        if (poll(&pfd, c->fd >= 0 ? 1 : 0, 100) <= 0)
                return 0; /* timeout, or EINTR: the caller checks the flag */
        if (pfd.revents & POLLNVAL) {
                c->fd = -1;
                return 0;
        }
        n = read(c->fd, buf, sizeof(buf));
        if (n < 0)
                return 0; /* EINTR or EAGAIN; a real error shows again */
        if (n == 0) {
                /* End of input ends commands, not the broker. */
                c->fd = -1;
                if (c->len > 0 || c->overlong)
                        return control_run(b, c);
                return 0;
        }
        for (i = 0; i < n; i++) {
                if (buf[i] == '\n') {
                        c->line[c->len] = '\0';
                        if ((rc = control_run(b, c)) != 0)
                                return rc;
                } else if (c->len + 1 < sizeof(c->line)) {
                        c->line[c->len++] = buf[i];
                } else {
                        c->overlong = 1;
                }
        }
        c->line[c->len] = '\0';
        return 0;
}

int cmd_broker(int argc, char **argv)
{
        broker_opts o = {
                .topic = OF_DEFAULT_TOPIC,
                .partitions = 4,
                .brokers = 1,
        };
        control c = {.fd = STDIN_FILENO};
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
                of_cli_error(CMD, "sigaction: %s",
                        strerror(errno));
                return OF_EXIT_FAILURE;
        }
        if (of_broker_start(&b, o.brokers, o.topic, o.partitions, errstr,
                            sizeof(errstr)) != 0) {
                of_cli_error(CMD, "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        printf("%s\n", of_broker_bootstraps(b));
        if (fflush(stdout) != 0) {
                rc = of_cli_close_stdout(CMD);
                goto out;
        }
        of_log(OF_LOG_INFO,
               "broker: %d broker(s) on %s, topic %s with %d partition(s); "
               "stop with SIGINT, SIGTERM or SIGHUP",
               o.brokers, of_broker_bootstraps(b), o.topic, o.partitions);
        /* Between checks of the stop flag, wait for commands on stdin: a
         * signal cuts the wait short. */
        while (!of_cli_stop) {
                if (control_poll(b, &c) != 0) {
                        rc = of_cli_close_stdout(CMD);
                        goto out;
                }
        }
        of_log(OF_LOG_INFO, "broker: stopping");
        rc = of_cli_close_stdout(CMD);
out:
        of_broker_stop(b);
        return rc;
}
