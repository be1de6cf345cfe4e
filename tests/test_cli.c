/* The option table's parser and printers (cli_opt.c) and the shared groups
 * (cli.c): tables of command lines with the exit code and the one stderr
 * line each must give, the fields a good line fills, --help from a table,
 * and the same wording for the same mistake in two commands. */
#include "testutil.h"

#include <sys/wait.h>

#include "orderflow/cli.h"
#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/log.h"

/* What the test command's table fills. */
typedef struct t_opts {
        const char *db;
        const char *name;
        int flag;
        int small;        /* an int field */
        int64_t big;      /* an int64_t field */
        size_t count;     /* a size_t field */
        int64_t ttl_ms;   /* a duration */
        const char *word; /* an operand */
        of_cli_kafka kafka;
        of_cli_metrics metrics;
} t_opts;

static const t_opts t_defaults = {
        .small = 50,
        .big = -1, /* out of range: no default shown */
        .count = 500,
        .ttl_ms = 7 * 86400000LL,
        .kafka = OF_CLI_KAFKA_INIT,
        .metrics = OF_CLI_METRICS_INIT,
};

static const of_cli_spec t_specs[] = {
        OF_CLI_OPT_STRING(t_opts, db, "db", 0, OF_CLI_REQUIRED, 1, 0, NULL,
                          "PATH", "the database"),
        OF_CLI_OPT_STRING(t_opts, name, "name", 'n', 0, 0, 8, NULL, "NAME",
                          "a short name"),
        OF_CLI_OPT_FLAG(t_opts, flag, "flag", 'f', "a flag"),
        OF_CLI_OPT_INT(t_opts, small, "small", 0, 0, 1, 100, "N",
                       "a small number"),
        OF_CLI_OPT_INT(t_opts, big, "big", 0, 0, 0, OF_AMOUNT_MAX, "N",
                       "a big number"),
        OF_CLI_OPT_INT(t_opts, count, "count", 'c', 0, 1, 1000000, "N",
                       "a count"),
        OF_CLI_OPT_DURATION(t_opts, ttl_ms, "ttl", 0, 0, "DURATION",
                            "how long"),
        OF_CLI_OPERAND(t_opts, word, 0, NULL, "WORD", "a word"),
        OF_CLI_GROUP_AT(t_opts, kafka, of_cli_kafka_specs),
        OF_CLI_GROUP_AT(t_opts, metrics, of_cli_metrics_specs),
        OF_CLI_OPT_END,
};

static const of_cli_cmd t_cmd = {"t", t_specs, &t_defaults, "About t.",
                                 "Notes on t."};

/* Another command sharing some kinds and ranges, for the wording. */
typedef struct u_opts {
        int64_t small;
        int64_t ttl_ms;
        const char *path;
        of_cli_kafka kafka;
} u_opts;

static const u_opts u_defaults = {.kafka = OF_CLI_KAFKA_INIT};

static const of_cli_spec u_specs[] = {
        OF_CLI_GROUP_AT(u_opts, kafka, of_cli_kafka_specs),
        OF_CLI_OPT_DURATION(u_opts, ttl_ms, "ttl", 0, OF_CLI_REQUIRED,
                            "DURATION", "how long"),
        OF_CLI_OPT_INT(u_opts, small, "small", 's', 0, 1, 100, "N",
                       "a small number"),
        OF_CLI_OPT_STRING(u_opts, path, "path", 0, 0, 1, 0, NULL, "PATH",
                          "a path"),
        OF_CLI_OPT_END,
};

static const of_cli_cmd u_cmd = {"outbox u", u_specs, &u_defaults, NULL, NULL};

#define MAX_ARGS 160

/* stderr goes to a temporary file from capture_start() to capture_end(),
 * which puts what was written in err. */
static FILE *captured;
static int saved_stderr = -1;

