/* Shared command-line helpers: usage errors; the tables of -v/-q,
 * -b/-t/-F/-X and --metrics-*, and the start of the Kafka-facing commands;
 * numbers, signals, stdout. The option parser is cli_opt.c's. Exit codes
 * are chosen by the cmd_*.c files that call these. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orderflow/cli.h"
#include "orderflow/error.h"
#include "orderflow/kafka.h"
#include "orderflow/log.h"
#include "orderflow/store.h"
#include "orderflow/version.h"

/* "orderflow CMD: MESSAGESUFFIX" on stderr in one write, with the
 * journal's priority prefix for level. */
__attribute__((format(printf, 4, 0))) static void
say(of_log_level level, const char *cmd, const char *suffix, const char *fmt,
    va_list ap)
{
        char msg[2048];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        fprintf(stderr, "%sorderflow %s: %s%s\n", of_log_journal_prefix(level),
                cmd, msg, suffix);
}

int of_cli_usage(const char *cmd, const char *fmt, ...)
{
        char suffix[200];
        va_list ap;

        snprintf(suffix, sizeof(suffix), " (see 'orderflow %s --help')", cmd);
        va_start(ap, fmt);
        say(OF_LOG_ERROR, cmd, suffix, fmt, ap);
        va_end(ap);
        return OF_EXIT_USAGE;
}

void of_cli_error(const char *cmd, const char *fmt, ...)
{
        char auth[300], suffix[320] = "";
        va_list ap;

        /* A broker that refused the credentials shows to the command as
         * one that does not answer: say which. */
        if (of_kafka_auth_error(auth, sizeof(auth)))
                snprintf(suffix, sizeof(suffix), " (%s)", auth);
        va_start(ap, fmt);
        say(OF_LOG_ERROR, cmd, suffix, fmt, ap);
        va_end(ap);
}

void of_cli_note(const char *cmd, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        say(OF_LOG_INFO, cmd, "", fmt, ap);
        va_end(ap);
}

/* ---- -v and -q ---- */

static int on_verbose(void *base, const char *cmd, const char *arg)
{
        (void)base, (void)cmd, (void)arg;
        if (of_log_verbosity < OF_LOG_DEBUG)
                of_log_verbosity++;
        return 0;
}

static int on_quiet(void *base, const char *cmd, const char *arg)
{
        (void)base, (void)cmd, (void)arg;
        of_log_verbosity = OF_LOG_ERROR;
        return 0;
}

const of_cli_spec of_cli_log_specs[] = {
        OF_CLI_OPT_CALL("verbose", 'v', OF_CLI_REPEAT, on_verbose, NULL,
                        "more log lines, a level more each time: info, "
                        "then debug, librdkafka's included"),
        OF_CLI_OPT_CALL("quiet", 'q', 0, on_quiet, NULL,
                        "errors only (no info or warning lines)"),
        OF_CLI_OPT_END,
};

/* ---- -b, -t, -F, -X ---- */

/* Every -F file's properties: one command a process, so they live until
 * it exits (of_kafka_opts.files borrows them; being static keeps them
 * reachable, not leaked, for leak checkers). */
static of_kafka_props files;

static int on_brokers(void *base, const char *cmd, const char *arg)
{
        of_cli_kafka *ck = base;

        (void)cmd, (void)arg;
        ck->brokers_given = 1;
        return 0;
}

/* -F FILE: read it now, so that a bad file is a usage error whatever the
 * command. Its bootstrap.servers stands in for -b unless -b was given. */
static int on_config(void *base, const char *cmd, const char *path)
{
        of_cli_kafka *ck = base;
        char errstr[1024];
        size_t i, first = files.cnt;

        if (of_kafka_props_read(&files, path, errstr, sizeof(errstr))) {
                of_cli_error(cmd, "-F %s", errstr);
                return OF_EXIT_USAGE;
        }
        ck->ko.files = &files;
        for (i = first; i < files.cnt && !ck->brokers_given; i++)
                if (!strncmp(files.items[i], "bootstrap.servers=", 18))
                        ck->ko.brokers = files.items[i] + 18;
                else if (!strncmp(files.items[i], "metadata.broker.list=", 21))
                        ck->ko.brokers = files.items[i] + 21;
        return 0;
}

