#include "tokenizer/decoder.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/text_find.h"

typedef enum { REPLACE, BYTE_FALLBACK, FUSE, STRIP, METASPACE } Kind;

typedef struct {
    Kind kind;
    char *from, *to;         // Replace: from -> to; Strip, Metaspace: from is the character
    size_t from_len, to_len;
    int start, stop;         // Strip
    bool prepend;            // Metaspace: prepend_scheme is not "never"
} Step;

struct Decoder {
    Step *steps;
    int n_steps;
    bool join_spaces;        // no decoder at all
};

// A list of token texts: token i is b[i ? end[i - 1] : 0, end[i]).
typedef struct {
    char *b;
    size_t len, cap;
    size_t *end;
    size_t n, ncap;
} Strs;

// ---- building -----------------------------------------------------------------

static Step *add_step(Decoder *d, Kind kind, const char *from, const char *to) {
    d->steps = xrealloc(d->steps, (size_t)(d->n_steps + 1) * sizeof *d->steps);
    Step *s = &d->steps[d->n_steps++];
    *s = (Step){kind, xstrdup(from ? from : ""), xstrdup(to ? to : ""), from ? strlen(from) : 0,
                to ? strlen(to) : 0, 0, 0, false};
    return s;
}

static bool one_char(const char *s) {
    int count = 0;
    if (s) utf8_decode_char((const unsigned char *)s, strlen(s), &count);
    return s && count > 0 && (size_t)count == strlen(s);
}

static bool parse_replace(Decoder *d, const json_t *o, char *why, int why_len) {
    const char *from = json_string_value(json_object_get(json_object_get(o, "pattern"), "String"));
    const char *to = json_string_value(json_object_get(o, "content"));
    if (!from || !*from || !to) {
        snprintf(why, why_len, "Replace decoder is only supported with a non-empty String "
                 "pattern and a content");
        return false;
    }
    add_step(d, REPLACE, from, to);
    return true;
}

static bool parse_strip(Decoder *d, const json_t *o, char *why, int why_len) {
    const char *c = json_string_value(json_object_get(o, "content"));
    json_t *start = json_object_get(o, "start"), *stop = json_object_get(o, "stop");
    if (!one_char(c) || !json_is_integer(start) || !json_is_integer(stop) ||
        json_integer_value(start) < 0 || json_integer_value(stop) < 0 ||
        json_integer_value(start) > 1000 || json_integer_value(stop) > 1000) {
        snprintf(why, why_len, "Strip decoder needs a one-character \"content\" and counts "
                 "\"start\", \"stop\"");
        return false;
    }
    Step *s = add_step(d, STRIP, c, NULL);
    s->start = (int)json_integer_value(start);
    s->stop = (int)json_integer_value(stop);
    return true;
}

static bool parse_metaspace(Decoder *d, const json_t *o, char *why, int why_len) {
    const char *rep = json_string_value(json_object_get(o, "replacement"));
    const char *scheme = json_string_value(json_object_get(o, "prepend_scheme"));
    json_t *aps = json_object_get(o, "add_prefix_space");
    if (!one_char(rep)) {
        snprintf(why, why_len, "Metaspace decoder without a one-character \"replacement\"");
        return false;
    }
    Step *s = add_step(d, METASPACE, rep, NULL);
    s->prepend = scheme ? strcmp(scheme, "never") != 0 : !json_is_false(aps);
    return true;
}

static bool parse_into(Decoder *d, const json_t *spec, char *why, int why_len) {
    const char *type = json_string_value(json_object_get(spec, "type"));
    if (!type) type = "(no type)";
    if (strcmp(type, "Replace") == 0) return parse_replace(d, spec, why, why_len);
    if (strcmp(type, "Strip") == 0) return parse_strip(d, spec, why, why_len);
    if (strcmp(type, "Metaspace") == 0) return parse_metaspace(d, spec, why, why_len);
    if (strcmp(type, "ByteFallback") == 0) return add_step(d, BYTE_FALLBACK, NULL, NULL) != NULL;
    if (strcmp(type, "Fuse") == 0) return add_step(d, FUSE, NULL, NULL) != NULL;
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(spec, "decoders"), *item;
        size_t i;
        if (!json_is_array(list)) {
            snprintf(why, why_len, "Sequence decoder without a \"decoders\" list");
            return false;
        }
        json_array_foreach(list, i, item) if (!parse_into(d, item, why, why_len)) return false;
        return true;
    }
    snprintf(why, why_len, "decoder \"%s\" is not supported for a tokenizer without ByteLevel "
             "(only Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)", type);
    return false;
}

Decoder *decoder_from_json(const json_t *spec, char *why, int why_len) {
    Decoder *d = xcalloc(1, sizeof *d);
    d->join_spaces = !spec || json_is_null(spec);
    if (!d->join_spaces && !parse_into(d, spec, why, why_len)) {
        decoder_free(d);
        return NULL;
    }
    return d;
}

void decoder_free(Decoder *d) {
    if (!d) return;
    for (int i = 0; i < d->n_steps; i++) {
        free(d->steps[i].from);
        free(d->steps[i].to);
    }
    free(d->steps);
    free(d);
}

// ---- token lists --------------------------------------------------------------

