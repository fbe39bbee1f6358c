// NCCL behind the device communication interface (src/comm/comm.h).
//
// create: rank 0 of the Comm draws the NCCL unique id, comm_broadcast over
// the Comm (host MPI) hands it to the others, ncclCommInitRank joins them
// (collective, in the order the grid builds its Comms, the same on every rank).
// A Comm of one rank gets no NCCL communicator: its reduce-scatter and
// all-gather are device-to-device copies on the compute stream (its all-reduce
// returns early in comm.c), so single-rank runs never initialise NCCL (whose
// start-up probes kernels this GPU may have no image of: compute-sanitizer
// reports those probes as API errors).
//
// Collectives run on the compute stream, so they see every kernel queued
// before them and the kernels queued after see their result.
//
// Point-to-point transfers run on the communicator's own stream: the stream
// first waits for an event recorded on the compute stream when the transfer
// is posted (the data a send reads has been produced; the buffer a receive
// writes is no longer in use), then ncclSend/ncclRecv; an event recorded
// after the transfer is the request.  wait makes the compute stream wait for
// it (the received data is there; the sent buffer may be overwritten).  The
// host never blocks.  A pair's messages on one Comm match in posting order
// (NCCL's rule too).  The pipeline uses one Comm for activations (downstream)
// and another for gradients (upstream), so each stream carries one direction
// and a 1F1B schedule cannot deadlock on a send waiting behind a receive.
#include "common.cuh"

#include <vector>

#include <nccl.h>

extern "C" {
#include "comm/comm.h"
}

#define NCCL_CHECK(call)                                                                 \
    do {                                                                                 \
        ncclResult_t r_ = (call);                                                        \
        if (r_ != ncclSuccess)                                                           \
            cuda_fail("NCCL", #call, __FILE__, __LINE__, ncclGetErrorString(r_));        \
    } while (0)

struct NcclComm {
    ncclComm_t comm;                     // NULL for one rank
    cudaStream_t stream;                 // point-to-point transfers
    std::vector<cudaEvent_t> free_events;
    int rank, size;
};

static cudaEvent_t event_get(NcclComm *c) {
    if (c->free_events.empty()) {
        cudaEvent_t e;
        CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
        return e;
    }
    cudaEvent_t e = c->free_events.back();
    c->free_events.pop_back();
    return e;
}

// A waited-on event may be recorded again: the wait already captured it.
static void event_put(NcclComm *c, cudaEvent_t e) { c->free_events.push_back(e); }

static ncclDataType_t nccl_type(DType t) {
    switch (t) {
    case DTYPE_F32: return ncclFloat32;
    case DTYPE_F64: return ncclFloat64;
    case DTYPE_I32: return ncclInt32;
    case DTYPE_I64: return ncclInt64;
    case DTYPE_U64: return ncclUint64;
    case DTYPE_U8: return ncclUint8;
    case DTYPE_BF16: return ncclBfloat16;
    }
    fatal("NCCL: unknown data type %d", (int)t);
}

static ncclRedOp_t nccl_op(ReduceOp op) { return op == REDUCE_MAX ? ncclMax : ncclSum; }

static void *nccl_create(const Comm *c) {
    NcclComm *n = new NcclComm();
    n->rank = c->rank;
    n->size = c->size;
    n->comm = NULL;
    n->stream = NULL;
    if (c->size == 1) return n;
    ncclUniqueId id;
    if (c->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    comm_broadcast(c, &id, sizeof id, DTYPE_U8, 0);   // fatal when it fails
    NCCL_CHECK(ncclCommInitRank(&n->comm, c->size, id, c->rank));
    int lo, hi;
    CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&lo, &hi));
    CUDA_CHECK(cudaStreamCreateWithPriority(&n->stream, cudaStreamNonBlocking, hi));
    return n;
}

static void nccl_destroy(void *dev) {
    NcclComm *n = (NcclComm *)dev;
    if (!n->comm) {
        delete n;
        return;
    }
    CUDA_CHECK(cudaStreamSynchronize(n->stream));
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));
    NCCL_CHECK(ncclCommDestroy(n->comm));
    for (cudaEvent_t e : n->free_events) CUDA_CHECK(cudaEventDestroy(e));
    CUDA_CHECK(cudaStreamDestroy(n->stream));
    delete n;
}

static void nccl_allreduce(void *dev, void *buf, size_t count, DType t, ReduceOp op) {
    NcclComm *n = (NcclComm *)dev;
    if (n->size == 1) return;
    NCCL_CHECK(ncclAllReduce(buf, buf, count, nccl_type(t), nccl_op(op), n->comm, g_cuda.stream));
}

// One rank: dst ← src (count elements of t) on the compute stream.
static void single_rank_copy(void *dst, const void *src, size_t count, DType t) {
    if (dst == src || count == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, count * dtype_bytes(t), cudaMemcpyDeviceToDevice,
                               g_cuda.stream));
}

