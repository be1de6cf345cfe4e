/* Private to the relay's files: its state, shared by the loop (relay.c)
 * and its waiting for commits and reports (relay_wait.c). */
#ifndef ORDERFLOW_RELAY_INT_H
#define ORDERFLOW_RELAY_INT_H

#include <stdint.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/dbwatch.h"
#include "orderflow/relay.h"

typedef struct batch batch;

/* A row in flight: its batch, and the delivery report's error code
 * (turned into text once every report of the batch is in). */
typedef struct in_flight {
        batch *b;
        rd_kafka_resp_err_t err;
        int64_t reported_us; /* when its report came (monotonic) */
} in_flight;

/* One claim on its way: the rows, a result per row, and how many delivery
 * reports are still to come. Two of them take turns, so the next batch is
 * claimed and produced while this one's reports come in. */
struct batch {
        of_outbox_batch claimed; /* rows and their strings, reused */
        of_outbox_result *res;   /* res[i] is claimed.rows[i]'s outcome */
        in_flight *fl;           /* fl[i] is claimed.rows[i]'s message */
        size_t cap;              /* res and fl allocated */
        size_t outstanding;      /* messages without a delivery report yet */
        int64_t t_claim, t_produced; /* ms: when claimed, when produced */
        int64_t t_claim_us;          /* when claimed, us (monotonic) */
};

typedef struct relay {
        const of_relay_opts *o;
        rd_kafka_t *rk;
        batch b[2];
        int64_t deliver_ms;    /* message.timeout.ms as set: our deadline */
        of_outbox_batch alive; /* the flying batch's rows not failed */
        of_dbwatch *watch;     /* writes to the database; NULL: poll */
        int events[2];         /* a pipe librdkafka writes to when its main
                                * queue gets an event (a report) */
        int64_t data_version;  /* the database's when last looked at */
        of_relay_stats *st;
        int fatal; /* a fatal producer error happened */
        char err[512];
} relay;

static inline int stopping(const relay *r)
{
        return r->o->stop && *r->o->stop;
}

static inline int64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* relay.c: at the deadline of messages produced at t_produced, purge
 * every message still on its way (they all fail together); 1 when it
 * did. */
int relay_purge_at(relay *r, int64_t t_produced);

/* relay_wait.c: */

/* Watch app's file for commits and have librdkafka say when a report
 * waits (NULL watch where inotify is not available: the interval). */
int relay_watch_open(relay *r, of_appdb *app, char *errstr,
                     size_t errstr_size);

/* Wait ms serving the producer's callbacks. */
void relay_pause(relay *r, int ms);

/* Wait on an idle outbox up to ms, less when another connection commits. */
void relay_idle(relay *r, of_appdb *app, int ms);

/* While b is on its way and nothing else is: wait for its last report (0)
 * or a commit (1). */
int relay_await(relay *r, of_appdb *app, batch *b);

#endif
