/* Event ids: UUIDv7 (RFC 9562), time-ordered, so that ids made later sort
 * later. Made by the writer for each outbox row. */
#ifndef ORDERFLOW_UUID_H
#define ORDERFLOW_UUID_H

#include <stddef.h>

/* A new UUIDv7 as 36 characters + NUL, from the clock and the kernel's
 * random source. 0, or OF_ERROR when the random source fails. */
int of_uuid7(char out[37], char *errstr, size_t errstr_size);

#endif
