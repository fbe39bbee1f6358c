#include "comm/comm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

MPI_Datatype comm_mpi_type(DType t) {
    switch (t) {
    case DTYPE_F32: return MPI_FLOAT;
    case DTYPE_F64: return MPI_DOUBLE;
    case DTYPE_I32: return MPI_INT32_T;
    case DTYPE_I64: return MPI_INT64_T;
    case DTYPE_U64: return MPI_UINT64_T;
    case DTYPE_U8: return MPI_UINT8_T;
    case DTYPE_BF16: return MPI_UINT16_T;   // its bit pattern: moved, never reduced as such
    }
    fatal("comm: unknown data type %d", (int)t);
}

MPI_Op comm_mpi_op(ReduceOp op) { return op == REDUCE_MAX ? MPI_MAX : MPI_SUM; }

// The type of a reduction on host buffers: bf16 has no MPI arithmetic.
static MPI_Datatype reduce_type(DType t) {
    if (t == DTYPE_BF16) fatal("bf16 collectives need the device (NCCL) backend");
    return comm_mpi_type(t);
}

size_t dtype_bytes(DType t) {
    switch (t) {
    case DTYPE_F32: case DTYPE_I32: return 4;
    case DTYPE_F64: case DTYPE_I64: case DTYPE_U64: return 8;
    case DTYPE_U8: return 1;
    case DTYPE_BF16: return 2;
    }
    return 0;
}

static void check(int rc, const char *what) {
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        fatal("MPI %s failed: %s", what, msg);
    }
}

// MPI counts are int: larger transfers go in chunks of this many elements.
#define CHUNK ((size_t)1 << 30)

static const DeviceCommOps *device_ops = NULL;

void comm_set_device_ops(const DeviceCommOps *ops) { device_ops = ops; }
const DeviceCommOps *comm_device_ops(void) { return device_ops; }

void comm_init(Comm *c, MPI_Comm mpi) {
    check(MPI_Comm_dup(mpi, &c->mpi), "Comm_dup");
    MPI_Comm_rank(c->mpi, &c->rank);
    MPI_Comm_size(c->mpi, &c->size);
    c->dev = device_ops ? device_ops->create(c) : NULL;
}

void comm_free(Comm *c) {
    if (c->dev) device_ops->destroy(c->dev);
    c->dev = NULL;
    if (c->mpi != MPI_COMM_NULL) MPI_Comm_free(&c->mpi);
    c->mpi = MPI_COMM_NULL;
}

void comm_allreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op) {
    if (c->size == 1) return;
    MPI_Op mop = comm_mpi_op(op);
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        check(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + i * dtype_bytes(t), (int)k, reduce_type(t),
                            mop, c->mpi), "Allreduce");
    }
}

void comm_reduce_scatter(const Comm *c, const void *send, void *recv, size_t n, DType t) {
    if (c->size == 1) {
        memmove(recv, send, n * dtype_bytes(t));
        return;
    }
    if (n > (size_t)INT_MAX) fatal("comm: reduce-scatter of %zu elements per rank is too large", n);
    check(MPI_Reduce_scatter_block(send, recv, (int)n, reduce_type(t), MPI_SUM, c->mpi),
          "Reduce_scatter_block");
}

void comm_allgather(const Comm *c, const void *send, void *recv, size_t n, DType t) {
    size_t bytes = n * dtype_bytes(t);
    bool in_place = (const char *)send == (char *)recv + (size_t)c->rank * bytes;
    if (c->size == 1) {
        if (!in_place) memmove(recv, send, bytes);
        return;
    }
    if (n > (size_t)INT_MAX) fatal("comm: all-gather of %zu elements per rank is too large", n);
    check(MPI_Allgather(in_place ? MPI_IN_PLACE : send, (int)n, comm_mpi_type(t), recv, (int)n,
                        comm_mpi_type(t), c->mpi), "Allgather");
}