static int on_property(void *base, const char *cmd, const char *arg)
{
        of_cli_kafka *ck = base;
        size_t n = strcspn(arg, "=");

        /* Name the key only: what follows '=' may be a secret. */
        if (!arg[n] || n == 0)
                return of_cli_usage(cmd, "-X %.*s: expected key=value", (int)n,
                                    arg);
        if (ck->ko.props_cnt == OF_CLI_MAX_PROPS)
                return of_cli_usage(cmd,
                                    "-X: more than %d properties (put "
                                    "them in a -F file)",
                                    OF_CLI_MAX_PROPS);
        ck->ko.props = ck->props;
        ck->props[ck->ko.props_cnt++] = arg;
        return 0;
}

const of_cli_spec of_cli_kafka_specs[] = {
        OF_CLI_OPT_STRING(of_cli_kafka, ko.brokers, "brokers", 'b', 0, 1, 0,
                          on_brokers, "LIST",
                          "bootstrap brokers; without -b, a -F file's "
                          "bootstrap.servers stands in for the default"),
        OF_CLI_OPT_STRING(of_cli_kafka, ko.topic, "topic", 't', 0, 1, 0, NULL,
                          "NAME", "topic"),
        OF_CLI_OPT_CALL("config", 'F', OF_CLI_REPEAT, on_config, "FILE",
                        "librdkafka properties file, applied before every "
                        "-X: key=value lines, and comment lines that start "
                        "with #"),
        OF_CLI_OPT_CALL(NULL, 'X', OF_CLI_REPEAT, on_property, "key=value",
                        "librdkafka property, passed as is"),
        OF_CLI_INCLUDE(of_cli_log_specs),
        OF_CLI_OPT_END,
};

/* ---- --metrics-port, --metrics-addr ---- */

static int on_metrics_addr(void *base, const char *cmd, const char *arg)
{
        unsigned char addr[sizeof(struct in6_addr)];

        (void)base;
        if (inet_pton(AF_INET, arg, addr) != 1 &&
            inet_pton(AF_INET6, arg, addr) != 1)
                return of_cli_usage(cmd,
                                    "--metrics-addr %s: not a numeric "
                                    "IPv4 or IPv6 address",
                                    arg);
        return 0;
}

const of_cli_spec of_cli_metrics_specs[] = {
        OF_CLI_OPT_INT(of_cli_metrics, port, "metrics-port", 0, 0, 0, 65535,
                       "N",
                       "serve Prometheus metrics on "
                       "http://ADDR:N/metrics; 0: any free port, "
                       "logged"),
        OF_CLI_OPT_STRING(of_cli_metrics, addr, "metrics-addr", 0, 0, 0, 0,
                          on_metrics_addr, "ADDR",
                          "numeric IPv4 or IPv6 address to listen on "
                          "(default " OF_CLI_METRICS_ADDR ": every IPv4 "
                          "interface)"),
        OF_CLI_OPT_END,
};

/* ---- The start of a Kafka-facing command ---- */

int of_cli_kafka_check(const of_cli_kafka *ck, const of_cli_metrics *cm,
                       const char *cmd)
{
        char errstr[1024];

        if (cm && cm->addr && cm->port < 0)
                return of_cli_usage(cmd, "--metrics-addr: needs "
                                         "--metrics-port");
        if (of_kafka_check_opts(&ck->ko, errstr, sizeof(errstr)))
                return of_cli_usage(cmd, "%s", errstr);
        return 0;
}

