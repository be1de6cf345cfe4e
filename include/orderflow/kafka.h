/* Kafka client setup shared by the Kafka-facing modules: the client conf
 * from -b/-t/-X. rdkafka.h is not included here. */
#ifndef ORDERFLOW_KAFKA_H
#define ORDERFLOW_KAFKA_H

#include <stddef.h>
#include <stdint.h>

typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct rd_kafka_s rd_kafka_t;

#define OF_DEFAULT_TOPIC   "orders"
#define OF_DEFAULT_GROUP   "orderflow-projector"
#define OF_DEFAULT_BROKERS "localhost:9092"

/* Properties read from -F files, in the order read (see
 * of_kafka_props_read). Zero-initialise; of_kafka_props_clear frees. */
typedef struct of_kafka_props {
        char **items; /* "key=value" strings, each malloc'd */
        size_t cnt;
        size_t cap;    /* of items */
        char *exposed; /* the first file read that holds a secret and that
                        * group or others may read (malloc'd), or NULL */
} of_kafka_props;

/* Connection options common to every Kafka-facing command. */
typedef struct of_kafka_opts {
        const char *brokers; /* bootstrap.servers */
        const char *topic;
        const of_kafka_props *files; /* from -F, or NULL; borrowed */
        const char **props; /* -X "key=value" strings, applied in order */
        size_t props_cnt;
} of_kafka_opts;

#define OF_KAFKA_OPTS_INIT                                                    \
        {                                                                     \
                .brokers = OF_DEFAULT_BROKERS, .topic = OF_DEFAULT_TOPIC      \
        }

/* Build a client conf: the given defaults ("key=value", NULL-terminated,
 * may be NULL), then the -F properties (ko->files), then bootstrap.servers
 * from ko->brokers, then each -X property verbatim, so -X wins. Routes
 * librdkafka's log through of_log, with the value of a secret property
 * (of_kafka_prop_is_secret) shown as ***. On failure returns OF_ERROR with
 * librdkafka's own message (never a secret's value). The caller owns *out
 * (rd_kafka_conf_destroy, or hand it to rd_kafka_new). */
int of_kafka_conf_new(rd_kafka_conf_t **out, const of_kafka_opts *ko,
                      const char *const *defaults, char *errstr,
                      size_t errstr_size);

/* Check that ko's -F and -X properties are ones librdkafka accepts: 0, or
 * OF_ERROR with librdkafka's message (a usage error for the caller). On
 * success logs each property at debug level (a secret as key=***) and
 * warns about ko->files->exposed. */
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
int of_kafka_query_topic(const of_kafka_opts *ko, int timeout_ms, int32_t *cnt,
                         int64_t **low, int64_t **high, char *errstr,
                         size_t errstr_size);

/* Whether a "key=value" property (or a bare key) names a secret, whose
 * value must never be printed: a key containing "password" or "secret"
 * (any case: sasl.password, ssl.key.password, ssl.keystore.password,
 * sasl.oauthbearer.client.secret), ssl.key.pem and sasl.oauthbearer.config
 * (a private key, a token's claims). */
int of_kafka_prop_is_secret(const char *prop);

/* 1 with the last authentication failure a client of this process met
 * (librdkafka's words, no secret) in out; 0 when there was none. */
int of_kafka_auth_error(char *out, size_t size);

/* Append the properties of the file at path to props, in kcat's -F
 * format: one key=value a line; blank lines and lines whose first
 * non-blank character is '#' are ignored; white space around the key and
 * around the value is trimmed (a value cannot start or end with a blank:
 * use -X for that); no escapes, no continuation lines. A later line wins
 * over an earlier one. Each property is checked by librdkafka as it is
 * read. Sets props->exposed when the file holds a secret and its mode lets
 * group or others read it. On failure returns OF_ERROR with "PATH: why"
 * or "PATH:LINE: why" (never a secret's value); props may then hold part
 * of the file. */
int of_kafka_props_read(of_kafka_props *props, const char *path, char *errstr,
                        size_t errstr_size);

/* Free what props holds and zero it. props may be NULL. */
void of_kafka_props_clear(of_kafka_props *props);

/* The version of librdkafka this process runs with (static). */
const char *of_kafka_version(void);

#endif
