/* of_msg: one message of the topic as the store and the projector see it,
 * without anything of the Kafka client (so that the store needs nothing
 * of Kafka). */
#ifndef ORDERFLOW_MSG_H
#define ORDERFLOW_MSG_H

#include <stddef.h>
#include <stdint.h>

/* One message. Every pointer borrows from whoever made the of_msg (a
 * librdkafka message, a test's buffer) and lives as long as it does. */
typedef struct of_msg {
        const char *topic; /* NUL-terminated */
        int32_t partition;
        int64_t offset;
        const void *key; /* NULL when the message has no key */
        size_t key_len;
        const void *value; /* NULL when the message has no value */
        size_t value_len;
} of_msg;

#endif