static void capture_start(void)
{
        captured = tmpfile();
        assert_non_null(captured);
        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        assert_true(saved_stderr >= 0);
        assert_true(dup2(fileno(captured), STDERR_FILENO) >= 0);
}

static void capture_end(char *err, size_t err_size)
{
        size_t n;

        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        rewind(captured);
        n = fread(err, 1, err_size - 1, captured);
        err[n] = '\0';
        fclose(captured);
}

/* Run of_cli_parse() on args (NULL-terminated, args[0] the command) into
 * base; the exit code it asks for in *exit_code (-1: go on) and what it
 * wrote on stderr in err. */
static void run(const of_cli_cmd *cmd, void *base, const char *const *args,
                int *exit_code, char *err, size_t err_size)
{
        char *argv[MAX_ARGS + 1];
        int argc, rc;

        for (argc = 0; args[argc]; argc++) {
                assert_true(argc < MAX_ARGS);
                argv[argc] = (char *)args[argc];
        }
        argv[argc] = NULL;
        capture_start();
        *exit_code = of_cli_parse(&rc, cmd, base, argc, argv) ? rc : -1;
        capture_end(err, err_size);
}

/* The command goes on, nothing on stderr. */
static void expect_go(const of_cli_cmd *cmd, void *base,
                      const char *const *args)
{
        char err[1024];
        int code;

        run(cmd, base, args, &code, err, sizeof(err));
        if (code != -1 || err[0])
                fail_msg("%s ...: exit %d, stderr '%s'", args[0], code, err);
}

/* Exit 2 and on stderr just "orderflow CMD: why (see 'orderflow CMD
 * --help')". */
static void expect_usage(const of_cli_cmd *cmd, void *base,
                         const char *const *args, const char *why)
{
        char err[1024], want[1024];
        int code;

        run(cmd, base, args, &code, err, sizeof(err));
        snprintf(want, sizeof(want),
                 "orderflow %s: %s (see 'orderflow %s --help')\n", cmd->name,
                 why, cmd->name);
        if (code != OF_EXIT_USAGE || strcmp(err, want))
                fail_msg("%s ...: exit %d, stderr '%s', want '%s'", args[0],
                         code, err, want);
}

/* ---- One stderr line, exit 2 ---- */

struct bad_case {
        const char *args[8]; /* after "t --db x.db" unless no_db */
        int no_db;
        const char *want; /* between "orderflow t: " and " (see ...)" */
};

