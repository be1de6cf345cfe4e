/* orderflow rebuild: replay the topic from its first offset into a new
 * read model beside the live one (the projector's apply path, no consumer
 * group), then swap it into the live file in one transaction, and compare
 * the two. History deleted by retention is refused unless
 * --allow-truncated. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/rebuild.h"
#include "orderflow/timestamp.h"

#define CMD "rebuild"

/* Progress on a terminal is redrawn at most this often. */
#define REDRAW_MS 250

static void print_help(void)
{
        printf("usage: orderflow rebuild --db PATH [-b LIST] [-t NAME] "
               "[-F FILE] [-X key=value]...\n"
               "                         [--allow-truncated] [--force] "
               "[-v|-q]\n\n"
               "Replay every partition of the topic from its first offset "
               "to the end it has\nnow into a new read model beside PATH "
               "(PATH.rebuild-PID), then swap it into\nPATH in one "
               "transaction: "
               "readers of PATH see the old model until the new one is\n"
               "complete, then the new one. A projector running on PATH "
               "notices the swap,\ndrops the batch in hand and resumes from "
               "the new model's offsets. Prints the\nold and new model side "
               "by side at the end (stdout); progress goes to stderr,\n"
               "redrawn on a terminal, a line per 10%% otherwise, none with "
               "-q.\nOne rebuild of PATH at a time (PATH.lock); SIGINT, "
               "SIGTERM or SIGHUP stop it\ncleanly (exit 0), PATH "
               "unchanged.\n\n"
               "Refused (exit 1, PATH unchanged) unless --force: PATH holds "
               "offsets of\nanother topic, or of partitions the topic does "
               "not have; or the replay would\nhold no event while PATH "
               "has applied some (a wrong or empty topic).\n\n"
               "options:\n"
               "  --db PATH            the live read-model file (required; "
               "created if missing)\n" OF_CLI_KAFKA_HELP
               "  --allow-truncated    rebuild even though retention has "
               "deleted the start of\n"
               "                       the topic (recorded in the new "
               "file)\n"
               "  --force              rebuild although PATH's offsets do "
               "not fit the topic\n"
               "                       or the topic holds no event\n"
               "  --batch-max N        messages per transaction of the "
               "replay (default %d)\n"
               "  -h, --help           this help\n",
               OF_DEFAULT_BATCH_MAX);
}

/* Where the replay stands, for the progress line. */
typedef struct progress {
        int64_t total;    /* offsets to replay in all */
        int64_t start_ms;
        int64_t drawn_ms; /* last redraw on a terminal */
        int tenth;        /* last tenth reported on a non-terminal */
        int tty, quiet;
} progress;

static void progress_line(progress *pg, uint64_t done, int final)
{
        int64_t now = of_timestamp_now_ms(), ms = now - pg->start_ms;
        double pct = pg->total ? 100.0 * (double)done / (double)pg->total
                               : 100.0;
        double rate = ms > 0 ? (double)done * 1000.0 / (double)ms : 0.0;
        char eta[32] = "-";
        int tenth;

        if (pg->quiet)
                return;
        if (pct > 100.0)
                pct = 100.0;
        if (rate > 0 && (int64_t)done < pg->total)
                snprintf(eta, sizeof(eta), "%.0f s",
                         (double)(pg->total - (int64_t)done) / rate);
        if (pg->tty) {
                if (!final && now - pg->drawn_ms < REDRAW_MS)
                        return;
                pg->drawn_ms = now;
                fprintf(stderr,
                        "\r\033[Krebuild: %" PRIu64 " of %" PRId64
                        " events (%.0f%%), %.0f/s, ETA %s%s",
                        done, pg->total, pct, rate, eta, final ? "\n" : "");
                return;
        }
        tenth = (int)(pct / 10.0);
        if (tenth <= pg->tenth && !(final && tenth < 10))
                return;
        pg->tenth = tenth;
        /* Shown without -v: -q (pg->quiet) is what silences it. */
        of_log_write(OF_LOG_INFO, "rebuild: %" PRIu64 " of %" PRId64
               " events (%.0f%%), %.0f/s, ETA %s",
               done, pg->total, pct, rate, eta);
}

static void compare_row(const char *what, int64_t before, int64_t after)
{
        printf("%-16s %16" PRId64 " %16" PRId64 " %+16" PRId64 "\n", what,
               before, after, after - before);
}

static void compare(const of_store_info *a, const of_store_info *b)
{
        printf("%-16s %16s %16s %16s\n", "", "before", "after", "change");
        compare_row("orders", a->orders, b->orders);
        compare_row("orders placed", a->orders_placed, b->orders_placed);
        compare_row("orders paid", a->orders_paid, b->orders_paid);
        compare_row("placed amount", a->placed_amount, b->placed_amount);
        compare_row("paid amount", a->paid_amount, b->paid_amount);
        compare_row("events", a->events, b->events);
        compare_row("dead letters", a->dead_rows, b->dead_rows);
}

