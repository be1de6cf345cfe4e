/* orderflow status: how far a read model is, per partition (its stored
 * offset, the broker's end offset, the lag), its counters and its last
 * batch; as a table for people or one JSON line. Reads the file on a
 * read-only connection and asks the brokers for the end offsets only. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/cli.h"
#include "orderflow/cmd.h"
#include "orderflow/error.h"
#include "orderflow/json.h"
#include "orderflow/log.h"
#include "orderflow/store.h"

#define CMD "status"

/* What the options fill. */
typedef struct status_args {
        const char *db;     /* --db */
        of_cli_kafka kafka; /* -b, -t, -F, -X, -v, -q */
        int json;           /* --json */
} status_args;

static const status_args defaults = {.kafka = OF_CLI_KAFKA_INIT};

static const of_cli_spec specs[] = {
        OF_CLI_OPT_STRING(status_args, db, "db", 0, OF_CLI_REQUIRED, 1, 0,
                          NULL, "PATH",
                          "the read-model file, never "
                          "created"),
        OF_CLI_GROUP_AT(status_args, kafka, of_cli_kafka_specs),
        OF_CLI_OPT_FLAG(status_args, json, "json", 0,
                        "one JSON object on one line instead of a table"),
        OF_CLI_OPT_END,
};

static const of_cli_cmd status_cmd = {
        CMD,
        specs,
        &defaults,
        "How far the read model at PATH is: for each partition of the topic "
        "the offset\napplied (stored in the file), the end offset (asked of "
        "the brokers) and the\nlag between them; events applied, ignored, "
        "duplicates and dead letters; the\ntime of the last batch; the "
        "topic asked (-t) and the topics whose offsets the\nfile holds. "
        "When no broker answers, the file's part is printed, end and\nlag "
        "are unknown, and the exit code is 1.",
        "--json keys: db, generation, applied, ignored, duplicates, "
        "dead_letters,\nbatches, last_batch_at, rebuilt_at, truncated, "
        "topic, offsets_of\n(the file's topics, an array), lag, problem, "
        "partitions (each: partition,\napplied, end, lag); unknown or "
        "absent values are null.\nExit 1 also when the "
        "file's offsets do not fit the topic (another topic's,\npartitions "
        "it lacks, past its end: deleted and created again?): problem\n"
        "says which.",
};

/* One partition's line: next offset applied (-1: none stored), the end
 * offset and first offset at the broker (-1: unknown). */
typedef struct part_row {
        int32_t partition;
        int64_t applied, end, low;
} part_row;

/* What is left to apply; -1 when the end is unknown. */
static int64_t lag_of(const part_row *r)
{
        int64_t from;

        /* Past the end: the topic is not the one applied (see
         * of_store_check_fit): no lag to speak of. */
        if (r->end < 0 || r->applied > r->end)
                return -1;
        from = r->applied >= 0 ? r->applied : r->low > 0 ? r->low : 0;
        return r->end > from ? r->end - from : 0;
}

/* The partitions of the broker's view and the file's, by id. */
static part_row *rows_of(const of_store_info *info, const char *topic,
                         int32_t cnt, const int64_t *low, const int64_t *high,
                         size_t *nrows)
{
        size_t i, n = 0, cap = (size_t)cnt + info->nparts;
        part_row *rows = calloc(cap ? cap : 1, sizeof(*rows));
        int32_t p;

        if (!rows)
                return NULL;
        for (p = 0; p < cnt; p++)
                rows[n++] = (part_row){p, -1, high[p], low[p]};
        for (i = 0; i < info->nparts; i++) {
                const of_store_part *sp = &info->parts[i];
                size_t j;

                if (strcmp(sp->topic, topic))
                        continue;
                for (j = 0; j < n && rows[j].partition != sp->partition; j++)
                        ;
                if (j == n)
                        rows[n++] = (part_row){sp->partition, -1, -1, -1};
                rows[j].applied = sp->next_offset;
        }
        *nrows = n;
        return rows;
}

/* A count or offset; unknown (negative) is null. */
static void num_or_null(of_json *j, const char *key, int64_t v)
{
        of_json_key(j, key);
        if (v < 0)
                of_json_null(j);
        else
                of_json_int(j, v);
}

/* A text; absent (empty) is null. */
static void text_or_null(of_json *j, const char *key, const char *s)
{
        of_json_key(j, key);
        if (*s)
                of_json_text(j, s);
        else
                of_json_null(j);
}

/* Call fn with each topic the file holds offsets of, once, in order
 * (info->parts is sorted by topic). */
static void each_file_topic(const of_store_info *info,
                            void (*fn)(void *opaque, const char *topic),
                            void *opaque)
{
        size_t i;

        for (i = 0; i < info->nparts; i++)
                if (i == 0 ||
                    strcmp(info->parts[i].topic, info->parts[i - 1].topic))
                        fn(opaque, info->parts[i].topic);
}

static void json_topic(void *opaque, const char *topic)
{
        of_json_text(opaque, topic);
}

static void table_topic(void *opaque, const char *topic)
{
        int *first = opaque;

        printf("%s%s", *first ? "" : ", ", topic);
        *first = 0;
}

