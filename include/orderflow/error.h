/* Error codes and the errstr convention shared by every module.
 * A fallible function returns 0 or a negative OF_E* code and writes a
 * one-line message (no trailing newline) into (errstr, errstr_size). */
#ifndef ORDERFLOW_ERROR_H
#define ORDERFLOW_ERROR_H

#include <stddef.h>
#include <stdint.h>

enum {
        OF_OK = 0,
        OF_ERROR = -1,     /* anything not listed below */
        OF_ENOTFOUND = -2, /* the thing asked for does not exist */
        OF_EBUSY = -3,     /* transient: locked, busy, disk full; wait */
        OF_EABORT = -4,    /* stopped on purpose (test hook, stale file) */
        OF_EEXISTS = -5,   /* the thing to create exists already */
        OF_ESTALE = -6,    /* the file was replaced (a rebuild): reopened */
        OF_EIO = -7,       /* an I/O error: a few retries, then give up */
};

/* Exit codes of the command line (docs/reference.md 4). */
enum {
        OF_EXIT_OK = 0,
        OF_EXIT_FAILURE = 1,
        OF_EXIT_USAGE = 2,
};

/* printf into errstr, always NUL-terminated, truncating silently.
 * errstr may be NULL (then nothing is written). Returns OF_ERROR so that
 * callers can write `return of_errf(...)`. */
int of_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* ---- Retrying: one rule for every loop that retries a database ---- */

#define OF_RETRY_IO_MAX 5    /* attempts ending in OF_EIO before giving up */
#define OF_RETRY_LOG_MS 5000 /* at most one warning this often */

/* The failures of one operation that a loop retries: OF_EBUSY (locked,
 * busy, disk full) is waited out for as long as it lasts, with waits
 * doubling from 50 ms to max_ms; OF_EIO (the device or file system
 * failed) gets OF_RETRY_IO_MAX attempts in all, about 4 s, then the
 * caller gives up; anything else at once. A warning when the failures
 * start, then at most one every OF_RETRY_LOG_MS. Start from {0}, or set
 * max_ms (0: 5000). */
typedef struct of_retry {
        int max_ms;        /* longest wait between two attempts */
        int wait_ms;       /* the last wait for OF_EBUSY */
        int64_t since_ms;  /* the first failure of this spell; 0: none */
        int64_t logged_ms; /* the last warning */
        unsigned failures; /* attempts failed in this spell */
        unsigned io;       /* of them with OF_EIO */
        unsigned lines;    /* warnings logged, in all */
} of_retry;

/* After an attempt that failed with err, its message in errstr, at now_ms
 * (any clock that does not go back): the wait in ms before the next
 * attempt, or -1 to give up (err is neither OF_EBUSY nor OF_EIO, or it is
 * the last OF_EIO allowed: then errstr gets " (N attempts)" appended).
 * what names the operation in the warning ("read model", "outbox"). */
int of_retry_failed(of_retry *r, int err, const char *what, char *errstr,
                    size_t errstr_size, int64_t now_ms);

/* After an attempt that succeeded: the spell of failures ends (with an
 * info line when it was warned about). */
void of_retry_ok(of_retry *r, const char *what, int64_t now_ms);

#endif
