/* UUIDv7 event ids (RFC 9562): 48 bits of Unix time in ms, then the
 * version, the variant and 74 random bits from the kernel. Which events
 * get one is the writer's business (appdb.c). */
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>

#include "orderflow/error.h"
#include "orderflow/timestamp.h"
#include "orderflow/uuid.h"

int of_uuid7(char out[37], char *errstr, size_t errstr_size)
{
        unsigned char b[16];
        uint64_t ms = (uint64_t)of_timestamp_now_ms();
        int i;

        if (getrandom(b + 6, 10, 0) != 10)
                return of_errf(errstr, errstr_size, "getrandom failed");
        for (i = 0; i < 6; i++)
                b[i] = (unsigned char)(ms >> (40 - 8 * i));
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x70); /* version 7 */
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
        snprintf(out, 37,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                 b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}
