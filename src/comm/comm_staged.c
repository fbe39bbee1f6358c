// Host-staged MPI behind the device communication interface (comm.h), for
// --device-comm mpi: several ranks may share one GPU, which NCCL refuses.
//
// Every call copies its device data to a host staging buffer with the active
// backend's to_host (on CUDA it waits for the compute stream, so the
// call sees every kernel queued before it), runs MPI on the host buffer and
// copies results back with to_device (queued on the compute stream, so
// kernels queued after see them).  bf16 is reduced in fp32 and rounded back
// to bf16 (the emulator's MPI comm does the same); it moves as 16-bit words.
//
// A non-blocking call returns a CommRequest whose event points at its staging
// record (host buffer, device destination, count, type, MPI request); wait
// completes MPI and, for receives and all-reduces, copies into the device
// buffer.  Records come from a per-communicator pool and go back to it on
// wait, so steady-state training allocates nothing.  Messages of a pair match
// in posting order (one tag on a duplicate of the Comm's MPI communicator).
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
#include "comm/comm_mpi.h"
#include "backend/ops.h"
#include "core/util.h"

typedef enum { STAGED_SEND, STAGED_RECV, STAGED_ALLREDUCE, STAGED_REDUCE_SCATTER } StagedKind;

typedef struct Staging {
    char *host;            // cap bytes: the data (bf16 reduce: n fp32, then n bf16)
    size_t cap;
    StagedKind kind;
    void *dev;             // where wait copies the result (receive, all-reduce)
    size_t n;              // elements
    DType t;
    MPI_Request req;
    struct Staging *next;  // the pool's free list
} Staging;

typedef struct {
    MPI_Comm mpi;          // a duplicate of the Comm's: apart from its host traffic
    int rank, size;
    Staging **all;         // every record made (freed by destroy)
    int n_all;
    Staging *free;         // records not in use
} StagedComm;

// MPI counts are int: blocking all-reduces go in chunks of this many elements.
#define STAGED_CHUNK ((size_t)1 << 30)
#define STAGED_TAG 0

// The backend whose device memory the buffers are (comm_staged_device_ops).
static const Ops *backend = &ops_cpu;

static void staged_check(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fatal("host-staged device comm: MPI %s failed: %s (--device-comm nccl avoids this path)",
          what, msg);
}

static void staged_check_count(size_t n, const char *what) {
    if (n > (size_t)INT_MAX)
        fatal("host-staged device comm: %s of %zu elements exceeds MPI's int count (%d); "
              "use --device-comm nccl or more ranks", what, n, INT_MAX);
}

// ---- the staging pool ----

// A free record of at least bytes: the smallest that fits, else the largest
// free one grown, else a new one.
static Staging *staging_take(StagedComm *s, size_t bytes) {
    Staging **best = NULL, **largest = NULL;
    for (Staging **p = &s->free; *p; p = &(*p)->next) {
        if ((*p)->cap >= bytes && (!best || (*p)->cap < (*best)->cap)) best = p;
        if (!largest || (*p)->cap > (*largest)->cap) largest = p;
    }
    Staging **pick = best ? best : largest;
    Staging *r;
    if (pick) {
        r = *pick;
        *pick = r->next;
    } else {
        r = xcalloc(1, sizeof *r);
        s->all = xrealloc(s->all, (size_t)(s->n_all + 1) * sizeof *s->all);
        s->all[s->n_all++] = r;
    }
    if (r->cap < bytes) {
        free(r->host);
        r->cap = bytes < 4096 ? 4096 : bytes;
        r->host = xmalloc(r->cap);
    }
    r->req = MPI_REQUEST_NULL;
    r->next = NULL;
    return r;
}

static void staging_put(StagedComm *s, Staging *r) {
    r->next = s->free;
    s->free = r;
}

// ---- device ↔ host, with bf16 widened to fp32 for reductions ----

// Host bytes a record needs for n elements of t (reduce: bf16 also as fp32).
static size_t staging_bytes(size_t n, DType t, bool reduce) {
    return n * dtype_bytes(t) + (reduce && t == DTYPE_BF16 ? n * sizeof(float) : 0);
}

// Where the device's bytes land: after the fp32 copy when bf16 is reduced.
static void *staging_raw(const Staging *r, bool reduce) {
    return r->host + (reduce && r->t == DTYPE_BF16 ? r->n * sizeof(float) : 0);
}

// Device → host; a bf16 reduction gets its fp32 copy at the start of host.
static void staging_in(Staging *r, const void *src, bool reduce) {
    uint16_t *raw = staging_raw(r, reduce);
    backend->to_host(raw, src, r->n * dtype_bytes(r->t));
    if (!reduce || r->t != DTYPE_BF16) return;
    float *f = (float *)r->host;
    for (size_t i = 0; i < r->n; i++) f[i] = bf16_to_f32(raw[i]);
}

