/* A blocked Bloom filter over event ids, saved with each sealed run of
 * processed_events so that an id never seen costs no disk probe. Pure. */
#ifndef ORDERFLOW_IDFILTER_H
#define ORDERFLOW_IDFILTER_H

#include <stddef.h>
#include <stdint.h>

/* Bumped whenever of_id_hash() or the bit layout changes: a saved filter
 * of another version is rebuilt from its run, never trusted. */
#define OF_IDFILTER_VERSION 1
#define OF_IDFILTER_BLOCK   64 /* bytes: one cache line per lookup */

typedef struct of_idfilter {
        uint64_t *words; /* nblocks * 8 words */
        uint32_t nblocks;
} of_idfilter;

/* A 64-bit hash of the len bytes at id; fixed across versions of the
 * program (filters are saved). */
uint64_t of_id_hash(const char *id, size_t len);

/* An empty filter sized for keys ids at 16 bits each (false positives
 * about 1 in 1,000). Returns 0 or OF_ERROR (out of memory). */
int of_idfilter_init(of_idfilter *out, uint64_t keys);

void of_idfilter_add(of_idfilter *f, uint64_t hash);

/* 0: the id was never added; 1: it may have been. */
int of_idfilter_maybe(const of_idfilter *f, uint64_t hash);

/* The saved form: nblocks * OF_IDFILTER_BLOCK bytes, little-endian words.
 * of_idfilter_bytes() says how many; of_idfilter_save() writes them. */
size_t of_idfilter_bytes(const of_idfilter *f);
void of_idfilter_save(const of_idfilter *f, unsigned char *out);

/* Loads a saved form (len a non-zero multiple of OF_IDFILTER_BLOCK).
 * Returns 0, or OF_ERROR for a bad length or no memory. */
int of_idfilter_load(of_idfilter *out, const void *bytes, size_t len);

void of_idfilter_free(of_idfilter *f); /* f may hold nothing */

/* Filters of one size, kept block by block side by side: a lookup in all
 * of them reads one contiguous span instead of one cache line each. */
typedef struct of_idfilter_set {
        uint64_t *words;  /* nblocks * n blocks: block b of filter i at
                           * (b * n + i) * OF_IDFILTER_BLOCK bytes */
        uint32_t nblocks; /* of every filter in the set */
        size_t n;
} of_idfilter_set;

/* Appends a copy of f as filter number set->n. f must have set->nblocks
 * blocks unless the set is empty. Returns 0 or OF_ERROR (no memory). */
int of_idfilter_set_add(of_idfilter_set *set, const of_idfilter *f);

/* Removes filter number i (< set->n); those after it move down one. */
void of_idfilter_set_remove(of_idfilter_set *set, size_t i);

/* The index of the first filter at or after from that may hold hash, or
 * set->n when none may. */
size_t of_idfilter_set_next(const of_idfilter_set *set, uint64_t hash,
                            size_t from);

void of_idfilter_set_free(of_idfilter_set *set);

#endif
