// Finding a short string in text, for the normalizer's and decoder's Replace.
#ifndef LLAMA_TEXT_FIND_H
#define LLAMA_TEXT_FIND_H

#include <stddef.h>
#include <string.h>

// The first occurrence of needle[0, m) (m >= 1) in p[0, n), or NULL (memchr on
// its first byte: much faster than memmem for these short needles).
static inline const char *text_find(const char *p, size_t n, const char *needle, size_t m) {
    const char *end = p + n;
    while ((p = memchr(p, needle[0], (size_t)(end - p)))) {
        if ((size_t)(end - p) < m) return NULL;
        if (memcmp(p, needle, m) == 0) return p;
        p++;
    }
    return NULL;
}

#endif