static const struct bad_case bad_cases[] = {
        {{NULL}, 1, "--db: required"},
        {{"--db", NULL}, 1, "--db: missing argument"},
        {{"--db", "", NULL}, 1, "--db: empty path"},
        {{"--db=", NULL}, 1, "--db: empty path"},
        {{"-Z", NULL}, 0, "-Z: unknown option"},
        {{"-fZ", NULL}, 0, "-Z: unknown option"},
        {{"--bogus", NULL}, 0, "--bogus: unknown option"},
        {{"--bogus=1", NULL}, 0, "--bogus=1: unknown option"},
        {{"--flag=1", NULL}, 0, "--flag=1: unknown option"},
        {{"--small", NULL}, 0, "--small: missing argument"},
        {{"-c", NULL}, 0, "-c: missing argument"},
        {{"--small", "0", NULL}, 0, "--small: not an integer from 1 to 100"},
        {{"--small", "101", NULL}, 0, "--small: not an integer from 1 to 100"},
        {{"--small=1.5", NULL}, 0, "--small: not an integer from 1 to 100"},
        {{"--small", "12abc", NULL},
         0,
         "--small: not an integer from 1 to 100"},
        {{"--small", "", NULL}, 0, "--small: not an integer from 1 to 100"},
        {{"--big", "9007199254740992", NULL},
         0,
         "--big: not an integer from 0 to 9007199254740991"},
        {{"--big", "-1", NULL},
         0,
         "--big: not an integer from 0 to 9007199254740991"},
        {{"-c", "x", NULL}, 0, "--count: not an integer from 1 to 1000000"},
        {{"--count", "99999999999999999999", NULL},
         0,
         "--count: not an integer from 1 to 1000000"},
        {{"--ttl", "10", NULL},
         0,
         "--ttl: 10: not a duration like 90m, 36h or 7d (at least 1s)"},
        {{"--ttl", "0s", NULL},
         0,
         "--ttl: 0s: not a duration like 90m, 36h or 7d (at least 1s)"},
        {{"--ttl", "3651d", NULL},
         0,
         "--ttl: 3651d: not a duration like 90m, 36h or 7d (at least 1s)"},
        {{"--ttl", "", NULL},
         0,
         "--ttl: : not a duration like 90m, 36h or 7d (at least 1s)"},
        {{"--name", "123456789", NULL}, 0, "--name: longer than 8 bytes"},
        {{"w1", "w2", NULL}, 0, "w2: unexpected argument"},
        {{"-b", "", NULL}, 0, "--brokers: empty list"},
        {{"--topic=", NULL}, 0, "--topic: empty name"},
        {{"-X", "novalue", NULL}, 0, "-X novalue: expected key=value"},
        {{"-X=secret", NULL}, 0, "-X : expected key=value"},
        {{"-X", NULL}, 0, "-X: missing argument"},
        {{"--metrics-port", "65536", NULL},
         0,
         "--metrics-port: not an integer from 0 to 65535"},
        {{"--metrics-addr", "localhost", NULL},
         0,
         "--metrics-addr localhost: not a numeric IPv4 or IPv6 address"},
};

static void test_cli_bad_lines_exit_2_with_one_line(void **state)
{
        const char *args[16];
        size_t i, j, k;

        (void)state;
        for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
                t_opts o = t_defaults;

                k = 0;
                args[k++] = "t";
                if (!bad_cases[i].no_db) {
                        args[k++] = "--db";
                        args[k++] = "x.db";
                }
                for (j = 0; bad_cases[i].args[j]; j++)
                        args[k++] = bad_cases[i].args[j];
                args[k] = NULL;
                expect_usage(&t_cmd, &o, args, bad_cases[i].want);
        }
}

static void test_cli_fills_every_kind_from_a_good_line(void **state)
{
        static const char *const args[] = {"t",
                                           "word-1",
                                           "--db=x.db",
                                           "--name",
                                           "ab",
                                           "-f",
                                           "--small",
                                           "7",
                                           "--big",
                                           "9007199254740991",
                                           "-c1000000",
                                           "--ttl",
                                           "90m",
                                           "-X",
                                           "a=1",
                                           "-Xb=2",
                                           "-b",
                                           "h:1",
                                           "--topic",
                                           "top",
                                           "--metrics-port",
                                           "0",
                                           "--metrics-addr",
                                           "::1",
                                           NULL};
        t_opts o = t_defaults;

        (void)state;
        expect_go(&t_cmd, &o, args);
        assert_string_equal(o.db, "x.db");
        assert_string_equal(o.name, "ab");
        assert_int_equal(o.flag, 1);
        assert_int_equal(o.small, 7);
        assert_true(o.big == OF_AMOUNT_MAX);
        assert_true(o.count == 1000000);
        assert_true(o.ttl_ms == 90 * 60000LL);
        assert_string_equal(o.word, "word-1");
        assert_int_equal(o.kafka.ko.props_cnt, 2);
        assert_string_equal(o.kafka.ko.props[0], "a=1");
        assert_string_equal(o.kafka.ko.props[1], "b=2");
        assert_string_equal(o.kafka.ko.brokers, "h:1");
        assert_int_equal(o.kafka.brokers_given, 1);
        assert_string_equal(o.kafka.ko.topic, "top");
        assert_int_equal(o.metrics.port, 0);
        assert_string_equal(o.metrics.addr, "::1");
}

