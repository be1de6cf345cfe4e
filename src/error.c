/* of_errf(): the one way messages get into an errstr buffer; of_retry:
 * the one rule for waiting out a failing database. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "orderflow/error.h"
#include "orderflow/log.h"

int of_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        va_list ap;

        if (errstr && errstr_size) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return OF_ERROR;
}

int of_retry_failed(of_retry *r, int err, const char *what, char *errstr,
                    size_t errstr_size, int64_t now_ms)
{
        int max = r->max_ms > 0 ? r->max_ms : 5000, wait;
        size_t len;

        if (err != OF_EBUSY && err != OF_EIO)
                return -1;
        if (!r->failures++)
                r->since_ms = now_ms;
        if (err == OF_EIO) {
                /* A disk that failed a write may fail the next: a few
                 * tries for a passing fault, then someone must look. */
                if (++r->io >= OF_RETRY_IO_MAX) {
                        len = strlen(errstr);
                        if (len + 1 < errstr_size)
                                snprintf(errstr + len, errstr_size - len,
                                         " (%u attempts)", r->io);
                        return -1;
                }
                wait = 250 << (r->io - 1); /* 250, 500, 1000, 2000 ms */
        } else {
                wait = r->wait_ms ? r->wait_ms * 2 : 50;
                r->wait_ms = wait = wait > max ? max : wait;
        }
        if (r->failures == 1 || now_ms - r->logged_ms >= OF_RETRY_LOG_MS) {
                of_log(OF_LOG_WARN,
                       "%s: %s; retrying (failed %u time%s in "
                       "%.1f s)",
                       what, errstr, r->failures, r->failures == 1 ? "" : "s",
                       (double)(now_ms - r->since_ms) / 1000);
                r->logged_ms = now_ms;
                r->lines++;
        }
        return wait;
}

void of_retry_ok(of_retry *r, const char *what, int64_t now_ms)
{
        if (!r->failures)
                return;
        of_log(OF_LOG_INFO, "%s: going on after %u failed attempt%s in %.1f s",
               what, r->failures, r->failures == 1 ? "" : "s",
               (double)(now_ms - r->since_ms) / 1000);
        r->failures = 0;
        r->io = 0;
        r->wait_ms = 0;
}
