/* Kafka client configuration shared by the projector, relay and tools:
 * our defaults first, then -F files, then -b, then -X properties verbatim,
 * so the user wins; secrets are never printed. Polling, offsets and
 * messages belong to the modules that use them. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>

#include <librdkafka/rdkafka.h>

#include "orderflow/error.h"
#include "orderflow/kafka.h"
#include "orderflow/log.h"

#define KEY_MAX 255 /* longer keys are no librdkafka property */

/* ---- secrets ---- */

static int contains(const char *s, size_t n, const char *word)
{
        size_t w = strlen(word), i;

        for (i = 0; i + w <= n; i++)
                if (!strncasecmp(s + i, word, w))
                        return 1;
        return 0;
}

/* The n bytes at key name a secret. */
static int key_is_secret(const char *key, size_t n)
{
        static const char *const exact[] = {"ssl.key.pem",
                                            "sasl.oauthbearer.config"};
        size_t i;

        for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
                if (strlen(exact[i]) == n && !strncasecmp(key, exact[i], n))
                        return 1;
        return contains(key, n, "password") || contains(key, n, "secret");
}

int of_kafka_prop_is_secret(const char *prop)
{
        return key_is_secret(prop, strcspn(prop, "="));
}

/* The last authentication failure librdkafka logged ("SASL
 * authentication error: ..."): a broker refusing the credentials shows to
 * the caller as a mere transport failure, so the command's last line adds
 * it (of_kafka_auth_error). Written by librdkafka's threads. */
static pthread_mutex_t auth_lock = PTHREAD_MUTEX_INITIALIZER;
static char auth_error[300];

static void note_auth_error(const char *buf)
{
        const char *at = strstr(buf, "authentication error");

        if (!at)
                return;
        /* from the mechanism's name: "SASL authentication error: ..." */
        while (at > buf && at[-1] != ' ')
                at--;
        pthread_mutex_lock(&auth_lock);
        snprintf(auth_error, sizeof(auth_error), "%s", at);
        pthread_mutex_unlock(&auth_lock);
}

int of_kafka_auth_error(char *out, size_t size)
{
        int seen;

        pthread_mutex_lock(&auth_lock);
        seen = auth_error[0] != '\0';
        if (seen)
                snprintf(out, size, "%s", auth_error);
        pthread_mutex_unlock(&auth_lock);
        return seen;
}

/* librdkafka's log, through ours: its syslog levels to our letters. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
        of_log_level ours = level <= LOG_ERR       ? OF_LOG_ERROR
                            : level <= LOG_WARNING ? OF_LOG_WARN
                            : level <= LOG_INFO    ? OF_LOG_INFO
                                                   : OF_LOG_DEBUG;
        const char *name = rk ? rd_kafka_name(rk) : "-";
        const char *sep, *key;

        note_auth_error(buf);
        /* librdkafka's notices are chatty; keep them for -v. */
        if (level == LOG_NOTICE)
                ours = OF_LOG_DEBUG;
        /* debug=conf dumps "  key = value" lines. librdkafka redacts the
         * properties it marks sensitive, but not all of ours
         * (sasl.oauthbearer.client.secret in 2.0), so redact again. */
        if (!strcmp(fac, "CONF") && (sep = strstr(buf, " = "))) {
                for (key = sep; key > buf && key[-1] != ' '; key--)
                        ;
                if (key_is_secret(key, (size_t)(sep - key))) {
                        of_log(ours, "kafka %s: %s: %.*s = ***", name, fac,
                               (int)(sep - buf), buf);
                        return;
                }
        }
        of_log(ours, "kafka %s: %s: %s", name, fac, buf);
}

/* For short-lived clients whose caller reports the outcome in one line:
 * librdkafka's connection failures on the way are for -v only. */
static void quiet_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
        (void)level;
        note_auth_error(buf);
        of_log(OF_LOG_DEBUG, "kafka %s: %s: %s", rk ? rd_kafka_name(rk) : "-",
               fac, buf);
}

/* ---- setting properties ---- */

/* rd_kafka_conf_set with librdkafka's reason in why, which never shows a
 * secret's value: 0 or OF_ERROR. */
static int try_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                   char *why, size_t why_size)
{
        if (rd_kafka_conf_set(conf, key, value, why, why_size) ==
            RD_KAFKA_CONF_OK)
                return 0;
        /* Its reasons name the property; some quote the value too
         * ("Invalid value ... for configuration property"). */
        if (*value && key_is_secret(key, strlen(key)) && strstr(why, value))
                snprintf(why, why_size, "invalid value for \"%s\"", key);
        return OF_ERROR;
}

