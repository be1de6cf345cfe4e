/* Helpers for the subcommands (linked into the binary, not the library):
 * usage errors, -b/-t/-F/-X, -v/-q, numbers, and the end of stdout. */
#ifndef ORDERFLOW_CLI_H
#define ORDERFLOW_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdint.h>

#include "orderflow/kafka.h"
#include "orderflow/metrics.h"

#define OF_CLI_MAX_PROPS 64 /* -X properties; -F files have no limit */

/* -v and -q, for every command that logs (the Kafka-facing ones get them
 * through the OF_CLI_KAFKA_* macros). */
#define OF_CLI_LOG_SHORTOPTS "vq"
#define OF_CLI_LOG_LONGOPTS                                                    \
        {"verbose", no_argument, NULL, 'v'},                                   \
                {"quiet", no_argument, NULL, 'q'}
#define OF_CLI_LOG_HELP                                                        \
        "  -v, --verbose        debug lines too, librdkafka's included\n"      \
        "  -q, --quiet          errors only (no info or warning lines)\n"

/* Handle 'v' (one level more: info to debug) or 'q' (errors only). Returns
 * 0 when handled, 1 when opt is neither. */
int of_cli_log_opt(int opt);

/* Every Kafka-facing command parses these alike. */
typedef struct of_cli_kafka {
        of_kafka_opts ko;
        const char *props[OF_CLI_MAX_PROPS];
        int brokers_given; /* -b seen: a -F file's bootstrap.servers
                            * does not replace it */
} of_cli_kafka;

#define OF_CLI_KAFKA_SHORTOPTS "b:t:F:X:" OF_CLI_LOG_SHORTOPTS
#define OF_CLI_KAFKA_LONGOPTS                                                  \
        {"brokers", required_argument, NULL, 'b'},                             \
                {"topic", required_argument, NULL, 't'},                       \
                {"config", required_argument, NULL, 'F'},                      \
                OF_CLI_LOG_LONGOPTS

#define OF_CLI_KAFKA_HELP                                                      \
        "  -b, --brokers LIST   bootstrap brokers (default "                   \
        OF_DEFAULT_BROKERS ",\n"                                              \
        "                       or a -F file's bootstrap.servers)\n"           \
        "  -t, --topic NAME     topic (default " OF_DEFAULT_TOPIC ")\n"        \
        "  -F, --config FILE    librdkafka properties file: key=value lines, " \
        "# comments;\n"                                                       \
        "                       applied before every -X (repeatable)\n"       \
        "  -X key=value         librdkafka property, passed as is "            \
        "(repeatable)\n" OF_CLI_LOG_HELP

void of_cli_kafka_init(of_cli_kafka *ck);

/* Handle option opt ('b', 't', 'F', 'X', 'v' or 'q') with its argument.
 * -F reads and checks the file at once; its properties live until the
 * process exits. Returns 0 when handled, 1 when opt is not one of them,
 * OF_EXIT_USAGE after printing the usage error (for -F:
 * "orderflow CMD: -F FILE: why" or "-F FILE:LINE: why"). */
int of_cli_kafka_opt(of_cli_kafka *ck, const char *cmd, int opt,
                     const char *arg);

/* --metrics-port and --metrics-addr, alike in project and relay. */
typedef struct of_cli_metrics {
        int port;         /* -1: no metrics; 0: any free port */
        const char *addr; /* numeric address; NULL: 0.0.0.0 */
} of_cli_metrics;

#define OF_CLI_METRICS_INIT {.port = -1}
#define OF_CLI_METRICS_LONGOPTS                                                \
        {"metrics-port", required_argument, NULL, 'P'},                        \
                {"metrics-addr", required_argument, NULL, 'A'}

#define OF_CLI_METRICS_HELP                                                    \
        "  --metrics-port N     serve Prometheus metrics on "                  \
        "http://ADDR:N/metrics\n"                                              \
        "                       (0: any free port, logged)\n"                  \
        "  --metrics-addr ADDR  numeric IPv4 or IPv6 address to listen on\n"   \
        "                       (default 0.0.0.0: every IPv4 interface)\n"

/* Handle option opt ('P' or 'A') like of_cli_kafka_opt(). */
int of_cli_metrics_opt(of_cli_metrics *cm, const char *cmd, int opt,
                       const char *arg);

/* After parsing: OF_EXIT_USAGE (printed) for an address without a port,
 * else 0. */
int of_cli_metrics_check(const of_cli_metrics *cm, const char *cmd);

/* Start serving metrics as cm says into *out (NULL when cm has no port),
 * logging the address. OF_EXIT_FAILURE (printed) when it cannot listen,
 * else 0. */
int of_cli_metrics_start(of_metrics **out, const of_cli_metrics *cm,
                         const char *cmd);

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

/* The usage error for getopt_long's return of '?' or ':' (opterr = 0 and a
 * leading ':' in the short options), naming the option. */
int of_cli_bad_option(const char *cmd, int opt, char **argv);

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

/* Set by SIGINT, SIGTERM and SIGHUP once of_cli_catch_stop() has run. */
extern volatile sig_atomic_t of_cli_stop;

/* Make SIGINT, SIGTERM and SIGHUP set of_cli_stop instead of killing the
 * process: 0, or OF_ERROR with errno set. */
int of_cli_catch_stop(void);

/* A test hook for of_projector_opts.after_db_commit and
 * of_relay_opts.after_produce: opaque points to a long count, and the call
 * that brings it to 0 ends the process with _exit(99), as a crash would
 * (the commands arm it from ORDERFLOW_TEST_* environment variables). */
int of_cli_crash_hook(void *opaque);

/* Flush and close stdout; OF_EXIT_FAILURE (with a message) when writing
 * failed (closed pipe, full disk), else OF_EXIT_OK. */
int of_cli_close_stdout(const char *cmd);

#endif
