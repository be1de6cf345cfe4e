/* orderflow rebuild: replay the topic from its first offset into a new
 * read model beside the live one (the projector's apply path, no consumer
 * group), then swap it into the live file in one transaction, and compare
 * the two. History deleted by retention is refused unless
 * --allow-truncated. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <unistd.h>

#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/projector.h"
#include "orderflow/store.h"
#include "orderflow/timestamp.h"

#define CMD "rebuild"

/* How long the swap waits for the live file's write lock (a projector's
 * batch holds it for well under a second). */
#define SWAP_TIMEOUT_MS 60000
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

static void on_commit(void *opaque, uint64_t done)
{
        progress_line(opaque, done, 0);
}

/* The partitions whose first offsets are gone, as one line ("" when
 * none); the number of offsets gone in all. */
static int64_t truncation(char *out, size_t size, const char *topic,
                          int32_t cnt, const int64_t *low)
{
        int64_t gone = 0;
        size_t len = 0;
        int32_t p;

        out[0] = '\0';
        for (p = 0; p < cnt; p++) {
                if (low[p] <= 0)
                        continue;
                gone += low[p];
                if (len < size)
                        len += (size_t)snprintf(
                                out + len, size - len,
                                "%s%s [%" PRId32 "] offsets 0-%" PRId64
                                " gone (%" PRId64 ")",
                                len ? ", " : "", topic, p, low[p] - 1,
                                low[p]);
        }
        return gone;
}

/* Remove path and its SQLite companions. */
static void remove_db(const char *path)
{
        static const char *const sides[] = {"", "-wal", "-shm", "-journal"};
        char side[4200];
        size_t i;

        for (i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
                snprintf(side, sizeof(side), "%s%s", path, sides[i]);
                unlink(side);
        }
}

/* With the lock held, no other rebuild of live is running: remove what
 * killed ones left beside it, live.rebuild-PID (and live.rebuild, the
 * name older versions used) and their -wal, -shm and -journal. */
static void remove_leftovers(const char *live)
{
        const char *slash = strrchr(live, '/');
        const char *base = slash ? slash + 1 : live;
        char dir[4096], prefix[4200], path[8400];
        struct dirent *de;
        size_t n;
        DIR *d;

        if (!slash)
                snprintf(dir, sizeof(dir), ".");
        else if (slash == live)
                snprintf(dir, sizeof(dir), "/");
        else
                snprintf(dir, sizeof(dir), "%.*s", (int)(slash - live), live);
        n = (size_t)snprintf(prefix, sizeof(prefix), "%s.rebuild", base);
        if (!(d = opendir(dir)))
                return;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, prefix, n) ||
                    (de->d_name[n] != '\0' && de->d_name[n] != '-'))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                if (unlink(path) == 0)
                        of_log(OF_LOG_INFO, "rebuild: removed %s, left by "
                               "a rebuild that was killed", path);
        }
        closedir(d);
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

typedef struct rebuild_args {
        const char *db;
        of_kafka_opts ko;
        int allow_truncated;
        int force;        /* rebuild although the offsets do not fit */
        int quiet;
        size_t batch_max;
        long crash_after; /* test hook: _exit(99) after this many commits */
} rebuild_args;

/* Replay into fresh (a path beside the live file, locked by the caller).
 * Returns 0; OF_EABORT when a signal stopped it; or OF_ERROR with a
 * message. */
static int replay(const rebuild_args *a, const char *fresh,
                  const char *truncated, progress *pg, char *errstr,
                  size_t errstr_size)
{
        of_projector_opts o = OF_PROJECTOR_OPTS_INIT;
        of_store_stats stats = {0};
        of_store *st = NULL;
        long crash_left = a->crash_after;
        int err;

        remove_db(fresh);
        if (of_store_open(&st, fresh, errstr, errstr_size) ||
            of_store_set_rebuilt(st, truncated, errstr, errstr_size)) {
                of_store_close(st);
                return OF_ERROR;
        }
        o.ko = a->ko;
        o.group = NULL;
        o.exit_at_end = 1;
        o.stop = &of_cli_stop;
        o.on_commit = on_commit;
        o.commit_opaque = pg;
        o.batch_max = a->batch_max;
        if (crash_left > 0) {
                o.after_db_commit = of_cli_crash_hook;
                o.hook_opaque = &crash_left;
        }
        err = of_projector_run(st, &o, &stats, errstr, errstr_size);
        of_store_close(st);
        if (err)
                return OF_ERROR;
        if (of_cli_stop)
                return OF_EABORT;
        progress_line(pg, stats.applied + stats.ignored + stats.duplicates +
                                  stats.dead,
                      1);
        return 0;
}

