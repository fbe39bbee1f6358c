// Sampling a next token from a row of logits over the whole vocabulary, in the
// order of transformers' generate(do_sample=True): temperature, then top-k,
// then top-p (nucleus), then one draw.  Pure host arithmetic (double): the
// caller gathers the row and supplies the uniform number, so a draw is a
// function of (logits, settings, u) alone and identical on every layout.
#ifndef LLAMA_SAMPLER_H
#define LLAMA_SAMPLER_H

#include <stdbool.h>

typedef struct {
    double temperature;   // logits / temperature; 0: greedy (the first largest logit)
    int top_k;            // keep the tokens whose scaled logit is at least the k-th largest
                          // (ties at the k-th are kept, as transformers does); 0: all
    double top_p;         // then keep the most probable tokens, in order, until their
                          // mass reaches top_p (at least one token); 1: all
} SamplerConfig;

// False with one line in err when the settings are out of range (temperature
// < 0 or not finite, top_k < 0, top_p outside (0, 1]).
bool sampler_check(const SamplerConfig *c, char *err, int err_len);
// The distribution a draw follows: probs (V) gets the filtered probabilities
// (0 for every removed token, the kept ones summing to 1).  Greedy puts all
// the mass on the first largest logit.  NaN logits count as -infinity.
// Returns the number of tokens kept.
int sampler_probs(const SamplerConfig *c, const float *logits, int V, double *probs);
// The token whose cumulative probability (in id order) first exceeds u, for u
// in [0, 1); never a token of probability 0.
int sampler_pick(const double *probs, int V, double u);
// sampler_probs, then sampler_pick with u.
int sampler_draw(const SamplerConfig *c, const float *logits, int V, double u);

#endif