static void test_cli_defaults_stay_when_not_given(void **state)
{
        static const char *const args[] = {"t", "--db", "x.db", NULL};
        t_opts o = t_defaults;

        (void)state;
        expect_go(&t_cmd, &o, args);
        assert_null(o.name);
        assert_null(o.word);
        assert_int_equal(o.flag, 0);
        assert_int_equal(o.small, 50);
        assert_true(o.big == -1);
        assert_true(o.count == 500);
        assert_string_equal(o.kafka.ko.brokers, OF_DEFAULT_BROKERS);
        assert_string_equal(o.kafka.ko.topic, OF_DEFAULT_TOPIC);
        assert_int_equal(o.kafka.ko.props_cnt, 0);
        assert_int_equal(o.metrics.port, -1);
}

/* The last one given wins; getopt_long takes a unique prefix. */
static void test_cli_later_value_wins_and_prefixes_work(void **state)
{
        static const char *const args[] = {
                "t", "--db", "a", "--sm", "3", "--db", "b", "--small=4", NULL};
        t_opts o = t_defaults;

        (void)state;
        expect_go(&t_cmd, &o, args);
        assert_string_equal(o.db, "b");
        assert_int_equal(o.small, 4);
}

static void test_cli_x_is_repeatable_up_to_its_limit(void **state)
{
        const char *args[2 * OF_CLI_MAX_PROPS + 8];
        char props[OF_CLI_MAX_PROPS + 1][16];
        size_t k = 0, i;
        t_opts o = t_defaults;

        (void)state;
        args[k++] = "t";
        args[k++] = "--db=x";
        for (i = 0; i < OF_CLI_MAX_PROPS; i++) {
                snprintf(props[i], sizeof(props[i]), "k%zu=%zu", i, i);
                args[k++] = "-X";
                args[k++] = props[i];
        }
        args[k] = NULL;
        expect_go(&t_cmd, &o, args);
        assert_int_equal(o.kafka.ko.props_cnt, OF_CLI_MAX_PROPS);
        assert_string_equal(o.kafka.ko.props[OF_CLI_MAX_PROPS - 1],
                            props[OF_CLI_MAX_PROPS - 1]);

        o = t_defaults;
        args[k++] = "-X";
        args[k++] = "one=more";
        args[k] = NULL;
        expect_usage(&t_cmd, &o, args,
                     "-X: more than 64 properties (put "
                     "them in a -F file)");
}

/* A -F file that is not there: the file's error, exit 2, no pointer to
 * --help (the file, not the command line, is wrong). */
static void test_cli_bad_config_file_names_it(void **state)
{
        static const char *const args[] = {
                "t", "--db", "x", "-F", "/nonexistent/k.properties", NULL};
        t_opts o = t_defaults;
        char err[512];
        int code;

        (void)state;
        run(&t_cmd, &o, args, &code, err, sizeof(err));
        assert_int_equal(code, OF_EXIT_USAGE);
        assert_string_equal(err, "orderflow t: -F /nonexistent/k.properties: "
                                 "No such file or directory\n");
}

/* The same mistake gives the same words in two commands: the message
 * comes from the option's kind and range, not from the command. */
