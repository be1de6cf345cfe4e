/* The relay's waiting: on an idle outbox until a commit (inotify on the
 * application database's -wal, confirmed by data_version) or the
 * interval; on a batch on its way until its reports or a commit, whose
 * rows then go at once. One poll() serves both the watch and librdkafka's
 * queue (its events written to a pipe). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "orderflow/error.h"
#include "orderflow/log.h"
#include "orderflow/timestamp.h"

#include "relay_int.h"

/* Wait ms serving the producer's callbacks. */
void relay_pause(relay *r, int ms)
{
        int waited;

        for (waited = 0; waited < ms && !stopping(r); waited += 50)
                rd_kafka_poll(r->rk, ms - waited < 50 ? ms - waited : 50);
}

/* Whether another connection committed to the database since the last
 * look. */
static int committed(relay *r, of_appdb *app)
{
        int64_t v = of_appdb_data_version(app);

        if (v == r->data_version)
                return 0;
        r->data_version = v;
        return 1;
}

/* Wait up to ms for a write to the database (1) or an event of the
 * producer, served here (0). */
static int wait_event(relay *r, int ms)
{
        struct pollfd p[2] = {
                {.fd = of_dbwatch_fd(r->watch), .events = POLLIN},
                {.fd = r->events[0], .events = POLLIN}};
        char buf[64];
        int hit;

        if (!(hit = of_dbwatch_take(r->watch)) && poll(p, 2, ms) > 0)
                hit = of_dbwatch_take(r->watch);
        while (read(r->events[0], buf, sizeof(buf)) > 0)
                ;
        rd_kafka_poll(r->rk, 0);
        return hit;
}

/* Wait on an idle outbox: up to ms (the interval), less when another
 * connection writes to the database (the writer's place or pay), which
 * the watch sees as a write to its -wal. The claim that follows waits for
 * the write lock, so for the commit to end (its frames are written before
 * it is synced and published in the -wal's index). The relay's own writes
 * wake it too, for a claim that finds nothing and writes nothing. A commit
 * made while the relay was busy shows in data_version. Without a watch,
 * the interval. */
void relay_idle(relay *r, of_appdb *app, int ms)
{
        int64_t deadline = of_timestamp_now_ms() + ms, left;

        if (!r->watch) {
                relay_pause(r, ms);
                return;
        }
        while (!stopping(r) && !committed(r, app) &&
               (left = deadline - of_timestamp_now_ms()) > 0)
                if (wait_event(r, left < 100 ? (int)left : 100))
                        return;
}

/* While b is on its way and nothing else is: wait for the last of its
 * reports (0), or for a commit (1), whose rows are claimed and produced at
 * once instead of after b is marked. */
int relay_await(relay *r, of_appdb *app, batch *b)
{
        while (b->outstanding > 0 && !stopping(r) && !r->fatal) {
                if (relay_purge_at(r, b->t_produced))
                        return 0;
                if (committed(r, app) || wait_event(r, 100))
                        return 1;
        }
        return 0;
}

/* Watch the database for commits, and have librdkafka say when a report
 * waits to be served, so that one poll() waits for either. Where inotify
 * is not available, the relay looks every interval instead. */
int relay_watch_open(relay *r, of_appdb *app, char *errstr, size_t errstr_size)
{
        rd_kafka_queue_t *main_q;
        char why[512];

        if (of_dbwatch_open(&r->watch, of_appdb_filename(app), why,
                            sizeof(why))) {
                of_log(OF_LOG_INFO,
                       "not woken by commits (%s): looking at the outbox "
                       "every %d ms",
                       why, r->o->poll_ms);
                return 0;
        }
        if (pipe2(r->events, O_NONBLOCK | O_CLOEXEC))
                return of_errf(errstr, errstr_size, "pipe: %s",
                               strerror(errno));
        main_q = rd_kafka_queue_get_main(r->rk);
        rd_kafka_queue_io_event_enable(main_q, r->events[1], "1", 1);
        rd_kafka_queue_destroy(main_q);
        r->data_version = of_appdb_data_version(app);
        return 0;
}
