/* bench_latency: end-to-end latency, for `make bench`. Places orders in
 * the application database at a steady rate, one transaction each (as
 * `orderflow place` does), and watches the read model for each order's
 * row: the latency of an order is from its commit returning here to its
 * row being visible to a reader of the read model. The relay and the
 * projector in between are the caller's, running with their defaults.
 *
 * usage: bench_latency APP_DB READ_MODEL RATE SECONDS [PREFIX]
 * Prints one line: "orders N at R/s: p50 X ms, p99 Y ms, max Z ms"
 * and exits 1 when an order did not appear within 30 s of the last one.
 * Figures only; nothing is asserted.
 *
 * The watcher wakes on every write to the read model's -wal file
 * (inotify on its directory) and at least every millisecond, asks SQLite
 * whether another connection committed (PRAGMA data_version) and only then
 * looks up the orders not seen yet: it costs the machine little and adds
 * at most about a millisecond. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "orderflow/appdb.h"
#include "orderflow/dbwatch.h"
#include "orderflow/lathist.h"

#define WAIT_AFTER_S 30

typedef struct run {
        const char *rm_path, *prefix;
        long n;
        int64_t *committed; /* us, monotonic; set before placed grows */
        atomic_long placed; /* orders committed so far */
        atomic_int writer_done;
        of_lathist lat;
        long seen;
        int failed;
} run;

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void order_id(char *out, size_t size, const char *prefix, long i)
{
        snprintf(out, size, "%s-%07ld", prefix, i);
}

static sqlite3 *open_read_model(const char *path)
{
        sqlite3 *db = NULL;

        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
                    SQLITE_OK &&
            sqlite3_exec(db, "SELECT 1 FROM order_list LIMIT 0", NULL, NULL,
                         NULL) == SQLITE_OK)
                return db;
        sqlite3_close(db);
        return NULL;
}

static int64_t data_version(sqlite3_stmt *dv)
{
        int64_t v = -1;

        if (sqlite3_step(dv) == SQLITE_ROW)
                v = sqlite3_column_int64(dv, 0);
        sqlite3_reset(dv);
        return v;
}

/* Look up the orders placed and not seen yet; count those now visible. */
static void look(run *r, sqlite3_stmt *has, unsigned char *seen, long *lo)
{
        long placed = atomic_load(&r->placed), i;
        int64_t t = now_us();
        char id[128];

        for (i = *lo; i < placed; i++) {
                if (seen[i])
                        continue;
                order_id(id, sizeof(id), r->prefix, i);
                sqlite3_bind_text(has, 1, id, -1, SQLITE_TRANSIENT);
                if (sqlite3_step(has) == SQLITE_ROW) {
                        seen[i] = 1;
                        r->seen++;
                        of_lathist_add(&r->lat, t - r->committed[i]);
                }
                sqlite3_reset(has);
        }
        while (*lo < placed && seen[*lo])
                ++*lo;
}

static void *watcher(void *arg)
{
        run *r = arg;
        unsigned char *seen = calloc((size_t)r->n, 1);
        sqlite3 *db = NULL;
        sqlite3_stmt *has = NULL, *dv = NULL;
        int64_t last_dv = -1, deadline = 0;
        long lo = 0;
        of_dbwatch *w = NULL;
        char why[256];

        if (of_dbwatch_open(&w, r->rm_path, why, sizeof(why)))
                w = NULL; /* the 1 ms look alone */
        while (!seen || !(db = open_read_model(r->rm_path))) {
                if (!seen || atomic_load(&r->writer_done)) {
                        r->failed = 1;
                        goto out;
                }
                usleep(1000);
        }
        if (sqlite3_prepare_v2(db,
                               "SELECT 1 FROM order_list WHERE order_id = ?",
                               -1, &has, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &dv, NULL) !=
                    SQLITE_OK) {
                r->failed = 1;
                goto out;
        }
        while (r->seen < r->n) {
                struct pollfd p = {.fd = w ? of_dbwatch_fd(w) : -1,
                                   .events = POLLIN};
                int64_t v;

                if (poll(&p, 1, 1) > 0)
                        of_dbwatch_take(w);
                v = data_version(dv);
                /* a commit of the projector's, whether or not inotify saw
                 * it: the commit lands in the -wal's index (shared
                 * memory, no inotify event) after its last write */
                if (v != last_dv) {
                        last_dv = v;
                        look(r, has, seen, &lo);
                }
                if (atomic_load(&r->writer_done) && !deadline)
                        deadline = now_us() + WAIT_AFTER_S * 1000000LL;
                if (deadline && now_us() > deadline)
                        break;
        }
out:
        sqlite3_finalize(has);
        sqlite3_finalize(dv);
        sqlite3_close(db);
        of_dbwatch_close(w);
        free(seen);
        return NULL;
}

int main(int argc, char **argv)
{
        run r = {0};
        of_appdb *app;
        pthread_t th;
        char err[512], id[128], prefix[64], line[128];
        double rate, secs;
        int64_t t0;
        long i;

        if (argc < 5 || argc > 6 || (rate = strtod(argv[3], NULL)) <= 0 ||
            (secs = strtod(argv[4], NULL)) <= 0) {
                fprintf(stderr, "usage: bench_latency APP_DB READ_MODEL "
                                "RATE SECONDS [PREFIX]\n");
                return 2;
        }
        snprintf(prefix, sizeof(prefix), "lat%ld", (long)getpid());
        r.prefix = argc == 6 ? argv[5] : prefix;
        r.rm_path = argv[2];
        r.n = (long)(rate * secs);
        if (r.n < 1 || !(r.committed = calloc((size_t)r.n, sizeof(int64_t)))) {
                fprintf(stderr, "bench_latency: nothing to place\n");
                return 2;
        }
        if (of_appdb_open(&app, argv[1], err, sizeof(err))) {
                fprintf(stderr, "bench_latency: %s\n", err);
                return 1;
        }
        if (pthread_create(&th, NULL, watcher, &r)) {
                fprintf(stderr, "bench_latency: no thread\n");
                return 1;
        }
        t0 = now_us();
        for (i = 0; i < r.n; i++) {
                /* an open schedule: a late order does not delay the
                 * next ones */
                int64_t due = t0 + (int64_t)((double)i * 1e6 / rate),
                        wait = due - now_us();

                if (wait > 0)
                        usleep((useconds_t)wait);
                order_id(id, sizeof(id), r.prefix, i);
                if (of_appdb_place(app, NULL, id, 100 + i % 1000, err,
                                   sizeof(err))) {
                        fprintf(stderr, "bench_latency: place: %s\n", err);
                        break;
                }
                r.committed[i] = now_us();
                atomic_store(&r.placed, i + 1);
        }
        atomic_store(&r.writer_done, 1);
        pthread_join(th, NULL);
        of_appdb_close(app);
        printf("orders %ld at %g/s: %s; %ld not seen within %d s\n", r.n, rate,
               of_lathist_format(&r.lat, line, sizeof(line)), r.n - r.seen,
               WAIT_AFTER_S);
        free(r.committed);
        return r.failed || r.seen < r.n;
}
