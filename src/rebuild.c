/* The rebuild (include/orderflow/rebuild.h): the lock against a second
 * rebuild, the checks of the topic before and of the replay after, the
 * replay into PATH.rebuild-PID through the projector, the swap through
 * the store, and the clean-up of what killed rebuilds left. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/projector.h"
#include "orderflow/rebuild.h"
#include "orderflow/timestamp.h"

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
                                len ? ", " : "", topic, p, low[p] - 1, low[p]);
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
                        of_log(OF_LOG_INFO,
                               "rebuild: removed %s, left by "
                               "a rebuild that was killed",
                               path);
        }
        closedir(d);
}

/* Lock live against a second rebuild: flock on live.lock, a file that is
 * never removed (a lock on a file that a rebuild removes and creates
 * again locks nothing: the next one locks the new inode). *fd keeps it.
 * flock belongs to the open file, so a second rebuild in the same
 * process is refused too. */
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
        if (errno == EWOULDBLOCK) {
                of_errf(errstr, errstr_size,
                        "another rebuild of %s is running (it holds %s)", live,
                        path);
                close(*fd);
                *fd = -1;
                return OF_EBUSY;
        }
        of_errf(errstr, errstr_size, "%s: %s", path, strerror(errno));
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
 * force: the live model's offsets name another topic or partitions the
 * topic lacks, or the topic holds nothing while the model has applied
 * offsets (a mistyped topic is created empty by the broker). A model
 * ahead of its topic (deleted and created again) is what a rebuild
 * mends: not refused. */
static int check_topic(const of_rebuild_opts *o, const of_store_info *live,
                       int32_t cnt, int64_t total, char *errstr,
                       size_t errstr_size)
{
        const char *topic = o->ko.topic;
        int64_t applied = applied_offsets(live);
        char why[900];

        switch (of_store_check_fit(live->parts, live->nparts, topic, cnt, NULL,
                                   why, sizeof(why))) {
        case OF_FIT_OK:
        case OF_FIT_AHEAD:
                break;
        default:
                if (o->force) {
                        of_log(OF_LOG_WARN,
                               "rebuild: %s; --force: "
                               "rebuilding from %s anyway",
                               why, topic);
                        break;
                }
                return of_errf(errstr, errstr_size,
                               "%s; --force rebuilds from %s anyway", why,
                               topic);
        }
        if (total == 0 && applied > 0 && !o->force)
                return of_errf(errstr, errstr_size,
                               "topic %s holds no events, but the read model "
                               "has applied %" PRId64 " offsets: the "
                               "rebuilt model would be empty (a wrong or "
                               "empty topic?); --force rebuilds anyway",
                               topic, applied);
        return 0;
}

/* After the replay: the new model reached the end each partition had at
 * the start, and is not empty where the live one was not. */
static int check_replay(const of_rebuild_opts *o, const of_store_info *live,
                        const of_store_info *fresh, int32_t cnt,
                        const int64_t *low, const int64_t *high, char *errstr,
                        size_t errstr_size)
{
        const char *topic = o->ko.topic;
        int32_t p;
        size_t i;

        for (p = 0; p < cnt; p++) {
                if (high[p] <= low[p])
                        continue;
                for (i = 0; i < fresh->nparts; i++)
                        if (fresh->parts[i].partition == p &&
                            !strcmp(fresh->parts[i].topic, topic))
                                break;
                if (i == fresh->nparts ||
                    fresh->parts[i].next_offset < high[p])
                        return of_errf(errstr, errstr_size,
                                       "the replay stopped short of the "
                                       "end of %s [%" PRId32 "] (%" PRId64 ")",
                                       topic, p, high[p]);
        }
        if (!o->force && applied_offsets(live) > 0 &&
            fresh->applied + fresh->ignored + fresh->duplicates +
                            fresh->dead ==
                    0)
                return of_errf(errstr, errstr_size,
                               "the replay of %s found no event, but the "
                               "read model has applied %" PRId64
                               " offsets: the rebuilt model would be empty; "
                               "--force rebuilds anyway",
                               topic, applied_offsets(live));
        return 0;
}

/* The projector's commits, as progress of the whole replay. */
typedef struct replay_progress {
        const of_rebuild_opts *o;
        int64_t total;
} replay_progress;

static void on_commit(void *opaque, uint64_t done)
{
        replay_progress *rp = opaque;

        rp->o->on_progress(rp->o->progress_opaque, done, rp->total, 0);
}

/* Replay into fresh (a path beside the live file, locked by the caller).
 * Returns 0; OF_EABORT when *o->stop was set; or OF_ERROR with a
 * message. */
