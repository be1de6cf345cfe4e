/* Shared command-line helpers: usage errors, -b/-t/-X, numbers, stdout.
 * Exit codes are chosen by the cmd_*.c files that call these. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orderflow/cli.h"
#include "orderflow/error.h"
#include "orderflow/log.h"

void of_cli_kafka_init(of_cli_kafka *ck)
{
        memset(ck, 0, sizeof(*ck));
        ck->ko.brokers = OF_DEFAULT_BROKERS;
        ck->ko.topic = OF_DEFAULT_TOPIC;
        ck->ko.props = ck->props;
}

int of_cli_usage(const char *cmd, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "orderflow %s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see 'orderflow %s --help')\n", cmd);
        return OF_EXIT_USAGE;
}

int of_cli_bad_option(const char *cmd, int opt, char **argv)
{
        const char *arg = argv[optind - 1];

        if (opt == ':')
                return of_cli_usage(cmd, "%s: missing argument", arg);
        if (optopt)
                return of_cli_usage(cmd, "-%c: unknown option", optopt);
        return of_cli_usage(cmd, "%s: unknown option", arg);
}

int of_cli_kafka_opt(of_cli_kafka *ck, const char *cmd, int opt,
                     const char *arg)
{
        switch (opt) {
        case 'b':
                if (!*arg)
                        return of_cli_usage(cmd, "--brokers: empty list");
                ck->ko.brokers = arg;
                return 0;
        case 't':
                if (!*arg)
                        return of_cli_usage(cmd, "--topic: empty name");
                ck->ko.topic = arg;
                return 0;
        case 'X':
                if (!strchr(arg, '=') || arg[0] == '=')
                        return of_cli_usage(cmd, "-X %s: expected key=value",
                                            arg);
                if (ck->ko.props_cnt == OF_CLI_MAX_PROPS)
                        return of_cli_usage(cmd, "-X: more than %d properties",
                                            OF_CLI_MAX_PROPS);
                ck->props[ck->ko.props_cnt++] = arg;
                return 0;
        default:
                return 1;
        }
}

int of_cli_metrics_opt(of_cli_metrics *cm, const char *cmd, int opt,
                       const char *arg)
{
        unsigned char addr[sizeof(struct in6_addr)];
        int64_t n;

        switch (opt) {
        case 'P':
                if (of_cli_parse_int(&n, arg, 0, 65535))
                        return of_cli_usage(cmd, "--metrics-port: not an "
                                                 "integer from 0 to 65535");
                cm->port = (int)n;
                return 0;
        case 'A':
                if (inet_pton(AF_INET, arg, addr) != 1 &&
                    inet_pton(AF_INET6, arg, addr) != 1)
                        return of_cli_usage(cmd, "--metrics-addr %s: not a "
                                                 "numeric IPv4 or IPv6 "
                                                 "address", arg);
                cm->addr = arg;
                return 0;
        default:
                return 1;
        }
}

int of_cli_metrics_check(const of_cli_metrics *cm, const char *cmd)
{
        if (cm->addr && cm->port < 0)
                return of_cli_usage(cmd, "--metrics-addr: needs "
                                         "--metrics-port");
        return 0;
}

int of_cli_metrics_start(of_metrics **out, const of_cli_metrics *cm,
                         const char *cmd)
{
        const char *addr = cm->addr ? cm->addr : "0.0.0.0";
        char errstr[512];

        *out = NULL;
        if (cm->port < 0)
                return 0;
        if (of_metrics_new(out, errstr, sizeof(errstr)) ||
            of_metrics_serve(*out, addr, cm->port, errstr, sizeof(errstr))) {
                fprintf(stderr, "orderflow %s: metrics: %s\n", cmd, errstr);
                of_metrics_free(*out);
                *out = NULL;
                return OF_EXIT_FAILURE;
        }
        of_log(OF_LOG_INFO, "metrics: serving http://%s%s%s:%d/metrics",
               strchr(addr, ':') ? "[" : "", addr,
               strchr(addr, ':') ? "]" : "", of_metrics_port(*out));
        return 0;
}

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
        } units[] = {{"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
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
                if (of_cli_parse_int(&v, digits, 0,
                                     OF_CLI_DURATION_MAX_S /
                                             units[i].seconds))
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

int of_cli_catch_stop(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGINT, &sa, NULL) != 0 ||
            sigaction(SIGTERM, &sa, NULL) != 0)
                return OF_ERROR;
        return 0;
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
                fprintf(stderr, "orderflow %s: writing output: %s\n", cmd,
                        strerror(errno ? errno : EIO));
                return OF_EXIT_FAILURE;
        }
        return OF_EXIT_OK;
}
