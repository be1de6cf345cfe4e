/* The command line: each command's options declared once in a table of
 * of_cli_spec (the parser, the usage line, --help and the usage errors
 * come from it), the Kafka-facing commands' shared options and start,
 * usage errors, numbers, and the end of stdout. */
#ifndef ORDERFLOW_CLI_H
#define ORDERFLOW_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "orderflow/kafka.h"
#include "orderflow/metrics.h"

/* ---- The option table ---- */

typedef enum of_cli_kind {
        OF_CLI_END = 0,  /* ends a table */
        OF_CLI_FLAG,     /* no value: sets an int field to 1 */
        OF_CLI_INT,      /* a whole number in [min, max] into an int,
                          * int64_t or size_t field */
        OF_CLI_DURATION, /* 30s, 15m, 12h, 7d (of_cli_parse_duration):
                          * its ms into an int64_t field */
        OF_CLI_STRING,   /* the argument into a const char * field, min to
                          * max bytes long (min 1: not empty; max 0: any) */
        OF_CLI_CALL,     /* the hook alone handles it (with a value when
                          * value_name is set) */
        OF_CLI_OPERAND,  /* a word that is no option, into a const char *
                          * field, in table order */
        OF_CLI_GROUP,    /* the table .group, its fields at .offset */
} of_cli_kind;

#define OF_CLI_REQUIRED                                                       \
        1u               /* absent: "--NAME: required", or for an             \
                          * operand "missing HELP" */
#define OF_CLI_REPEAT 2u /* may be given again ("..." in the usage) */

typedef struct of_cli_spec {
        of_cli_kind kind;
        const char *name; /* long option, without "--"; NULL: none */
        char alias;       /* short option letter; 0: none */
        unsigned flags;   /* OF_CLI_REQUIRED, OF_CLI_REPEAT */
        size_t offset;    /* of the field in the table's struct */
        size_t size;      /* of the field (an integer's width) */
        int64_t min, max; /* OF_CLI_INT: the range; OF_CLI_STRING: bytes */
        /* Called with the table's struct, the command's name and the
         * argument (NULL for a flag) after the field is filled: 0, or
         * OF_EXIT_USAGE after printing why. May be NULL. */
        int (*hook)(void *base, const char *cmd, const char *arg);
        const struct of_cli_spec *group; /* OF_CLI_GROUP: its table */
        const char *value_name; /* PATH, N, ...; NULL: takes no value */
        const char *help;       /* what it does, one sentence; --help
                                 * adds the range and the default */
} of_cli_spec;

/* The field member of struct type, for a spec. */
#define OF_CLI_FIELD(type, member)                                            \
        offsetof(type, member), sizeof(((type *)0)->member)

#define OF_CLI_OPT_FLAG(type, member, name, alias, help)                      \
        {                                                                     \
                OF_CLI_FLAG, name, alias, 0, OF_CLI_FIELD(type, member), 0,   \
                        0, NULL, NULL, NULL, help                             \
        }
#define OF_CLI_OPT_INT(type, member, name, alias, flags, min, max, vname,     \
                       help)                                                  \
        {                                                                     \
                OF_CLI_INT, name, alias, flags, OF_CLI_FIELD(type, member),   \
                        min, max, NULL, NULL, vname, help                     \
        }
#define OF_CLI_OPT_DURATION(type, member, name, alias, flags, vname, help)    \
        {                                                                     \
                OF_CLI_DURATION, name, alias, flags,                          \
                        OF_CLI_FIELD(type, member), 0, 0, NULL, NULL, vname,  \
                        help                                                  \
        }
#define OF_CLI_OPT_STRING(type, member, name, alias, flags, min, max, hook,   \
                          vname, help)                                        \
        {                                                                     \
                OF_CLI_STRING, name, alias, flags,                            \
                        OF_CLI_FIELD(type, member), min, max, hook, NULL,     \
                        vname, help                                           \
        }
#define OF_CLI_OPT_CALL(name, alias, flags, hook, vname, help)                \
        {                                                                     \
                OF_CLI_CALL, name, alias, flags, 0, 0, 0, 0, hook, NULL,      \
                        vname, help                                           \
        }
#define OF_CLI_OPERAND(type, member, flags, hook, vname, help)                \
        {                                                                     \
                OF_CLI_OPERAND, NULL, 0, flags, OF_CLI_FIELD(type, member),   \
                        0, 0, hook, NULL, vname, help                         \
        }
#define OF_CLI_GROUP_AT(type, member, table)                                  \
        {                                                                     \
                OF_CLI_GROUP, NULL, 0, 0, OF_CLI_FIELD(type, member), 0, 0,   \
                        NULL, table, NULL, NULL                               \
        }
#define OF_CLI_INCLUDE(table)                                                 \
        {                                                                     \
                OF_CLI_GROUP, NULL, 0, 0, 0, 0, 0, 0, NULL, table, NULL, NULL \
        }
#define OF_CLI_OPT_END                                                        \
        {                                                                     \
                OF_CLI_END, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL    \
        }

/* A macro's value as a string literal, for help texts. */
#define OF_CLI_QUOTE(x)  OF_CLI_QUOTE_(x)
#define OF_CLI_QUOTE_(x) #x

/* Options and operands at most in one command, groups included. */
#define OF_CLI_MAX_OPTS 40

/* A command: its name (in messages: "project", "outbox prune"), its
 * table and the texts of its --help. -h/--help is added to every table. */
typedef struct of_cli_cmd {
        const char *name;
        const of_cli_spec *specs;
        const void *defaults; /* the struct the table fills, as the
                               * command initialises it: --help prints
                               * the defaults from it */
        const char *about;    /* after the usage line: what it does
                               * (lines under 80 columns); may be NULL */
        const char *notes;    /* after the options; may be NULL */
} of_cli_cmd;

