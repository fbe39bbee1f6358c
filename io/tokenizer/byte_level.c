#include "tokenizer/byte_level.h"

#include <stdbool.h>

static bool shown_as_itself(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t byte_level_char(unsigned char b) {
    if (shown_as_itself(b)) return b;
    unsigned n = 0;  // rank of b among the bytes not shown as themselves
    for (unsigned c = 0; c < b; c++) n += !shown_as_itself(c);
    return 256 + n;
}

// The byte shown by code point cp, or -1 when cp is not in the alphabet.
static int byte_of_char(uint32_t cp) {
    static short table[256 + 68];
    static bool ready;
    if (!ready) {
        for (unsigned b = 0; b < 256; b++) table[byte_level_char((unsigned char)b)] = (short)(b + 1);
        ready = true;
    }
    return cp < 256 + 68 ? table[cp] - 1 : -1;
}

size_t byte_level_encode(const unsigned char *bytes, size_t len, char *out) {
    static char table[256][3];
    static bool ready;
    if (!ready) {
        for (unsigned b = 0; b < 256; b++) {
            uint32_t cp = byte_level_char((unsigned char)b);
            if (cp < 0x80) {
                table[b][0] = (char)cp, table[b][1] = 0;
            } else {
                table[b][0] = (char)(0xC0 | (cp >> 6));
                table[b][1] = (char)(0x80 | (cp & 0x3F));
            }
        }
        ready = true;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        out[n++] = table[bytes[i]][0];
        if (table[bytes[i]][1]) out[n++] = table[bytes[i]][1];
    }
    out[n] = 0;
    return n;
}

uint32_t utf8_decode_char(const unsigned char *s, size_t len, int *count) {
    unsigned c = s[0];
    int k = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
          : (c & 0xF8) == 0xF0 ? 3 : -1;
    *count = 0;
    if (k < 0 || (size_t)k + 1 > len) return 0;
    uint32_t cp = k == 0 ? c : c & (0x3F >> k);
    for (int j = 1; j <= k; j++) {
        if ((s[j] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[j] & 0x3F);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0;
    *count = k + 1;
    return cp;
}

bool byte_level_decode(const char *s, size_t len, unsigned char *out, size_t *out_len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, n = 0;
    while (i < len) {
        int count;
        uint32_t cp = utf8_decode_char(u + i, len - i, &count);
        int b = count ? byte_of_char(cp) : -1;
        if (b < 0) return false;
        out[n++] = (unsigned char)b;
        i += (size_t)count;
    }
    *out_len = n;
    return true;
}
