/* The embedded broker: librdkafka's mock cluster on loopback, reachable
 * over TCP by any Kafka client, for local use and tests. */
#ifndef ORDERFLOW_BROKER_H
#define ORDERFLOW_BROKER_H

#include <stddef.h>

typedef struct of_broker of_broker;

/* Start a mock cluster of broker_cnt brokers with topic created with
 * partitions partitions (topic may be NULL: none created). */
int of_broker_start(of_broker **out, int broker_cnt, const char *topic,
                    int partitions, char *errstr, size_t errstr_size);

/* The bootstrap list ("127.0.0.1:port,..."), owned by b. */
const char *of_broker_bootstraps(const of_broker *b);

/* The rd_kafka_mock_cluster_t for fault injection (tests). */
void *of_broker_mock(of_broker *b);

/* Create another topic. */
int of_broker_create_topic(of_broker *b, const char *topic, int partitions,
                           char *errstr, size_t errstr_size);

/* Apply one fault-injection command (a line, trailing newline allowed):
 *   down ID | up ID          broker ID (1, 2, ... or all) refuses or
 *                            accepts connections (no leader change)
 *   rtt ID MS                delay every response of broker ID by MS
 *   errors API N ERR         the next N requests of type API (Fetch,
 *                            OffsetCommit, Produce, ... or a number)
 *                            fail with ERR (NOT_LEADER_FOR_PARTITION,
 *                            _TRANSPORT, ... or a number)
 *   coordinator group|transaction KEY ID   move a coordinator
 *   leader TOPIC PARTITION ID              move a partition's leader
 * 0, or OF_ERROR with the reason in errstr. */
int of_broker_control(of_broker *b, const char *line, char *errstr,
                      size_t errstr_size);

void of_broker_stop(of_broker *b); /* b may be NULL */

#endif
