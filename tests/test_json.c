/* The JSON writer (json.h): strings escaped as cJSON escapes them, bytes
 * that are not UTF-8 as U+FFFD or kept, numbers, nesting and the commas
 * between, the same bytes into a FILE as into the buffer; and the UTF-8
 * check against a decoder written another way. */
#include "testutil.h"

#include "orderflow/json.h"

/* A string written on its own, as the buffer has it. */
static char *string_of(const char *s, size_t n, int keep_bytes)
{
        of_json j = {.keep_bytes = keep_bytes};

        of_json_string(&j, s, n);
        assert_false(j.oom);
        return j.buf;
}

struct string_case {
        const char *in;
        size_t len; /* 0: strlen(in) */
        const char *out;
};

static const struct string_case escapes[] = {
        {"", 0, "\"\""},
        {"plain text", 0, "\"plain text\""},
        {"q\"b\\s/", 0, "\"q\\\"b\\\\s/\""},
        {"\b\f\n\r\t", 0, "\"\\b\\f\\n\\r\\t\""},
        {"\x01\x1f\x7f", 0, "\"\\u0001\\u001f\x7f\""},
        {"a\0b", 3, "\"a\\u0000b\""},
        /* valid UTF-8 stays as it is, 2, 3 and 4 bytes */
        {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 0,
         "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
        {"\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf", 0,
         "\"\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\""},
        /* every byte that is not part of valid UTF-8 is one U+FFFD */
        {"\xff", 0, "\"\\ufffd\""},
        {"\xc3\x28", 0, "\"\\ufffd(\""},
        {"\x80\xbf", 0, "\"\\ufffd\\ufffd\""},
        {"\xc0\xaf", 0, "\"\\ufffd\\ufffd\""},            /* overlong */
        {"\xe0\x80\xaf", 0, "\"\\ufffd\\ufffd\\ufffd\""}, /* overlong */
        {"\xed\xa0\x80", 0, "\"\\ufffd\\ufffd\\ufffd\""}, /* surrogate */
        {"\xf4\x90\x80\x80", 0,
         "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},    /* above U+10FFFF */
        {"a\xe2\x82", 0, "\"a\\ufffd\\ufffd\""}, /* cut short */
        {"{\"i\":\xff\n}", 0, "\"{\\\"i\\\":\\ufffd\\n}\""},
};

static void test_json_string_escapes_like_cjson(void **state)
{
        size_t i, n;
        char *out;

        (void)state;
        for (i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
                n = escapes[i].len ? escapes[i].len : strlen(escapes[i].in);
                out = string_of(escapes[i].in, n, 0);
                if (strcmp(out, escapes[i].out) != 0)
                        fail_msg("row %zu: %s, want %s", i, out,
                                 escapes[i].out);
                free(out);
        }
}

/* keep_bytes (the event envelope): what is not UTF-8 goes out as it
 * is, for the decoder to reject; escapes stay the same. */
static void test_json_string_keeps_bytes_when_asked(void **state)
{
        char *out;

        (void)state;
        out = string_of("o-\xff\xc3\x28\n", 6, 1);
        assert_string_equal(out, "\"o-\xff\xc3\x28\\n\"");
        free(out);
        out = string_of("\xc3\xa9\"", 3, 1);
        assert_string_equal(out, "\"\xc3\xa9\\\"\"");
        free(out);
}

static void test_json_numbers_and_null(void **state)
{
        of_json j = {0};

        (void)state;
        of_json_array_begin(&j);
        of_json_int(&j, 0);
        of_json_int(&j, -1);
        of_json_int(&j, 9007199254740991LL);
        of_json_int(&j, INT64_MAX);
        of_json_int(&j, INT64_MIN);
        of_json_int(&j, 1000000000000000LL); /* no 1e+15 */
        of_json_fixed(&j, 0.0, 3);
        of_json_fixed(&j, 1.23456, 3);
        of_json_fixed(&j, 12.5, 0);
        of_json_null(&j);
        of_json_array_end(&j);
        assert_false(j.oom);
        assert_string_equal(j.buf, "[0,-1,9007199254740991,"
                                   "9223372036854775807,"
                                   "-9223372036854775808,"
                                   "1000000000000000,0.000,1.235,12,null]");
        free(j.buf);
}

/* Writes {"a":[1,{"b":null},[],"x"],"c":{},"d":{"e":{"f":[[]]}}} and a
 * second line, the shape the printers use. */
static void write_nested(of_json *j)
{
        of_json_object_begin(j);
        of_json_key(j, "a");
        of_json_array_begin(j);
        of_json_int(j, 1);
        of_json_object_begin(j);
        of_json_key(j, "b");
        of_json_null(j);
        of_json_object_end(j);
        of_json_array_begin(j);
        of_json_array_end(j);
        of_json_text(j, "x");
        of_json_array_end(j);
        of_json_key(j, "c");
        of_json_object_begin(j);
        of_json_object_end(j);
        of_json_key(j, "d");
        of_json_object_begin(j);
        of_json_key(j, "e");
        of_json_object_begin(j);
        of_json_key(j, "f");
        of_json_array_begin(j);
        of_json_array_begin(j);
        of_json_array_end(j);
        of_json_array_end(j);
        of_json_object_end(j);
        of_json_object_end(j);
        of_json_object_end(j);
        of_json_end_line(j);
        of_json_object_begin(j); /* a new line: no comma before it */
        of_json_key(j, "k\"\x01");
        of_json_text(j, "v");
        of_json_object_end(j);
        of_json_end_line(j);
}

static const char nested[] =
        "{\"a\":[1,{\"b\":null},[],\"x\"],\"c\":{},\"d\":{\"e\":{\"f\":"
        "[[]]}}}\n{\"k\\\"\\u0001\":\"v\"}\n";

static void test_json_nesting_places_commas(void **state)
{
        of_json j = {0};

        (void)state;
        write_nested(&j);
        assert_false(j.oom);
        assert_string_equal(j.buf, nested);
        assert_int_equal(j.len, strlen(nested));
        free(j.buf);
}

static void test_json_file_gets_the_same_bytes(void **state)
{
        char *text = NULL;
        size_t size = 0;
        of_json j = {0};
        FILE *f;

        (void)state;
        f = open_memstream(&text, &size);
        assert_non_null(f);
        j.f = f;
        write_nested(&j);
        of_json_string(&j, "\xff", 1);
        assert_int_equal(fclose(f), 0);
        assert_null(j.buf);
        assert_int_equal(size, strlen(nested) + 8);
        assert_memory_equal(text, nested, strlen(nested));
        assert_memory_equal(text + strlen(nested), "\"\\ufffd\"", 8);
        free(text);
}

/* A zero-length write still makes the buffer a string: an empty cell. */
static void test_json_put_nothing_is_an_empty_string(void **state)
{
        of_json j = {0};

        (void)state;
        of_json_put(&j, NULL, 0);
        assert_non_null(j.buf);
        assert_string_equal(j.buf, "");
        of_json_put(&j, "ab", 2);
        j.len = 0; /* start over, as the table does for a cut cell */
        of_json_put(&j, "c", 1);
        assert_string_equal(j.buf, "c");
        free(j.buf);
}

/* The length of the UTF-8 sequence at p by decoding its code point, the
 * way cmd_query.c once did: the reference for the table below. */
static size_t ref_utf8_len(const unsigned char *p, size_t n)
{
        uint32_t cp;
        size_t len, i;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf) {
                len = 2;
                cp = p[0] & 0x1f;
        } else if ((p[0] & 0xf0) == 0xe0) {
                len = 3;
                cp = p[0] & 0x0f;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                len = 4;
                cp = p[0] & 0x07;
        } else {
                return 0;
        }
        if (n < len)
                return 0;
        for (i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
                return 0;
        if (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
                return 0;
        return len;
}

static void expect_len(const unsigned char *p, size_t n)
{
        size_t want = ref_utf8_len(p, n), got = of_json_utf8_len(p, n);

        if (got != want)
                fail_msg("%02x %02x %02x %02x (n %zu): %zu, want %zu", p[0],
                         n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0,
                         n, got, want);
}

/* Every sequence of up to 3 bytes, and 4-byte ones with the bytes that
 * decide (each lead byte, every second byte, the edges of the rest). */
static void test_json_utf8_len_agrees_with_a_decoder(void **state)
{
        static const unsigned char edge[] = {0x00, 0x7f, 0x80, 0xbf, 0xc0};
        unsigned char p[4];
        unsigned a, b, c, d;

        (void)state;
        for (a = 0; a < 256; a++) {
                p[0] = (unsigned char)a;
                expect_len(p, 1);
                for (b = 0; b < 256; b++) {
                        p[1] = (unsigned char)b;
                        expect_len(p, 2);
                        for (c = 0; c < 256; c++) {
                                p[2] = (unsigned char)c;
                                expect_len(p, 3);
                        }
                        for (c = 0; c < sizeof(edge); c++)
                                for (d = 0; d < sizeof(edge); d++) {
                                        p[2] = edge[c];
                                        p[3] = edge[d];
                                        expect_len(p, 4);
                                }
                }
        }
}

static void test_json_utf8_valid_finds_the_first_bad_byte(void **state)
{
        (void)state;
        assert_int_equal(of_json_utf8_valid("", 0), 0);
        assert_int_equal(of_json_utf8_valid("abc", 3), 3);
        assert_int_equal(of_json_utf8_valid("a\xc3\xa9\xe2\x82\xac", 6), 6);
        assert_int_equal(of_json_utf8_valid("ab\xc3\x28", 4), 2);
        assert_int_equal(of_json_utf8_valid("\xf0\x9f\x98\x80\xff", 5), 4);
        assert_int_equal(of_json_utf8_valid("ab\xe2\x82", 4), 2);
        assert_int_equal(of_json_utf8_valid("a\0b", 3), 3);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_string_escapes_like_cjson),
                cmocka_unit_test(test_json_string_keeps_bytes_when_asked),
                cmocka_unit_test(test_json_numbers_and_null),
                cmocka_unit_test(test_json_nesting_places_commas),
                cmocka_unit_test(test_json_file_gets_the_same_bytes),
                cmocka_unit_test(test_json_put_nothing_is_an_empty_string),
                cmocka_unit_test(test_json_utf8_len_agrees_with_a_decoder),
                cmocka_unit_test(
                        test_json_utf8_valid_finds_the_first_bad_byte),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
