/* kafka: which properties are secrets, -F files (format, errors that name
 * the place but never a secret's value, the exposed-file flag) and the
 * order in which a client conf takes defaults, -F, -b and -X. No broker. */
#include <sys/stat.h>

#include "testutil.h"

#include <librdkafka/rdkafka.h>

#include "orderflow/error.h"
#include "orderflow/kafka.h"

static void test_kafka_prop_is_secret_table(void **state)
{
        static const struct {
                const char *prop;
                int secret;
        } cases[] = {
                {"sasl.password=x", 1},
                {"ssl.key.password=x", 1},
                {"ssl.keystore.password=x", 1},
                {"sasl.oauthbearer.client.secret=x", 1},
                {"ssl.key.pem=-----BEGIN", 1},
                {"sasl.oauthbearer.config=principal=x", 1},
                {"SASL.PASSWORD=x", 1},
                {"my.Secret.thing", 1},
                {"sasl.password", 1},
                {"sasl.username=password", 0}, /* the value does not count */
                {"client.id=secret", 0},
                {"ssl.key.location=/k.pem", 0},
                {"ssl.key.pem.extra=x", 0},
                {"debug=all", 0},
                {"", 0},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (of_kafka_prop_is_secret(cases[i].prop) != cases[i].secret)
                        fail_msg("%s: expected %d", cases[i].prop,
                                 cases[i].secret);
        }
}

/* Write text to a new file of the given mode; the caller frees the path
 * with tu_tmp_free. */
static char *write_file(const char *text, mode_t mode)
{
        char *path = tu_tmp_path("kafka.properties");
        FILE *fp = fopen(path, "w");

        assert_non_null(fp);
        fputs(text, fp);
        assert_int_equal(fclose(fp), 0);
        assert_int_equal(chmod(path, mode), 0);
        return path;
}

static void test_kafka_props_read_skips_comments_and_trims(void **state)
{
        char *path = write_file("# a comment\n"
                                "\n"
                                "   \t\n"
                                "  # an indented comment\n"
                                "  client.id = an id with blanks  \n"
                                "socket.timeout.ms=1000\r\n"
                                "sasl.password= Pa55=word#not-a-comment\n"
                                "client.id=last-wins",
                                0600);
        of_kafka_props props = {0};
        char errstr[512];

        (void)state;
        assert_int_equal(
                of_kafka_props_read(&props, path, errstr, sizeof(errstr)), 0);
        assert_int_equal(props.cnt, 4);
        assert_string_equal(props.items[0], "client.id=an id with blanks");
        assert_string_equal(props.items[1], "socket.timeout.ms=1000");
        assert_string_equal(props.items[2],
                            "sasl.password=Pa55=word#not-a-comment");
        assert_string_equal(props.items[3], "client.id=last-wins");
        assert_null(props.exposed); /* 0600 */
        of_kafka_props_clear(&props);
        tu_tmp_free(path);
}

static void test_kafka_props_read_errors_name_file_and_line(void **state)
{
        static const struct {
                const char *text;
                const char *want; /* after "PATH" */
        } cases[] = {
                {"client.id=a\nno equals sign\n", ":2: expected key=value"},
                {"=value\n", ":1: expected key=value"},
                {"  = value\n", ":1: expected key=value"},
                {"# ok\nsasl.passwordd=Pa55-Secret\n",
                 ":2: sasl.passwordd: No such configuration property: "
                 "\"sasl.passwordd\""},
                {"session.timeout.ms=abc\n",
                 ":1: session.timeout.ms: Invalid value for configuration "
                 "property \"session.timeout.ms\""},
        };
        char errstr[512], want[1024];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *path = write_file(cases[i].text, 0600);
                of_kafka_props props = {0};

                assert_int_equal(of_kafka_props_read(&props, path, errstr,
                                                     sizeof(errstr)),
                                 OF_ERROR);
                snprintf(want, sizeof(want), "%s%s", path, cases[i].want);
                assert_string_equal(errstr, want);
                assert_null(strstr(errstr, "Pa55"));
                of_kafka_props_clear(&props);
                tu_tmp_free(path);
        }
}

static void test_kafka_props_read_missing_file(void **state)
{
        of_kafka_props props = {0};
        char errstr[512];

        (void)state;
        assert_int_equal(of_kafka_props_read(&props, "/nonexistent/k.props",
                                             errstr, sizeof(errstr)),
                         OF_ERROR);
        assert_string_equal(errstr,
                            "/nonexistent/k.props: No such file or directory");
        assert_int_equal(props.cnt, 0);
}

