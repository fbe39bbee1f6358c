// GPT-2's byte-level alphabet: each of the 256 byte values is shown as one
// printable Unicode character (printable Latin-1 bytes as themselves, the
// others as U+0100 upwards), so that BPE vocabularies over raw bytes can be
// written as JSON strings ("Ġ" is the space byte, "Ċ" the newline).
#ifndef LLAMA_BYTE_LEVEL_H
#define LLAMA_BYTE_LEVEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The code point that shows byte b.
uint32_t byte_level_char(unsigned char b);
// Writes the byte-level form of bytes[0, len) as UTF-8 into out (room for
// 2 * len + 1 bytes), NUL-terminated; returns its length.
size_t byte_level_encode(const unsigned char *bytes, size_t len, char *out);
// Reads the UTF-8 string s[0, len) back into bytes (room for len bytes).
// False when s holds a character outside the alphabet or is not UTF-8.
bool byte_level_decode(const char *s, size_t len, unsigned char *out, size_t *out_len);
// Decodes one UTF-8 character at s[0, len): its code point and byte count
// (count 0 when the bytes are not valid UTF-8).
uint32_t utf8_decode_char(const unsigned char *s, size_t len, int *count);

#endif
