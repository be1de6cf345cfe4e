/* Property tests of of_store_apply_batch() against docs/reference.md 2: a
 * random valid event set, delivered in any order with repeats and
 * redeliveries, gives the read model that an independent in-memory model
 * computes from the set; an invalid log follows "first in log order wins";
 * sums stop at 2^63-1. The parts live in tests/prop/ (prop.h says which does
 * what); the model shares no code with src/. OF_PROP_SEED and OF_PROP_CASES
 * override the base seed and the number of cases. */
#include "testutil.h"

#include <inttypes.h>
#include <sys/stat.h>

#include "prop/prop.h"

#define SEED_DEFAULT  20261127ULL
#define CASES_VALID   1000
#define CASES_INVALID 300

static char *g_dir; /* the temporary directory of this run */

/* ---- the properties ------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
        const char *s = getenv(name);

        return s && *s ? strtoull(s, NULL, 0) : dflt;
}

/* A valid set, delivered shuffled with repeats: the model from the set,
 * which the in-order interpreter must reproduce (a check of the model). */
static int valid_case(uint64_t seed)
{
        prop_sbuf a = {0}, b = {0};
        prop_model ms, mi;
        prop_case c;
        int rc;

        prop_case_init(&c, seed);
        prop_gen_valid_set(&c, 40);
        prop_add_deliveries(&c);
        prop_shuffle_and_place(&c);
        prop_model_from_set(&ms, &c);
        prop_model_from_log(&mi, &c);
        prop_dump_model(&a, &c, &ms);
        prop_dump_model(&b, &c, &mi);
        if (strcmp(a.p, b.p)) {
                prop_report(&c, "TEST BUG: set model != log model", &a, &b);
                rc = -1;
        } else {
                rc = prop_check_case(&c, &ms, g_dir, NULL);
        }
        prop_sb_free(&a);
        prop_sb_free(&b);
        prop_model_free(&ms);
        prop_model_free(&mi);
        prop_case_free(&c);
        return rc;
}

/* A random order of the case. */
static int rand_order(prop_case *c)
{
        return (int)prop_below(&c->r, (uint64_t)c->norders);
}

/* A new OrderPlaced or OrderPaid body for a random order; its index. The
 * order is drawn first, then the type (as GCC evaluated the arguments of
 * the one call this replaces: the seeds give the cases they gave). */
static int new_known_body(prop_case *c)
{
        int order = rand_order(c);
        int type = prop_chance(&c->r, 50) ? PROP_PLACED : PROP_PAID;

        return prop_new_body(c, type, order);
}

/* Up to three bodies with the id of a known one that disagree with it: in
 * the order, the amount or the instant. */
static void add_disagreeing(prop_case *c)
{
        int k, bi, nb;
        prop_body *b;

        for (k = (int)prop_below(&c->r, 4); k > 0; k--) {
                if ((bi = prop_pick_known(c)) < 0)
                        break;
                nb = prop_clone_body(c, bi);
                b = &c->bodies[nb]; /* the same id, a body that disagrees */
                if (b->type != PROP_OTHER && c->norders > 1 &&
                    prop_chance(&c->r, 33)) {
                        /* another order: its key may sort before the
                         * first's, which must still win */
                        while (b->order == c->bodies[bi].order)
                                b->order = rand_order(c);
                } else if (prop_chance(&c->r, 50)) {
                        while (b->amount == c->bodies[bi].amount)
                                b->amount = prop_rand_amount(&c->r);
                } else {
                        while (b->at_s == c->bodies[bi].at_s &&
                               b->at_ms == c->bodies[bi].at_ms)
                                prop_rand_instant(c, &b->at_s, &b->at_ms);
                }
        }
}

/* A valid set plus second OrderPlaced/OrderPaid events under new ids,
 * deliveries of known ids with disagreeing bodies, and malformed
 * messages (of known or new ids); the interpreter gives the answer. */
static int invalid_case(uint64_t seed)
{
        prop_model m;
        prop_case c;
        int k, bi, rc;

        prop_case_init(&c, seed);
        prop_gen_valid_set(&c, 25);
        for (k = (int)prop_below(&c.r, 4); k > 0; k--)
                new_known_body(&c);
        add_disagreeing(&c);
        prop_add_deliveries(&c);
        for (k = 1 + (int)prop_below(&c.r, 5); k > 0; k--) {
                bi = prop_chance(&c.r, 50) ? prop_pick_known(&c) : -1;
                if (bi < 0)
                        bi = new_known_body(&c);
                prop_add_msg(&c, bi,
                             1 + (int)prop_below(&c.r, PROP_D_COUNT - 1));
                if (prop_chance(&c.r, 20))
                        prop_add_repeat(&c, c.nlog - 1);
        }
        prop_shuffle_and_place(&c);
        prop_model_from_log(&m, &c);
        rc = prop_check_case(&c, &m, g_dir, NULL);
        prop_model_free(&m);
        prop_case_free(&c);
        return rc;
}

static void run_property(const char *name, int (*one)(uint64_t),
                         uint64_t dflt_cases)
{
        uint64_t seed = env_u64("OF_PROP_SEED", SEED_DEFAULT);
        uint64_t cases = env_u64("OF_PROP_CASES", dflt_cases), i;

        for (i = 0; i < cases; i++)
                if (one(seed + i))
                        fail_msg("%s: case %" PRIu64 " failed, seed %" PRIu64,
                                 name, i, seed + i);
        print_message("%s: %" PRIu64 " cases from seed %" PRIu64 "\n", name,
                      cases, seed);
}

