/* Kafka client setup shared by the Kafka-facing modules: the client conf
 * from -b/-t/-X, and of_msg, the broker-free view of one message that the
 * store and the projector work on. rdkafka.h is not included here. */
#ifndef ORDERFLOW_KAFKA_H
#define ORDERFLOW_KAFKA_H

#include <stddef.h>
#include <stdint.h>

typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct rd_kafka_s rd_kafka_t;

#define OF_DEFAULT_TOPIC   "orders"
#define OF_DEFAULT_GROUP   "orderflow-projector"
#define OF_DEFAULT_BROKERS "localhost:9092"

/* One message. Every pointer borrows from whoever made the of_msg (a
 * librdkafka message, a test's buffer) and lives as long as it does. */
typedef struct of_msg {
        const char *topic;  /* NUL-terminated */
        int32_t partition;
        int64_t offset;
        const void *key;    /* NULL when the message has no key */
        size_t key_len;
        const void *value;  /* NULL when the message has no value */
        size_t value_len;
} of_msg;

/* Connection options common to every Kafka-facing command. */
typedef struct of_kafka_opts {
        const char *brokers; /* bootstrap.servers */
        const char *topic;
        const char **props;  /* "key=value" strings, applied in order */
        size_t props_cnt;
} of_kafka_opts;

#define OF_KAFKA_OPTS_INIT                                                     \
        {.brokers = OF_DEFAULT_BROKERS, .topic = OF_DEFAULT_TOPIC}

/* Build a client conf: bootstrap.servers from ko->brokers, then the
 * given defaults ("key=value", NULL-terminated, may be NULL), then each
 * -X property verbatim, so -X wins. Routes librdkafka's log through
 * of_log. On failure returns OF_ERROR with librdkafka's own message. The
 * caller owns *out (rd_kafka_conf_destroy, or hand it to rd_kafka_new). */
int of_kafka_conf_new(rd_kafka_conf_t **out, const of_kafka_opts *ko,
                      const char *const *defaults, char *errstr,
                      size_t errstr_size);

/* Check that ko's -X properties are ones librdkafka accepts: 0, or
 * OF_ERROR with librdkafka's message (a usage error for the caller). */
int of_kafka_check_opts(const of_kafka_opts *ko, char *errstr,
                        size_t errstr_size);

/* The partitions of topic and their first and end (high watermark)
 * offsets, asked of the brokers through rk (any client type), waiting up
 * to timeout_ms for each answer. *low and *high are indexed by partition
 * id, *cnt of them; the caller frees both. */
int of_kafka_watermarks(rd_kafka_t *rk, const char *topic, int timeout_ms,
                        int32_t *cnt, int64_t **low, int64_t **high,
                        char *errstr, size_t errstr_size);

/* The same for ko->topic through a short-lived client of ko's brokers. */
int of_kafka_query_topic(const of_kafka_opts *ko, int timeout_ms,
                         int32_t *cnt, int64_t **low, int64_t **high,
                         char *errstr, size_t errstr_size);

/* Whether a "key=value" property names a secret (its value must never be
 * printed): anything containing "password" or "secret". */
int of_kafka_prop_is_secret(const char *prop);

#endif