// Host → device: the first n elements (a bf16 reduction's fp32 rounded back).
static void staging_out(Staging *r, void *dst, size_t n, bool reduce) {
    uint16_t *raw = staging_raw(r, reduce);
    if (reduce && r->t == DTYPE_BF16) {
        const float *f = (const float *)r->host;
        for (size_t i = 0; i < n; i++) raw[i] = bf16_from_f32(f[i]);
    }
    backend->to_device(dst, raw, n * dtype_bytes(r->t));
}

// MPI reduces r->host: the fp32 copy for bf16, the data otherwise.
static MPI_Datatype reduce_type(DType t) { return t == DTYPE_BF16 ? MPI_FLOAT : comm_mpi_type(t); }
static size_t reduce_elem_bytes(DType t) {
    return t == DTYPE_BF16 ? sizeof(float) : dtype_bytes(t);
}

static Staging *staging_begin(StagedComm *s, StagedKind kind, void *dev, size_t n, DType t,
                              bool reduce) {
    Staging *r = staging_take(s, staging_bytes(n, t, reduce));
    r->kind = kind;
    r->dev = dev;
    r->n = n;
    r->t = t;
    return r;
}

// ---- the DeviceCommOps table ----

static void *staged_create(const Comm *c) {
    StagedComm *s = xcalloc(1, sizeof *s);
    staged_check(MPI_Comm_dup(comm_mpi(c), &s->mpi), "Comm_dup");
    s->rank = c->rank;
    s->size = c->size;
    return s;
}

static void staged_destroy(void *dev) {
    StagedComm *s = dev;
    for (int i = 0; i < s->n_all; i++) {
        free(s->all[i]->host);
        free(s->all[i]);
    }
    free(s->all);
    MPI_Comm_free(&s->mpi);
    free(s);
}

// Blocking, in chunks of STAGED_CHUNK elements, on a staged record.
static void allreduce_host(StagedComm *s, Staging *r, ReduceOp op) {
    size_t eb = reduce_elem_bytes(r->t);
    for (size_t i = 0; i < r->n; i += STAGED_CHUNK) {
        size_t k = r->n - i < STAGED_CHUNK ? r->n - i : STAGED_CHUNK;
        staged_check(MPI_Allreduce(MPI_IN_PLACE, (char *)r->host + i * eb, (int)k,
                                   reduce_type(r->t), comm_mpi_op(op), s->mpi), "Allreduce");
    }
}

static void staged_allreduce(void *dev, void *buf, size_t n, DType t, ReduceOp op) {
    StagedComm *s = dev;
    if (s->size == 1) return;
    Staging *r = staging_begin(s, STAGED_ALLREDUCE, buf, n, t, true);
    staging_in(r, buf, true);
    allreduce_host(s, r, op);
    staging_out(r, buf, n, true);
    staging_put(s, r);
}

// send (size·n) → recv (n): this rank's block of the sum (in place on the host).
static void staged_reduce_scatter(void *dev, const void *send, void *recv, size_t n, DType t) {
    StagedComm *s = dev;
    if (s->size == 1) {
        backend->copy(recv, send, n * dtype_bytes(t));
        return;
    }
    staged_check_count(n, "reduce-scatter (per rank)");
    Staging *r = staging_begin(s, STAGED_ALLREDUCE, recv, (size_t)s->size * n, t, true);
    staging_in(r, send, true);
    staged_check(MPI_Reduce_scatter_block(MPI_IN_PLACE, r->host, (int)n, reduce_type(t),
                                          MPI_SUM, s->mpi), "Reduce_scatter_block");
    staging_out(r, recv, n, true);
    staging_put(s, r);
}

// send (n) → recv (size·n) in rank order; send may be recv + rank·n (in place).
static void staged_allgather(void *dev, const void *send, void *recv, size_t n, DType t) {
    StagedComm *s = dev;
    size_t bytes = n * dtype_bytes(t);
    if (s->size == 1) {
        backend->copy(recv, send, bytes);   // a no-op in place
        return;
    }
    staged_check_count(n, "all-gather (per rank)");
    Staging *r = staging_begin(s, STAGED_RECV, recv, (size_t)s->size * n, t, false);
    backend->to_host(r->host + (size_t)s->rank * bytes, send, bytes);
    staged_check(MPI_Allgather(MPI_IN_PLACE, (int)n, comm_mpi_type(t), r->host, (int)n,
                               comm_mpi_type(t), s->mpi), "Allgather");
    staging_out(r, recv, r->n, false);
    staging_put(s, r);
}

static CommRequest staged_request(Staging *r) {
    return (CommRequest){.host = NULL, .event = r};
}