/* Lock live against a second rebuild: flock on live.lock, a file that is
 * never removed (a lock on a file that a rebuild removes and creates
 * again locks nothing: the next one locks the new inode). *fd keeps it. */
static int lock_live(int *fd, const char *live, char *errstr,
                     size_t errstr_size)
{
        char path[4200];

        snprintf(path, sizeof(path), "%s.lock", live);
        *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (*fd < 0)
                return of_errf(errstr, errstr_size, "%s: %s", path,
                               strerror(errno));
        if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
                return 0;
        if (errno == EWOULDBLOCK)
                of_errf(errstr, errstr_size,
                        "another rebuild of %s is running (it holds %s)",
                        live, path);
        else
                of_errf(errstr, errstr_size, "%s: %s", path,
                        strerror(errno));
        close(*fd);
        *fd = -1;
        return OF_ERROR;
}

/* Offsets the live model has applied in all (0: an empty model). */
static int64_t applied_offsets(const of_store_info *info)
{
        int64_t sum = 0;
        size_t i;

        for (i = 0; i < info->nparts; i++)
                sum += info->parts[i].next_offset;
        return sum;
}

/* Before the replay: refuse what an operator cannot have meant, unless
 * --force: the live model's offsets name another topic or partitions the
 * topic lacks, or the topic holds nothing while the model has applied
 * offsets (a mistyped topic is created empty by the broker). A model
 * ahead of its topic (deleted and created again) is what a rebuild
 * mends: not refused. */
static int check_topic(const rebuild_args *a, const of_store_info *live,
                       int32_t cnt, int64_t total, char *errstr,
                       size_t errstr_size)
{
        char why[900];
        int64_t applied = applied_offsets(live);

        switch (of_store_check_fit(live->parts, live->nparts, a->ko.topic,
                                   cnt, NULL, why, sizeof(why))) {
        case OF_FIT_OK:
        case OF_FIT_AHEAD:
                break;
        default:
                if (a->force) {
                        of_log(OF_LOG_WARN, "rebuild: %s; --force: "
                               "rebuilding from %s anyway", why,
                               a->ko.topic);
                        break;
                }
                return of_errf(errstr, errstr_size,
                               "%s; --force rebuilds from %s anyway", why,
                               a->ko.topic);
        }
        if (total == 0 && applied > 0 && !a->force)
                return of_errf(errstr, errstr_size,
                               "topic %s holds no events, but the read model "
                               "has applied %" PRId64 " offsets: the "
                               "rebuilt model would be empty (a wrong or "
                               "empty topic?); --force rebuilds anyway",
                               a->ko.topic, applied);
        return 0;
}

/* After the replay: the new model reached the end each partition had at
 * the start, and is not empty where the live one was not. */
static int check_replay(const rebuild_args *a, const of_store_info *live,
                        const of_store_info *fresh, int32_t cnt,
                        const int64_t *low, const int64_t *high,
                        char *errstr, size_t errstr_size)
{
        int32_t p;
        size_t i;

        for (p = 0; p < cnt; p++) {
                if (high[p] <= low[p])
                        continue;
                for (i = 0; i < fresh->nparts; i++)
                        if (fresh->parts[i].partition == p &&
                            !strcmp(fresh->parts[i].topic, a->ko.topic))
                                break;
                if (i == fresh->nparts ||
                    fresh->parts[i].next_offset < high[p])
                        return of_errf(errstr, errstr_size,
                                       "the replay stopped short of the "
                                       "end of %s [%" PRId32 "] (%" PRId64
                                       ")",
                                       a->ko.topic, p, high[p]);
        }
        if (!a->force && applied_offsets(live) > 0 &&
            fresh->applied + fresh->ignored + fresh->duplicates +
                            fresh->dead == 0)
                return of_errf(errstr, errstr_size,
                               "the replay of %s found no event, but the "
                               "read model has applied %" PRId64
                               " offsets: the rebuilt model would be empty; "
                               "--force rebuilds anyway",
                               a->ko.topic, applied_offsets(live));
        return 0;
}