static void test_store_any_delivery_order_gives_the_model(void **state)
{
        (void)state;
        run_property("valid sets", valid_case, CASES_VALID);
}

static void test_store_invalid_log_first_in_log_order_wins(void **state)
{
        (void)state;
        run_property("invalid logs", invalid_case, CASES_INVALID);
}

/* ---- amount overflow ------------------------------------------------ */

/* 1024 * (2^53-1) = 2^63 - 1024, so 1024 events of 2^53-1 fit and 1023
 * more reach 2^63-1 exactly; from there any positive amount overflows,
 * 0 does not. Each event is for the order numbered below; ONE and BIG
 * must be rejected. */
#define OVF_FIT    1024 /* orders 0..1023: 2^53-1 each */
#define OVF_TOP    1024 /* order 1024: 1023, the sum is now 2^63-1 */
#define OVF_ONE    1025 /* order 1025: 1, overflows */
#define OVF_ZERO   1026 /* order 1026: 0, applies */
#define OVF_AGAIN  1025 /* order 1025 under a new id: 0, applies */
#define OVF_BIG    1027 /* order 1027: 2^53-1, overflows */
#define OVF_ORDERS 1028

static int add_fixed(prop_case *c, int type, int order, int64_t amount)
{
        int bi = prop_new_body(c, type, order);

        c->bodies[bi].amount = amount;
        prop_add_msg(c, bi, PROP_D_NONE);
        return bi;
}

static void overflow_case(int type)
{
        /* the sum stops at 2^63-1 over OVF_FIT + 3 orders (TOP, ZERO,
         * AGAIN); ONE, its repeat and BIG are the dead letters */
        prop_overflow ovf = {.placed = type == PROP_PLACED,
                             .sum = INT64_MAX,
                             .applied = OVF_FIT + 3,
                             .dead = 3,
                             .absent = OVF_BIG};
        prop_model m;
        prop_case c;
        int i, rc;

        prop_case_init(&c, SEED_DEFAULT + (uint64_t)type);
        c.maxb = 64;
        c.norders = OVF_ORDERS;
        c.orders = prop_xrealloc(NULL, (size_t)c.norders * PROP_ID_CAP);
        for (i = 0; i < c.norders; i++)
                snprintf(c.orders[i], PROP_ID_CAP, "o-%04d", i);
        for (i = 0; i < OVF_FIT; i++)
                add_fixed(&c, type, i, PROP_AMOUNT_MAX);
        add_fixed(&c, type, OVF_TOP, 1023);
        ovf.rejected[0] = add_fixed(&c, type, OVF_ONE, 1);
        add_fixed(&c, type, OVF_ZERO, 0);
        prop_add_repeat(&c, c.nlog - 2); /* the same bytes at a new offset */
        add_fixed(&c, type, OVF_AGAIN, 0);
        ovf.rejected[1] = add_fixed(&c, type, OVF_BIG, PROP_AMOUNT_MAX);
        for (i = 0; i < (int)c.nlog; i++) { /* log order kept */
                c.log[i].partition = (int32_t)prop_below(&c.r, PROP_NPART);
                c.log[i].offset = i;
        }
        prop_model_from_log(&m, &c);
        assert_int_equal(m.sum_placed + m.sum_paid, INT64_MAX);
        rc = prop_check_case(&c, &m, g_dir, &ovf);
        prop_model_free(&m);
        prop_case_free(&c);
        if (rc)
                fail_msg("amount overflow (%s)",
                         type == PROP_PLACED ? "OrderPlaced" : "OrderPaid");
}

static void test_store_placed_amount_overflow_is_a_dead_letter(void **state)
{
        (void)state;
        overflow_case(PROP_PLACED);
}

static void test_store_paid_amount_overflow_is_a_dead_letter(void **state)
{
        (void)state;
        overflow_case(PROP_PAID);
}

/* ---- main ----------------------------------------------------------- */

static int group_setup(void **state)
{
        struct stat sb;
        char tmpl_shm[] = "/dev/shm/orderflow-prop-XXXXXX";
        char tmpl_tmp[] = "/tmp/orderflow-prop-XXXXXX";
        char *dir = NULL;

        (void)state;
        if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode))
                dir = mkdtemp(tmpl_shm);
        if (!dir)
                dir = mkdtemp(tmpl_tmp);
        if (!dir)
                return -1;
        g_dir = strdup(dir);
        return g_dir ? 0 : -1;
}

static int group_teardown(void **state)
{
        (void)state;
        if (g_dir && rmdir(g_dir))
                fprintf(stderr, "could not remove %s\n", g_dir);
        free(g_dir);
        g_dir = NULL;
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_store_any_delivery_order_gives_the_model),
                cmocka_unit_test(
                        test_store_invalid_log_first_in_log_order_wins),
                cmocka_unit_test(
                        test_store_placed_amount_overflow_is_a_dead_letter),
                cmocka_unit_test(
                        test_store_paid_amount_overflow_is_a_dead_letter),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