/* Fill the struct at base from argv (argv[0] is the command) as cmd's
 * table says: options in any order among the operands (getopt_long's
 * rules), then the operands, then the required ones. Returns 0 when the
 * command goes on; 1 when it is done, with *out_exit its exit code:
 * OF_EXIT_USAGE after one line on stderr ("orderflow CMD: --batch-max:
 * not an integer from 1 to 1000000 (see 'orderflow CMD --help')"), or
 * after --help, of_cli_help()'s. Strings stored borrow from argv. */
int of_cli_parse(int *out_exit, const of_cli_cmd *cmd, void *base, int argc,
                 char **argv);

/* cmd's --help on f: the usage line from the table, the about text, one
 * entry per option (its help, range and default, read from
 * cmd->defaults), the notes. */
void of_cli_help_print(FILE *f, const of_cli_cmd *cmd);

/* of_cli_help_print() on stdout, then of_cli_close_stdout(). */
int of_cli_help(const of_cli_cmd *cmd);

/* ---- The Kafka-facing commands ---- */

#define OF_CLI_MAX_PROPS 64 /* -X properties; -F files have no limit */

/* What -b/-t/-F/-X fill. */
typedef struct of_cli_kafka {
        of_kafka_opts ko;
        const char *props[OF_CLI_MAX_PROPS]; /* ko.props points here */
        int brokers_given; /* -b seen: a -F file's bootstrap.servers
                            * does not replace it */
} of_cli_kafka;

#define OF_CLI_KAFKA_INIT                                                     \
        {                                                                     \
                .ko = OF_KAFKA_OPTS_INIT                                      \
        }

/* --metrics-port and --metrics-addr, alike in project and relay. */
typedef struct of_cli_metrics {
        int port;         /* -1: no metrics; 0: any free port */
        const char *addr; /* numeric address; NULL: OF_CLI_METRICS_ADDR */
} of_cli_metrics;

#define OF_CLI_METRICS_INIT                                                   \
        {                                                                     \
                .port = -1                                                    \
        }
#define OF_CLI_METRICS_ADDR "0.0.0.0"

/* -v and -q, for every command that logs. */
extern const of_cli_spec of_cli_log_specs[];
/* -b, -t, -F, -X on an of_cli_kafka, then -v and -q. -F reads and checks
 * the file at once; its properties live until the process exits; its
 * errors are "orderflow CMD: -F FILE: why" or "-F FILE:LINE: why". */
extern const of_cli_spec of_cli_kafka_specs[];
/* --metrics-port, --metrics-addr on an of_cli_metrics. */
extern const of_cli_spec of_cli_metrics_specs[];

/* After parsing, before running: cm's options (cm may be NULL) and the
 * -F/-X properties of ck checked. 0, or OF_EXIT_USAGE (printed). */
int of_cli_kafka_check(const of_cli_kafka *ck, const of_cli_metrics *cm,
                       const char *cmd);

/* Start serving metrics as cm says into *out (NULL when cm has no port),
 * logging the address. OF_EXIT_FAILURE (printed) when it cannot listen,
 * else 0. */
/* What `orderflow --version` prints: orderflow's version and git revision,
 * librdkafka's and SQLite's versions, one a line. */
void of_cli_print_version(FILE *out);

int of_cli_metrics_start(of_metrics **out, const of_cli_metrics *cm,
                         const char *cmd);

/* Set by SIGINT, SIGTERM and SIGHUP once of_cli_catch_stop() has run. */
extern volatile sig_atomic_t of_cli_stop;

/* Make SIGINT, SIGTERM and SIGHUP set of_cli_stop instead of killing the
 * process: 0, or OF_EXIT_FAILURE after saying why. */
int of_cli_catch_stop(const char *cmd);

/* The count of the test hook named by environment variable env
 * (ORDERFLOW_TEST_*), 0 when unset. */
long of_cli_test_hook(const char *env);

/* A test hook for of_projector_opts.after_db_commit and
 * of_relay_opts.after_produce: opaque points to a long count (from
 * of_cli_test_hook), and the call that brings it to 0 ends the process
 * with _exit(99), as a crash would. */
int of_cli_crash_hook(void *opaque);

/* ---- Messages, numbers, stdout ---- */

/* Print "orderflow CMD: MESSAGE (see 'orderflow CMD --help')" on stderr and
 * return OF_EXIT_USAGE. */
int of_cli_usage(const char *cmd, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* A command's last word on stderr: "orderflow CMD: MESSAGE", one line,
 * with the journal's priority prefix (of_log_journal_prefix) of an error
 * or, for of_cli_note, of an info line (a clean stop that says why). */
void of_cli_error(const char *cmd, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void of_cli_note(const char *cmd, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Parse a whole decimal integer in [min, max]: 0, or OF_ERROR. */
int of_cli_parse_int(int64_t *out, const char *s, int64_t min, int64_t max);

/* The longest duration: 10 years. It keeps a cutoff computed from it
 * after 1970, which the time formatting needs (negative ms are not
 * handled). */
#define OF_CLI_DURATION_MAX_S (3650LL * 86400)

/* Parse a duration: a whole number with a unit, s (seconds), m (minutes),
 * h (hours) or d (days), e.g. 30s, 15m, 12h, 7d; at least 1s, at most
 * OF_CLI_DURATION_MAX_S. A bare number is refused (seconds? minutes?),
 * and so is 0. *out_ms gets it in ms: 0, or OF_ERROR. */
int of_cli_parse_duration(int64_t *out_ms, const char *s);

/* Flush and close stdout; OF_EXIT_FAILURE (with a message) when writing
 * failed (closed pipe, full disk), else OF_EXIT_OK. */
int of_cli_close_stdout(const char *cmd);

#endif