static void strs_append(Strs *s, const char *p, size_t n) {
    if (s->len + n + 1 > s->cap) {
        s->cap = 2 * (s->len + n + 1) + 256;
        s->b = xrealloc(s->b, s->cap);
    }
    if (n) memcpy(s->b + s->len, p, n);  // p may be NULL when n is 0
    s->len += n;
}

static void strs_end(Strs *s) {  // closes the token being appended
    if (s->n == s->ncap) {
        s->ncap = s->ncap ? 2 * s->ncap : 64;
        s->end = xrealloc(s->end, s->ncap * sizeof *s->end);
    }
    s->end[s->n++] = s->len;
}

static const char *strs_get(const Strs *s, size_t i, size_t *n) {
    size_t start = i ? s->end[i - 1] : 0;
    *n = s->end[i] - start;
    return s->b + start;
}

// ---- the steps ----------------------------------------------------------------

static void replace(const Step *st, const char *p, size_t n, Strs *out) {
    const char *end = p + n, *hit;
    while ((hit = text_find(p, (size_t)(end - p), st->from, st->from_len))) {
        strs_append(out, p, (size_t)(hit - p));
        strs_append(out, st->to, st->to_len);
        p = hit + st->from_len;
    }
    strs_append(out, p, (size_t)(end - p));
    strs_end(out);
}

static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

// The byte of a <0xNN> token, or -1.
static int byte_token(const char *p, size_t n) {
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static bool utf8_valid(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        int c;
        utf8_decode_char(p + i, n - i, &c);
        if (c == 0) return false;
        i += (size_t)c;
    }
    return true;
}

// Pending bytes as one token when they are UTF-8, else U+FFFD per byte.
static void flush_bytes(const unsigned char *bytes, size_t *nb, Strs *out) {
    if (*nb == 0) return;
    if (utf8_valid(bytes, *nb)) {
        strs_append(out, (const char *)bytes, *nb);
        strs_end(out);
    } else {
        for (size_t i = 0; i < *nb; i++) {
            strs_append(out, "\xEF\xBF\xBD", 3);
            strs_end(out);
        }
    }
    *nb = 0;
}

static void byte_fallback(const Strs *in, Strs *out) {
    unsigned char *bytes = xmalloc(in->n + 1);
    size_t nb = 0;
    for (size_t i = 0; i < in->n; i++) {
        size_t n;
        const char *p = strs_get(in, i, &n);
        int b = byte_token(p, n);
        if (b >= 0) {
            bytes[nb++] = (unsigned char)b;
            continue;
        }
        flush_bytes(bytes, &nb, out);
        strs_append(out, p, n);
        strs_end(out);
    }
    flush_bytes(bytes, &nb, out);
    free(bytes);
}

static size_t char_start_before(const char *p, size_t at) {
    size_t i = at - 1;
    while (i > 0 && ((unsigned char)p[i] & 0xC0) == 0x80) i--;
    return i;
}

static void strip(const Step *st, const char *p, size_t n, Strs *out) {
    size_t a = 0, b = n, c = st->from_len;
    for (int k = 0; k < st->start && a + c <= n && memcmp(p + a, st->from, c) == 0; k++) a += c;
    for (int k = 0; k < st->stop && b > a; k++) {
        size_t s = char_start_before(p, b);
        if (b - s != c || memcmp(p + s, st->from, c) != 0) break;
        b = s;
    }
    strs_append(out, p + a, b - a);
    strs_end(out);
}

static void metaspace(const Step *st, size_t index, const char *p, size_t n, Strs *out) {
    const char *end = p + n, *hit;
    while ((hit = text_find(p, (size_t)(end - p), st->from, st->from_len))) {
        strs_append(out, p, (size_t)(hit - p));
        if (index > 0 || !st->prepend) strs_append(out, " ", 1);
        p = hit + st->from_len;
    }
    strs_append(out, p, (size_t)(end - p));
    strs_end(out);
}

static void run_step(const Step *st, const Strs *in, Strs *out) {
    if (st->kind == BYTE_FALLBACK) {
        byte_fallback(in, out);
        return;
    }
    for (size_t i = 0; i < in->n; i++) {
        size_t n;
        const char *p = strs_get(in, i, &n);
        if (st->kind == REPLACE) replace(st, p, n, out);
        else if (st->kind == STRIP) strip(st, p, n, out);
        else if (st->kind == METASPACE) metaspace(st, i, p, n, out);
        else strs_append(out, p, n);  // FUSE: one token
    }
    if (st->kind == FUSE) strs_end(out);
}

char *decoder_run(const Decoder *d, const char *text, const size_t *off, size_t n_tokens,
                  const uint32_t *ids, size_t n, size_t *len) {
    Strs a = {0}, b = {0};
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= n_tokens || off[ids[i] + 1] == off[ids[i]]) continue;
        if (d->join_spaces && a.len > 0) strs_append(&a, " ", 1);
        strs_append(&a, text + off[ids[i]], off[ids[i] + 1] - off[ids[i]]);
        if (!d->join_spaces) strs_end(&a);
    }
    for (int k = 0; k < d->n_steps; k++) {
        b.len = b.n = 0;
        run_step(&d->steps[k], &a, &b);
        Strs t = a;
        a = b;
        b = t;
    }
    strs_append(&a, "", 0);  // room for the NUL
    a.b[a.len] = 0;
    *len = a.len;
    free(a.end);
    free(b.b);
    free(b.end);
    return a.b;
}