static void test_cli_same_mistake_same_words_in_every_command(void **state)
{
        static const char *const tails[][3] = {
                {"--small", "0", NULL},  {"--small", "abc", NULL},
                {"--ttl", "5", NULL},    {"--ttl", "1.5h", NULL},
                {"-X", "k", NULL},       {"-b", "", NULL},
                {"--bogus", NULL, NULL}, {"--small", NULL, NULL},
                {"-t", "", NULL},
        };
        char err_t[512], err_u[512], want_u[600];
        const char *args[8];
        size_t i, j, k;
        int code_t, code_u;

        (void)state;
        for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
                t_opts ot = t_defaults;
                u_opts ou = u_defaults;

                k = 0;
                args[k++] = "t";
                args[k++] = "--db=x";
                for (j = 0; j < 3 && tails[i][j]; j++)
                        args[k++] = tails[i][j];
                args[k] = NULL;
                run(&t_cmd, &ot, args, &code_t, err_t, sizeof(err_t));
                args[0] = "outbox u";
                args[1] = "--ttl=1d";
                run(&u_cmd, &ou, args, &code_u, err_u, sizeof(err_u));
                assert_int_equal(code_t, OF_EXIT_USAGE);
                assert_int_equal(code_u, OF_EXIT_USAGE);
                /* err_t with t's name replaced by u's */
                assert_true(!strncmp(err_t, "orderflow t: ", 13));
                snprintf(want_u, sizeof(want_u),
                         "orderflow outbox u: %.*s"
                         "(see 'orderflow outbox u --help')\n",
                         (int)(strstr(err_t, "(see") - err_t - 13),
                         err_t + 13);
                if (strcmp(err_u, want_u))
                        fail_msg("t says '%s', u says '%s'", err_t, err_u);
        }
}

static void test_cli_required_ones_are_named_in_table_order(void **state)
{
        static const char *const args[] = {"outbox u", NULL};
        u_opts o = u_defaults;

        (void)state;
        expect_usage(&u_cmd, &o, args, "--ttl: required");
}

/* A required operand that is absent: "missing" and its help. */
static void test_cli_missing_operand_says_what_is_missing(void **state)
{
        static const of_cli_spec specs[] = {
                OF_CLI_OPERAND(t_opts, word, OF_CLI_REQUIRED, NULL, "WORD",
                               "what to say (hello or bye)"),
                OF_CLI_OPT_END,
        };
        static const of_cli_cmd cmd = {"say", specs, &t_defaults, NULL, NULL};
        static const char *const args[] = {"say", NULL};
        t_opts o = t_defaults;

        (void)state;
        expect_usage(&cmd, &o, args, "missing what to say (hello or bye)");
}

static void test_cli_v_and_q_move_the_log_level(void **state)
{
        static const char *const v2[] = {"t", "--db=x", "-vv", NULL};
        static const char *const q[] = {"t", "--db=x", "--quiet", NULL};
        int saved = of_log_verbosity;
        t_opts o = t_defaults;

        (void)state;
        of_log_verbosity = OF_LOG_WARN;
        expect_go(&t_cmd, &o, v2);
        assert_int_equal(of_log_verbosity, OF_LOG_DEBUG);
        expect_go(&t_cmd, &o, q);
        assert_int_equal(of_log_verbosity, OF_LOG_ERROR);
        of_log_verbosity = saved;
}

/* ---- --help ---- */

static char *help_text(const of_cli_cmd *cmd)
{
        FILE *tmp = tmpfile();
        char *text = calloc(1, 16384);
        size_t n;

        assert_non_null(tmp);
        assert_non_null(text);
        of_cli_help_print(tmp, cmd);
        rewind(tmp);
        n = fread(text, 1, 16383, tmp);
        text[n] = '\0';
        fclose(tmp);
        return text;
}

/* Whether some line of text holds every one of the words. */
static int line_has(const char *text, const char *a, const char *b)
{
        const char *line, *end;
        char buf[400];

        for (line = text; *line; line = *end ? end + 1 : end) {
                end = line + strcspn(line, "\n");
                snprintf(buf, sizeof(buf), "%.*s", (int)(end - line), line);
                if (strstr(buf, a) && (!b || strstr(buf, b)))
                        return 1;
        }
        return 0;
}

