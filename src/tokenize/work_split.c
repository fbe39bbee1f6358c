#include "tokenize/work_split.h"

// First byte of rank r's span of the total: floor(r * total / ranks).
static int64_t span_start(int64_t total, int r, int ranks) {
    return (int64_t)((__int128)total * r / ranks);
}

// The rank whose span holds global byte `at`.
static int owner(int64_t total, int ranks, int64_t at) {
    int r = 0;
    while (r + 1 < ranks && span_start(total, r + 1, ranks) <= at) r++;
    return r;
}

int work_split(const CorpusFiles *c, int rank, int ranks, WorkRange *out) {
    int64_t total = 0;
    for (int i = 0; i < c->n; i++) total += c->files[i].size;
    int64_t lo = span_start(total, rank, ranks), hi = span_start(total, rank + 1, ranks);
    int n = 0;
    int64_t at = 0;
    for (int i = 0; i < c->n; i++) {
        int64_t size = c->files[i].size, f0 = at;
        at += size;
        if (c->files[i].whole) {
            if (owner(total, ranks, f0) == rank) out[n++] = (WorkRange){i, 0, -1};
            continue;
        }
        int64_t b = lo > f0 ? lo : f0, e = hi < f0 + size ? hi : f0 + size;
        if (b < e) out[n++] = (WorkRange){i, b - f0, e - f0};
    }
    return n;
}
