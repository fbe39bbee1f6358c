// Counter-based random numbers: every value is a pure function of a key and
// a counter, so any rank can draw "element i of tensor t" or "token j of
// sample s" without drawing anything else first.  That makes initialisation,
// synthetic data and sampling identical under every parallel layout.
#ifndef LLAMA_RNG_H
#define LLAMA_RNG_H

#include <math.h>
#include <stdint.h>

// splitmix64's finaliser: a bijective 64-bit mix.
static inline uint64_t rng_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static inline uint64_t rng_key(uint64_t a, uint64_t b) { return rng_mix(rng_mix(a) ^ b); }

static inline uint64_t rng_bits(uint64_t key, uint64_t counter) {
    return rng_mix(key ^ rng_mix(counter));
}

// Uniform in (0, 1): never exactly 0 or 1.
static inline double rng_uniform(uint64_t key, uint64_t counter) {
    return ((double)(rng_bits(key, counter) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Standard normal (Box–Muller on two independent uniforms).
static inline double rng_normal(uint64_t key, uint64_t counter) {
    double u1 = rng_uniform(key, 2 * counter), u2 = rng_uniform(key, 2 * counter + 1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// FNV-1a of a string, mixed: a stable key for a named tensor.
static inline uint64_t rng_hash_string(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return rng_mix(h);
}

#endif
