/* Logging to stderr: one line per entry with UTC time and a level letter.
 * The level is tested before anything is formatted. */
#ifndef ORDERFLOW_LOG_H
#define ORDERFLOW_LOG_H

typedef enum of_log_level {
        OF_LOG_ERROR = 0,
        OF_LOG_WARN = 1,
        OF_LOG_INFO = 2,
        OF_LOG_DEBUG = 3,
} of_log_level;

extern int of_log_verbosity; /* entries above this level are dropped */

/* "<3>" ... "<7>", the syslog priority of level, when stderr is the
 * journal (systemd's $JOURNAL_STREAM); else "". Every line a command
 * writes to stderr starts with it, so that journalctl -p filters them
 * all. */
const char *of_log_journal_prefix(of_log_level level);

void of_log_write(of_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#define of_log(level, ...)                                                    \
        do {                                                                  \
                if ((int)(level) <= of_log_verbosity)                         \
                        of_log_write((level), __VA_ARGS__);                   \
        } while (0)

#endif
