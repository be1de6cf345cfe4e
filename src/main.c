/* orderflow: the command table and dispatch. Each command's options, help
 * and exit code belong to its cmd_<name>.c. */
#include <stdio.h>
#include <string.h>

#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/log.h"

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *summary;
} commands[] = {
        {"place", cmd_place, "writer: place an order (with its outbox row)"},
        {"pay", cmd_pay, "writer: pay an order (with its outbox row)"},
        {"relay", cmd_relay, "publish pending outbox rows to Kafka"},
        {"outbox", cmd_outbox,
         "the outbox: status, list its rows, retry dead ones, prune"},
        {"project", cmd_project, "consume events into the read model"},
        {"rebuild", cmd_rebuild,
         "replay the topic into a new read model, "
         "swap it in"},
        {"status", cmd_status,
         "how far the read model is: offsets, lag, "
         "counters"},
        {"query", cmd_query, "print the read model"},
        {"broker", cmd_broker, "run an embedded Kafka broker on loopback"},
        {"demo", cmd_demo, "the whole pipeline on an embedded broker"},
};

static void print_usage(FILE *out)
{
        size_t i;

        fprintf(out, "usage: orderflow COMMAND [--help] [ARGS]\n\n"
                     "An exactly-once read model of orders from Kafka "
                     "(transactional outbox).\n\ncommands:\n");
        for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(out, "  %-10s %s\n", commands[i].name,
                        commands[i].summary);
        fprintf(out, "\n'orderflow COMMAND --help' describes one command; "
                     "'orderflow --version' (-V)\nprints the versions of "
                     "orderflow, librdkafka and SQLite.\n");
}

int main(int argc, char **argv)
{
        size_t i;

        if (argc < 2) {
                print_usage(stdout);
                return OF_EXIT_OK;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help")) {
                print_usage(stdout);
                return OF_EXIT_OK;
        }
        if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
                of_cli_print_version(stdout);
                return of_cli_close_stdout(argv[1]);
        }
        for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (!strcmp(argv[1], commands[i].name))
                        return commands[i].fn(argc - 1, argv + 1);
        fprintf(stderr,
                "%sorderflow: '%s' is not a command (see 'orderflow "
                "--help')\n",
                of_log_journal_prefix(OF_LOG_ERROR), argv[1]);
        return OF_EXIT_USAGE;
}