// send (size·count) → recv (count): this rank's block of the sum.
static void nccl_reduce_scatter(void *dev, const void *send, void *recv, size_t count, DType t) {
    NcclComm *n = (NcclComm *)dev;
    if (n->size == 1) {
        single_rank_copy(recv, send, count, t);
        return;
    }
    NCCL_CHECK(ncclReduceScatter(send, recv, count, nccl_type(t), ncclSum, n->comm, g_cuda.stream));
}

// send (count) → recv (size·count); NCCL takes send == recv + rank·count as in place.
// One rank: a copy (none in place).
static void nccl_allgather(void *dev, const void *send, void *recv, size_t count, DType t) {
    NcclComm *n = (NcclComm *)dev;
    if (n->size == 1) {
        single_rank_copy(recv, send, count, t);
        return;
    }
    NCCL_CHECK(ncclAllGather(send, recv, count, nccl_type(t), n->comm, g_cuda.stream));
}

// The communicator's own stream waits for what the compute stream has queued.
static void own_stream_after_compute(NcclComm *n) {
    cudaEvent_t ready = event_get(n);
    CUDA_CHECK(cudaEventRecord(ready, g_cuda.stream));
    CUDA_CHECK(cudaStreamWaitEvent(n->stream, ready, 0));
    event_put(n, ready);
}

// The request for what was just queued on the own stream (nccl_wait).
static CommRequest own_stream_request(NcclComm *n) {
    cudaEvent_t done = event_get(n);
    CUDA_CHECK(cudaEventRecord(done, n->stream));
    CommRequest r;
    r.host = NULL;
    r.event = (void *)done;
    return r;
}

// On the communicator's own stream, like the point-to-point transfers.
static CommRequest nccl_iallreduce(void *dev, void *buf, size_t count, DType t, ReduceOp op) {
    NcclComm *n = (NcclComm *)dev;
    if (n->size == 1) return comm_request_none();   // comm.c returns first
    own_stream_after_compute(n);
    NCCL_CHECK(ncclAllReduce(buf, buf, count, nccl_type(t), nccl_op(op), n->comm, n->stream));
    return own_stream_request(n);
}

// send (size·count) → recv (count), summed, on the own stream.  One rank: a
// copy on the compute stream (nothing to wait for).
static CommRequest nccl_ireduce_scatter(void *dev, const void *send, void *recv, size_t count,
                                        DType t) {
    NcclComm *n = (NcclComm *)dev;
    if (n->size == 1) {
        single_rank_copy(recv, send, count, t);
        return comm_request_none();
    }
    own_stream_after_compute(n);
    NCCL_CHECK(ncclReduceScatter(send, recv, count, nccl_type(t), ncclSum, n->comm, n->stream));
    return own_stream_request(n);
}

// send (count) → recv (size·count) on the own stream; send == recv + rank·count is in place.
static CommRequest nccl_iallgather(void *dev, const void *send, void *recv, size_t count, DType t) {
    NcclComm *n = (NcclComm *)dev;
    if (n->size == 1) {
        single_rank_copy(recv, send, count, t);
        return comm_request_none();
    }
    own_stream_after_compute(n);
    NCCL_CHECK(ncclAllGather(send, recv, count, nccl_type(t), n->comm, n->stream));
    return own_stream_request(n);
}

static CommRequest nccl_p2p(NcclComm *n, void *buf, size_t count, DType t, int peer, bool send) {
    if (!n->comm) fatal("NCCL: a %s on a communicator of one rank (internal error)",
                        send ? "send" : "receive");
    own_stream_after_compute(n);
    if (send) NCCL_CHECK(ncclSend(buf, count, nccl_type(t), peer, n->comm, n->stream));
    else NCCL_CHECK(ncclRecv(buf, count, nccl_type(t), peer, n->comm, n->stream));
    return own_stream_request(n);
}

static CommRequest nccl_isend(void *dev, const void *buf, size_t count, DType t, int peer) {
    return nccl_p2p((NcclComm *)dev, const_cast<void *>(buf), count, t, peer, true);
}

static CommRequest nccl_irecv(void *dev, void *buf, size_t count, DType t, int peer) {
    return nccl_p2p((NcclComm *)dev, buf, count, t, peer, false);
}

static void nccl_wait(void *dev, CommRequest *r) {
    if (!r->event) return;
    NcclComm *n = (NcclComm *)dev;
    cudaEvent_t e = (cudaEvent_t)r->event;
    CUDA_CHECK(cudaStreamWaitEvent(g_cuda.stream, e, 0));
    event_put(n, e);
    r->event = NULL;
}

static const DeviceCommOps nccl_ops = {
    "nccl (one GPU per rank; single-rank communicators copy on the GPU)",
    nccl_create, nccl_destroy, nccl_allreduce, nccl_reduce_scatter, nccl_allgather,
    nccl_iallreduce, nccl_ireduce_scatter, nccl_iallgather, nccl_isend, nccl_irecv, nccl_wait,
};

extern "C" const DeviceCommOps *comm_nccl_device_ops(void) { return &nccl_ops; }
