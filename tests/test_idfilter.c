/* The id filter: no false negatives, a false positive rate near its
 * design (16 bits per id), the saved form read back exactly, and a hash
 * that never changes (filters are saved in read-model files). */
#include "testutil.h"

#include "orderflow/error.h"
#include "orderflow/idfilter.h"

#define N 100000

static uint64_t hash_of(const char *prefix, int i)
{
        char id[64];
        int len = snprintf(id, sizeof(id), "%s-%08d", prefix, i);

        return of_id_hash(id, (size_t)len);
}

static void test_idfilter_has_every_added_id_and_few_others(void **state)
{
        of_idfilter f;
        int i, maybe = 0;

        (void)state;
        assert_int_equal(of_idfilter_init(&f, N), 0);
        for (i = 0; i < N; i++)
                of_idfilter_add(&f, hash_of("in", i));
        for (i = 0; i < N; i++)
                assert_int_equal(of_idfilter_maybe(&f, hash_of("in", i)), 1);
        for (i = 0; i < N; i++)
                maybe += of_idfilter_maybe(&f, hash_of("out", i));
        print_message("false positives: %d of %d\n", maybe, N);
        assert_true(maybe < N / 200); /* designed for about N / 1000 */
        of_idfilter_free(&f);
}

static void test_idfilter_saved_form_reads_back(void **state)
{
        of_idfilter f, g;
        unsigned char *bytes;
        size_t len;
        int i;

        (void)state;
        assert_int_equal(of_idfilter_init(&f, 1000), 0);
        for (i = 0; i < 1000; i++)
                of_idfilter_add(&f, hash_of("in", i));
        len = of_idfilter_bytes(&f);
        assert_int_equal(len % OF_IDFILTER_BLOCK, 0);
        bytes = malloc(len);
        of_idfilter_save(&f, bytes);
        assert_int_equal(of_idfilter_load(&g, bytes, len), 0);
        assert_int_equal(g.nblocks, f.nblocks);
        assert_memory_equal(g.words, f.words, len);
        for (i = 0; i < 1000; i++)
                assert_int_equal(of_idfilter_maybe(&g, hash_of("out", i)),
                                 of_idfilter_maybe(&f, hash_of("out", i)));
        of_idfilter_free(&g);
        assert_int_equal(of_idfilter_load(&g, bytes, len - 1), OF_ERROR);
        assert_null(g.words);
        assert_int_equal(of_idfilter_load(&g, bytes, 0), OF_ERROR);
        of_idfilter_free(&f);
        of_idfilter_free(&g);
        free(bytes);
}

/* A set answers for each of its filters exactly as the filter itself. */
static void test_idfilter_set_answers_as_its_filters(void **state)
{
        of_idfilter f[3];
        of_idfilter_set set = {0};
        char prefix[8];
        size_t k, next;
        int i, j;

        (void)state;
        for (j = 0; j < 3; j++) {
                assert_int_equal(of_idfilter_init(&f[j], 5000), 0);
                snprintf(prefix, sizeof(prefix), "f%d", j);
                for (i = 0; i < 5000; i++)
                        of_idfilter_add(&f[j], hash_of(prefix, i));
                assert_int_equal(of_idfilter_set_add(&set, &f[j]), 0);
        }
        assert_int_equal(set.n, 3);
        for (i = 0; i < 20000; i++) {
                uint64_t h = hash_of(i % 2 ? "f1" : "x", i % 7000);

                for (k = 0, next = of_idfilter_set_next(&set, h, 0); k < 3;
                     k++) {
                        int maybe = of_idfilter_maybe(&f[k], h);

                        assert_int_equal(next == k, maybe);
                        if (maybe)
                                next = of_idfilter_set_next(&set, h, k + 1);
                }
                assert_int_equal(next, 3);
        }
        for (j = 0; j < 3; j++)
                of_idfilter_free(&f[j]);
        of_idfilter_set_free(&set);
}

/* Removing a filter from a set leaves the others answering as before,
 * under their new numbers; removing the last one empties the set. */
static void test_idfilter_set_remove_keeps_the_others(void **state)
{
        static const int gone[] = {1, 2, 0, 0}; /* set numbers, in turn */
        of_idfilter f[4];
        of_idfilter_set set = {0};
        int left[4] = {0, 1, 2, 3}; /* filter of each set number */
        char prefix[8];
        uint64_t h;
        size_t k, r;
        int i, j;

        (void)state;
        for (j = 0; j < 4; j++) {
                assert_int_equal(of_idfilter_init(&f[j], 2000), 0);
                snprintf(prefix, sizeof(prefix), "f%d", j);
                for (i = 0; i < 2000; i++)
                        of_idfilter_add(&f[j], hash_of(prefix, i));
                assert_int_equal(of_idfilter_set_add(&set, &f[j]), 0);
        }
        for (r = 0; r < 4; r++) {
                of_idfilter_set_remove(&set, (size_t)gone[r]);
                for (k = (size_t)gone[r]; k + 1 < 4 - r; k++)
                        left[k] = left[k + 1];
                assert_int_equal(set.n, 3 - r);
                for (i = 0; i < 4000; i++) {
                        snprintf(prefix, sizeof(prefix), "f%d", i % 4);
                        h = hash_of(prefix, i / 4);
                        for (k = 0; k < set.n; k++)
                                assert_int_equal(
                                        of_idfilter_set_next(&set, h, k) == k,
                                        of_idfilter_maybe(&f[left[k]], h));
                }
        }
        assert_null(set.words);
        for (j = 0; j < 4; j++)
                of_idfilter_free(&f[j]);
}

/* Saved filters depend on these exact values: a change here must bump
 * OF_IDFILTER_VERSION. */
static void test_idfilter_hash_is_fixed(void **state)
{
        (void)state;
        assert_true(of_id_hash("a", 1) != of_id_hash("b", 1));
        assert_true(of_id_hash("abcdefgh", 8) != of_id_hash("abcdefgh\0", 9));
        assert_int_equal(
                of_id_hash("0190b5b2-0000-7000-8000-000000000001", 36),
                0xd82279149d23cebcULL);
        assert_int_equal(of_id_hash("e1", 2), 0xaddd8fef02cc4934ULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_idfilter_has_every_added_id_and_few_others),
                cmocka_unit_test(test_idfilter_saved_form_reads_back),
                cmocka_unit_test(test_idfilter_set_answers_as_its_filters),
                cmocka_unit_test(test_idfilter_set_remove_keeps_the_others),
                cmocka_unit_test(test_idfilter_hash_is_fixed),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
