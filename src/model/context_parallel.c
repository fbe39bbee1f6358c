// Ring attention (context_parallel.h).
//
// Forward, at hop s = 0 … cp − 1, rank r holds the keys and values of rank
// r − s: it posts the receive of the next block (from r − 1) and the send of
// this one (to r + 1), computes its queries against this one (merged into
// out and the log-sum-exp), then waits.  Backward walks the same ring: with
// each block travels its gradient so far; rank r adds its queries' share and
// passes it on; after cp hops every block's gradient is back at its rank
// (the last hop moves gradients alone).  The gradient's transfer is not
// overlapped: a rank needs the block's sum before adding to it.
#include "model/context_parallel.h"

#include "model/model.h"

enum { TAG_KV = 1, TAG_DKV = 2 };

// Columns of keys and values in a qkv row; and the rows' element count.
static size_t kv_width(const Model *m) { return 2 * (size_t)m->kv_heads * m->hd; }
static size_t kv_elems(const Model *m) { return (size_t)m->N * kv_width(m); }

// kv (N, 2·kv·hd) = the k and v columns of qkv (N, qkv).
static void kv_pack(const Model *m, void *kv, const void *qkv) {
    m->ops->copy_rows(kv, kv_width(m), act_at(m->ops, qkv, (size_t)m->heads * m->hd),
                      (size_t)m->qkv_dim, (size_t)m->N, kv_width(m));
}

// The k and v columns of dqkv (N, qkv) = dkv (N, 2·kv·hd).
static void kv_unpack(const Model *m, void *dqkv, const void *dkv) {
    m->ops->copy_rows(act_at(m->ops, dqkv, (size_t)m->heads * m->hd), (size_t)m->qkv_dim, dkv,
                      kv_width(m), (size_t)m->N, kv_width(m));
}

// This rank's queries against the keys of CP rank src.
static AttentionBlock block_of(const Model *m, int src) {
    return (AttentionBlock){.B = m->B, .Tq = m->T, .Tk = m->T, .nh = m->heads,
                            .nkv = m->kv_heads, .hd = m->hd,
                            .q_pos = m->cp_pos + (size_t)m->part.cp_rank * m->T,
                            .k_pos = m->cp_pos + (size_t)src * m->T};
}

// One hop's transfers on a ring (keys and values, or their gradients): a
// block on to the next rank, the next block from the previous rank, each on
// its own link, so over NCCL the two run at once (and the gradients' hop
// beside the keys' and values').
typedef struct {
    const CommRing *ring;
    CommRequest send, recv;
} Hop;

static Hop hop_start(const Model *m, const CommRing *ring, const void *buf, void *into, int tag) {
    DType t = model_act_dtype(m);
    Hop h = {.ring = ring};
    h.recv = comm_dev_irecv(&ring->prev, into, kv_elems(m), t, comm_link_peer(&ring->prev), tag);
    h.send = comm_dev_isend(&ring->next, buf, kv_elems(m), t, comm_link_peer(&ring->next), tag);
    return h;
}

static void hop_wait(Hop *h) {
    if (!h->ring) return;
    comm_dev_wait(&h->ring->next, &h->send);
    comm_dev_wait(&h->ring->prev, &h->recv);
}

static Hop hop_none(void) { return (Hop){NULL, comm_request_none(), comm_request_none()}; }

void cp_attention_forward(Model *m, void *out, void *state, const void *qkv) {
    int n = m->part.cp, r = m->part.cp_rank;
    kv_pack(m, m->kv_ring[0], qkv);
    for (int s = 0; s < n; s++) {
        void *kv = m->kv_ring[s % 2];
        Hop h = s + 1 < n ? hop_start(m, &m->cp[0], kv, m->kv_ring[(s + 1) % 2], TAG_KV)
                          : hop_none();
        AttentionBlock b = block_of(m, (r - s + n) % n);
        m->ops->attention_block_forward(out, state, qkv, kv, &b, s == 0);
        hop_wait(&h);
    }
}

void cp_attention_backward(Model *m, void *dqkv, const void *dout, const void *qkv,
                           const void *out, const void *state) {
    int n = m->part.cp, r = m->part.cp_rank;
    m->ops->zero(dqkv, (size_t)m->N * m->qkv_dim * m->ops->act_bytes);
    kv_pack(m, m->kv_ring[0], qkv);
    m->ops->zero(m->dkv_ring[0], kv_elems(m) * m->ops->act_bytes);
    Hop grad = hop_none();   // the gradient of the block before: to r + 1, the next from r − 1
    for (int s = 0; s < n; s++) {
        void *kv = m->kv_ring[s % 2], *dkv = m->dkv_ring[s % 2];
        Hop h = s + 1 < n ? hop_start(m, &m->cp[0], kv, m->kv_ring[(s + 1) % 2], TAG_KV)
                          : hop_none();
        hop_wait(&grad);   // this block's gradient so far is here; its buffer's send is done
        AttentionBlock b = block_of(m, (r - s + n) % n);
        m->ops->attention_block_backward(dqkv, dkv, m->att_work, dout, qkv, kv, out, state, &b);
        grad = hop_start(m, &m->cp[1], dkv, m->dkv_ring[(s + 1) % 2], TAG_DKV);
        hop_wait(&h);
    }
    hop_wait(&grad);   // this rank's own block's gradient, summed over the ring
    kv_unpack(m, dqkv, m->dkv_ring[n % 2]);
}
