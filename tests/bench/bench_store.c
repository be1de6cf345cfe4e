/* bench_store: decode + apply without Kafka, for `make bench`. Decoding
 * is timed here, as the projector times it (of_store_batch_decode()).
 *
 * usage: bench_store DB BATCH [SEAL] < lines
 * Reads "key|value" lines (tests/bench_gen.py), applies them to DB in
 * batches of BATCH messages and prints one line per million with the rate
 * of that million, then the totals. Figures only; nothing is asserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "orderflow/store.h"

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Decode msgs[0..n) into b, timed into *decode_s, then apply them. */
static int apply(of_store *st, of_store_batch *b, const of_msg *msgs, size_t n,
                 int64_t next, of_store_stats *stats, double *decode_s,
                 char *err, size_t err_size)
{
        of_store_pos pos = {"bench", 0, next};
        double t = now_s();

        if (of_store_batch_decode(b, msgs, n, err, err_size))
                return -1;
        *decode_s += now_s() - t;
        return of_store_apply_decoded(st, b, &pos, 1, stats, err, err_size);
}

/* Apply the *n lines held, then free them; 1 (said) on failure. */
static int flush(of_store *st, of_store_batch *b, of_msg *msgs, char **bufs,
                 size_t *n, size_t total, of_store_stats *stats,
                 double *decode_s)
{
        char err[512];

        if (apply(st, b, msgs, *n, (int64_t)total, stats, decode_s, err,
                  sizeof(err))) {
                fprintf(stderr, "bench_store: %s\n", err);
                return 1;
        }
        while (*n)
                free(bufs[--*n]);
        return 0;
}

int main(int argc, char **argv)
{
        of_store *st;
        of_store_batch *b;
        of_store_stats stats = {0};
        char err[512], *line = NULL;
        size_t cap = 0, batch, n = 0, total = 0;
        of_msg *msgs;
        char **bufs;
        ssize_t len;
        double t0, tm, decode_s = 0;

        if (argc < 3 || argc > 4 ||
            (batch = strtoul(argv[2], NULL, 10)) == 0) {
                fprintf(stderr,
                        "usage: bench_store DB BATCH [SEAL] < lines\n");
                return 2;
        }
        if (of_store_open(&st, argv[1], err, sizeof(err))) {
                fprintf(stderr, "bench_store: %s\n", err);
                return 1;
        }
        if (argc == 4)
                of_store_set_seal_events(st, strtoll(argv[3], NULL, 10));
        msgs = calloc(batch, sizeof(*msgs));
        bufs = calloc(batch, sizeof(*bufs));
        if (!msgs || !bufs || of_store_batch_new(&b, err, sizeof(err)))
                return 1;
        t0 = tm = now_s();
        while ((len = getline(&line, &cap, stdin)) > 0) {
                char *bar = memchr(line, '|', (size_t)len);

                if (!bar)
                        continue;
                if (line[len - 1] == '\n')
                        len--;
                bufs[n] = line;
                msgs[n] = (of_msg){
                        .topic = "bench",
                        .partition = 0,
                        .offset = (int64_t)total,
                        .key = line,
                        .key_len = (size_t)(bar - line),
                        .value = bar + 1,
                        .value_len = (size_t)(line + len - bar - 1),
                };
                line = NULL;
                cap = 0;
                total++;
                if ((++n == batch || total % 1000000 == 0) &&
                    flush(st, b, msgs, bufs, &n, total, &stats, &decode_s))
                        return 1;
                if (total % 1000000 == 0) {
                        double t = now_s();

                        printf("%zu %.0f/s\n", total, 1000000 / (t - tm));
                        fflush(stdout);
                        tm = t;
                }
        }
        if (n && flush(st, b, msgs, bufs, &n, total, &stats, &decode_s))
                return 1;
        printf("total %zu in %.2f s: %.0f/s; decode %.2f s, apply %.2f s,"
               " commit %.2f s; %llu of %llu batches in log order\n",
               total, now_s() - t0, total / (now_s() - t0), decode_s,
               stats.apply_ns / 1e9, stats.commit_ns / 1e9,
               (unsigned long long)stats.in_log_order,
               (unsigned long long)stats.batches);
        free(line);
        free(msgs);
        free(bufs);
        of_store_batch_free(b);
        of_store_close(st);
        return 0;
}
