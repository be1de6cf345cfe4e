/* The read-model store (docs/reference.md 2): one SQLite file in WAL mode.
 * Opens and migrates it, applies a batch of messages in ONE transaction
 * (events, dead letters, projections and the next offset of each partition),
 * and reads stored offsets back. It owns every SQL statement of the read
 * model; callers never see sqlite3. */
#ifndef ORDERFLOW_STORE_H
#define ORDERFLOW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "orderflow/cursor.h"
#include "orderflow/event.h"
#include "orderflow/msg.h"
#include "orderflow/timestamp.h"

#define OF_SCHEMA_VERSION 1

/* One of_store is one connection: use it from one thread at a time. */
typedef struct of_store of_store;

/* Counters, added to by of_store_apply_decoded (only for committed
 * batches). */
typedef struct of_store_stats {
        uint64_t applied;    /* OrderPlaced/OrderPaid applied */
        uint64_t ignored;    /* other types recorded, no projection change */
        uint64_t duplicates; /* known id, agreeing body: no effect */
        uint64_t dead;       /* dead letters written */
        uint64_t dead_by_reason[OF_REASON_COUNT]; /* of them, by the fixed
                                                   * phrase of the reason
                                                   * (of_event_reason_index) */
        uint64_t batches;                         /* transactions committed */
        uint64_t in_log_order; /* batches that could not go in key order */
        uint64_t apply_ns;     /* the whole batch transaction (decoding
                                * comes before it: timed by the caller) */
        uint64_t commit_ns;    /* of that, COMMIT (the WAL write) */
} of_store_stats;

/* Where a partition stands after a batch: the next offset to apply. */
typedef struct of_store_pos {
        const char *topic; /* borrowed for the call */
        int32_t partition;
        int64_t next_offset;
} of_store_pos;

/* A partition's next offset to apply, as stored in the file. */
typedef struct of_store_part {
        char *topic;
        int32_t partition;
        int64_t next_offset;
} of_store_part;

/* Open (creating if needed) the read model at path and bring its schema to
 * OF_SCHEMA_VERSION. A file of a newer schema is refused, and so is one
 * with tables of another kind or program, before anything is written to
 * it. The file keeps its -wal and -shm when closed, for readers who may
 * not create them. */
int of_store_open(of_store **out, const char *path, char *errstr,
                  size_t errstr_size);

/* Close; st may be NULL. */
void of_store_close(of_store *st);

/* Every partition offset the read model holds (any topic), by topic and
 * partition, into *out (free with of_store_parts_free) and *n. */
int of_store_parts(of_store_part **out, size_t *n, of_store *st, char *errstr,
                   size_t errstr_size);
void of_store_parts_free(of_store_part *parts, size_t n);

/* The next offset to apply for (topic, partition), or OF_ENOTFOUND when
 * the read model has never applied anything from it. */
int of_store_offset(int64_t *out, of_store *st, const char *topic,
                    int32_t partition, char *errstr, size_t errstr_size);

/* ---- A batch: decoded first, then applied in one transaction ---- */

/* The messages of one batch, decoded (docs/reference.md 1) before the batch's
 * transaction, so that the write lock is held only for SQL, and in the
 * order they will be applied. One of_store_batch serves batch after
 * batch: its buffers are reused. */
typedef struct of_store_batch of_store_batch;

int of_store_batch_new(of_store_batch **out, char *errstr, size_t errstr_size);
void of_store_batch_free(of_store_batch *b); /* b may be NULL */

/* Decode msgs[0..n) into b, in place of what it held: each message's
 * value becomes a valid event or a dead-letter reason. b borrows msgs and
 * the bytes they point to until it is decoded again or freed. 0, or
 * OF_ERROR when memory runs out ("decoding: out of memory": a valid event
 * is never a dead letter for want of memory). */
int of_store_batch_decode(of_store_batch *b, const of_msg *msgs, size_t n,
                          char *errstr, size_t errstr_size);

/* Apply the messages decoded into b as in their order and record
 * pos[0..npos) as the partitions' next offsets (never moving one
 * backwards), all in ONE transaction. A valid event is applied exactly
 * once (docs/reference.md 2), anything else becomes a dead letter. On failure
 * the transaction is rolled back, nothing is counted, and the same batch may
 * be given again: OF_EBUSY means transient (locked, busy, disk full),
 * OF_EIO an I/O error (worth a few retries, not a wait), OF_ESTALE that a
 * rebuild replaced the file since st was opened (st is now open on the
 * new model, nothing of the batch was applied: resume from the new
 * file's offsets), OF_ERROR anything else. */
int of_store_apply_decoded(of_store *st, const of_store_batch *b,
                           const of_store_pos *pos, size_t npos,
                           of_store_stats *stats, char *errstr,
                           size_t errstr_size);

/* of_store_batch_decode() of msgs[0..n) into a batch of st's own, then
 * of_store_apply_decoded(): for callers who need not time decoding
 * (tests, tools). */
int of_store_apply_batch(of_store *st, const of_msg *msgs, size_t n,
                         const of_store_pos *pos, size_t npos,
                         of_store_stats *stats, char *errstr,
                         size_t errstr_size);

/* Between batches: whether a rebuild replaced the file since st was
 * opened. 0 no; OF_ESTALE yes (st is now open on the new model: resume
 * from its offsets); or an OF_E* failure. */
int of_store_check_replaced(of_store *st, char *errstr, size_t errstr_size);

/* How long (ms) a write waits for another process's lock before
 * of_store_apply_decoded reports OF_EBUSY. Default 1000. */
void of_store_set_busy_timeout(of_store *st, int ms);

/* processed_events keeps new ids in a small table that is sealed into a
 * run once it holds n rows (default 131,072). Tests set a small n to
 * exercise many runs. */
