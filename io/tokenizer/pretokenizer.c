#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "tokenizer/byte_level.h"

typedef enum { REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS } Behavior;
typedef enum { PREPEND_NEVER, PREPEND_FIRST, PREPEND_ALWAYS } Prepend;

typedef struct {
    bool prefix_space;   // ByteLevel(add_prefix_space)
    bool metaspace;      // Metaspace: ' ' -> rep, rep prepended per the scheme
    char rep[5];         // the replacement character, UTF-8
    size_t rep_len;
    Prepend prepend;
    pcre2_code *re;      // NULL: no split
    pcre2_match_data *md;
    bool jit;
    Behavior behavior;
    bool invert;
} Step;

typedef struct {
    size_t start, end;
    bool match;
} Span;

struct PreTokenizer {
    Step *steps;
    int n_steps;
    bool byte_level;
    PieceList tmp;
    const char *origin;   // the start of the original text, or NULL (Metaspace "first")
    Span *spans;
    size_t n_spans, cap_spans;
    char **blocks;        // memory for pieces given a leading space
    int n_blocks;
    size_t block_used, block_cap;
};

// ---- building -----------------------------------------------------------------

static bool compile_step(Step *s, const char *pattern, bool literal, char *why, int why_len) {
    int code;
    PCRE2_SIZE at;
    // PCRE2_LITERAL refuses PCRE2_UCP (which only matters to character classes)
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    s->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &code, &at, NULL);
    if (!s->re) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(why, why_len, "the split regex \"%.200s\" does not compile (PCRE2: %s at "
                 "offset %zu)", pattern, (char *)msg, (size_t)at);
        return false;
    }
    s->jit = pcre2_jit_compile(s->re, PCRE2_JIT_COMPLETE) == 0;
    s->md = pcre2_match_data_create_from_pattern(s->re, NULL);
    return true;
}

static Step *add_step(PreTokenizer *pt) {
    pt->steps = xrealloc(pt->steps, (size_t)(pt->n_steps + 1) * sizeof *pt->steps);
    Step *s = &pt->steps[pt->n_steps++];
    memset(s, 0, sizeof *s);
    s->behavior = ISOLATED;
    return s;
}

static bool json_flag(const json_t *o, const char *key, bool dflt) {
    json_t *v = json_object_get(o, key);
    return v && json_is_boolean(v) ? json_is_true(v) : dflt;
}

static bool parse_byte_level(PreTokenizer *pt, const json_t *o, char *why, int why_len) {
    Step *s = add_step(pt);
    s->prefix_space = json_flag(o, "add_prefix_space", true);
    pt->byte_level = true;
    if (!json_flag(o, "use_regex", true)) return true;
    return compile_step(s, GPT2_SPLIT_REGEX, false, why, why_len);
}

static bool parse_behavior(const char *name, Behavior *b) {
    const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                           "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *b = (Behavior)i;
            return true;
        }
    return false;
}

static bool parse_split(PreTokenizer *pt, const json_t *o, char *why, int why_len) {
    json_t *pat = json_object_get(o, "pattern");
    json_t *re = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
    const char *beh = json_string_value(json_object_get(o, "behavior"));
    Step *s = add_step(pt);
    if (!parse_behavior(beh, &s->behavior)) {
        snprintf(why, why_len, "Split pre-tokenizer with behavior \"%s\" is not supported",
                 beh ? beh : "(none)");
        return false;
    }
    s->invert = json_flag(o, "invert", false);
    if (json_is_string(re)) return compile_step(s, json_string_value(re), false, why, why_len);
    if (json_is_string(str)) return compile_step(s, json_string_value(str), true, why, why_len);
    snprintf(why, why_len, "Split pre-tokenizer without a \"Regex\" or \"String\" pattern");
    return false;
}

// Metaspace(replacement, prepend_scheme, split); files older than tokenizers
// 0.19 have add_prefix_space instead of prepend_scheme (true: "always").
static bool parse_metaspace(PreTokenizer *pt, const json_t *o, char *why, int why_len) {
    const char *rep = json_string_value(json_object_get(o, "replacement"));
    const char *scheme = json_string_value(json_object_get(o, "prepend_scheme"));
    Step *s = add_step(pt);
    int count = 0;
    if (rep) utf8_decode_char((const unsigned char *)rep, strlen(rep), &count);
    if (!rep || count == 0 || (size_t)count != strlen(rep)) {
        snprintf(why, why_len, "Metaspace pre-tokenizer without a one-character \"replacement\"");
        return false;
    }
    s->metaspace = true;
    memcpy(s->rep, rep, (size_t)count + 1);
    s->rep_len = (size_t)count;
    if (!scheme) s->prepend = json_flag(o, "add_prefix_space", true) ? PREPEND_ALWAYS : PREPEND_NEVER;
    else if (strcmp(scheme, "always") == 0) s->prepend = PREPEND_ALWAYS;
    else if (strcmp(scheme, "first") == 0) s->prepend = PREPEND_FIRST;
    else if (strcmp(scheme, "never") == 0) s->prepend = PREPEND_NEVER;
    else {
        snprintf(why, why_len, "Metaspace prepend_scheme \"%.40s\" is not supported (always, "
                 "first, never)", scheme);
        return false;
    }
    if (!json_flag(o, "split", true)) return true;
    s->behavior = MERGED_WITH_NEXT;  // split before every replacement character
    return compile_step(s, rep, true, why, why_len);
}