/* Set one "key=value" property; origin ("-X", "-F") names it in errors. */
static int set_prop(rd_kafka_conf_t *conf, const char *origin,
                    const char *prop, char *errstr, size_t errstr_size)
{
        char key[KEY_MAX + 1], why[512];
        size_t n = strcspn(prop, "=");

        if (!prop[n] || n == 0)
                return of_errf(errstr, errstr_size,
                               "%s %.*s: expected key=value", origin, (int)n,
                               prop);
        if (n > KEY_MAX)
                return of_errf(errstr, errstr_size,
                               "%s %.40s...: no such property", origin, prop);
        memcpy(key, prop, n);
        key[n] = '\0';
        if (try_set(conf, key, prop + n + 1, why, sizeof(why)))
                return of_errf(errstr, errstr_size, "%s %s: %s", origin, key,
                               why);
        return 0;
}

int of_kafka_conf_new(rd_kafka_conf_t **out, const of_kafka_opts *ko,
                      const char *const *defaults, char *errstr,
                      size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char why[512];
        size_t i;

        *out = NULL;
        rd_kafka_conf_set_log_cb(conf, log_cb);
        for (i = 0; defaults && defaults[i]; i++)
                if (set_prop(conf, "default", defaults[i], errstr,
                             errstr_size))
                        goto fail;
        for (i = 0; ko->files && i < ko->files->cnt; i++)
                if (set_prop(conf, "-F", ko->files->items[i], errstr,
                             errstr_size))
                        goto fail;
        /* After -F: the command line's (or a file's, see cli.c) -b wins
         * over a file's bootstrap.servers. */
        if (try_set(conf, "bootstrap.servers", ko->brokers, why,
                    sizeof(why))) {
                of_errf(errstr, errstr_size, "--brokers: %s", why);
                goto fail;
        }
        for (i = 0; i < ko->props_cnt; i++)
                if (set_prop(conf, "-X", ko->props[i], errstr, errstr_size))
                        goto fail;
        *out = conf;
        return 0;
fail:
        rd_kafka_conf_destroy(conf);
        return OF_ERROR;
}

/* One property for the log: "key=value", or "key=***" for a secret. */
static void log_prop(const char *origin, const char *prop)
{
        int n = (int)strcspn(prop, "=");

        if (of_kafka_prop_is_secret(prop))
                of_log(OF_LOG_DEBUG, "kafka conf: %s %.*s=***", origin, n,
                       prop);
        else
                of_log(OF_LOG_DEBUG, "kafka conf: %s %s", origin, prop);
}

int of_kafka_check_opts(const of_kafka_opts *ko, char *errstr,
                        size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        size_t i;

        if (of_kafka_conf_new(&conf, ko, NULL, errstr, errstr_size))
                return OF_ERROR;
        rd_kafka_conf_destroy(conf);
        for (i = 0; ko->files && i < ko->files->cnt; i++)
                log_prop("-F", ko->files->items[i]);
        of_log(OF_LOG_DEBUG, "kafka conf: bootstrap.servers=%s, topic %s",
               ko->brokers, ko->topic);
        for (i = 0; i < ko->props_cnt; i++)
                log_prop("-X", ko->props[i]);
        if (ko->files && ko->files->exposed)
                of_log(OF_LOG_WARN,
                       "-F %s: holds a secret and group or others may "
                       "read it (chmod 600 it)",
                       ko->files->exposed);
        return 0;
}

/* ---- -F files ---- */

static char *trim(char *s)
{
        char *end = s + strlen(s);

        while (*s == ' ' || *s == '\t')
                s++;
        while (end > s && strchr(" \t\r\n\f\v", end[-1]))
                end--;
        *end = '\0';
        return s;
}

static int props_add(of_kafka_props *props, const char *key, const char *value)
{
        char **items;
        size_t n = strlen(key) + strlen(value) + 2;

        if (props->cnt == props->cap) {
                size_t cap = props->cap ? props->cap * 2 : 16;

                if (!(items = realloc(props->items, cap * sizeof(*items))))
                        return OF_ERROR;
                props->items = items;
                props->cap = cap;
        }
        if (!(props->items[props->cnt] = malloc(n)))
                return OF_ERROR;
        snprintf(props->items[props->cnt++], n, "%s=%s", key, value);
        return 0;
}

