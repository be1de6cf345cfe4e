/* kadmin: the admin and test tool of tests/kafka/ for a real Kafka cluster:
 * topics created and deleted (waiting until the metadata agrees), records
 * deleted, watermarks, leaders, group coordinators, and a transactional
 * producer run by a script on stdin. The client configuration (-F, -X,
 * secrets kept out of messages) is src/kafka.c's; brokers are broker.sh's. */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/error.h"
#include "orderflow/kafka.h"
#include "orderflow/log.h"

#define TIMEOUT_DEFAULT_S 60
#define TIMEOUT_MAX_S     3600  /* librdkafka's longest admin timeout */
#define RETRY_MS          200   /* between attempts while brokers start */
#define ATTEMPT_MAX_MS    10000 /* one admin request, at most */
#define MAX_PROPS         64    /* -X properties */

/* Every client gets these first; -F and -X may override them.
 * - A producer's metadata request for one topic asks the broker to create
 *   it (librdkafka's producer default): 'leader' or the wait of 'delete'
 *   would make the very topic they look at.
 * - A broker that is still starting is found again within a second, not
 *   after librdkafka's 10 s backoff. */
#define CLIENT_DEFAULTS                                                       \
        "allow.auto.create.topics=false", "reconnect.backoff.max.ms=1000"

struct kadmin {
        of_kafka_opts ko;     /* -b, -F and -X, for of_kafka_conf_new */
        of_kafka_props files; /* read from -F files */
        const char *props[MAX_PROPS]; /* -X, in order */
        int timeout_s;                /* -T */
        int64_t deadline_ms;          /* CLOCK_MONOTONIC ms when -T is up */
};

/* A command: an OF_EXIT_* code, the message in errstr unless OF_EXIT_OK. */
typedef int command_fn(const struct kadmin *ka, rd_kafka_t *rk, char **args,
                       int cnt, char *errstr, size_t errstr_size);

struct command {
        const char *name;
        command_fn *run;
        int min_args;
        int max_args;      /* -1: no limit */
        int transactional; /* its client gets a transactional.id */
};

static const char usage_text[] =
        "Usage: kadmin -b BOOTSTRAP [-X PROP=VALUE]... [-F FILE] "
        "[-T SECONDS] COMMAND ARGS...\n"
        "Admin and test tool for the tests against a real Kafka cluster.\n"
        "\n"
        "  -b BOOTSTRAP   bootstrap brokers (or a -F file's "
        "bootstrap.servers)\n"
        "  -X PROP=VALUE  librdkafka property, e.g. sasl.username "
        "(repeatable)\n"
        "  -F FILE        librdkafka properties, key=value lines "
        "(repeatable)\n"
        "  -T SECONDS     time limit, 1..3600 (default 60): for the whole\n"
        "                 command; for txn, for each init, commit, abort\n"
        "  -v             librdkafka's log on stderr (secrets as ***)\n"
        "  -h, --help     this text\n"
        "\n"
        "Commands:\n"
        "  create TOPIC PARTITIONS [REPLICATION] [KEY=VALUE...]\n"
        "      create TOPIC with the topic configs KEY=VALUE, then wait "
        "until\n"
        "      every partition has a leader; retried every 200 ms while\n"
        "      brokers start. A TOPIC with PARTITIONS partitions is fine.\n"
        "  delete TOPIC\n"
        "      delete TOPIC, then wait until the metadata no longer lists "
        "it\n"
        "  delete-records TOPIC PARTITION OFFSET\n"
        "      delete the records before OFFSET (-1: the high watermark);\n"
        "      print the new low watermark\n"
        "  watermarks TOPIC        print PARTITION LOW HIGH for each "
        "partition\n"
        "  leader TOPIC PARTITION  print the broker id of the partition's "
        "leader\n"
        "  coordinator GROUP       print the broker id of GROUP's "
        "coordinator\n"
        "  txn TOPIC\n"
        "      a transactional producer (transactional.id kadmin-PID unless "
        "-X\n"
        "      sets one) run by stdin, one command a line: begin, commit,\n"
        "      abort, or send PARTITION KEY VALUE (VALUE: the rest of the "
        "line,\n"
        "      after KEY and one space). Prints \"committed N\" or "
        "\"aborted N\"\n"
        "      (N messages) after each commit or abort.\n"
        "\n"
        "Exit status: 0 done, 1 failed (one line on stderr), 2 usage "
        "error.\n";

