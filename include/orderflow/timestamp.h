/* RFC 3339 date-time -> UTC "YYYY-MM-DDTHH:MM:SS.sssZ" (docs/reference.md 1).
 * Pure. */
#ifndef ORDERFLOW_TIMESTAMP_H
#define ORDERFLOW_TIMESTAMP_H

#include <stddef.h>
#include <stdint.h>

#define OF_TS_LEN 24 /* strlen("2026-11-27T10:15:30.123Z") */

/* Parse the len bytes at s (not NUL-terminated) as an RFC 3339 date-time:
 * `T` or `t`, seconds 00-59, any number of fraction digits (truncated to
 * milliseconds), `Z`, `z` or +HH:MM/-HH:MM, years 0001-9999 both as written
 * and after conversion to UTC. On success writes the normalised UTC form
 * and a NUL into out and returns 0; otherwise returns OF_ERROR and writes
 * the detail (e.g. "no such day: 2026-02-30") into errstr. */
int of_timestamp_normalise(char out[OF_TS_LEN + 1], const char *s, size_t len,
                           char *errstr, size_t errstr_size);

/* Milliseconds since 1970 (clamped at 0) as "YYYY-MM-DDTHH:MM:SS.sssZ". */
void of_timestamp_from_ms(char out[OF_TS_LEN + 1], int64_t ms);

/* A normalised timestamp (of_timestamp_normalise()'s output, any year
 * 0001-9999) as ms from 1970-01-01 (negative before), and back: 8 bytes
 * instead of 25 for whoever holds many. */
int64_t of_timestamp_pack(const char ts[OF_TS_LEN]);
void of_timestamp_unpack(char out[OF_TS_LEN + 1], int64_t ms);

/* The current time (CLOCK_REALTIME) in milliseconds since 1970. */
int64_t of_timestamp_now_ms(void);

#endif
