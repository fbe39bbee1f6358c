// A seeded pseudo-random permutation of [0, n) with O(1) memory and random
// access: a 4-round Feistel network over the smallest even-bit power-of-two
// domain ≥ n, cycle-walking until the value falls inside [0, n).
#ifndef LLAMA_PERMUTATION_H
#define LLAMA_PERMUTATION_H

#include <stdint.h>

#include "core/rng.h"

typedef struct {
    uint64_t n, key;
    int half_bits;
    uint64_t half_mask;
} Permutation;

static inline Permutation permutation_make(uint64_t n, uint64_t key) {
    Permutation p = {n, key, 1, 1};
    while (((uint64_t)1 << (2 * p.half_bits)) < n) p.half_bits++;
    p.half_mask = ((uint64_t)1 << p.half_bits) - 1;
    return p;
}

static inline uint64_t permutation_round(const Permutation *p, uint64_t x) {
    uint64_t l = x >> p->half_bits, r = x & p->half_mask;
    for (int round = 0; round < 4; round++) {
        uint64_t f = rng_bits(p->key + (uint64_t)round, r) & p->half_mask;
        uint64_t t = r;
        r = l ^ f;
        l = t;
    }
    return (l << p->half_bits) | r;
}

// The image of i (< n) under the permutation.
static inline uint64_t permutation_apply(const Permutation *p, uint64_t i) {
    uint64_t x = permutation_round(p, i);
    while (x >= p->n) x = permutation_round(p, x);
    return x;
}

#endif
