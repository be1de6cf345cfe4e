/* Error codes and the errstr convention shared by every module.
 * A fallible function returns 0 or a negative OF_E* code and writes a
 * one-line message (no trailing newline) into (errstr, errstr_size). */
#ifndef ORDERFLOW_ERROR_H
#define ORDERFLOW_ERROR_H

#include <stddef.h>

enum {
        OF_OK        = 0,
        OF_ERROR     = -1, /* anything not listed below */
        OF_ENOTFOUND = -2, /* the thing asked for does not exist */
        OF_EBUSY     = -3, /* transient: locked, busy, disk full; retry */
        OF_EABORT    = -4, /* stopped on purpose (test hook, stale file) */
        OF_EEXISTS   = -5, /* the thing to create exists already */
        OF_ESTALE    = -6, /* the file was replaced (a rebuild): reopened */
};

/* Exit codes of the command line (CONTRACT 3). */
enum {
        OF_EXIT_OK      = 0,
        OF_EXIT_FAILURE = 1,
        OF_EXIT_USAGE   = 2,
};

/* printf into errstr, always NUL-terminated, truncating silently.
 * errstr may be NULL (then nothing is written). Returns OF_ERROR so that
 * callers can write `return of_errf(...)`. */
int of_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
