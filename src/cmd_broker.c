/* orderflow broker: run the embedded mock cluster (broker.c) until SIGINT,
 * SIGTERM or SIGHUP. Its bootstrap address is the first line on stdout, so
 * that scripts can read it; each fault-injection command read from stdin gets
 * one reply line on stdout; everything else goes to stderr. */
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
        int nodes;         /* brokers in the cluster */
} broker_opts;

/* Kafka's rule: 1 to 249 of [a-zA-Z0-9._-]. */
static int on_topic(void *base, const char *cmd, const char *s)
{
        size_t n = strlen(s);

        (void)base;
        if (n > 0 && n <= BROKER_TOPIC_MAX &&
            strspn(s, "abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n)
                return 0;
        return of_cli_usage(cmd,
                            "--topic: '%s' is not a topic name (1 to %d "
                            "of a-z A-Z 0-9 . _ -)",
                            s, BROKER_TOPIC_MAX);
}

static const broker_opts defaults = {
        .topic = OF_DEFAULT_TOPIC,
        .partitions = 4,
        .nodes = 1,
};

static const of_cli_spec specs[] = {
        OF_CLI_OPT_STRING(broker_opts, topic, "topic", 't', 0, 0, 0, on_topic,
                          "NAME", "topic to create"),
        OF_CLI_OPT_INT(broker_opts, partitions, "partitions", 'p', 0, 1,
                       BROKER_MAX_PARTITIONS, "N", "its partitions"),
        OF_CLI_OPT_INT(broker_opts, nodes, "nodes", 0, 0, 1,
                       BROKER_MAX_BROKERS, "N", "brokers in the cluster"),
        OF_CLI_INCLUDE(of_cli_log_specs),
        OF_CLI_OPT_END,
};

static const of_cli_cmd broker_cmd = {
        CMD,
        specs,
        &defaults,
        "Run an embedded Kafka-protocol broker (librdkafka's mock cluster) "
        "on\n127.0.0.1, on ports chosen by the system, for local use and "
        "tests. Its\nbootstrap address (\"127.0.0.1:PORT,...\") is printed "
        "as the first line\non stdout; it serves until SIGINT, SIGTERM or "
        "SIGHUP, then exits 0. Data is\nkept in memory only.\n"
        "\n"
        "Faults are injected by lines on stdin (end of input only stops "
        "reading);\neach gets one line on stdout, \"ok COMMAND\" or "
        "\"error: COMMAND: REASON\":\n"
        "  down ID, up ID         broker ID (1, 2, ... or all) refuses "
        "connections\n"
        "                         (drops those open) or accepts them "
        "again\n"
        "  rtt ID MS              delay broker ID's responses by MS ms "
        "(0: none)\n"
        "  errors API N ERR       the next N requests of type API "
        "(Produce, Fetch,\n"
        "                         ListOffsets, Metadata, OffsetCommit, "
        "OffsetFetch,\n"
        "                         FindCoordinator, JoinGroup, Heartbeat, "
        "SyncGroup,\n"
        "                         ... or a number) fail with ERR, a "
        "librdkafka error\n"
        "                         name (NOT_LEADER_FOR_PARTITION, "
        "_TRANSPORT: disconnect)\n"
        "                         or number\n"
        "  coordinator group|transaction KEY ID   move a coordinator to "
        "broker ID\n"
        "  leader TOPIC PARTITION ID              move a partition's leader",
        NULL,
};

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
        broker_opts o = defaults;
        control c = {.fd = STDIN_FILENO};
        of_broker *b = NULL;
        char errstr[512];
        int rc;

        if (of_cli_parse(&rc, &broker_cmd, &o, argc, argv))
                return rc;
        /* Before the address is out, so a quick SIGTERM from a script that
         * read it still means a clean stop. */
        if ((rc = of_cli_catch_stop(CMD)))
                return rc;
        if (of_broker_start(&b, o.nodes, o.topic, o.partitions, errstr,
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
               o.nodes, of_broker_bootstraps(b), o.topic, o.partitions);
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
