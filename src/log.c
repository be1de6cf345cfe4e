/* One line per entry on stderr: UTC time, level letter, message. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "orderflow/log.h"

int of_log_verbosity = OF_LOG_INFO;

void of_log_write(of_log_level level, const char *fmt, ...)
{
        static const char letters[] = "EWID";
        char when[32];
        char line[2048];
        struct timespec ts;
        struct tm tm;
        va_list ap;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        /* One fprintf per entry so lines from threads do not interleave. */
        fprintf(stderr, "%s.%03ldZ %c %s\n", when, ts.tv_nsec / 1000000,
                letters[level], line);
}
