/* Blocked Bloom filter: each id sets 7 bits inside one 512-bit block, so a
 * lookup touches one cache line. At 16 bits per id a block holds 32 ids on
 * average and answers "maybe" for an absent id about once in 1,000. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/error.h"
#include "orderflow/idfilter.h"

#define WORDS_PER_BLOCK (OF_IDFILTER_BLOCK / 8)
#define BITS_PER_KEY    16
#define PROBES          7 /* 7 * 9 bits of the second hash */

/* A 64-bit finaliser (xor-shift / multiply rounds): every input bit
 * reaches every output bit. */
static uint64_t mix(uint64_t x)
{
        x ^= x >> 32;
        x *= 0xd6e8feb86659fd93u;
        x ^= x >> 32;
        x *= 0xd6e8feb86659fd93u;
        x ^= x >> 32;
        return x;
}

static uint64_t load_le(const unsigned char *p, size_t n)
{
        uint64_t v = 0;

        while (n--)
                v = v << 8 | p[n];
        return v;
}

uint64_t of_id_hash(const char *id, size_t len)
{
        const unsigned char *p = (const unsigned char *)id;
        uint64_t h = 0x9e3779b97f4a7c15u ^ (uint64_t)len;

        for (; len >= 8; p += 8, len -= 8)
                h = mix(h ^ load_le(p, 8)) + 0x632be59bd9b4e019u;
        return mix(h ^ load_le(p, len) ^ (uint64_t)len << 56);
}

int of_idfilter_init(of_idfilter *out, uint64_t keys)
{
        uint64_t bits = OF_IDFILTER_BLOCK * 8;
        uint64_t want = (keys * BITS_PER_KEY + bits - 1) / bits;
        uint32_t n = want < 1            ? 1
                     : want > UINT32_MAX ? UINT32_MAX
                                         : (uint32_t)want;

        out->words = calloc((size_t)n * WORDS_PER_BLOCK, sizeof(uint64_t));
        out->nblocks = out->words ? n : 0;
        return out->words ? 0 : OF_ERROR;
}

/* The block of a hash: its high half scaled to nblocks (no power of two
 * needed). The probe bits come from a second mix of the hash, so they do
 * not repeat the block's bits. */
static size_t block_index(uint32_t nblocks, uint64_t hash)
{
        return (size_t)(((hash >> 32) * nblocks) >> 32);
}

static uint64_t *block_of(const of_idfilter *f, uint64_t hash)
{
        return f->words + block_index(f->nblocks, hash) * WORDS_PER_BLOCK;
}

void of_idfilter_add(of_idfilter *f, uint64_t hash)
{
        uint64_t *b = block_of(f, hash), g = mix(hash + 1);
        int i;

        for (i = 0; i < PROBES; i++, g >>= 9)
                b[(g & 511) >> 6] |= UINT64_C(1) << (g & 63);
}

/* Whether block b has the probe bits of g. */
static int block_has(const uint64_t *b, uint64_t g)
{
        int i;

        for (i = 0; i < PROBES; i++, g >>= 9)
                if (!(b[(g & 511) >> 6] & UINT64_C(1) << (g & 63)))
                        return 0;
        return 1;
}

int of_idfilter_maybe(const of_idfilter *f, uint64_t hash)
{
        return block_has(block_of(f, hash), mix(hash + 1));
}

size_t of_idfilter_bytes(const of_idfilter *f)
{
        return (size_t)f->nblocks * OF_IDFILTER_BLOCK;
}

void of_idfilter_save(const of_idfilter *f, unsigned char *out)
{
        size_t i, n = (size_t)f->nblocks * WORDS_PER_BLOCK;
        int k;

        for (i = 0; i < n; i++)
                for (k = 0; k < 8; k++)
                        *out++ = (unsigned char)(f->words[i] >> (8 * k));
}

int of_idfilter_load(of_idfilter *out, const void *bytes, size_t len)
{
        size_t i, blocks = len / OF_IDFILTER_BLOCK;

        out->words = NULL;
        out->nblocks = 0;
        if (len == 0 || len % OF_IDFILTER_BLOCK || blocks > UINT32_MAX)
                return OF_ERROR;
        if (!(out->words = malloc(len)))
                return OF_ERROR;
        for (i = 0; i < len / 8; i++)
                out->words[i] =
                        load_le((const unsigned char *)bytes + 8 * i, 8);
        out->nblocks = (uint32_t)blocks;
        return 0;
}

/* Grown in place: realloc() then each row moved up from the last, so the
 * set never needs its old and new copy at once. A copy (malloc, fill,
 * free) did, and its peak was twice the set: 2 x 9.5 MiB after 5M events
 * (38 runs of 256 KiB), which set the projector's peak RSS. */
int of_idfilter_set_add(of_idfilter_set *set, const of_idfilter *f)
{
        size_t b, n = set->n, size = WORDS_PER_BLOCK * sizeof(uint64_t);
        uint64_t *w;

        assert(n == 0 || f->nblocks == set->nblocks);
        w = realloc(set->words, (size_t)f->nblocks * (n + 1) * size);
        if (!w)
                return OF_ERROR;
        /* Row b moves from b * n to b * (n + 1) blocks: up, never onto a
         * row not yet moved when going from the last row down. */
        for (b = f->nblocks; b-- > 0;) {
                if (n)
                        memmove(w + b * (n + 1) * WORDS_PER_BLOCK,
                                w + b * n * WORDS_PER_BLOCK, n * size);
                memcpy(w + (b * (n + 1) + n) * WORDS_PER_BLOCK,
                       f->words + b * WORDS_PER_BLOCK, size);
        }
        set->words = w;
        set->nblocks = f->nblocks;
        set->n = n + 1;
        return 0;
}

void of_idfilter_set_remove(of_idfilter_set *set, size_t i)
{
        size_t b, n = set->n, size = WORDS_PER_BLOCK * sizeof(uint64_t);
        uint64_t *to = set->words, *row, *w;

        assert(i < n);
        if (n == 1) {
                of_idfilter_set_free(set);
                return;
        }
        /* In place: row b moves down to b * (n - 1) blocks, never past
         * where it was read from. */
        for (b = 0; b < set->nblocks; b++) {
                row = set->words + b * n * WORDS_PER_BLOCK;
                memmove(to, row, i * size);
                to += i * WORDS_PER_BLOCK;
                memmove(to, row + (i + 1) * WORDS_PER_BLOCK,
                        (n - i - 1) * size);
                to += (n - i - 1) * WORDS_PER_BLOCK;
        }
        set->n = n - 1;
        /* Giving the memory back may fail; the set stays right. */
        if ((w = realloc(set->words, set->nblocks * set->n * size)))
                set->words = w;
}

size_t of_idfilter_set_next(const of_idfilter_set *set, uint64_t hash,
                            size_t from)
{
        const uint64_t *row;
        uint64_t g;
        size_t i;

        if (from >= set->n)
                return set->n;
        row = set->words +
              block_index(set->nblocks, hash) * set->n * WORDS_PER_BLOCK;
        g = mix(hash + 1);
        for (i = from; i < set->n; i++)
                if (block_has(row + i * WORDS_PER_BLOCK, g))
                        return i;
        return set->n;
}

void of_idfilter_set_free(of_idfilter_set *set)
{
        free(set->words);
        set->words = NULL;
        set->nblocks = 0;
        set->n = 0;
}

void of_idfilter_free(of_idfilter *f)
{
        free(f->words);
        f->words = NULL;
        f->nblocks = 0;
}