static void test_cli_help_lists_every_option_with_default(void **state)
{
        static const char usage[] = "usage: orderflow t --db PATH [-n NAME] "
                                    "[-f] [--small N]";
        char *text = help_text(&t_cmd);
        const char *line, *end;

        (void)state;
        assert_true(!strncmp(text, usage, strlen(usage)));
        assert_non_null(strstr(text, "[WORD]"));
        assert_non_null(strstr(text, "[-X key=value]..."));
        assert_non_null(strstr(text, "\nAbout t.\n\noptions:\n"));
        assert_true(line_has(text, "      --db PATH", "(required)"));
        assert_true(line_has(text, "  -n, --name NAME", "0 to 8 bytes"));
        assert_true(line_has(text, "  -f, --flag", "a flag"));
        assert_true(line_has(text, "--small N", "(1 to 100; default 50)"));
        assert_true(line_has(text, "--big N", "(0 to 9007199254740991)"));
        assert_true(line_has(text, "  -c, --count N", "default 500)"));
        assert_true(
                line_has(text, "--ttl DURATION", "(1s to 3650d; default 7d)"));
        assert_true(line_has(text, "-b, --brokers LIST", NULL));
        assert_non_null(strstr(text, OF_DEFAULT_BROKERS ")"));
        assert_true(line_has(text, "-t, --topic NAME",
                             "(default " OF_DEFAULT_TOPIC ")"));
        assert_true(line_has(text, "-F, --config FILE", NULL));
        assert_true(line_has(text, "  -X key=value", NULL));
        assert_true(line_has(text, "-v, --verbose", NULL));
        assert_true(line_has(text, "-q, --quiet", NULL));
        assert_true(line_has(text, "--metrics-port N", NULL));
        assert_true(line_has(text, "--metrics-addr ADDR", NULL));
        assert_true(line_has(text, "  -h, --help", "print this help"));
        assert_non_null(strstr(text, "\n\nNotes on t.\n"));
        for (line = text; *line; line = end + 1) {
                end = line + strcspn(line, "\n");
                if ((size_t)(end - line) >= 80)
                        fail_msg("over 79 columns: %.*s", (int)(end - line),
                                 line);
        }
        free(text);
}

/* Every spec of a table (its groups' too) shows in --help. */
static void check_listed(const char *text, const of_cli_spec *specs)
{
        char key[80];

        for (; specs->kind != OF_CLI_END; specs++) {
                if (specs->kind == OF_CLI_GROUP) {
                        check_listed(text, specs->group);
                        continue;
                }
                if (specs->kind == OF_CLI_OPERAND)
                        snprintf(key, sizeof(key), "%s", specs->value_name);
                else if (specs->name)
                        snprintf(key, sizeof(key), "--%s", specs->name);
                else
                        snprintf(key, sizeof(key), "-%c", specs->alias);
                if (!strstr(text, key))
                        fail_msg("%s is not in --help", key);
        }
}

static void test_cli_help_lists_every_spec_of_the_tables(void **state)
{
        char *text = help_text(&t_cmd);

        (void)state;
        check_listed(text, t_specs);
        free(text);
        text = help_text(&u_cmd);
        check_listed(text, u_specs);
        free(text);
}

/* --help prints the help on stdout, and the command stops with exit 0. */
static void test_cli_help_option_prints_and_stops(void **state)
{
        int fds[2], status;
        char out[16384];
        ssize_t n, len = 0;
        pid_t pid;

        (void)state;
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                static char *argv[] = {"t",      "--small", "9",
                                       "--help", "--bogus", NULL};
                t_opts o = t_defaults;
                int rc;

                dup2(fds[1], STDOUT_FILENO);
                close(fds[0]);
                if (!of_cli_parse(&rc, &t_cmd, &o, 5, argv))
                        _exit(42);
                _exit(rc);
        }
        close(fds[1]);
        while ((n = read(fds[0], out + len, sizeof(out) - 1 - (size_t)len)) >
               0)
                len += n;
        out[len] = '\0';
        close(fds[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), OF_EXIT_OK);
        assert_true(!strncmp(out, "usage: orderflow t ", 19));
        /* The defaults, not what came before --help. */
        assert_true(line_has(out, "--small N", "default 50"));
}

/* ---- The Kafka-facing start ---- */