static void test_kafka_props_read_flags_secret_others_can_read(void **state)
{
        char *open_secret = write_file("sasl.password=x\n", 0644);
        char *group_secret = write_file("ssl.key.password=x\n", 0640);
        char *open_plain = write_file("client.id=x\n", 0644);
        char *closed_secret = write_file("sasl.password=x\n", 0600);
        of_kafka_props props = {0};
        char errstr[512];

        (void)state;
        assert_int_equal(of_kafka_props_read(&props, open_plain, errstr,
                                             sizeof(errstr)),
                         0);
        assert_int_equal(of_kafka_props_read(&props, closed_secret, errstr,
                                             sizeof(errstr)),
                         0);
        assert_null(props.exposed);
        assert_int_equal(of_kafka_props_read(&props, group_secret, errstr,
                                             sizeof(errstr)),
                         0);
        assert_string_equal(props.exposed, group_secret);
        /* The first exposed file is the one named. */
        assert_int_equal(of_kafka_props_read(&props, open_secret, errstr,
                                             sizeof(errstr)),
                         0);
        assert_string_equal(props.exposed, group_secret);
        assert_int_equal(props.cnt, 4);
        of_kafka_props_clear(&props);
        assert_int_equal(props.cnt, 0);
        assert_null(props.items);
        tu_tmp_free(open_secret);
        tu_tmp_free(group_secret);
        tu_tmp_free(open_plain);
        tu_tmp_free(closed_secret);
}

static void assert_conf(rd_kafka_conf_t *conf, const char *key,
                        const char *want)
{
        char got[256];
        size_t n = sizeof(got);

        assert_int_equal(rd_kafka_conf_get(conf, key, got, &n),
                         RD_KAFKA_CONF_OK);
        assert_string_equal(got, want);
}

/* Defaults, then -F, then -b, then -X: each later one wins. */
static void test_kafka_conf_new_applies_file_before_x(void **state)
{
        static const char *const defaults[] = {"client.id=default",
                                               "socket.timeout.ms=1111",
                                               "linger.ms=7", NULL};
        char *path = write_file("client.id=from-file\n"
                                "socket.timeout.ms=2222\n"
                                "bootstrap.servers=file:1\n",
                                0600);
        const char *x[] = {"client.id=from-x"};
        of_kafka_opts ko = OF_KAFKA_OPTS_INIT;
        of_kafka_props props = {0};
        rd_kafka_conf_t *conf = NULL;
        char errstr[512];

        (void)state;
        assert_int_equal(
                of_kafka_props_read(&props, path, errstr, sizeof(errstr)), 0);
        ko.files = &props;
        ko.brokers = "cli:2";
        ko.props = x;
        ko.props_cnt = 1;
        assert_int_equal(of_kafka_conf_new(&conf, &ko, defaults, errstr,
                                           sizeof(errstr)),
                         0);
        assert_conf(conf, "client.id", "from-x");
        assert_conf(conf, "socket.timeout.ms", "2222");
        assert_conf(conf, "linger.ms", "7");
        assert_conf(conf, "bootstrap.servers", "cli:2");
        rd_kafka_conf_destroy(conf);
        of_kafka_props_clear(&props);
        tu_tmp_free(path);
}

static void test_kafka_conf_new_error_names_key_not_secret(void **state)
{
        const char *x[] = {"sasl.passwordd=Pa55-Secret"};
        of_kafka_opts ko = OF_KAFKA_OPTS_INIT;
        rd_kafka_conf_t *conf = NULL;
        char errstr[512];

        (void)state;
        ko.props = x;
        ko.props_cnt = 1;
        assert_int_equal(of_kafka_check_opts(&ko, errstr, sizeof(errstr)),
                         OF_ERROR);
        assert_non_null(strstr(errstr, "-X sasl.passwordd: "));
        assert_null(strstr(errstr, "Pa55"));
        assert_int_equal(
                of_kafka_conf_new(&conf, &ko, NULL, errstr, sizeof(errstr)),
                OF_ERROR);
        assert_null(conf);
        assert_null(strstr(errstr, "Pa55"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kafka_prop_is_secret_table),
                cmocka_unit_test(
                        test_kafka_props_read_skips_comments_and_trims),
                cmocka_unit_test(
                        test_kafka_props_read_errors_name_file_and_line),
                cmocka_unit_test(test_kafka_props_read_missing_file),
                cmocka_unit_test(
                        test_kafka_props_read_flags_secret_others_can_read),
                cmocka_unit_test(test_kafka_conf_new_applies_file_before_x),
                cmocka_unit_test(
                        test_kafka_conf_new_error_names_key_not_secret),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
