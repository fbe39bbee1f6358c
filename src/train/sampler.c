#include "train/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/util.h"

bool sampler_check(const SamplerConfig *c, char *err, int err_len) {
    if (!(c->temperature >= 0 && isfinite(c->temperature)))
        snprintf(err, err_len, "--sample-temperature %g: must be a number >= 0 (0: greedy)",
                 c->temperature);
    else if (c->top_k < 0)
        snprintf(err, err_len, "--sample-top-k %d: must be >= 0 (0: no top-k)", c->top_k);
    else if (!(c->top_p > 0 && c->top_p <= 1))
        snprintf(err, err_len, "--sample-top-p %g: must be in (0, 1] (1: no top-p)", c->top_p);
    else return true;
    return false;
}

typedef struct {
    double score;   // logit / temperature (-inf for NaN)
    int id;
} Scored;

// Largest score first; equal scores by id, so the order is total.
static int by_score(const void *a_, const void *b_) {
    const Scored *a = a_, *b = b_;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

// Top-k on sorted scores: how many are at least the k-th largest.
static int keep_top_k(const Scored *s, int n, int k) {
    if (k <= 0 || k >= n) return n;
    int kept = k;
    while (kept < n && s[kept].score >= s[k - 1].score) kept++;
    return kept;
}

// Softmax of the n first (sorted) scores into p; top-p then keeps the prefix
// whose mass before each token is below top_p.  Returns the count kept.
static int keep_top_p(const Scored *s, int n, double top_p, double *p) {
    if (!isfinite(s[0].score)) {   // every logit -inf (or the largest +inf): the first
        p[0] = 1;
        return 1;
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += p[i] = exp(s[i].score - s[0].score);
    if (top_p >= 1) return n;
    double before = 0;
    int kept = 0;
    while (kept < n && (kept == 0 || before < top_p)) before += p[kept++] / sum;
    return kept;
}

int sampler_probs(const SamplerConfig *c, const float *logits, int V, double *probs) {
    Scored *s = xmalloc((size_t)V * sizeof *s);   // (V) every token, then sorted
    double t = c->temperature > 0 ? c->temperature : 1.0;
    for (int i = 0; i < V; i++) {
        s[i].score = isnan(logits[i]) ? -INFINITY : logits[i] / t;
        s[i].id = i;
        probs[i] = 0;
    }
    qsort(s, (size_t)V, sizeof *s, by_score);
    int n = c->temperature > 0 ? keep_top_k(s, V, c->top_k) : 1;
    double *p = xmalloc((size_t)n * sizeof *p);   // (n) unnormalised kept probabilities
    n = keep_top_p(s, n, c->temperature > 0 ? c->top_p : 1.0, p);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += p[i];
    for (int i = 0; i < n; i++) probs[s[i].id] = p[i] / sum;
    free(p);
    free(s);
    return n;
}

int sampler_pick(const double *probs, int V, double u) {
    double acc = 0;
    int last = 0;
    for (int i = 0; i < V; i++) {
        if (probs[i] <= 0) continue;
        acc += probs[i];
        last = i;
        if (u < acc) return i;
    }
    return last;   // u beyond the rounded total: the last kept token
}

int sampler_draw(const SamplerConfig *c, const float *logits, int V, double u) {
    double *probs = xmalloc((size_t)V * sizeof *probs);   // (V)
    sampler_probs(c, logits, V, probs);
    int id = sampler_pick(probs, V, u);
    free(probs);
    return id;
}