static void test_cli_kafka_check_wants_a_port_for_an_address(void **state)
{
        of_cli_kafka ck = OF_CLI_KAFKA_INIT;
        of_cli_metrics cm = {.port = -1, .addr = "127.0.0.1"};
        char err[512];
        int rc;

        (void)state;
        capture_start();
        rc = of_cli_kafka_check(&ck, &cm, "relay");
        capture_end(err, sizeof(err));
        assert_int_equal(rc, OF_EXIT_USAGE);
        assert_string_equal(err, "orderflow relay: --metrics-addr: needs "
                                 "--metrics-port (see 'orderflow relay "
                                 "--help')\n");
        cm.port = 0;
        assert_int_equal(of_cli_kafka_check(&ck, &cm, "relay"), 0);
        assert_int_equal(of_cli_kafka_check(&ck, NULL, "status"), 0);
}

static void test_cli_test_hook_reads_its_variable(void **state)
{
        (void)state;
        unsetenv("ORDERFLOW_TEST_CLI_HOOK");
        assert_int_equal(of_cli_test_hook("ORDERFLOW_TEST_CLI_HOOK"), 0);
        setenv("ORDERFLOW_TEST_CLI_HOOK", "3", 1);
        assert_int_equal(of_cli_test_hook("ORDERFLOW_TEST_CLI_HOOK"), 3);
        unsetenv("ORDERFLOW_TEST_CLI_HOOK");
}

/* ---- Numbers ---- */

struct duration_case {
        const char *in;
        int64_t ms; /* -1: refused */
};

static void test_cli_parse_duration_table(void **state)
{
        static const struct duration_case cases[] = {
                {"30s", 30000},
                {"15m", 900000},
                {"12h", 43200000},
                {"7d", 604800000},
                {"1s", 1000},
                {"3650d", 3650LL * 86400000},
                {"315360000s", 3650LL * 86400000},
                {"3651d", -1},
                {"315360001s", -1},
                {"0s", -1},
                {"0d", -1},
                {"10", -1},
                {"s", -1},
                {"", -1},
                {"1.5h", -1},
                {"7D", -1},
                {"-5s", -1},
                {"+5s", -1},
                {" 5s", -1},
                {"5s ", -1},
                {"5ss", -1},
                {"99999999999999999999d", -1},
        };
        int64_t ms;
        size_t i;
        int rc;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                ms = -1;
                rc = of_cli_parse_duration(&ms, cases[i].in);
                if (cases[i].ms < 0 ? rc == 0 : rc != 0 || ms != cases[i].ms)
                        fail_msg("'%s': rc %d, %lld ms", cases[i].in, rc,
                                 (long long)ms);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cli_bad_lines_exit_2_with_one_line),
                cmocka_unit_test(test_cli_fills_every_kind_from_a_good_line),
                cmocka_unit_test(test_cli_defaults_stay_when_not_given),
                cmocka_unit_test(test_cli_later_value_wins_and_prefixes_work),
                cmocka_unit_test(test_cli_x_is_repeatable_up_to_its_limit),
                cmocka_unit_test(test_cli_bad_config_file_names_it),
                cmocka_unit_test(
                        test_cli_same_mistake_same_words_in_every_command),
                cmocka_unit_test(
                        test_cli_required_ones_are_named_in_table_order),
                cmocka_unit_test(
                        test_cli_missing_operand_says_what_is_missing),
                cmocka_unit_test(test_cli_v_and_q_move_the_log_level),
                cmocka_unit_test(
                        test_cli_help_lists_every_option_with_default),
                cmocka_unit_test(test_cli_help_lists_every_spec_of_the_tables),
                cmocka_unit_test(test_cli_help_option_prints_and_stops),
                cmocka_unit_test(
                        test_cli_kafka_check_wants_a_port_for_an_address),
                cmocka_unit_test(test_cli_test_hook_reads_its_variable),
                cmocka_unit_test(test_cli_parse_duration_table),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