// Above MPI's int count: blocking, in chunks (wait has nothing left to do).
static CommRequest staged_iallreduce(void *dev, void *buf, size_t n, DType t, ReduceOp op) {
    StagedComm *s = dev;
    if (s->size == 1 || n > (size_t)INT_MAX) {
        staged_allreduce(dev, buf, n, t, op);
        return comm_request_none();
    }
    Staging *r = staging_begin(s, STAGED_ALLREDUCE, buf, n, t, true);
    staging_in(r, buf, true);
    staged_check(MPI_Iallreduce(MPI_IN_PLACE, r->host, (int)n, reduce_type(t),
                                comm_mpi_op(op), s->mpi, &r->req), "Iallreduce");
    return staged_request(r);
}

// send leaves the device now; wait copies this rank's block to recv.
static CommRequest staged_ireduce_scatter(void *dev, const void *send, void *recv, size_t n, DType t) {
    StagedComm *s = dev;
    if (s->size == 1) {
        staged_reduce_scatter(dev, send, recv, n, t);
        return comm_request_none();
    }
    staged_check_count(n, "reduce-scatter (per rank)");
    Staging *r = staging_begin(s, STAGED_REDUCE_SCATTER, recv, (size_t)s->size * n, t, true);
    staging_in(r, send, true);
    staged_check(MPI_Ireduce_scatter_block(MPI_IN_PLACE, r->host, (int)n, reduce_type(t), MPI_SUM,
                                           s->mpi, &r->req), "Ireduce_scatter_block");
    return staged_request(r);
}

// This rank's block leaves the device now; wait copies all of them to recv.
static CommRequest staged_iallgather(void *dev, const void *send, void *recv, size_t n, DType t) {
    StagedComm *s = dev;
    size_t bytes = n * dtype_bytes(t);
    if (s->size == 1) {
        staged_allgather(dev, send, recv, n, t);
        return comm_request_none();
    }
    staged_check_count(n, "all-gather (per rank)");
    Staging *r = staging_begin(s, STAGED_RECV, recv, (size_t)s->size * n, t, false);
    backend->to_host(r->host + (size_t)s->rank * bytes, send, bytes);
    staged_check(MPI_Iallgather(MPI_IN_PLACE, (int)n, comm_mpi_type(t), r->host, (int)n,
                                comm_mpi_type(t), s->mpi, &r->req), "Iallgather");
    return staged_request(r);
}

// The data leaves the device now: buf may be reused as soon as this returns.
static CommRequest staged_isend(void *dev, const void *buf, size_t n, DType t, int peer) {
    StagedComm *s = dev;
    staged_check_count(n, "send");
    Staging *r = staging_begin(s, STAGED_SEND, NULL, n, t, false);
    staging_in(r, buf, false);
    staged_check(MPI_Isend(r->host, (int)n, comm_mpi_type(t), peer, STAGED_TAG, s->mpi,
                           &r->req), "Isend");
    return staged_request(r);
}

static CommRequest staged_irecv(void *dev, void *buf, size_t n, DType t, int peer) {
    StagedComm *s = dev;
    staged_check_count(n, "receive");
    Staging *r = staging_begin(s, STAGED_RECV, buf, n, t, false);
    staged_check(MPI_Irecv(r->host, (int)n, comm_mpi_type(t), peer, STAGED_TAG, s->mpi,
                           &r->req), "Irecv");
    return staged_request(r);
}

// Completes MPI, copies a receive's or an all-reduce's result to the device,
// and returns the record to the pool; a request waited on before is a no-op.
static void staged_wait(void *dev, CommRequest *req) {
    Staging *r = req->event;
    if (!r) return;
    staged_check(MPI_Wait(&r->req, MPI_STATUS_IGNORE), "Wait");
    if (r->kind == STAGED_RECV) staging_out(r, r->dev, r->n, false);
    else if (r->kind == STAGED_ALLREDUCE) staging_out(r, r->dev, r->n, true);
    else if (r->kind == STAGED_REDUCE_SCATTER)
        staging_out(r, r->dev, r->n / (size_t)((StagedComm *)dev)->size, true);
    staging_put(dev, r);
    req->event = NULL;
}

static const DeviceCommOps staged_ops = {
    .name = "mpi (host-staged: each transfer goes through host memory; ranks may share a GPU)",
    .create = staged_create,
    .destroy = staged_destroy,
    .allreduce = staged_allreduce,
    .reduce_scatter = staged_reduce_scatter,
    .allgather = staged_allgather,
    .iallreduce = staged_iallreduce,
    .ireduce_scatter = staged_ireduce_scatter,
    .iallgather = staged_iallgather,
    .isend = staged_isend,
    .irecv = staged_irecv,
    .wait = staged_wait,
};

const DeviceCommOps *comm_staged_device_ops(const Ops *device) {
    backend = device;
    return &staged_ops;
}
