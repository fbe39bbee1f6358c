// The sampler (train/sampler.h) against distributions worked out by hand for
// small vectors — temperature, top-k (ties at the k-th kept), top-p (the
// smallest most-probable set reaching p, at least one token), and the order
// temperature → top-k → top-p — which transformers' TemperatureLogitsWarper,
// TopKLogitsWarper and TopPLogitsWarper reproduce (checked when this test was
// written); then the frequencies of many seeded draws against the filtered
// probabilities, within 5 standard deviations of a binomial count.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "train/sampler.h"

#define V 4

// probs of c on logits equal want (to 1e-12).
static void expect(const char *name, SamplerConfig c, const float logits[V], const double want[V],
                   int kept) {
    check_begin(name);
    double got[V];
    int n = sampler_probs(&c, logits, V, got);
    CHECK(n == kept, "kept %d tokens, want %d", n, kept);
    for (int i = 0; i < V; i++)
        CHECK(fabs(got[i] - want[i]) <= 1e-6 * (want[i] > 1 ? want[i] : 1) + 1e-12,
              "token %d: %.12g, want %.12g", i, got[i], want[i]);
    check_end();
}

static void logs_of(const double p[V], float out[V]) {
    for (int i = 0; i < V; i++) out[i] = (float)log(p[i]);
}

static void hand_cases(void) {
    const float ramp[V] = {1, 2, 3, 4};
    double e = exp(1.0), z = 1 + 1 / e + 1 / (e * e) + 1 / (e * e * e);
    double soft[V] = {1 / (e * e * e * z), 1 / (e * e * z), 1 / (e * z), 1 / z};
    expect("softmax at temperature 1", (SamplerConfig){1, 0, 1}, ramp, soft, 4);
    double z2 = 1 + exp(-2.0) + exp(-4.0) + exp(-6.0);   // temperature 0.5: logits doubled
    double half[V] = {exp(-6.0) / z2, exp(-4.0) / z2, exp(-2.0) / z2, 1 / z2};
    expect("temperature 0.5 doubles the logits", (SamplerConfig){0.5, 0, 1}, ramp, half, 4);
    double top2[V] = {0, 0, 1 / (1 + e), e / (1 + e)};
    expect("top-k 2", (SamplerConfig){1, 2, 1}, ramp, top2, 2);
    const float tie[V] = {1, 3, 3, 2};
    double ties[V] = {0, 0.5, 0.5, 0};
    expect("top-k 1 keeps both tokens tied at the largest", (SamplerConfig){1, 1, 1}, tie, ties, 2);
    double greedy[V] = {0, 1, 0, 0};
    expect("temperature 0: the first largest logit", (SamplerConfig){0, 3, 0.5}, tie, greedy, 1);

    const double p4[V] = {0.5, 0.3, 0.15, 0.05};
    float l4[V];
    logs_of(p4, l4);
    double p75[V] = {0.5 / 0.8, 0.3 / 0.8, 0, 0};   // mass before 0.15 is 0.8 >= 0.75
    expect("top-p 0.75", (SamplerConfig){1, 0, 0.75}, l4, p75, 2);
    double p45[V] = {1, 0, 0, 0};   // the top token alone passes 0.45
    expect("top-p 0.45 keeps one token", (SamplerConfig){1, 0, 0.45}, l4, p45, 1);
    double p90[V] = {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0};
    expect("top-p 0.9", (SamplerConfig){1, 0, 0.9}, l4, p90, 3);

    const double q[V] = {0.4, 0.3, 0.2, 0.1};
    float lq[V];
    logs_of(q, lq);
    // top-k 3 renormalises to 4/9, 3/9, 2/9: the mass before the third is
    // 7/9 >= 0.75, so two stay (top-p first would keep three: 0.7 < 0.75).
    double kp[V] = {0.4 / 0.7, 0.3 / 0.7, 0, 0};
    expect("top-k before top-p", (SamplerConfig){1, 3, 0.75}, lq, kp, 2);
    // temperature 2: probabilities ∝ sqrt(q); the mass before the third
    // (0.607) passes 0.6 (top-p on q itself would keep two as well, but
    // with other weights).
    double s0 = sqrt(0.4), s1 = sqrt(0.3);
    double tp[V] = {s0 / (s0 + s1), s1 / (s0 + s1), 0, 0};
    expect("temperature before top-p", (SamplerConfig){2, 0, 0.6}, lq, tp, 2);

    check_begin("sampler_check refuses settings out of range");
    char err[256];
    CHECK(!sampler_check(&(SamplerConfig){-1, 0, 1}, err, sizeof err), "temperature -1 accepted");
    CHECK(!sampler_check(&(SamplerConfig){1, -2, 1}, err, sizeof err), "top-k -2 accepted");
    CHECK(!sampler_check(&(SamplerConfig){1, 0, 0}, err, sizeof err), "top-p 0 accepted");
    CHECK(!sampler_check(&(SamplerConfig){1, 0, 1.5}, err, sizeof err), "top-p 1.5 accepted");
    CHECK(sampler_check(&(SamplerConfig){0.8, 40, 0.95}, err, sizeof err), "refused: %s", err);
    check_end();
}