static void print_json(const char *db, const of_store_info *info,
                       const char *topic, const part_row *rows, size_t n,
                       int64_t lag, const char *problem)
{
        of_json j = {.f = stdout};
        size_t i;

        of_json_object_begin(&j);
        of_json_key(&j, "db");
        of_json_text(&j, db);
        of_json_key(&j, "generation");
        of_json_int(&j, info->generation);
        num_or_null(&j, "applied", info->applied);
        num_or_null(&j, "ignored", info->ignored);
        num_or_null(&j, "duplicates", info->duplicates);
        num_or_null(&j, "dead_letters", info->dead);
        num_or_null(&j, "batches", info->batches);
        text_or_null(&j, "last_batch_at", info->last_batch_at);
        text_or_null(&j, "rebuilt_at", info->rebuilt_at);
        text_or_null(&j, "truncated", info->truncated);
        of_json_key(&j, "topic");
        of_json_text(&j, topic);
        of_json_key(&j, "offsets_of");
        of_json_array_begin(&j);
        each_file_topic(info, json_topic, &j);
        of_json_array_end(&j);
        num_or_null(&j, "lag", lag);
        text_or_null(&j, "problem", problem);
        of_json_key(&j, "partitions");
        of_json_array_begin(&j);
        for (i = 0; i < n; i++) {
                of_json_object_begin(&j);
                of_json_key(&j, "partition");
                of_json_int(&j, rows[i].partition);
                num_or_null(&j, "applied", rows[i].applied);
                num_or_null(&j, "end", rows[i].end);
                num_or_null(&j, "lag", lag_of(&rows[i]));
                of_json_object_end(&j);
        }
        of_json_array_end(&j);
        of_json_object_end(&j);
        of_json_end_line(&j);
}

static void print_cell(int64_t v)
{
        if (v < 0)
                printf(" %12s", "-");
        else
                printf(" %12" PRId64, v);
}

static void print_table(const char *db, const of_store_info *info,
                        const char *topic, const part_row *rows, size_t n,
                        int64_t lag)
{
        size_t i;
        int first = 1;

        printf("read model   %s (generation %" PRId64 ")\n", db,
               info->generation);
        if (info->rebuilt_at[0])
                printf("rebuilt      %s%s%s\n", info->rebuilt_at,
                       info->truncated[0] ? "; history missing: " : "",
                       info->truncated);
        printf("events       applied %" PRId64 ", ignored %" PRId64
               ", duplicates %" PRId64 ", dead letters %" PRId64
               ", in %" PRId64 " batches\n",
               info->applied, info->ignored, info->duplicates, info->dead,
               info->batches);
        printf("last batch   %s\n",
               info->last_batch_at[0] ? info->last_batch_at : "none");
        printf("topic        %s\noffsets of   ", topic);
        each_file_topic(info, table_topic, &first);
        printf("%s\n\n", first ? "no topic yet" : "");
        printf("%-9s %12s %12s %12s\n", "partition", "applied", "end", "lag");
        for (i = 0; i < n; i++) {
                printf("%-9" PRId32, rows[i].partition);
                print_cell(rows[i].applied);
                print_cell(rows[i].end);
                print_cell(lag_of(&rows[i]));
                putchar('\n');
        }
        printf("%-9s %12s %12s", "total", "", "");
        print_cell(lag);
        putchar('\n');
}

int cmd_status(int argc, char **argv)
{
        status_args a = defaults;
        of_store_info info = {0};
        of_cli_kafka ck;
        part_row *rows = NULL;
        int64_t *low = NULL, *high = NULL, lag = 0;
        const char *db;
        char errstr[1024], kerr[1024] = "", problem[1024] = "";
        size_t n = 0, i;
        int32_t cnt = 0;
        int rc, json, exit_code = OF_EXIT_FAILURE;
        of_store_fit fit;

        if (of_cli_parse(&rc, &status_cmd, &a, argc, argv) ||
            (rc = of_cli_kafka_check(&a.kafka, NULL, CMD)))
                return rc;
        db = a.db;
        ck = a.kafka;
        json = a.json;
        if (of_store_info_read(&info, db, 0, errstr, sizeof(errstr))) {
                of_cli_error(CMD, "%s", errstr);
                return OF_EXIT_FAILURE;
        }
        /* The file's part is worth printing even without a broker. */
        if (of_kafka_query_topic(&ck.ko, 10000, &cnt, &low, &high, kerr,
                                 sizeof(kerr)))
                cnt = 0;
        if (!(rows = rows_of(&info, ck.ko.topic, cnt, low, high, &n))) {
                of_cli_error(CMD, "out of memory");
                goto out;
        }
        for (i = 0; i < n && lag >= 0; i++)
                lag = lag_of(&rows[i]) < 0 ? -1 : lag + lag_of(&rows[i]);
        if (kerr[0])
                lag = -1;
        /* Offsets of another topic, of partitions the topic lacks, or
         * past its ends: the file no longer matches the topic. */
        fit = kerr[0] ? OF_FIT_OK
                      : of_store_check_fit(info.parts, info.nparts,
                                           ck.ko.topic, cnt, high, problem,
                                           sizeof(problem));
        if (fit == OF_FIT_MISSING || fit == OF_FIT_AHEAD)
                strncat(problem, OF_STORE_REBUILD_HINT,
                        sizeof(problem) - strlen(problem) - 1);
        if (json)
                print_json(db, &info, ck.ko.topic, rows, n, lag, problem);
        else
                print_table(db, &info, ck.ko.topic, rows, n, lag);
        if (kerr[0] || problem[0]) {
                of_cli_error(CMD, "%s", kerr[0] ? kerr : problem);
                goto out;
        }
        exit_code = of_cli_close_stdout(CMD);
out:
        free(rows);
        free(low);
        free(high);
        of_store_info_free(&info);
        return exit_code;
}
