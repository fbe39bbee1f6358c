#include "model/rope.h"

#include <math.h>

// LLaMA 3.1: wavelengths beyond the pretraining context / low_freq_factor are
// stretched by factor, those under it / high_freq_factor are kept, and in
// between the inverse frequency blends linearly in context / wavelength.
static double llama3_inv_freq(const RopeScaling *s, double inv_freq) {
    double wavelen = 2 * M_PI / inv_freq;
    double low_freq_wavelen = s->original_max_seq_len / s->low_freq_factor;
    double high_freq_wavelen = s->original_max_seq_len / s->high_freq_factor;
    if (wavelen > low_freq_wavelen) return inv_freq / s->factor;
    if (wavelen < high_freq_wavelen) return inv_freq;
    double smooth = (s->original_max_seq_len / wavelen - s->low_freq_factor) /
                    (s->high_freq_factor - s->low_freq_factor);
    return (1 - smooth) * inv_freq / s->factor + smooth * inv_freq;
}

double rope_inv_freq(const ModelConfig *c, int i, int hd) {
    double inv_freq = pow(c->rope_theta, -2.0 * i / hd);
    switch (c->rope_scaling.kind) {
    case ROPE_SCALING_LINEAR: return inv_freq / c->rope_scaling.factor;
    case ROPE_SCALING_LLAMA3: return llama3_inv_freq(&c->rope_scaling, inv_freq);
    default: return inv_freq;
    }
}
