/* The fixture of the application database's test programs (test_appdb.c,
 * test_outbox.c): a fresh temp file opened with of_appdb_open(), a second
 * connection for checking with SQL, and the helpers both use. */
#ifndef ORDERFLOW_TU_APPDB_H
#define ORDERFLOW_TU_APPDB_H

#include <time.h>

#include <sqlite3.h>

#include "orderflow/appdb.h"
#include "orderflow/timestamp.h"
#include "testutil.h"

typedef struct fixture {
        char *path;
        of_appdb *app;
        sqlite3 *db; /* a second connection, for checking */
        char errstr[512];
} fixture;

static inline int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->path = tu_tmp_path("app.db");
        assert_int_equal(
                of_appdb_open(&f->app, f->path, f->errstr, sizeof(f->errstr)),
                0);
        f->db = tu_db_open(f->path, 0);
        sqlite3_busy_timeout(f->db, 5000);
        *state = f;
        return 0;
}

static inline int teardown(void **state)
{
        fixture *f = *state;

        sqlite3_close(f->db);
        of_appdb_close(f->app);
        tu_tmp_free(f->path);
        free(f);
        *state = NULL;
        return 0;
}

/* The first column of the first row of sql, as text ("NULL" for NULL,
 * "" for no row), in a static buffer. */
static inline const char *q(fixture *f, const char *sql)
{
        return tu_q(f->db, sql);
}

static inline int64_t qi(fixture *f, const char *sql)
{
        return strtoll(q(f, sql), NULL, 10);
}

static inline void exec(fixture *f, const char *sql)
{
        char *msg = NULL;

        if (sqlite3_exec(f->db, sql, NULL, NULL, &msg) != SQLITE_OK)
                fail_msg("%s: %s", sql, msg);
}

static inline int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ms since the epoch as "YYYY-MM-DDTHH:MM:SS.sssZ". */
static inline void fmt_ms(char out[OF_TS_LEN + 1], int64_t ms)
{
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;
        char day[32], all[48];

        gmtime_r(&sec, &tm);
        strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(all, sizeof(all), "%.19s.%03dZ", day, (int)(ms % 1000));
        memcpy(out, all, OF_TS_LEN + 1);
}

static inline void place(fixture *f, of_event *ev, const char *order,
                         int64_t total)
{
        of_event tmp;

        if (of_appdb_place(f->app, ev ? ev : &tmp, order, total, f->errstr,
                           sizeof(f->errstr)))
                fail_msg("place %s: %s", order, f->errstr);
}

static inline void pay(fixture *f, of_event *ev, const char *order,
                       int64_t amount)
{
        of_event tmp;

        if (of_appdb_pay(f->app, ev ? ev : &tmp, order, amount, f->errstr,
                         sizeof(f->errstr)))
                fail_msg("pay %s: %s", order, f->errstr);
}

#endif