static bool parse_into(PreTokenizer *pt, const json_t *spec, char *why, int why_len) {
    const char *type = json_string_value(json_object_get(spec, "type"));
    if (type && strcmp(type, "ByteLevel") == 0) return parse_byte_level(pt, spec, why, why_len);
    if (type && strcmp(type, "Metaspace") == 0) return parse_metaspace(pt, spec, why, why_len);
    if (type && strcmp(type, "Split") == 0) return parse_split(pt, spec, why, why_len);
    if (type && strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(spec, "pretokenizers");
        size_t i;
        json_t *item;
        if (!json_is_array(list)) {
            snprintf(why, why_len, "Sequence pre-tokenizer without a \"pretokenizers\" list");
            return false;
        }
        json_array_foreach(list, i, item) if (!parse_into(pt, item, why, why_len)) return false;
        return true;
    }
    snprintf(why, why_len, "pre-tokenizer \"%s\" is not supported (only ByteLevel, Split, "
             "Metaspace and Sequence of them)", type ? type : "(no type)");
    return false;
}

PreTokenizer *pretokenizer_from_json(const json_t *spec, char *why, int why_len) {
    PreTokenizer *pt = xcalloc(1, sizeof *pt);
    if (!spec || json_is_null(spec)) return pt;
    if (!json_is_object(spec) || !parse_into(pt, spec, why, why_len)) {
        if (!json_is_object(spec)) snprintf(why, why_len, "the pre-tokenizer is not an object");
        pretokenizer_free(pt);
        return NULL;
    }
    return pt;
}

PreTokenizer *pretokenizer_gpt2(void) {
    PreTokenizer *pt = xcalloc(1, sizeof *pt);
    char why[256];
    Step *s = add_step(pt);
    pt->byte_level = true;
    if (!compile_step(s, GPT2_SPLIT_REGEX, false, why, sizeof why)) fatal("%s", why);
    return pt;
}

bool pretokenizer_is_byte_level(const PreTokenizer *pt) { return pt->byte_level; }

void pretokenizer_free(PreTokenizer *pt) {
    if (!pt) return;
    for (int i = 0; i < pt->n_steps; i++) {
        if (pt->steps[i].md) pcre2_match_data_free(pt->steps[i].md);
        if (pt->steps[i].re) pcre2_code_free(pt->steps[i].re);
    }
    for (int i = 0; i < pt->n_blocks; i++) free(pt->blocks[i]);
    free(pt->blocks);
    free(pt->steps);
    free(pt->tmp.v);
    free(pt->spans);
    free(pt);
}

// ---- running ------------------------------------------------------------------

static void piece_push(PieceList *l, const char *p, size_t len) {
    if (len == 0) return;  // empty pieces are dropped, as in tokenizers
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = (Piece){p, len};
}

// n bytes of memory that live until the next run.
static char *piece_alloc(PreTokenizer *pt, size_t n) {
    if (pt->n_blocks == 0 || pt->block_used + n > pt->block_cap) {
        size_t cap = n > ((size_t)1 << 16) ? n : (size_t)1 << 16;
        pt->blocks = xrealloc(pt->blocks, (size_t)(pt->n_blocks + 1) * sizeof *pt->blocks);
        pt->blocks[pt->n_blocks++] = xmalloc(cap);
        pt->block_cap = cap;
        pt->block_used = 0;
    }
    char *dst = pt->blocks[pt->n_blocks - 1] + pt->block_used;
    pt->block_used += n;
    return dst;
}

// A copy of piece with a leading space.
static Piece with_space(PreTokenizer *pt, Piece in) {
    char *dst = piece_alloc(pt, in.len + 1);
    dst[0] = ' ';
    memcpy(dst + 1, in.p, in.len);
    return (Piece){dst, in.len + 1};
}

// Metaspace: every space replaced by the replacement, which is put in front
// (always; "first": only of the piece that starts the original text) unless
// the piece then starts with it.
static Piece metaspace(PreTokenizer *pt, const Step *s, Piece in) {
    size_t spaces = 0;
    for (size_t i = 0; i < in.len; i++) spaces += in.p[i] == ' ';
    bool first = s->prepend == PREPEND_ALWAYS || (s->prepend == PREPEND_FIRST && in.p == pt->origin);
    bool prepend = first && in.len > 0 && in.p[0] != ' ' &&
                   !(in.len >= s->rep_len && memcmp(in.p, s->rep, s->rep_len) == 0);
    char *dst = piece_alloc(pt, in.len + (spaces + prepend) * s->rep_len), *o = dst;
    if (prepend) memcpy(o, s->rep, s->rep_len), o += s->rep_len;
    for (size_t i = 0; i < in.len; i++) {
        if (in.p[i] != ' ') *o++ = in.p[i];
        else memcpy(o, s->rep, s->rep_len), o += s->rep_len;
    }
    return (Piece){dst, (size_t)(o - dst)};
}