void comm_broadcast(const Comm *c, void *buf, size_t n, DType t, int root) {
    if (c->size == 1) return;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        check(MPI_Bcast((char *)buf + i * dtype_bytes(t), (int)k, comm_mpi_type(t), root, c->mpi),
              "Bcast");
    }
}

void comm_barrier(const Comm *c) { check(MPI_Barrier(c->mpi), "Barrier"); }

CommRequest comm_isend(const Comm *c, const void *buf, size_t n, DType t, int peer, int tag) {
    CommRequest r = {MPI_REQUEST_NULL, NULL};
    if (n > (size_t)INT_MAX) fatal("comm: send of %zu elements is too large", n);
    check(MPI_Isend(buf, (int)n, comm_mpi_type(t), peer, tag, c->mpi, &r.mpi), "Isend");
    return r;
}

CommRequest comm_irecv(const Comm *c, void *buf, size_t n, DType t, int peer, int tag) {
    CommRequest r = {MPI_REQUEST_NULL, NULL};
    if (n > (size_t)INT_MAX) fatal("comm: receive of %zu elements is too large", n);
    check(MPI_Irecv(buf, (int)n, comm_mpi_type(t), peer, tag, c->mpi, &r.mpi), "Irecv");
    return r;
}

void comm_wait(CommRequest *r) {
    if (r->mpi != MPI_REQUEST_NULL) check(MPI_Wait(&r->mpi, MPI_STATUS_IGNORE), "Wait");
}

void comm_agree(const Comm *c, bool ok, const char *message) {
    int mine = ok ? c->size : c->rank, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->mpi);
    if (first == c->size) return;
    if (c->rank == first) {
        fprintf(stderr, "%s: error: %s\n", util_program(), message);
        fflush(stderr);
    }
    MPI_Barrier(c->mpi);
    MPI_Finalize();
    exit(1);
}

void agree_or_exit(bool ok, const char *message) {
    Comm world = {MPI_COMM_WORLD, util_world_rank(), util_world_size(), NULL};
    comm_agree(&world, ok, message);
}

// ---- device buffers ----

void comm_dev_allreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op) {
    if (c->size == 1) return;
    if (c->dev) device_ops->allreduce(c->dev, buf, n, t, op);
    else comm_allreduce(c, buf, n, t, op);
}

// A device communicator also serves one rank: its buffers are device memory,
// which the host-side copies of the MPI versions cannot touch.
void comm_dev_reduce_scatter(const Comm *c, const void *send, void *recv, size_t n, DType t) {
    if (c->dev) device_ops->reduce_scatter(c->dev, send, recv, n, t);
    else comm_reduce_scatter(c, send, recv, n, t);
}

void comm_dev_allgather(const Comm *c, const void *send, void *recv, size_t n, DType t) {
    if (c->dev) device_ops->allgather(c->dev, send, recv, n, t);
    else comm_allgather(c, send, recv, n, t);
}

CommRequest comm_dev_iallreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op) {
    CommRequest r = {MPI_REQUEST_NULL, NULL};
    if (c->size == 1) return r;
    if (c->dev) return device_ops->iallreduce(c->dev, buf, n, t, op);
    if (n > (size_t)INT_MAX) {   // MPI counts are int: blocking, in chunks
        comm_allreduce(c, buf, n, t, op);
        return r;
    }
    check(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, reduce_type(t), comm_mpi_op(op), c->mpi,
                         &r.mpi), "Iallreduce");
    return r;
}

CommRequest comm_dev_isend(const Comm *c, const void *buf, size_t n, DType t, int peer, int tag) {
    if (c->dev) return device_ops->isend(c->dev, buf, n, t, peer);
    return comm_isend(c, buf, n, t, peer, tag);
}

CommRequest comm_dev_irecv(const Comm *c, void *buf, size_t n, DType t, int peer, int tag) {
    if (c->dev) return device_ops->irecv(c->dev, buf, n, t, peer);
    return comm_irecv(c, buf, n, t, peer, tag);
}

void comm_dev_wait(const Comm *c, CommRequest *r) {
    if (c->dev) device_ops->wait(c->dev, r);
    else comm_wait(r);
}