static void on_progress(void *opaque, uint64_t done, int64_t total,
                        int final)
{
        progress *pg = opaque;

        pg->total = total;
        progress_line(pg, done, final);
}

/* The rebuild with progress on stderr and, when done, its timings and the
 * comparison on stdout. */
static int rebuild(const char *db, of_rebuild_opts *o, int quiet,
                   char *errstr, size_t errstr_size)
{
        of_rebuild_result r;
        progress pg = {0};
        int err;

        pg.start_ms = of_timestamp_now_ms();
        pg.tty = isatty(STDERR_FILENO);
        pg.quiet = quiet;
        o->on_progress = on_progress;
        o->progress_opaque = &pg;
        err = of_rebuild_run(&r, db, o, errstr, errstr_size);
        if (err)
                goto out;
        if (!quiet)
                of_log_write(OF_LOG_INFO,
                             "rebuild: done in %.1f s: replay %.1f s "
                             "(%.0f events/s), swap into %s %.1f s "
                             "(generation %" PRId64 " replaces %" PRId64 ")",
                             (double)(r.done_ms - r.start_ms) / 1000.0,
                             (double)(r.replayed_ms - r.start_ms) / 1000.0,
                             r.replayed_ms > r.start_ms
                                     ? (double)r.total * 1000.0 /
                                               (double)(r.replayed_ms -
                                                        r.start_ms)
                                     : 0.0,
                             db, (double)(r.done_ms - r.replayed_ms) / 1000.0,
                             r.after.generation, r.before.generation);
        compare(&r.before, &r.after);
out:
        of_rebuild_result_free(&r);
        return err;
}

int cmd_rebuild(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"db", required_argument, NULL, 'D'},
                OF_CLI_KAFKA_LONGOPTS,
                {"allow-truncated", no_argument, NULL, 'A'},
                {"force", no_argument, NULL, 'f'},
                {"batch-max", required_argument, NULL, 'M'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        of_rebuild_opts a = OF_REBUILD_OPTS_INIT;
        const char *db = NULL;
        long crash_left = 0;
        const char *hook = getenv("ORDERFLOW_TEST_EXIT_AFTER_COMMITS");
        int64_t n;
        of_cli_kafka ck;
        char errstr[1400];
        int opt, rc;

        of_cli_kafka_init(&ck);
        /* The replay's own lines (assignments, rates) are for -v. */
        of_log_verbosity = OF_LOG_WARN;
        opterr = 0;
        optind = 1;
        while ((opt = getopt_long(argc, argv,
                                  ":" OF_CLI_KAFKA_SHORTOPTS "h", longopts,
                                  NULL)) != -1) {
                rc = of_cli_kafka_opt(&ck, CMD, opt, optarg);
                if (rc != 1) {
                        if (rc)
                                return rc;
                        continue;
                }
                switch (opt) {
                case 'D':
                        db = optarg;
                        break;
                case 'A':
                        a.allow_truncated = 1;
                        break;
                case 'f':
                        a.force = 1;
                        break;
                case 'M':
                        if (of_cli_parse_int(&n, optarg, 1, 1000000))
                                return of_cli_usage(CMD,
                                                    "--batch-max: not an "
                                                    "integer from 1 to "
                                                    "1000000");
                        a.batch_max = (size_t)n;
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
        /* Test hook: die right after the Nth commit of the replay. */
        if (hook && (crash_left = atol(hook)) > 0) {
                a.after_db_commit = of_cli_crash_hook;
                a.hook_opaque = &crash_left;
        }
        a.ko = ck.ko;
        if (of_kafka_check_opts(&a.ko, errstr, sizeof(errstr)))
                return of_cli_usage(CMD, "%s", errstr);
        if (of_cli_catch_stop()) {
                of_cli_error(CMD, "sigaction: %s",
                        strerror(errno));
                return OF_EXIT_FAILURE;
        }
        a.stop = &of_cli_stop;
        /* -q: no progress */
        rc = rebuild(db, &a, of_log_verbosity <= OF_LOG_ERROR, errstr,
                     sizeof(errstr));
        if (rc == OF_EABORT) {
                /* SIGINT, SIGTERM, SIGHUP: a clean stop, as asked. */
                of_cli_note(CMD, "interrupted; %s is unchanged", db);
                return of_cli_close_stdout(CMD);
        }
        if (rc) {
                of_cli_error(CMD, "%s; %s is unchanged",
                        errstr, db);
                return OF_EXIT_FAILURE;
        }
        return of_cli_close_stdout(CMD);
}
