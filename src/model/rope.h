// Rotary position embedding frequencies: the inverse frequency of each pair
// of a head's dimensions, plain or scaled (core/config.h RopeScaling), as
// transformers' modeling_rope_utils computes them (_compute_default_rope_,
// _compute_linear_scaling_rope_ and _compute_llama3_parameters, in double
// rather than float32).  Their attention factor is 1: cos and sin are used
// unscaled.  The model turns these into its cos/sin tables once.
#ifndef LLAMA_ROPE_H
#define LLAMA_ROPE_H

#include "core/config.h"

// The inverse frequency (radians per position) of pair i, 0 <= i < hd / 2, of
// a head of hd dimensions: rope_theta^(-2i/hd), then scaled.
double rope_inv_freq(const ModelConfig *c, int i, int hd);

#endif
