/* orderflow rebuild: replay the topic from its first offset into a new
 * read model beside the live one (the projector's apply path, no consumer
 * group), then swap it into the live file in one transaction, and compare
 * the two. History deleted by retention is refused unless
 * --allow-truncated. */
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

/* Where the replay stands, for the progress line. */
typedef struct progress {
        int64_t total; /* offsets to replay in all */
        int64_t start_ms;
        int64_t drawn_ms; /* last redraw on a terminal */
        int tenth;        /* last tenth reported on a non-terminal */
        int tty, quiet;
} progress;

static void progress_line(progress *pg, uint64_t done, int final)
{
        int64_t now = of_timestamp_now_ms(), ms = now - pg->start_ms;
        double pct =
                pg->total ? 100.0 * (double)done / (double)pg->total : 100.0;
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
        of_log_write(OF_LOG_INFO,
                     "rebuild: %" PRIu64 " of %" PRId64
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

static void on_progress(void *opaque, uint64_t done, int64_t total, int final)
{
        progress *pg = opaque;

        pg->total = total;
        progress_line(pg, done, final);
}

/* The rebuild with progress on stderr and, when done, its timings and the
 * comparison on stdout. */
static int rebuild(const char *db, of_rebuild_opts *o, int quiet, char *errstr,
                   size_t errstr_size)
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
                of_log_write(
                        OF_LOG_INFO,
                        "rebuild: done in %.1f s: replay %.1f s "
                        "(%.0f events/s), swap into %s %.1f s "
                        "(generation %" PRId64 " replaces %" PRId64 ")",
                        (double)(r.done_ms - r.start_ms) / 1000.0,
                        (double)(r.replayed_ms - r.start_ms) / 1000.0,
                        r.replayed_ms > r.start_ms
                                ? (double)r.total * 1000.0 /
                                          (double)(r.replayed_ms - r.start_ms)
                                : 0.0,
                        db, (double)(r.done_ms - r.replayed_ms) / 1000.0,
                        r.after.generation, r.before.generation);
        compare(&r.before, &r.after);
out:
        of_rebuild_result_free(&r);
        return err;
}

/* What the options fill. */
typedef struct rebuild_args {
        const char *db;     /* --db */
        of_cli_kafka kafka; /* -b, -t, -F, -X, -v, -q */
        of_rebuild_opts ro; /* the rest; ro.ko from kafka */
} rebuild_args;

static const rebuild_args defaults = {
        .kafka = OF_CLI_KAFKA_INIT,
        .ro = OF_REBUILD_OPTS_INIT,
};

static const of_cli_spec specs[] = {
        OF_CLI_OPT_STRING(rebuild_args, db, "db", 0, OF_CLI_REQUIRED, 1, 0,
                          NULL, "PATH",
                          "the live read-model file, created "
                          "if missing"),
        OF_CLI_GROUP_AT(rebuild_args, kafka, of_cli_kafka_specs),
        OF_CLI_OPT_FLAG(rebuild_args, ro.allow_truncated, "allow-truncated", 0,
                        "rebuild even though retention has deleted the "
                        "start of the topic (recorded in the new file)"),
        OF_CLI_OPT_FLAG(rebuild_args, ro.force, "force", 0,
                        "rebuild although PATH's offsets do not fit the "
                        "topic or the topic holds no event"),
        OF_CLI_OPT_INT(rebuild_args, ro.batch_max, "batch-max", 0, 0, 1,
                       1000000, "N",
                       "messages per transaction of the "
                       "replay"),
        OF_CLI_OPT_END,
};

static const of_cli_cmd rebuild_cmd = {
        CMD,
        specs,
        &defaults,
        "Replay every partition of the topic from its first offset to the "
        "end it has\nnow into a new read model beside PATH "
        "(PATH.rebuild-PID), then swap it into\nPATH in one transaction: "
        "readers of PATH see the old model until the new one is\n"
        "complete, then the new one. A projector running on PATH notices "
        "the swap,\ndrops the batch in hand and resumes from the new "
        "model's offsets. Prints the\nold and new model side by side at "
        "the end (stdout); progress goes to stderr,\nredrawn on a "
        "terminal, a line per 10% otherwise, none with -q.\nOne rebuild "
        "of PATH at a time (PATH.lock); SIGINT, SIGTERM or SIGHUP stop "
        "it\ncleanly (exit 0), PATH unchanged.\n\n"
        "Refused (exit 1, PATH unchanged) unless --force: PATH holds "
        "offsets of\nanother topic, or of partitions the topic does not "
        "have; or the replay would\nhold no event while PATH has applied "
        "some (a wrong or empty topic).",
        NULL,
};

int cmd_rebuild(int argc, char **argv)
{
        rebuild_args args = defaults;
        of_rebuild_opts a;
        const char *db;
        long crash_left;
        char errstr[1400];
        int rc;

        /* The replay's own lines (assignments, rates) are for -v. */
        of_log_verbosity = OF_LOG_WARN;
        if (of_cli_parse(&rc, &rebuild_cmd, &args, argc, argv) ||
            (rc = of_cli_kafka_check(&args.kafka, NULL, CMD)))
                return rc;
        db = args.db;
        a = args.ro;
        a.ko = args.kafka.ko;
        /* Test hook: die right after the Nth commit of the replay. */
        if ((crash_left = of_cli_test_hook(
                     "ORDERFLOW_TEST_EXIT_AFTER_COMMITS")) > 0) {
                a.after_db_commit = of_cli_crash_hook;
                a.hook_opaque = &crash_left;
        }
        if ((rc = of_cli_catch_stop(CMD)))
                return rc;
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
                of_cli_error(CMD, "%s; %s is unchanged", errstr, db);
                return OF_EXIT_FAILURE;
        }
        return of_cli_close_stdout(CMD);
}