void of_store_set_seal_events(of_store *st, int64_t n);

/* ---- The file as a whole: status and rebuild (store_swap.c) ---- */

#define OF_STORE_TRUNCATED_MAX 512

/* What a read model holds and how it was made. */
typedef struct of_store_info {
        int64_t generation; /* changes when a rebuild swaps a model in */
        int64_t applied, ignored, duplicates, dead, batches; /* committed */
        char last_batch_at[OF_TS_LEN + 1];      /* "" when no batch yet */
        char rebuilt_at[OF_TS_LEN + 1];         /* "" when never rebuilt */
        char truncated[OF_STORE_TRUNCATED_MAX]; /* "" unless rebuilt over
                                                 * deleted history */
        int64_t orders;    /* rows of order_list; -1: not counted */
        int64_t events;    /* rows of processed_events; -1 likewise */
        int64_t dead_rows; /* rows of dead_letters; -1 likewise */
        int64_t orders_placed, orders_paid, placed_amount, paid_amount;
        of_store_part *parts; /* partition_offsets, by topic and partition */
        size_t nparts;
} of_store_info;

/* Read the info of the read model at path on a read-only connection (the
 * file must exist; a projector may be writing it), in one read
 * transaction. With counts, also the rows of order_list,
 * processed_events and dead_letters (a scan of each). Free with
 * of_store_info_free. */
int of_store_info_read(of_store_info *out, const char *path, int counts,
                       char *errstr, size_t errstr_size);
void of_store_info_free(of_store_info *info);

/* A file being built by a rebuild: no fsync (a crash throws it away),
 * and a record of when it was built and, when not "", what history was
 * missing (OF_STORE_TRUNCATED_MAX bytes at most). */
int of_store_set_rebuilt(of_store *st, const char *truncated, char *errstr,
                         size_t errstr_size);

/* How the partition offsets a read model holds fit a topic. */
typedef enum of_store_fit {
        OF_FIT_OK = 0,
        OF_FIT_OTHER_TOPIC, /* offsets of another topic: a wrong -t/--db */
        OF_FIT_MISSING,     /* partitions the topic does not have */
        OF_FIT_AHEAD,       /* next offsets past a partition's end */
} of_store_fit;

/* What to do when a read model does not fit its topic (OF_FIT_MISSING or
 * OF_FIT_AHEAD): the end of the one-line message project and status
 * print. */
#define OF_STORE_REBUILD_HINT                                                 \
        "; rebuild the read model from the topic with 'orderflow rebuild'"

/* Whether the partition offsets a read model holds (parts[0..n), any
 * topic) fit topic as the brokers see it now: cnt partitions (-1:
 * unknown, not checked) with end offsets end[0..cnt) (an entry of -1:
 * unknown, not checked; end may be NULL: ends not checked). Checks in
 * that order and reports the first kind found, in why (one line naming
 * the topic, the partitions and offsets; no remedy but for
 * OF_FIT_OTHER_TOPIC). */
of_store_fit of_store_check_fit(const of_store_part *parts, size_t n,
                                const char *topic, int32_t cnt,
                                const int64_t *end, char *why,
                                size_t why_size);

/* Copy the complete read model at fresh into the file at live, in ONE
 * write transaction of live (SQLite's online backup): readers of live see
 * the old model until it commits, then the new one; a projector on live
 * sees a new generation. Waits up to timeout_ms for live's write lock. */
int of_store_replace(const char *live, const char *fresh, int timeout_ms,
                     char *errstr, size_t errstr_size);

/* ---- Dedupe retention (store_runs.c) ---- */

/* What one of_store_prune() did. */
typedef struct of_store_pruned {
        int64_t runs;   /* sealed runs dropped */
        int64_t events; /* ids dropped with them */
        int sealed;     /* processed_recent sealed for its age: 1 or 0 */
        int more;       /* max_runs stopped it: more runs are due now */
} of_store_pruned;

/* Forget the ids recorded more than window_ms ago, whole runs at a time:
 * each sealed run whose sealing is older than the window is dropped in
 * its own short transaction (its processed_runs row, its table, the view
 * and its filter in memory), oldest first, at most max_runs of them (0:
 * no limit; a run of 131,072 ids takes about 0.1 s). Then
 * processed_recent is sealed if its first row is older than window_ms /
 * 4, so that no id outlives the window by much more than a quarter. Call
 * it between batches, never from inside one. A delivery of a forgotten
 * id counts as new: see docs/operations.md, dedupe retention. Other
 * connections on the file notice at their next batch. On failure (OF_EBUSY:
 * locked, try later) what was dropped before it stays dropped and *out says
 * what. */
int of_store_prune(of_store_pruned *out, of_store *st, int64_t window_ms,
                   size_t max_runs, char *errstr, size_t errstr_size);

/* Tests: the wall clock, in ms since 1970, by which ids are recorded,
 * runs sealed and ages measured (default the real one). now_ms gets
 * opaque; NULL restores the real clock. */
void of_store_set_clock(of_store *st, int64_t (*now_ms)(void *opaque),
                        void *opaque);

/* ---- Reading the contract's relations (store_query.c) ---- */

/* Open the read model at path read-only (it must exist) and start reading
 * the rows of one relation: "order_list", "order_totals", "daily_totals",
 * "dead_letters" (or any contract relation) in a stable order; the cursor
 * owns its connection (of_cursor_close). */
int of_store_cursor_open(of_cursor **out, const char *path,
                         const char *relation, char *errstr,
                         size_t errstr_size);
/* The path st was opened with (borrowed from st). */
const char *of_store_path(const of_store *st);

/* The version of the SQLite library this process runs with (static). */
const char *of_store_sqlite_version(void);

#endif