/* ---- helpers ---- */

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What is left of -T, in ms: at least 1, since librdkafka takes 0 as
 * "do not wait" and we still want the one answer already on its way. */
static int left_ms(const struct kadmin *ka)
{
        int64_t left = ka->deadline_ms - now_ms();

        return left < 1 ? 1 : (int)left;
}

/* Sleep before the next attempt: 1, or 0 when -T runs out first. */
static int retry_wait(const struct kadmin *ka)
{
        struct timespec ts = {0, RETRY_MS * 1000000L};

        if (ka->deadline_ms - now_ms() <= RETRY_MS)
                return 0;
        nanosleep(&ts, NULL);
        return 1;
}

/* Append " (-T ran out)" to the message in errstr. */
static void ran_out(char *errstr, size_t errstr_size)
{
        size_t n = strlen(errstr);

        snprintf(errstr + n, errstr_size - n, " (-T ran out)");
}

/* printf into errstr: OF_EXIT_USAGE, for `return usage_err(...)`. */
static int usage_err(char *errstr, size_t errstr_size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int usage_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
        return OF_EXIT_USAGE;
}

/* A whole number in [min, max] from s, or OF_ERROR with "name: why". */
static int num_arg(int64_t *out, const char *s, int64_t min, int64_t max,
                   const char *name, char *errstr, size_t errstr_size)
{
        char *end;

        errno = 0;
        *out = strtoll(s, &end, 10);
        if (end != s && !*end && !errno && *out >= min && *out <= max)
                return 0;
        if (max < INT32_MAX)
                return of_errf(errstr, errstr_size,
                               "%s: not a whole number in %" PRId64
                               "..%" PRId64 ": %s",
                               name, min, max, s);
        return of_errf(errstr, errstr_size,
                       "%s: not a whole number >= %" PRId64 ": %s", name, min,
                       s);
}

/* "Broker: Topic already exists: <the broker's words>", or one of the two
 * when the broker's words are missing or already hold librdkafka's. */
static void describe(char *errstr, size_t errstr_size, rd_kafka_resp_err_t err,
                     const char *msg)
{
        const char *what = rd_kafka_err2str(err);

        if (!msg || !*msg)
                of_errf(errstr, errstr_size, "%s", what);
        else if (strstr(msg, what))
                of_errf(errstr, errstr_size, "%s", msg);
        else
                of_errf(errstr, errstr_size, "%s: %s", what, msg);
}

/* The failures that mean "not yet": brokers unreachable or still starting,
 * fewer brokers registered than the replication factor, a leader or
 * controller moving. Retried every RETRY_MS until -T. */
static int transient(rd_kafka_resp_err_t err)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
        case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
        case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
                return 1;
        default:
                return 0;
        }
}

/* A producer handle of -b/-F/-X, with CLIENT_DEFAULTS and extra ("key=value"
 * or NULL) applied before -F and -X. The caller owns *out. */
static int client_new(rd_kafka_t **out, const struct kadmin *ka,
                      const char *extra, char *errstr, size_t errstr_size)
{
        const char *defaults[] = {CLIENT_DEFAULTS, extra, NULL};
        rd_kafka_conf_t *conf;
        char why[512];

        if (of_kafka_conf_new(&conf, &ka->ko, defaults, errstr, errstr_size))
                return OF_ERROR;
        if (!(*out = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why,
                                  sizeof(why)))) {
                rd_kafka_conf_destroy(conf);
                return of_errf(errstr, errstr_size, "%s", why);
        }
        return 0;
}

/* ---- admin requests ---- */

/* One admin request of type op on obj (an rd_kafka_NewTopic_t,
 * rd_kafka_DeleteTopic_t or rd_kafka_DeleteRecords_t; borrowed), with what
 * is left of -T: the error of its one result, described in errstr; for
 * DeleteRecords the new low watermark in *low. */
