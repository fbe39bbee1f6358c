#include "core/hashmap.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

// 64-bit FNV-1a over 8-byte words, then a final avalanche (splitmix64).
uint64_t hash_bytes(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ w) * 0x100000001b3ULL;
    return hash_u64(h);
}

uint64_t hash_u64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static size_t capacity_for(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    return cap;
}

// ---- byte-string keys ---------------------------------------------------------

static void strmap_alloc(StrMap *m, size_t cap) {
    m->cap = cap;
    m->hashes = xcalloc(cap, sizeof *m->hashes);
    m->key_off = xmalloc(cap * sizeof *m->key_off);
    m->key_len = xmalloc(cap * sizeof *m->key_len);
    m->values = xmalloc(cap * sizeof *m->values);
}

void strmap_init(StrMap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    strmap_alloc(m, capacity_for(expected));
    m->arena_cap = 4096;
    m->arena = xmalloc(m->arena_cap);
}

void strmap_free(StrMap *m) {
    free(m->hashes);
    free(m->key_off);
    free(m->key_len);
    free(m->values);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

void strmap_clear(StrMap *m) {
    memset(m->hashes, 0, m->cap * sizeof *m->hashes);
    m->count = 0;
    m->arena_len = 0;
}

static uint64_t nonzero(uint64_t h) { return h ? h : 1; }

static size_t strmap_find(const StrMap *m, uint64_t h, const void *key, size_t len) {
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    while (m->hashes[i]) {
        if (m->hashes[i] == h && m->key_len[i] == len &&
            memcmp(m->arena + m->key_off[i], key, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

int64_t *strmap_get(const StrMap *m, const void *key, size_t len) {
    uint64_t h = nonzero(hash_bytes(key, len));
    size_t i = strmap_find(m, h, key, len);
    return m->hashes[i] ? &m->values[i] : NULL;
}

static void strmap_grow(StrMap *m) {
    StrMap old = *m;
    strmap_alloc(m, old.cap * 2);
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.hashes[i]) continue;
        size_t j = (size_t)old.hashes[i] & (m->cap - 1);
        while (m->hashes[j]) j = (j + 1) & (m->cap - 1);
        m->hashes[j] = old.hashes[i];
        m->key_off[j] = old.key_off[i];
        m->key_len[j] = old.key_len[i];
        m->values[j] = old.values[i];
    }
    free(old.hashes);
    free(old.key_off);
    free(old.key_len);
    free(old.values);
}

int64_t *strmap_put(StrMap *m, const void *key, size_t len, int64_t value, bool *added) {
    uint64_t h = nonzero(hash_bytes(key, len));
    size_t i = strmap_find(m, h, key, len);
    if (added) *added = !m->hashes[i];
    if (m->hashes[i]) return &m->values[i];
    if (m->arena_len + len > UINT32_MAX) fatal("hash map key storage above 4 GiB");
    if (m->arena_len + len > m->arena_cap) {
        while (m->arena_len + len > m->arena_cap) m->arena_cap *= 2;
        m->arena = xrealloc(m->arena, m->arena_cap);
    }
    memcpy(m->arena + m->arena_len, key, len);
    m->hashes[i] = h;
    m->key_off[i] = (uint32_t)m->arena_len;
    m->key_len[i] = (uint32_t)len;
    m->values[i] = value;
    m->arena_len += len;
    m->count++;
    if (m->count * 2 > m->cap) {
        strmap_grow(m);
        i = strmap_find(m, h, key, len);
    }
    return &m->values[i];
}

// ---- uint64 keys --------------------------------------------------------------

void u64map_init(U64Map *m, size_t expected) {
    m->cap = capacity_for(expected);
    m->count = 0;
    m->keys = xmalloc(m->cap * sizeof *m->keys);
    m->values = xmalloc(m->cap * sizeof *m->values);
    m->used = xcalloc(m->cap, 1);
}

void u64map_free(U64Map *m) {
    free(m->keys);
    free(m->values);
    free(m->used);
    memset(m, 0, sizeof *m);
}

static size_t u64map_find(const U64Map *m, uint64_t key) {
    size_t mask = m->cap - 1, i = (size_t)hash_u64(key) & mask;
    while (m->used[i] && m->keys[i] != key) i = (i + 1) & mask;
    return i;
}

int64_t *u64map_get(const U64Map *m, uint64_t key) {
    size_t i = u64map_find(m, key);
    return m->used[i] ? &m->values[i] : NULL;
}

static void u64map_grow(U64Map *m) {
    U64Map old = *m;
    u64map_init(m, old.cap);
    for (size_t i = 0; i < old.cap; i++)
        if (old.used[i]) u64map_put(m, old.keys[i], old.values[i], NULL);
    u64map_free(&old);
}

int64_t *u64map_put(U64Map *m, uint64_t key, int64_t value, bool *added) {
    size_t i = u64map_find(m, key);
    if (added) *added = !m->used[i];
    if (m->used[i]) return &m->values[i];
    m->used[i] = 1;
    m->keys[i] = key;
    m->values[i] = value;
    m->count++;
    if (m->count * 2 > m->cap) {
        u64map_grow(m);
        i = u64map_find(m, key);
    }
    return &m->values[i];
}
