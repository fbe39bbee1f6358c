// Open-addressing hash maps used by the tokenizer: byte strings -> int64
// (vocabularies, word counts, caches) and uint64 -> int64 (BPE merges, pair
// counts).  Keys are copied into the map; nothing is ever removed one by one
// (a map is cleared whole).
#ifndef LLAMA_HASHMAP_H
#define LLAMA_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint64_t hash_bytes(const void *data, size_t len);
uint64_t hash_u64(uint64_t x);

typedef struct {
    uint64_t *hashes;   // 0 = empty slot (a real hash of 0 is stored as 1)
    uint32_t *key_off;  // offset of the key in arena
    uint32_t *key_len;
    int64_t *values;
    size_t cap, count;  // cap is a power of two
    char *arena;
    size_t arena_len, arena_cap;
} StrMap;

void strmap_init(StrMap *m, size_t expected);
void strmap_free(StrMap *m);
void strmap_clear(StrMap *m);
// Returns a pointer to the value for key, or NULL when absent.
int64_t *strmap_get(const StrMap *m, const void *key, size_t len);
// Inserts key with value when absent; returns a pointer to the (existing or
// new) value and sets *added when the key was new.
int64_t *strmap_put(StrMap *m, const void *key, size_t len, int64_t value, bool *added);
// Key of slot i (for iteration over slots 0..cap-1 whose hashes[i] != 0).
static inline const char *strmap_key(const StrMap *m, size_t i, size_t *len) {
    *len = m->key_len[i];
    return m->arena + m->key_off[i];
}

typedef struct {
    uint64_t *keys;
    int64_t *values;
    uint8_t *used;
    size_t cap, count;
} U64Map;

void u64map_init(U64Map *m, size_t expected);
void u64map_free(U64Map *m);
int64_t *u64map_get(const U64Map *m, uint64_t key);
int64_t *u64map_put(U64Map *m, uint64_t key, int64_t value, bool *added);

#endif