static rd_kafka_resp_err_t admin_call(const struct kadmin *ka, rd_kafka_t *rk,
                                      rd_kafka_admin_op_t op, void *obj,
                                      int64_t *low, char *errstr,
                                      size_t errstr_size)
{
        rd_kafka_queue_t *rkqu = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(rk, op);
        rd_kafka_NewTopic_t *nt = obj;
        rd_kafka_DeleteTopic_t *dt = obj;
        rd_kafka_DeleteRecords_t *dr = obj;
        const rd_kafka_topic_result_t **res;
        const rd_kafka_topic_partition_list_t *offsets;
        rd_kafka_event_t *rkev;
        rd_kafka_resp_err_t err;
        const char *msg = NULL;
        char why[256];
        size_t cnt = 0;
        int left = left_ms(ka);

        /* A starting broker may take a request and never answer it: send
         * it again rather than spend all of -T on it. */
        if (left > ATTEMPT_MAX_MS)
                left = ATTEMPT_MAX_MS;
        rd_kafka_AdminOptions_set_request_timeout(options, left, why,
                                                  sizeof(why));
        /* The broker must answer before librdkafka stops waiting, or we
         * would not learn that the topic was created after all. */
        rd_kafka_AdminOptions_set_operation_timeout(
                options, left > 2000 ? left - 1000 : left / 2, why,
                sizeof(why));
        if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
                rd_kafka_CreateTopics(rk, &nt, 1, options, rkqu);
        else if (op == RD_KAFKA_ADMIN_OP_DELETETOPICS)
                rd_kafka_DeleteTopics(rk, &dt, 1, options, rkqu);
        else
                rd_kafka_DeleteRecords(rk, &dr, 1, options, rkqu);
        /* librdkafka posts a timed-out result itself; 1 s more for it. */
        if (!(rkev = rd_kafka_queue_poll(rkqu, left + 1000))) {
                err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        } else if ((err = rd_kafka_event_error(rkev))) {
                msg = rd_kafka_event_error_string(rkev);
        } else if (op == RD_KAFKA_ADMIN_OP_DELETERECORDS) {
                offsets = rd_kafka_DeleteRecords_result_offsets(
                        rd_kafka_event_DeleteRecords_result(rkev));
                err = offsets && offsets->cnt == 1
                              ? offsets->elems[0].err
                              : RD_KAFKA_RESP_ERR__BAD_MSG;
                if (!err)
                        *low = offsets->elems[0].offset;
        } else {
                res = op == RD_KAFKA_ADMIN_OP_CREATETOPICS
                              ? rd_kafka_CreateTopics_result_topics(
                                        rd_kafka_event_CreateTopics_result(
                                                rkev),
                                        &cnt)
                              : rd_kafka_DeleteTopics_result_topics(
                                        rd_kafka_event_DeleteTopics_result(
                                                rkev),
                                        &cnt);
                err = cnt == 1 ? rd_kafka_topic_result_error(res[0])
                               : RD_KAFKA_RESP_ERR__BAD_MSG;
                if (cnt == 1)
                        msg = rd_kafka_topic_result_error_string(res[0]);
        }
        if (err)
                describe(errstr, errstr_size, err, msg);
        if (rkev)
                rd_kafka_event_destroy(rkev);
        rd_kafka_AdminOptions_destroy(options);
        rd_kafka_queue_destroy(rkqu);
        return err;
}

/* admin_call() again every RETRY_MS while it fails with a transient error:
 * 0 once it succeeds or fails with ok, else its last error (errstr, with
 * "(-T ran out)" when -T ended the retries). */