static int replay(const of_rebuild_opts *o, const char *fresh,
                  const char *truncated, int64_t total, char *errstr,
                  size_t errstr_size)
{
        of_projector_opts po = OF_PROJECTOR_OPTS_INIT;
        replay_progress rp = {o, total};
        of_store_stats stats = {0};
        of_store *st = NULL;
        int err;

        remove_db(fresh);
        if (of_store_open(&st, fresh, errstr, errstr_size) ||
            of_store_set_rebuilt(st, truncated, errstr, errstr_size)) {
                of_store_close(st);
                return OF_ERROR;
        }
        po.ko = o->ko;
        po.group = NULL;
        po.exit_at_end = 1;
        po.stop = o->stop;
        if (o->on_progress) {
                po.on_commit = on_commit;
                po.commit_opaque = &rp;
        }
        po.batch_max = o->batch_max;
        po.after_db_commit = o->after_db_commit;
        po.hook_opaque = o->hook_opaque;
        err = of_projector_run(st, &po, &stats, errstr, errstr_size);
        of_store_close(st);
        if (err)
                return OF_ERROR;
        if (o->stop && *o->stop)
                return OF_EABORT;
        if (o->on_progress)
                o->on_progress(o->progress_opaque,
                               stats.applied + stats.ignored +
                                       stats.duplicates + stats.dead,
                               total, 1);
        return 0;
}

/* The topic's offsets and what they allow: *low, *high (the caller frees
 * them) and *cnt partitions; truncated names the history retention
 * deleted. */
static int check_source(of_rebuild_result *r, const of_rebuild_opts *o,
                        int64_t **low, int64_t **high, char *truncated,
                        size_t truncated_size, char *errstr,
                        size_t errstr_size)
{
        int64_t gone;
        int32_t p;

        if (of_kafka_query_topic(&o->ko, 10000, &r->partitions, low, high,
                                 errstr, errstr_size))
                return OF_ERROR;
        for (p = 0; p < r->partitions; p++)
                r->total += (*high)[p] - (*low)[p];
        if (check_topic(o, &r->before, r->partitions, r->total, errstr,
                        errstr_size))
                return OF_ERROR;
        gone = truncation(truncated, truncated_size, o->ko.topic,
                          r->partitions, *low);
        if (gone && !o->allow_truncated)
                return of_errf(errstr, errstr_size,
                               "history deleted by retention: %s; the "
                               "rebuilt model would miss %" PRId64
                               " offsets (--allow-truncated rebuilds "
                               "anyway)",
                               truncated, gone);
        if (gone)
                of_log(OF_LOG_WARN, "rebuilding without deleted history: %s",
                       truncated);
        return 0;
}

/* With the lock held: check, replay into fresh, check, swap. */
static int rebuild_locked(of_rebuild_result *r, const char *path,
                          const char *fresh, const of_rebuild_opts *o,
                          char *errstr, size_t errstr_size)
{
        char truncated[OF_STORE_TRUNCATED_MAX];
        int64_t *low = NULL, *high = NULL;
        int err = OF_ERROR;

        if (of_store_info_read(&r->before, path, 0, errstr, errstr_size) ||
            check_source(r, o, &low, &high, truncated, sizeof(truncated),
                         errstr, errstr_size))
                goto out;
        r->start_ms = of_timestamp_now_ms();
        of_log(OF_LOG_INFO,
               "rebuild: %" PRId64 " offsets in %" PRId32
               " partitions of %s into %s",
               r->total, r->partitions, o->ko.topic, fresh);
        if ((err = replay(o, fresh, truncated, r->total, errstr, errstr_size)))
                goto out;
        err = OF_ERROR;
        if (of_store_info_read(&r->after, fresh, 1, errstr, errstr_size) ||
            check_replay(o, &r->before, &r->after, r->partitions, low, high,
                         errstr, errstr_size))
                goto out;
        /* Counted again now: the comparison is with what is swapped out. */
        of_store_info_free(&r->before);
        if (of_store_info_read(&r->before, path, 1, errstr, errstr_size))
                goto out;
        if (o->stop && *o->stop) {
                err = OF_EABORT;
                goto out;
        }
        r->replayed_ms = of_timestamp_now_ms();
        if (of_store_replace(path, fresh, o->swap_timeout_ms, errstr,
                             errstr_size))
                goto out;
        r->done_ms = of_timestamp_now_ms();
        err = 0;
out:
        free(low);
        free(high);
        return err;
}

int of_rebuild_run(of_rebuild_result *out, const char *path,
                   const of_rebuild_opts *o, char *errstr, size_t errstr_size)
{
        of_store *st = NULL;
        char fresh[4200];
        int lock_fd = -1, err;

        memset(out, 0, sizeof(*out));
        /* The live file exists and is a read model before anything is
         * built (it is created when missing, so the swap has a target). */
        if (of_store_open(&st, path, errstr, errstr_size))
                return OF_ERROR;
        of_store_close(st);
        if ((err = lock_live(&lock_fd, path, errstr, errstr_size)))
                return err;
        remove_leftovers(path);
        /* This process's own file: nothing another rebuild removes. */
        snprintf(fresh, sizeof(fresh), "%s.rebuild-%ld", path, (long)getpid());
        err = rebuild_locked(out, path, fresh, o, errstr, errstr_size);
        remove_db(fresh); /* copied in, or given up */
        close(lock_fd);   /* only now: the next rebuild may start */
        return err;
}

void of_rebuild_result_free(of_rebuild_result *r)
{
        of_store_info_free(&r->before);
        of_store_info_free(&r->after);
}