static int rebuild(const rebuild_args *a, char *errstr, size_t errstr_size)
{
        of_store_info before = {0}, after = {0};
        progress pg = {0};
        of_store *st = NULL;
        int64_t *low = NULL, *high = NULL, gone, replayed_ms, done_ms;
        int32_t cnt = 0, p;
        char fresh[4200], truncated[OF_STORE_TRUNCATED_MAX];
        int lock_fd = -1, built = 0, err = OF_ERROR;

        /* The live file exists and is a read model before anything is
         * built (it is created when missing, so the swap has a target). */
        if (of_store_open(&st, a->db, errstr, errstr_size))
                return OF_ERROR;
        of_store_close(st);
        if (lock_live(&lock_fd, a->db, errstr, errstr_size))
                return OF_ERROR;
        remove_leftovers(a->db);
        /* This process's own file: nothing another rebuild removes. */
        snprintf(fresh, sizeof(fresh), "%s.rebuild-%ld", a->db,
                 (long)getpid());
        if (of_store_info_read(&before, a->db, 0, errstr, errstr_size) ||
            of_kafka_query_topic(&a->ko, 10000, &cnt, &low, &high, errstr,
                                 errstr_size))
                goto out;
        for (p = 0; p < cnt; p++)
                pg.total += high[p] - low[p];
        if (check_topic(a, &before, cnt, pg.total, errstr, errstr_size))
                goto out;
        gone = truncation(truncated, sizeof(truncated), a->ko.topic, cnt,
                          low);
        if (gone && !a->allow_truncated) {
                of_errf(errstr, errstr_size,
                        "history deleted by retention: %s; the rebuilt model "
                        "would miss %" PRId64 " offsets (--allow-truncated "
                        "rebuilds anyway)",
                        truncated, gone);
                goto out;
        }
        if (gone)
                of_log(OF_LOG_WARN, "rebuilding without deleted history: %s",
                       truncated);
        pg.start_ms = of_timestamp_now_ms();
        pg.tty = isatty(STDERR_FILENO);
        pg.quiet = a->quiet;
        of_log(OF_LOG_INFO, "rebuild: %" PRId64 " offsets in %" PRId32
               " partitions of %s into %s",
               pg.total, cnt, a->ko.topic, fresh);
        built = 1;
        if ((err = replay(a, fresh, truncated, &pg, errstr, errstr_size)))
                goto out;
        err = OF_ERROR;
        if (of_store_info_read(&after, fresh, 1, errstr, errstr_size) ||
            check_replay(a, &before, &after, cnt, low, high, errstr,
                         errstr_size))
                goto out;
        of_store_info_free(&before);
        if (of_store_info_read(&before, a->db, 1, errstr, errstr_size))
                goto out;
        if (of_cli_stop) {
                err = OF_EABORT;
                goto out;
        }
        replayed_ms = of_timestamp_now_ms();
        if (of_store_replace(a->db, fresh, SWAP_TIMEOUT_MS, errstr,
                             errstr_size))
                goto out;
        done_ms = of_timestamp_now_ms();
        if (!a->quiet)
                of_log_write(OF_LOG_INFO,
                             "rebuild: done in %.1f s: replay %.1f s "
                             "(%.0f events/s), swap into %s %.1f s "
                             "(generation %" PRId64 " replaces %" PRId64 ")",
                             (double)(done_ms - pg.start_ms) / 1000.0,
                             (double)(replayed_ms - pg.start_ms) / 1000.0,
                             replayed_ms > pg.start_ms
                                     ? (double)pg.total * 1000.0 /
                                               (double)(replayed_ms -
                                                        pg.start_ms)
                                     : 0.0,
                             a->db, (double)(done_ms - replayed_ms) / 1000.0,
                             after.generation, before.generation);
        compare(&before, &after);
        err = 0;
out:
        if (built)
                remove_db(fresh); /* copied in, or given up */
        close(lock_fd); /* only now: the next rebuild may start */
        free(low);
        free(high);
        of_store_info_free(&before);
        of_store_info_free(&after);
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
        rebuild_args a = {.batch_max = OF_DEFAULT_BATCH_MAX};
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
                        a.db = optarg;
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
        if (!a.db)
                return of_cli_usage(CMD, "--db: required");
        a.quiet = of_log_verbosity <= OF_LOG_ERROR; /* -q: no progress */
        /* Test hook: die right after the Nth commit of the replay. */
        if (hook)
                a.crash_after = atol(hook);
        a.ko = ck.ko;
        if (of_kafka_check_opts(&a.ko, errstr, sizeof(errstr)))
                return of_cli_usage(CMD, "%s", errstr);
        if (of_cli_catch_stop()) {
                of_cli_error(CMD, "sigaction: %s",
                        strerror(errno));
                return OF_EXIT_FAILURE;
        }
        rc = rebuild(&a, errstr, sizeof(errstr));
        if (rc == OF_EABORT) {
                /* SIGINT, SIGTERM, SIGHUP: a clean stop, as asked. */
                of_cli_note(CMD, "interrupted; %s is unchanged", a.db);
                return of_cli_close_stdout(CMD);
        }
        if (rc) {
                of_cli_error(CMD, "%s; %s is unchanged",
                        errstr, a.db);
                return OF_EXIT_FAILURE;
        }
        return of_cli_close_stdout(CMD);
}
