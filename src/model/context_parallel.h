// Context parallelism (--cp N): each sequence of a micro-batch split over the
// ranks of a context-parallel group.  Everything but attention works on a
// rank's own rows; attention is ring attention: each rank's queries meet every
// rank's keys and values as they travel round the group, one block per hop,
// the next block in flight while this one is computed (Megatron-Core's and
// Liu et al.'s scheme).  Causal attention gives the late rows more keys, so the
// sequence is cut into 2·cp chunks and rank r holds chunks r and 2·cp − 1 − r:
// every rank then does the same work at every hop.
#ifndef LLAMA_CONTEXT_PARALLEL_H
#define LLAMA_CONTEXT_PARALLEL_H

struct Model;

// The global position of row i (of T / cp) of a sequence on CP rank `rank`,
// for sequences of T tokens (T a multiple of 2·cp).
static inline int cp_position(int T, int cp, int rank, int i) {
    if (cp <= 1) return i;
    int c = T / (2 * cp);
    return i < c ? rank * c + i : (2 * cp - 1 - rank) * c + (i - c);
}

// Ring attention on m->cp's rings: out (N, heads·hd) and state (the log-sum-exp,
// (B, heads, T)) from this rank's qkv (N, qkv) after RoPE.  Collective over the group.
void cp_attention_forward(struct Model *m, void *out, void *state, const void *qkv);
// dqkv (N, qkv), overwritten, from dout (N, heads·hd) and the forward's qkv,
// out and state.  Keys' and values' gradients travel back round the ring to
// their rank.  Collective over the group.
void cp_attention_backward(struct Model *m, void *dqkv, const void *dout, const void *qkv,
                           const void *out, const void *state);

#endif
