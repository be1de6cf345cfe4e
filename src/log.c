/* One line per entry on stderr: UTC time, level letter, message. Under
 * systemd, with stderr on the journal, each line also gets the "<N>"
 * prefix that gives it its syslog priority (sd-daemon(3)). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "orderflow/log.h"

int of_log_verbosity = OF_LOG_INFO;

static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static int to_journal; /* stderr is the stream $JOURNAL_STREAM names */

static void journal_check(void)
{
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat sb;

        to_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
                     fstat(STDERR_FILENO, &sb) == 0 &&
                     (unsigned long long)sb.st_dev == dev &&
                     (unsigned long long)sb.st_ino == ino;
}

static const char *const priorities[] = {"<3>", "<4>", "<6>", "<7>"};

const char *of_log_journal_prefix(of_log_level level)
{
        pthread_once(&journal_once, journal_check);
        return to_journal ? priorities[level] : "";
}

void of_log_write(of_log_level level, const char *fmt, ...)
{
        static const char letters[] = "EWID";
        char when[32];
        char line[2048];
        char *p;
        struct timespec ts;
        struct tm tm;
        va_list ap;

        pthread_once(&journal_once, journal_check);
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        /* One entry, one line, whatever the message holds. */
        for (p = line; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        /* One fprintf per entry so lines from threads do not interleave. */
        fprintf(stderr, "%s%s.%03ldZ %c %s\n",
                to_journal ? priorities[level] : "", when,
                ts.tv_nsec / 1000000, letters[level], line);
}