static rd_kafka_resp_err_t admin_retry(const struct kadmin *ka, rd_kafka_t *rk,
                                       rd_kafka_admin_op_t op, void *obj,
                                       rd_kafka_resp_err_t ok, int64_t *low,
                                       char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t err;

        while ((err = admin_call(ka, rk, op, obj, low, errstr, errstr_size)) &&
               err != ok) {
                if (!transient(err))
                        return err;
                if (!retry_wait(ka)) {
                        ran_out(errstr, errstr_size);
                        return err;
                }
        }
        return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* ---- metadata ---- */

/* The metadata of every topic (*out, rd_kafka_metadata_destroy) with
 * topic's entry in *t, NULL when not listed; or the request's error. Not
 * of the one topic: a producer's request for it may create it. */
static rd_kafka_resp_err_t metadata(const struct kadmin *ka, rd_kafka_t *rk,
                                    const char *topic,
                                    const struct rd_kafka_metadata **out,
                                    const struct rd_kafka_metadata_topic **t)
{
        rd_kafka_resp_err_t err =
                rd_kafka_metadata(rk, 1, NULL, out, left_ms(ka));
        int i;

        *t = NULL;
        for (i = 0; !err && i < (*out)->topic_cnt; i++)
                if (!strcmp((*out)->topics[i].topic, topic))
                        *t = &(*out)->topics[i];
        return err;
}

/* Wait until the metadata lists topic with want partitions, each with a
 * leader, or (want 0) no longer lists it: 0, or OF_ERROR when -T runs out
 * or the topic has another partition count. */
static int wait_topic(const struct kadmin *ka, rd_kafka_t *rk,
                      const char *topic, int want, char *errstr,
                      size_t errstr_size)
{
        const struct rd_kafka_metadata *md;
        const struct rd_kafka_metadata_topic *t;
        rd_kafka_resp_err_t err;
        int i, led, rc = 1; /* 1: not yet */

        do {
                if ((err = metadata(ka, rk, topic, &md, &t))) {
                        describe(errstr, errstr_size, err, NULL);
                        continue;
                }
                if (!want) {
                        rc = t ? 1 : 0;
                        of_errf(errstr, errstr_size, "still listed");
                } else if (!t || t->err) {
                        describe(errstr, errstr_size,
                                 t ? t->err
                                   : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                                 NULL);
                } else if (t->partition_cnt && t->partition_cnt != want) {
                        rc = of_errf(errstr, errstr_size,
                                     "exists with %d partitions, not %d",
                                     t->partition_cnt, want);
                } else {
                        for (i = led = 0; i < t->partition_cnt; i++)
                                led += t->partitions[i].leader != -1;
                        rc = led != want;
                        of_errf(errstr, errstr_size,
                                "%d of %d partitions have a leader", led,
                                want);
                }
                rd_kafka_metadata_destroy(md);
        } while (rc == 1 && retry_wait(ka));
        if (rc == 1) {
                ran_out(errstr, errstr_size);
                rc = OF_ERROR;
        }
        return rc;
}

/* ---- commands ---- */

static int cmd_create(const struct kadmin *ka, rd_kafka_t *rk, char **args,
                      int cnt, char *errstr, size_t errstr_size)
{
        rd_kafka_NewTopic_t *nt = NULL;
        int64_t parts, repl = -1;
        char key[256], why[512];
        size_t n;
        int i = 2, rc = OF_EXIT_USAGE;

        if (num_arg(&parts, args[1], 1, INT32_MAX, "create: PARTITIONS",
                    errstr, errstr_size))
                goto out;
        if (cnt > 2 && !strchr(args[2], '=')) {
                if (num_arg(&repl, args[2], 1, INT16_MAX,
                            "create: REPLICATION", errstr, errstr_size))
                        goto out;
                i = 3;
        }
        if (!(nt = rd_kafka_NewTopic_new(args[0], (int)parts, (int)repl, why,
                                         sizeof(why)))) {
                of_errf(errstr, errstr_size, "create: %s", why);
                goto out;
        }
        for (; i < cnt; i++) {
                if ((n = strcspn(args[i], "=")) == 0 || !args[i][n] ||
                    n >= sizeof(key)) {
                        usage_err(errstr, errstr_size,
                                  "create: expected KEY=VALUE: %s", args[i]);
                        goto out;
                }
                memcpy(key, args[i], n);
                key[n] = '\0';
                rd_kafka_NewTopic_set_config(nt, key, args[i] + n + 1);
        }
        rc = OF_EXIT_FAILURE;
        /* An existing topic goes on to the wait, which checks its count. */
        if (admin_retry(ka, rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, nt,
                        RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, NULL, why,
                        sizeof(why))) {
                of_errf(errstr, errstr_size, "create %s: %s", args[0], why);
                goto out;
        }
        if (wait_topic(ka, rk, args[0], (int)parts, why, sizeof(why))) {
                of_errf(errstr, errstr_size, "create %s: %s", args[0], why);
                goto out;
        }
        rc = OF_EXIT_OK;
out:
        if (nt)
                rd_kafka_NewTopic_destroy(nt);
        return rc;
}

static int cmd_delete(const struct kadmin *ka, rd_kafka_t *rk, char **args,
                      int cnt, char *errstr, size_t errstr_size)
{
        rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(args[0]);
        char why[512];
        int rc = OF_EXIT_FAILURE;

        (void)cnt;
        if (admin_retry(ka, rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, dt,
                        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, NULL, why,
                        sizeof(why))) {
                of_errf(errstr, errstr_size, "delete %s: %s", args[0], why);
                goto out;
        }
        if (wait_topic(ka, rk, args[0], 0, why, sizeof(why))) {
                of_errf(errstr, errstr_size, "delete %s: %s", args[0], why);
                goto out;
        }
        rc = OF_EXIT_OK;
out:
        rd_kafka_DeleteTopic_destroy(dt);
        return rc;
}

static int cmd_delete_records(const struct kadmin *ka, rd_kafka_t *rk,
                              char **args, int cnt, char *errstr,
                              size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *offsets;
        rd_kafka_DeleteRecords_t *dr;
        int64_t partition, offset, low = -1;
        char why[512];
        int rc = OF_EXIT_OK;

        (void)cnt;
        if (num_arg(&partition, args[1], 0, INT32_MAX,
                    "delete-records: PARTITION", errstr, errstr_size) ||
            num_arg(&offset, args[2], -1, INT64_MAX, "delete-records: OFFSET",
                    errstr, errstr_size))
                return OF_EXIT_USAGE;
        offsets = rd_kafka_topic_partition_list_new(1);
        /* -1 is RD_KAFKA_OFFSET_END, the broker's "high watermark". */
        rd_kafka_topic_partition_list_add(offsets, args[0], (int32_t)partition)
                ->offset = offset;
        dr = rd_kafka_DeleteRecords_new(offsets);
        if (admin_retry(ka, rk, RD_KAFKA_ADMIN_OP_DELETERECORDS, dr, 0, &low,
                        why, sizeof(why))) {
                of_errf(errstr, errstr_size,
                        "delete-records %s [%" PRId64 "]: %s", args[0],
                        partition, why);
                rc = OF_EXIT_FAILURE;
        } else {
                printf("%" PRId64 "\n", low);
        }
        rd_kafka_DeleteRecords_destroy(dr);
        rd_kafka_topic_partition_list_destroy(offsets);
        return rc;
}

static int cmd_watermarks(const struct kadmin *ka, rd_kafka_t *rk, char **args,
                          int cnt, char *errstr, size_t errstr_size)
{
        int64_t *low, *high;
        int32_t n, p;

        (void)cnt;
        if (of_kafka_watermarks(rk, args[0], left_ms(ka), &n, &low, &high,
                                errstr, errstr_size))
                return OF_EXIT_FAILURE;
        /* Indexed by partition id, so already sorted. */
        for (p = 0; p < n; p++)
                printf("%" PRId32 " %" PRId64 " %" PRId64 "\n", p, low[p],
                       high[p]);
        free(low);
        free(high);
        return OF_EXIT_OK;
}

static int cmd_leader(const struct kadmin *ka, rd_kafka_t *rk, char **args,
                      int cnt, char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        const struct rd_kafka_metadata_topic *t;
        rd_kafka_resp_err_t err;
        int64_t partition;
        int i, rc = OF_EXIT_FAILURE;

        (void)cnt;
        if (num_arg(&partition, args[1], 0, INT32_MAX, "leader: PARTITION",
                    errstr, errstr_size))
                return OF_EXIT_USAGE;
        if ((err = metadata(ka, rk, args[0], &md, &t)) ||
            (err = t ? t->err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)) {
                of_errf(errstr, errstr_size, "leader %s: %s", args[0],
                        rd_kafka_err2str(err));
                goto out;
        }
        for (i = 0; i < t->partition_cnt; i++)
                if (t->partitions[i].id == partition)
                        break;
        if (i == t->partition_cnt || t->partitions[i].leader == -1) {
                of_errf(errstr, errstr_size, "leader %s [%" PRId64 "]: %s",
                        args[0], partition,
                        i == t->partition_cnt ? "no such partition"
                                              : "no leader");
                goto out;
        }
        printf("%" PRId32 "\n", t->partitions[i].leader);
        rc = OF_EXIT_OK;
out:
        if (md)
                rd_kafka_metadata_destroy(md);
        return rc;
}

static int cmd_coordinator(const struct kadmin *ka, rd_kafka_t *rk,
                           char **args, int cnt, char *errstr,
                           size_t errstr_size)
{
        const struct rd_kafka_group_list *gl = NULL;
        const struct rd_kafka_group_info *gi = NULL;
        rd_kafka_resp_err_t err;
        int i, rc = OF_EXIT_FAILURE;

        (void)cnt;
        /* Every broker is asked; the one that knows GROUP coordinates it.
         * _PARTIAL: some brokers did not answer, the others' groups came. */
        err = rd_kafka_list_groups(rk, args[0], &gl, left_ms(ka));
        if (err && !(err == RD_KAFKA_RESP_ERR__PARTIAL && gl)) {
                of_errf(errstr, errstr_size, "coordinator %s: %s", args[0],
                        rd_kafka_err2str(err));
                goto out;
        }
        for (i = 0; i < gl->group_cnt; i++)
                if (!strcmp(gl->groups[i].group, args[0]))
                        gi = &gl->groups[i];
        if (!gi || gi->err) {
                of_errf(errstr, errstr_size, "coordinator %s: %s", args[0],
                        gi ? rd_kafka_err2str(gi->err) : "unknown group");
                goto out;
        }
        printf("%" PRId32 "\n", gi->broker.id);
        rc = OF_EXIT_OK;
out:
        if (gl)
                rd_kafka_group_list_destroy(gl);
        return rc;
}

/* ---- txn ---- */

struct txn {
        rd_kafka_t *rk; /* the transactional producer, borrowed */
        const char *topic;
        int timeout_ms; /* for each init, commit and abort */
        int open;       /* between begin and commit or abort */
        long cnt;       /* messages sent in the open transaction */
};

/* Report error (consumed) as "what: message": OF_ERROR. */
static int txn_error(rd_kafka_error_t *error, const char *what, char *errstr,
                     size_t errstr_size)
{
        of_errf(errstr, errstr_size, "%s: %s", what,
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return OF_ERROR;
}

/* "PARTITION KEY VALUE", len bytes at s (VALUE may hold any byte). */
static int txn_send(struct txn *tx, char *s, size_t len, char *errstr,
                    size_t errstr_size)
{
        char *end = s + len, *key, *value, num[16];
        char *sp = memchr(s, ' ', len);
        rd_kafka_resp_err_t err;
        int64_t partition;

        if (!sp || (size_t)(sp - s) >= sizeof(num) ||
            !(value = memchr(key = sp + 1, ' ', (size_t)(end - sp - 1))) ||
            value == key)
                return of_errf(errstr, errstr_size,
                               "expected send PARTITION KEY VALUE");
        memcpy(num, s, (size_t)(sp - s));
        num[sp - s] = '\0';
        if (num_arg(&partition, num, 0, INT32_MAX, "send: PARTITION", errstr,
                    errstr_size))
                return OF_ERROR;
        value++;
        while ((err = rd_kafka_producev(
                        tx->rk, RD_KAFKA_V_TOPIC(tx->topic),
                        RD_KAFKA_V_PARTITION((int32_t)partition),
                        RD_KAFKA_V_KEY(key, (size_t)(value - 1 - key)),
                        RD_KAFKA_V_VALUE(value, (size_t)(end - value)),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(tx->rk, 100); /* it drains as acks come */
        if (err)
                return of_errf(errstr, errstr_size, "send: %s",
                               rd_kafka_err2str(err));
        tx->cnt++;
        return 0;
}

/* One script line of len bytes, without its newline. */
static int txn_line(struct txn *tx, char *line, size_t len, char *errstr,
                    size_t errstr_size)
{
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t err;
        int commit;

        if (len == 0 || line[0] == '#')
                return 0;
        if (len > 5 && !memcmp(line, "send ", 5))
                return txn_send(tx, line + 5, len - 5, errstr, errstr_size);
        if (!strcmp(line, "begin")) {
                if ((error = rd_kafka_begin_transaction(tx->rk)))
                        return txn_error(error, "begin", errstr, errstr_size);
                tx->open = 1;
                tx->cnt = 0;
                return 0;
        }
        if (strcmp(line, "commit") && strcmp(line, "abort"))
                return of_errf(errstr, errstr_size,
                               "expected begin, commit, abort or send: %.40s",
                               line);
        commit = line[0] == 'c';
        /* Abort purges what is still queued here: the aborted messages
         * would never reach the log, and a read_committed test that does
         * not see them would prove nothing. */
        if (!commit && (err = rd_kafka_flush(tx->rk, tx->timeout_ms)))
                return of_errf(errstr, errstr_size, "abort: %s",
                               rd_kafka_err2str(err));
        error = commit ? rd_kafka_commit_transaction(tx->rk, tx->timeout_ms)
                       : rd_kafka_abort_transaction(tx->rk, tx->timeout_ms);
        if (error)
                return txn_error(error, line, errstr, errstr_size);
        tx->open = 0;
        printf("%s %ld\n", commit ? "committed" : "aborted", tx->cnt);
        if (fflush(stdout))
                return of_errf(errstr, errstr_size, "stdout: %s",
                               strerror(errno));
        return 0;
}

static int cmd_txn(const struct kadmin *ka, rd_kafka_t *rk, char **args,
                   int cnt, char *errstr, size_t errstr_size)
{
        struct txn tx = {.rk = rk,
                         .topic = args[0],
                         .timeout_ms = ka->timeout_s * 1000};
        rd_kafka_error_t *error;
        char why[512], *line = NULL;
        size_t cap = 0;
        ssize_t n;
        long lineno = 0;
        int rc = OF_EXIT_FAILURE;

        (void)cnt;
        if ((error = rd_kafka_init_transactions(rk, tx.timeout_ms))) {
                txn_error(error, "txn: init", errstr, errstr_size);
                goto out;
        }
        while ((n = getline(&line, &cap, stdin)) != -1) {
                lineno++;
                if (n > 0 && line[n - 1] == '\n')
                        line[--n] = '\0';
                if (txn_line(&tx, line, (size_t)n, why, sizeof(why))) {
                        of_errf(errstr, errstr_size, "txn: stdin:%ld: %s",
                                lineno, why);
                        goto out;
                }
        }
        if (ferror(stdin)) {
                of_errf(errstr, errstr_size, "txn: stdin: %s",
                        strerror(errno));
                goto out;
        }
        if (tx.open) {
                of_errf(errstr, errstr_size,
                        "txn: stdin ended inside a transaction: aborting "
                        "it");
                goto out;
        }
        rc = OF_EXIT_OK;
out:
        /* Abort what is left open: read_committed consumers would stall
         * behind it until transaction.timeout.ms. */
        if (tx.open && (error = rd_kafka_abort_transaction(rk, tx.timeout_ms)))
                rd_kafka_error_destroy(error);
        free(line);
        return rc;
}

/* ---- main ---- */

static const struct command commands[] = {
        {"create", cmd_create, 2, -1, 0},
        {"delete", cmd_delete, 1, 1, 0},
        {"delete-records", cmd_delete_records, 3, 3, 0},
        {"watermarks", cmd_watermarks, 1, 1, 0},
        {"leader", cmd_leader, 2, 2, 0},
        {"coordinator", cmd_coordinator, 1, 1, 0},
        {"txn", cmd_txn, 1, 1, 1},
};

/* Options into ka: 0, OF_EXIT_USAGE, or -1 when -h printed the help. */
static int parse_opts(struct kadmin *ka, int argc, char **argv, char *errstr,
                      size_t errstr_size)
{
        static const struct option longopts[] = {
                {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
        rd_kafka_conf_t *conf;
        char why[512];
        int64_t v;
        size_t i;
        int opt;

        opterr = 0;
        /* '+': options end at the command, so OFFSET -1 is no option. */
        while ((opt = getopt_long(argc, argv, "+:b:F:T:X:vh", longopts,
                                  NULL)) != -1) {
                if (opt == 'b') {
                        ka->ko.brokers = optarg;
                } else if (opt == 'F') {
                        if (of_kafka_props_read(&ka->files, optarg, why,
                                                sizeof(why)))
                                return usage_err(errstr, errstr_size, "-F %s",
                                                 why);
                } else if (opt == 'T') {
                        if (num_arg(&v, optarg, 1, TIMEOUT_MAX_S, "-T", errstr,
                                    errstr_size))
                                return OF_EXIT_USAGE;
                        ka->timeout_s = (int)v;
                } else if (opt == 'X' && ka->ko.props_cnt < MAX_PROPS) {
                        ka->props[ka->ko.props_cnt++] = optarg;
                } else if (opt == 'X') {
                        return usage_err(errstr, errstr_size,
                                         "-X: more than %d", MAX_PROPS);
                } else if (opt == 'v') {
                        of_log_verbosity = OF_LOG_DEBUG;
                } else if (opt == 'h') {
                        fputs(usage_text, stdout);
                        return -1;
                } else if (opt == ':') {
                        return usage_err(errstr, errstr_size,
                                         "-%c: missing argument", optopt);
                } else {
                        return usage_err(errstr, errstr_size,
                                         "unknown option %s",
                                         argv[optind - 1]);
                }
        }
        /* Without -b, a -F file's bootstrap.servers. */
        for (i = 0; !ka->ko.brokers && i < ka->files.cnt; i++)
                if (!strncmp(ka->files.items[i], "bootstrap.servers=", 18))
                        ka->ko.brokers = ka->files.items[i] + 18;
        if (!ka->ko.brokers)
                return usage_err(errstr, errstr_size,
                                 "-b BOOTSTRAP is required");
        ka->ko.files = &ka->files;
        ka->ko.props = ka->props;
        /* A bad -X is a usage error, found before any command runs. */
        if (of_kafka_conf_new(&conf, &ka->ko, NULL, errstr, errstr_size))
                return OF_EXIT_USAGE;
        rd_kafka_conf_destroy(conf);
        return 0;
}

/* The command argv[0] names, with argc - 1 arguments: 0 with *out, or
 * OF_EXIT_USAGE. */
static int find_command(const struct command **out, int argc, char **argv,
                        char *errstr, size_t errstr_size)
{
        size_t i;

        if (argc == 0)
                return usage_err(errstr, errstr_size, "no command");
        for (i = 0; i < sizeof(commands) / sizeof(*commands); i++)
                if (!strcmp(argv[0], commands[i].name))
                        *out = &commands[i];
        if (!*out)
                return usage_err(errstr, errstr_size, "unknown command %s",
                                 argv[0]);
        if (argc - 1 < (*out)->min_args ||
            ((*out)->max_args >= 0 && argc - 1 > (*out)->max_args))
                return usage_err(
                        errstr, errstr_size, "%s: %s arguments", argv[0],
                        argc - 1 < (*out)->min_args ? "missing" : "too many");
        return 0;
}

int main(int argc, char **argv)
{
        struct kadmin ka = {.timeout_s = TIMEOUT_DEFAULT_S};
        const struct command *cmd = NULL;
        rd_kafka_t *rk = NULL;
        char errstr[1024], tid[64];
        int rc;

        /* librdkafka's log (connection refused while brokers start...)
         * only with -v: the outcome is ours to report, in one line. */
        of_log_verbosity = -1;
        if ((rc = parse_opts(&ka, argc, argv, errstr, sizeof(errstr))) < 0) {
                rc = OF_EXIT_OK;
                goto out;
        }
        if (!rc)
                rc = find_command(&cmd, argc - optind, argv + optind, errstr,
                                  sizeof(errstr));
        if (!rc) {
                /* A default, so that -F or -X may name another; it
                 * implies enable.idempotence. */
                snprintf(tid, sizeof(tid), "transactional.id=kadmin-%ld",
                         (long)getpid());
                ka.deadline_ms = now_ms() + ka.timeout_s * 1000LL;
                rc = client_new(&rk, &ka, cmd->transactional ? tid : NULL,
                                errstr, sizeof(errstr))
                             ? OF_EXIT_FAILURE
                             : cmd->run(&ka, rk, argv + optind + 1,
                                        argc - optind - 1, errstr,
                                        sizeof(errstr));
        }
        if (rk)
                rd_kafka_destroy(rk);
        if (rc == OF_EXIT_USAGE)
                fprintf(stderr, "kadmin: %s (see 'kadmin --help')\n", errstr);
        else if (rc)
                fprintf(stderr, "kadmin: %s\n", errstr);
out:
        /* A closed pipe or a full disk must not pass for success. */
        if ((ferror(stdout) | fclose(stdout)) && !rc) {
                fprintf(stderr, "kadmin: stdout: %s\n", strerror(errno));
                rc = OF_EXIT_FAILURE;
        }
        of_kafka_props_clear(&ka.files);
        return rc;
}