void of_cli_print_version(FILE *out)
{
        fprintf(out, "orderflow %s (git %s)\nlibrdkafka %s\nSQLite %s\n",
                of_version, of_git_revision, of_kafka_version(),
                of_store_sqlite_version());
}

/* orderflow_build_info's labels: what --version prints. */
static const char *build_labels[] = {
        "version",       of_version,   "git_revision",
        of_git_revision, "librdkafka", NULL,
        "sqlite",        NULL,         NULL,
};

int of_cli_metrics_start(of_metrics **out, const of_cli_metrics *cm,
                         const char *cmd)
{
        const char *addr = cm->addr ? cm->addr : OF_CLI_METRICS_ADDR;
        char errstr[512];

        *out = NULL;
        if (cm->port < 0)
                return 0;
        build_labels[5] = of_kafka_version();
        build_labels[7] = of_store_sqlite_version();
        if (of_metrics_new(out, errstr, sizeof(errstr)))
                goto fail;
        of_metrics_declare_info(*out, "orderflow_build_info",
                                "The running build: orderflow's version and "
                                "git revision, librdkafka's and SQLite's "
                                "versions",
                                build_labels);
        if (of_metrics_serve(*out, addr, cm->port, errstr, sizeof(errstr)))
                goto fail;
        of_log(OF_LOG_INFO, "metrics: serving http://%s%s%s:%d/metrics",
               strchr(addr, ':') ? "[" : "", addr,
               strchr(addr, ':') ? "]" : "", of_metrics_port(*out));
        return 0;
fail:
        of_cli_error(cmd, "metrics: %s", errstr);
        of_metrics_free(*out);
        *out = NULL;
        return OF_EXIT_FAILURE;
}

/* ---- Numbers, signals, stdout ---- */

int of_cli_parse_int(int64_t *out, const char *s, int64_t min, int64_t max)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return OF_ERROR;
        *out = v;
        return 0;
}

int of_cli_parse_duration(int64_t *out_ms, const char *s)
{
        static const struct {
                const char *unit;
                int64_t seconds;
        } units[] = {{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
        char digits[24];
        size_t n = strspn(s, "0123456789"), i;
        int64_t v;

        if (n == 0 || n >= sizeof(digits))
                return OF_ERROR;
        memcpy(digits, s, n);
        digits[n] = '\0';
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (strcmp(s + n, units[i].unit))
                        continue;
                if (of_cli_parse_int(&v, digits, 1,
                                     OF_CLI_DURATION_MAX_S / units[i].seconds))
                        return OF_ERROR;
                *out_ms = v * units[i].seconds * 1000;
                return 0;
        }
        return OF_ERROR;
}

volatile sig_atomic_t of_cli_stop;

static void on_stop_signal(int sig)
{
        (void)sig;
        of_cli_stop = 1;
}

int of_cli_catch_stop(const char *cmd)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        /* SIGHUP too: a closed terminal or `kill -HUP` is a clean stop
         * (the batch in hand committed, the group left), not a kill. */
        if (sigaction(SIGINT, &sa, NULL) != 0 ||
            sigaction(SIGTERM, &sa, NULL) != 0 ||
            sigaction(SIGHUP, &sa, NULL) != 0) {
                of_cli_error(cmd, "sigaction: %s", strerror(errno));
                return OF_EXIT_FAILURE;
        }
        return 0;
}

long of_cli_test_hook(const char *env)
{
        const char *count = getenv(env);

        return count ? atol(count) : 0;
}

int of_cli_crash_hook(void *opaque)
{
        long *left = opaque;

        if (--*left == 0)
                _exit(99);
        return 0;
}

int of_cli_close_stdout(const char *cmd)
{
        int bad = ferror(stdout);

        if (fclose(stdout) != 0)
                bad = 1;
        if (bad) {
                of_cli_error(cmd, "writing output: %s",
                             strerror(errno ? errno : EIO));
                return OF_EXIT_FAILURE;
        }
        return OF_EXIT_OK;
}
