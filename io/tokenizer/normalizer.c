#include "tokenizer/normalizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "tokenizer/text_find.h"

typedef struct {
    bool prepend;          // Prepend(from), else Replace(from -> to)
    char *from, *to;
    size_t from_len, to_len;
} Rule;

struct Normalizer {
    Rule *rules;
    int n_rules;
    char *buf[2];          // the result alternates between two buffers
    size_t cap[2];
};

// ---- building -----------------------------------------------------------------

static Rule *add_rule(Normalizer *n, bool prepend, const char *from, const char *to) {
    n->rules = xrealloc(n->rules, (size_t)(n->n_rules + 1) * sizeof *n->rules);
    Rule *r = &n->rules[n->n_rules++];
    *r = (Rule){prepend, xstrdup(from), xstrdup(to ? to : ""), strlen(from), to ? strlen(to) : 0};
    return r;
}

static bool parse_replace(Normalizer *n, const json_t *o, char *why, int why_len) {
    json_t *pat = json_object_get(o, "pattern");
    const char *from = json_string_value(json_object_get(pat, "String"));
    const char *to = json_string_value(json_object_get(o, "content"));
    if (!from || !*from || !to) {
        snprintf(why, why_len, "Replace normalizer %s is not supported (only a non-empty "
                 "String pattern and a content)", json_object_get(pat, "Regex") ?
                 "with a Regex pattern" : "without a String pattern and content");
        return false;
    }
    add_rule(n, false, from, to);
    return true;
}

static bool parse_into(Normalizer *n, const json_t *spec, char *why, int why_len) {
    const char *type = json_string_value(json_object_get(spec, "type"));
    if (type && strcmp(type, "Replace") == 0) return parse_replace(n, spec, why, why_len);
    if (type && strcmp(type, "Prepend") == 0) {
        const char *s = json_string_value(json_object_get(spec, "prepend"));
        if (!s) {
            snprintf(why, why_len, "Prepend normalizer without a \"prepend\" string");
            return false;
        }
        if (*s) add_rule(n, true, s, NULL);
        return true;
    }
    if (type && strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(spec, "normalizers"), *item;
        size_t i;
        if (!json_is_array(list)) {
            snprintf(why, why_len, "Sequence normalizer without a \"normalizers\" list");
            return false;
        }
        json_array_foreach(list, i, item) if (!parse_into(n, item, why, why_len)) return false;
        return true;
    }
    snprintf(why, why_len, "normalizer \"%s\" is not supported (only Prepend, Replace of a "
             "String, and Sequence of them: the LLaMA-1/2 kind)", type ? type : "(no type)");
    return false;
}

Normalizer *normalizer_from_json(const json_t *spec, char *why, int why_len) {
    Normalizer *n = xcalloc(1, sizeof *n);
    if (!spec || json_is_null(spec)) return n;
    if (!parse_into(n, spec, why, why_len)) {
        normalizer_free(n);
        return NULL;
    }
    return n;
}

bool normalizer_is_identity(const Normalizer *n) { return n->n_rules == 0; }

void normalizer_free(Normalizer *n) {
    if (!n) return;
    for (int i = 0; i < n->n_rules; i++) {
        free(n->rules[i].from);
        free(n->rules[i].to);
    }
    free(n->rules);
    free(n->buf[0]);
    free(n->buf[1]);
    free(n);
}

// ---- running ------------------------------------------------------------------

static char *reserve(Normalizer *n, int k, size_t need) {
    if (need > n->cap[k]) {
        n->cap[k] = need * 2 + 64;
        n->buf[k] = xrealloc(n->buf[k], n->cap[k]);
    }
    return n->buf[k];
}

// Applies one rule to in[0, len) into buffer k; returns the new length.
static size_t apply(Normalizer *n, const Rule *r, const char *in, size_t len, int k) {
    if (r->prepend) {
        char *out = reserve(n, k, len + r->from_len);
        if (len == 0) return 0;  // an empty text stays empty
        memcpy(out, r->from, r->from_len);
        memcpy(out + r->from_len, in, len);
        return len + r->from_len;
    }
    size_t hits = 0;
    for (const char *p = in; (p = text_find(p, len - (size_t)(p - in), r->from, r->from_len));
         p += r->from_len)
        hits++;
    char *out = reserve(n, k, len + hits * r->to_len + 1), *o = out;
    const char *p = in, *end = in + len, *hit;
    while ((hit = text_find(p, (size_t)(end - p), r->from, r->from_len))) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, r->to, r->to_len);
        o += r->to_len;
        p = hit + r->from_len;
    }
    memcpy(o, p, (size_t)(end - p));
    return (size_t)(o - out) + (size_t)(end - p);
}

const char *normalizer_run(Normalizer *n, const char *text, size_t len, size_t *out_len) {
    const char *cur = text;
    for (int i = 0; i < n->n_rules; i++) {
        int k = i % 2;
        len = apply(n, &n->rules[i], cur, len, k);
        cur = n->buf[k];
    }
    *out_len = len;
    return cur;
}