int of_kafka_props_read(of_kafka_props *props, const char *path, char *errstr,
                        size_t errstr_size)
{
        rd_kafka_conf_t *conf = NULL;
        FILE *fp = NULL;
        char *line = NULL, *key, *value, *eq;
        char why[512];
        size_t line_cap = 0;
        struct stat sb;
        int lineno = 0, secrets = 0, rc = OF_ERROR;

        if (!(fp = fopen(path, "r")) || fstat(fileno(fp), &sb) != 0) {
                of_errf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                goto out;
        }
        /* A scratch conf, so that a bad line is reported with its place. */
        conf = rd_kafka_conf_new();
        errno = 0;
        while (getline(&line, &line_cap, fp) != -1) {
                lineno++;
                key = trim(line);
                if (!*key || *key == '#')
                        continue;
                if (!(eq = strchr(key, '=')) || eq == key) {
                        of_errf(errstr, errstr_size,
                                "%s:%d: expected key=value", path, lineno);
                        goto out;
                }
                *eq = '\0';
                key = trim(key);
                value = trim(eq + 1);
                if (!*key) {
                        of_errf(errstr, errstr_size,
                                "%s:%d: expected key=value", path, lineno);
                        goto out;
                }
                if (try_set(conf, key, value, why, sizeof(why))) {
                        of_errf(errstr, errstr_size, "%s:%d: %s: %s", path,
                                lineno, key, why);
                        goto out;
                }
                secrets += key_is_secret(key, strlen(key));
                if (props_add(props, key, value)) {
                        of_errf(errstr, errstr_size, "%s: out of memory",
                                path);
                        goto out;
                }
        }
        if (ferror(fp)) {
                of_errf(errstr, errstr_size, "%s: %s", path,
                        strerror(errno ? errno : EIO));
                goto out;
        }
        if (secrets && (sb.st_mode & (S_IRGRP | S_IROTH)) && !props->exposed &&
            !(props->exposed = strdup(path))) {
                of_errf(errstr, errstr_size, "%s: out of memory", path);
                goto out;
        }
        rc = 0;
out:
        free(line);
        if (fp)
                fclose(fp);
        if (conf)
                rd_kafka_conf_destroy(conf);
        return rc;
}

void of_kafka_props_clear(of_kafka_props *props)
{
        size_t i;

        if (!props)
                return;
        for (i = 0; i < props->cnt; i++)
                free(props->items[i]);
        free(props->items);
        free(props->exposed);
        memset(props, 0, sizeof(*props));
}

int of_kafka_watermarks(rd_kafka_t *rk, const char *topic, int timeout_ms,
                        int32_t *cnt, int64_t **low, int64_t **high,
                        char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err;
        int32_t i, n;
        int rc = OF_ERROR;

        *cnt = 0;
        *low = *high = NULL;
        if (!rkt)
                return of_errf(errstr, errstr_size, "topic %s: %s", topic,
                               rd_kafka_err2str(rd_kafka_last_error()));
        err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
        if (err) {
                of_errf(errstr, errstr_size, "reading metadata of %s: %s",
                        topic, rd_kafka_err2str(err));
                goto out;
        }
        if (md->topic_cnt != 1 ||
            md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                of_errf(errstr, errstr_size,
                        "topic %s does not exist (a wrong --topic?)", topic);
                goto out;
        }
        if (md->topics[0].err) {
                of_errf(errstr, errstr_size, "topic %s: %s", topic,
                        rd_kafka_err2str(md->topics[0].err));
                goto out;
        }
        n = md->topics[0].partition_cnt;
        *low = calloc((size_t)n + 1, sizeof(**low));
        *high = calloc((size_t)n + 1, sizeof(**high));
        if (!*low || !*high) {
                of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        for (i = 0; i < n; i++) {
                int32_t p = md->topics[0].partitions[i].id;

                if (p < 0 || p >= n)
                        continue;
                err = rd_kafka_query_watermark_offsets(
                        rk, topic, p, &(*low)[p], &(*high)[p], timeout_ms);
                if (err) {
                        of_errf(errstr, errstr_size,
                                "reading the offsets of %s [%" PRId32 "]: %s",
                                topic, p, rd_kafka_err2str(err));
                        goto out;
                }
        }
        *cnt = n;
        rc = 0;
out:
        if (rc) {
                free(*low);
                free(*high);
                *low = *high = NULL;
        }
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return rc;
}

int of_kafka_query_topic(const of_kafka_opts *ko, int timeout_ms, int32_t *cnt,
                         int64_t **low, int64_t **high, char *errstr,
                         size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        char why[512];
        int err;

        if (of_kafka_conf_new(&conf, ko, NULL, errstr, errstr_size))
                return OF_ERROR;
        rd_kafka_conf_set_log_cb(conf, quiet_log_cb);
        /* A producer's metadata request asks the brokers to create the
         * topic it names (where they allow it): looking must not create a
         * mistyped topic. */
        if (rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", why,
                              sizeof(why)) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(conf);
                return of_errf(errstr, errstr_size, "kafka: %s", why);
        }
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why)))) {
                rd_kafka_conf_destroy(conf);
                return of_errf(errstr, errstr_size, "kafka: %s", why);
        }
        err = of_kafka_watermarks(rk, ko->topic, timeout_ms, cnt, low, high,
                                  errstr, errstr_size);
        rd_kafka_destroy(rk);
        return err;
}

const char *of_kafka_version(void)
{
        return rd_kafka_version_str();
}