static void span_push(PreTokenizer *pt, size_t start, size_t end, bool match) {
    if (pt->n_spans == pt->cap_spans) {
        pt->cap_spans = pt->cap_spans ? pt->cap_spans * 2 : 256;
        pt->spans = xrealloc(pt->spans, pt->cap_spans * sizeof *pt->spans);
    }
    pt->spans[pt->n_spans++] = (Span){start, end, match};
}

static size_t char_len(const char *p, size_t left) {
    unsigned c = (unsigned char)*p;
    size_t n = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return n <= left ? n : 1;
}

// Matches and the gaps between them, covering the piece.
static void find_spans(PreTokenizer *pt, Step *s, Piece in) {
    pt->n_spans = 0;
    size_t at = 0, prev = 0;
    while (at < in.len) {
        int rc = s->jit ? pcre2_jit_match(s->re, (PCRE2_SPTR)in.p, in.len, at, 0, s->md, NULL)
                        : pcre2_match(s->re, (PCRE2_SPTR)in.p, in.len, at, 0, s->md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        if (ov[1] == ov[0]) {  // an empty match splits nothing: move on one character
            at = ov[0] + char_len(in.p + ov[0], in.len - ov[0]);
            continue;
        }
        if (ov[0] > prev) span_push(pt, prev, ov[0], false);
        span_push(pt, ov[0], ov[1], true);
        prev = at = ov[1];
    }
    if (prev < in.len) span_push(pt, prev, in.len, false);
}

// Applies the split behaviour to the spans (tokenizers' SplitDelimiterBehavior).
static void merge_spans(PreTokenizer *pt, Behavior b) {
    Span *sp = pt->spans;
    size_t n = 0;
    bool prev_match = false;
    if (b == MERGED_WITH_NEXT) {  // fold from the right
        for (size_t i = pt->n_spans; i-- > 0;) {
            Span s = sp[i];
            if (s.match && !prev_match && n > 0) sp[pt->n_spans - n].start = s.start;
            else sp[pt->n_spans - ++n] = (Span){s.start, s.end, false};
            prev_match = s.match;
        }
        memmove(sp, sp + pt->n_spans - n, n * sizeof *sp);
        pt->n_spans = n;
        return;
    }
    for (size_t i = 0; i < pt->n_spans; i++) {
        Span s = sp[i];
        bool join = b == MERGED_WITH_PREVIOUS ? s.match && !prev_match
                  : b == CONTIGUOUS ? s.match == prev_match : false;
        if (b == REMOVED && s.match) continue;
        if (join && n > 0) sp[n - 1].end = s.end;
        else sp[n++] = (Span){s.start, s.end, false};
        prev_match = s.match;
    }
    pt->n_spans = n;
}

static void run_step(PreTokenizer *pt, Step *s, Piece in, PieceList *out) {
    if (s->prefix_space && in.len > 0 && in.p[0] != ' ') in = with_space(pt, in);
    if (s->metaspace) in = metaspace(pt, s, in);
    if (!s->re) {
        piece_push(out, in.p, in.len);
        return;
    }
    find_spans(pt, s, in);
    if (s->invert)
        for (size_t i = 0; i < pt->n_spans; i++) pt->spans[i].match = !pt->spans[i].match;
    if (s->behavior != ISOLATED) merge_spans(pt, s->behavior);
    for (size_t i = 0; i < pt->n_spans; i++)
        piece_push(out, in.p + pt->spans[i].start, pt->spans[i].end - pt->spans[i].start);
}

void pretokenizer_run(PreTokenizer *pt, const char *text, size_t len, PieceList *out) {
    pretokenizer_run_from(pt, text, len, true, out);
}

void pretokenizer_run_from(PreTokenizer *pt, const char *text, size_t len, bool text_start,
                           PieceList *out) {
    for (int i = 0; i < pt->n_blocks; i++) free(pt->blocks[i]);
    pt->n_blocks = 0;
    pt->origin = text_start ? text : NULL;
    out->n = 0;
    piece_push(out, text, len);
    for (int i = 0; i < pt->n_steps; i++) {
        PieceList *src = out, *dst = &pt->tmp;
        dst->n = 0;
        for (size_t j = 0; j < src->n; j++) run_step(pt, &pt->steps[i], src->v[j], dst);
        PieceList t = *out;
        *out = pt->tmp;
        pt->tmp = t;
    }
}