// Draws with u = rng_uniform(seed, i): each kept token's frequency within 5
// binomial standard deviations (+1/N) of its probability, removed ones never.
static void frequencies(void) {
    check_begin("frequencies of 200000 draws follow the filtered probabilities");
    enum { W = 8, DRAWS = 200000 };
    const float logits[W] = {0.3f, 2.0f, -1.0f, 1.2f, 1.9f, 0.0f, -3.0f, 1.5f};
    SamplerConfig c = {0.8, 6, 0.9};
    double probs[W];
    int kept = sampler_probs(&c, logits, W, probs);
    // By hand: the scores (logits / 0.8) rank ids 1, 4, 7, 3, 0, 5, 2, 6; top-k 6
    // drops 2 and 6; over the six left, the mass before id 0 is 0.933 >= 0.9
    // (before id 3: 0.809), so ids 1, 4, 7, 3 stay, ∝ exp(score − 2.5).
    double w[W] = {0}, z = 0;
    const int ids[4] = {1, 4, 7, 3};
    for (int i = 0; i < 4; i++) z += w[ids[i]] = exp(logits[ids[i]] / 0.8 - 2.5);
    CHECK(kept == 4, "kept %d, want 4", kept);
    for (int i = 0; i < W; i++)
        CHECK(fabs(probs[i] - w[i] / z) <= 1e-6, "token %d: %.9g, want %.9g", i, probs[i], w[i] / z);
    long count[W] = {0};
    uint64_t key = rng_key(12345, 0x73616d706c65);
    for (long i = 0; i < DRAWS; i++) count[sampler_pick(probs, W, rng_uniform(key, (uint64_t)i))]++;
    for (int i = 0; i < W; i++) {
        double f = (double)count[i] / DRAWS, sd = sqrt(probs[i] * (1 - probs[i]) / DRAWS);
        if (probs[i] == 0) CHECK(count[i] == 0, "token %d of probability 0 drawn %ld times", i, count[i]);
        else CHECK(fabs(f - probs[i]) <= 5 * sd + 1.0 / DRAWS, "token %d: frequency %.5f, probability "
                   "%.5f (5 sd = %.5f)", i, f, probs[i], 5 * sd);
    }
    check_end();

    check_begin("sampler_pick at the ends of [0, 1) and sampler_draw");
    double p[V] = {0, 0.25, 0, 0.75};
    CHECK(sampler_pick(p, V, 0.0) == 1, "u 0: %d", sampler_pick(p, V, 0.0));
    CHECK(sampler_pick(p, V, 0.2499) == 1, "u 0.2499: %d", sampler_pick(p, V, 0.2499));
    CHECK(sampler_pick(p, V, 0.25) == 3, "u 0.25: %d", sampler_pick(p, V, 0.25));
    CHECK(sampler_pick(p, V, nextafter(1.0, 0)) == 3, "u below 1: a removed token");
    const float ramp[V] = {1, 2, 3, 4};
    CHECK(sampler_draw(&(SamplerConfig){0, 0, 1}, ramp, V, 0.01) == 3, "greedy draw");
    // top-k 2: ids 2 (1/(1+e)) and 3; u 0.2 < 0.269 picks id 2.
    CHECK(sampler_draw(&(SamplerConfig){1, 2, 1}, ramp, V, 0.2) == 2, "top-k 2 draw at u 0.2");
    CHECK(sampler_draw(&(SamplerConfig){1, 2, 1}, ramp, V, 0.3) == 3, "top-k 2 draw at u 0.3");
    check_end();
}

int main(void) {
    hand_cases();
    frequencies();
    return check_exit_code();
}
