// The subset of NCCL that cuda/comm_nccl.cu calls (include/nccl.h), for the
// CPU emulator: the emulated device memory is host memory, so each
// communicator is an MPI communicator of the same ranks in the same order.
//
// ncclCommInitRank meets the id's maker over MPI_COMM_WORLD (one tag of its
// own), learns the members' world ranks and builds the communicator with
// MPI_Comm_create_group (collective over the members only, like NCCL's init).
// Each operation waits for its stream's earlier work, starts the
// non-blocking MPI call and queues its completion on the stream
// (emu_stream_enqueue): it completes before anything later on that stream
// runs, or where an event recorded after it is waited for, as NCCL's kernels
// do on the GPU.  bf16 is reduced in fp32 and rounded once; point-to-point
// messages of a pair match in posting order (one tag), NCCL's rule too.
#include "cuda_emu.h"

#include <nccl.h>

#define OMPI_SKIP_MPICXX 1   // the C API only
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <limits.h>
#include <string.h>

#include <memory>
#include <vector>

struct ncclComm {
    MPI_Comm mpi;
    int rank, size;
};

namespace {

const int INIT_TAG = 0x4e43;   // the meeting at ncclCommInitRank, on MPI_COMM_WORLD
const uint32_t ID_MAGIC = 0x454d554e;

// What an emulated ncclUniqueId holds: its maker's world rank and a number
// the maker never gives twice.
struct IdFields {
    uint32_t magic;
    int32_t maker;
    uint32_t serial;
};

ncclResult_t mpi_result(int rc) { return rc == MPI_SUCCESS ? ncclSuccess : ncclSystemError; }

// The MPI type of a data type's elements, for moving them (bf16 and fp16 as
// 16-bit words) and for reducing them (MPI_DATATYPE_NULL: not reducible by
// MPI; bf16 goes through fp32).
MPI_Datatype mpi_type(ncclDataType_t t, bool reduce) {
    switch (t) {
    case ncclInt8: return MPI_INT8_T;
    case ncclUint8: return MPI_UINT8_T;
    case ncclInt32: return MPI_INT32_T;
    case ncclUint32: return MPI_UINT32_T;
    case ncclInt64: return MPI_INT64_T;
    case ncclUint64: return MPI_UINT64_T;
    case ncclFloat32: return MPI_FLOAT;
    case ncclFloat64: return MPI_DOUBLE;
    case ncclFloat16:
    case ncclBfloat16: return reduce ? MPI_DATATYPE_NULL : MPI_UINT16_T;
    }
    return MPI_DATATYPE_NULL;
}

size_t type_bytes(ncclDataType_t t) {
    int bytes = 0;
    MPI_Type_size(mpi_type(t, false), &bytes);
    return (size_t)bytes;
}

MPI_Op mpi_op(ncclRedOp_t op) {
    switch (op) {
    case ncclSum: return MPI_SUM;
    case ncclProd: return MPI_PROD;
    case ncclMax: return MPI_MAX;
    case ncclMin: return MPI_MIN;
    default: return MPI_OP_NULL;   // ncclAvg
    }
}

// The arguments every operation checks: MPI counts are int.
ncclResult_t check_args(ncclComm_t comm, size_t count, ncclDataType_t t) {
    if (!comm || mpi_type(t, false) == MPI_DATATYPE_NULL || count > (size_t)INT_MAX)
        return ncclInvalidArgument;
    return ncclSuccess;
}

// Queues the completion of a started MPI request on the stream; `then` runs
// after the wait (copies results out of fp32 scratch).
void queue_wait(cudaStream_t stream, MPI_Request req, std::function<void()> then = nullptr) {
    emu_stream_enqueue(stream, [req, then]() mutable {
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        if (then) then();
    });
}

typedef std::shared_ptr<std::vector<float>> Floats;

// bf16 ↔ fp32 as the host code rounds (src/core/bf16.h): to nearest even,
// NaNs kept (quietened).
float bf16_bits_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t float_to_bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

Floats bf16_to_floats(const void *p, size_t n) {
    Floats f = std::make_shared<std::vector<float>>(n);
    for (size_t i = 0; i < n; i++) (*f)[i] = bf16_bits_to_float(((const uint16_t *)p)[i]);
    return f;
}

void floats_to_bf16(void *p, const float *f, size_t n) {
    for (size_t i = 0; i < n; i++) ((uint16_t *)p)[i] = float_to_bf16_bits(f[i]);
}

bool overlap(const void *a, size_t a_bytes, const void *b, size_t b_bytes) {
    const char *x = (const char *)a, *y = (const char *)b;
    return x < y + b_bytes && y < x + a_bytes;
}

// The members' world ranks in communicator-rank order, gathered by the id's
// maker and sent back to each.
ncclResult_t meet(const IdFields &id, int nranks, int rank, std::vector<int> &world) {
    int me;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    world.assign((size_t)nranks, -1);
    if (me != id.maker) {
        int mine[3] = {(int)id.serial, rank, me};
        int rc = MPI_Send(mine, 3, MPI_INT, id.maker, INIT_TAG, MPI_COMM_WORLD);
        if (rc == MPI_SUCCESS)
            rc = MPI_Recv(world.data(), nranks, MPI_INT, id.maker, INIT_TAG, MPI_COMM_WORLD,
                          MPI_STATUS_IGNORE);
        return mpi_result(rc);
    }
    world[(size_t)rank] = me;
    for (int i = 1; i < nranks; i++) {
        int theirs[3];
        int rc = MPI_Recv(theirs, 3, MPI_INT, MPI_ANY_SOURCE, INIT_TAG, MPI_COMM_WORLD,
                          MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return ncclSystemError;
        if ((uint32_t)theirs[0] != id.serial || theirs[1] < 0 || theirs[1] >= nranks ||
            world[(size_t)theirs[1]] != -1)
            return ncclInvalidUsage;   // another id's member, or a rank given twice
        world[(size_t)theirs[1]] = theirs[2];
    }
    for (int r = 0; r < nranks; r++)
        if (r != rank && MPI_Send(world.data(), nranks, MPI_INT, world[(size_t)r], INIT_TAG,
                                  MPI_COMM_WORLD) != MPI_SUCCESS)
            return ncclSystemError;
    return ncclSuccess;
}

// The arguments of a reduction: an operation MPI has, a type it can reduce
// (bf16 through fp32; not fp16).
ncclResult_t check_reduction(ncclComm_t comm, size_t count, ncclDataType_t t, ncclRedOp_t op) {
    ncclResult_t r = check_args(comm, count, t);
    if (r == ncclSuccess && (mpi_op(op) == MPI_OP_NULL || t == ncclFloat16))
        r = ncclInvalidArgument;
    return r;
}

// A bf16 all-reduce (in_count = out_count) or reduce-scatter (scatter): the
// values reduced in fp32, the result rounded once into recv at completion.
ncclResult_t reduce_bf16(const void *send, size_t in_count, void *recv, size_t out_count,
                         bool scatter, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    Floats in = bf16_to_floats(send, in_count);
    Floats out = scatter ? std::make_shared<std::vector<float>>(out_count) : in;
    MPI_Request req;
    int rc = scatter ? MPI_Ireduce_scatter_block(in->data(), out->data(), (int)out_count,
                                                 MPI_FLOAT, mpi_op(op), comm->mpi, &req)
                     : MPI_Iallreduce(MPI_IN_PLACE, in->data(), (int)in_count, MPI_FLOAT,
                                      mpi_op(op), comm->mpi, &req);
    if (rc == MPI_SUCCESS) queue_wait(stream, req, [recv, in, out] {
        floats_to_bf16(recv, out->data(), out->size());
    });
    return mpi_result(rc);
}

ncclResult_t p2p(bool send, void *buf, size_t count, ncclDataType_t t, int peer,
                 ncclComm_t comm, cudaStream_t stream) {
    ncclResult_t r = check_args(comm, count, t);
    if (r != ncclSuccess) return r;
    if (peer < 0 || peer >= comm->size || peer == comm->rank) return ncclInvalidArgument;
    emu_stream_drain(stream);
    MPI_Request req;
    int rc = send ? MPI_Isend(buf, (int)count, mpi_type(t, false), peer, 0, comm->mpi, &req)
                  : MPI_Irecv(buf, (int)count, mpi_type(t, false), peer, 0, comm->mpi, &req);
    if (rc == MPI_SUCCESS) queue_wait(stream, req);
    return mpi_result(rc);
}

}   // namespace

extern "C" {

const char *ncclGetErrorString(ncclResult_t result) {
    switch (result) {
    case ncclSuccess: return "no error";
    case ncclSystemError: return "MPI call failed (emulated NCCL)";
    case ncclInvalidArgument: return "invalid argument (emulated NCCL)";
    case ncclInvalidUsage: return "invalid usage (emulated NCCL)";
    default: return "emulated NCCL error";
    }
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    static uint32_t serial = 0;
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) return ncclInvalidUsage;
    IdFields f = {ID_MAGIC, 0, serial++};
    MPI_Comm_rank(MPI_COMM_WORLD, &f.maker);
    memset(id, 0, sizeof *id);
    memcpy(id->internal, &f, sizeof f);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank) {
    IdFields id;
    memcpy(&id, commId.internal, sizeof id);
    if (id.magic != ID_MAGIC || nranks < 1 || rank < 0 || rank >= nranks)
        return ncclInvalidArgument;
    std::vector<int> world;
    ncclResult_t r = meet(id, nranks, rank, world);
    if (r != ncclSuccess) return r;
    MPI_Group all, members;
    MPI_Comm mpi;
    MPI_Comm_group(MPI_COMM_WORLD, &all);
    MPI_Group_incl(all, nranks, world.data(), &members);
    int rc = MPI_Comm_create_group(MPI_COMM_WORLD, members, INIT_TAG, &mpi);
    MPI_Group_free(&members);
    MPI_Group_free(&all);
    if (rc != MPI_SUCCESS) return ncclSystemError;
    *comm = new ncclComm{mpi, rank, nranks};
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    if (!comm) return ncclInvalidArgument;
    int rc = MPI_Comm_free(&comm->mpi);
    delete comm;
    return mpi_result(rc);
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t t,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    ncclResult_t r = check_reduction(comm, count, t, op);
    if (r != ncclSuccess) return r;
    emu_stream_drain(stream);
    if (t == ncclBfloat16) return reduce_bf16(send, count, recv, count, false, op, comm, stream);
    MPI_Request req;
    int rc = MPI_Iallreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)count,
                            mpi_type(t, true), mpi_op(op), comm->mpi, &req);
    if (rc == MPI_SUCCESS) queue_wait(stream, req);
    return mpi_result(rc);
}

// recv (count) = this rank's block of the sum of every rank's send (size · count).
ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t count, ncclDataType_t t,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    ncclResult_t r = check_reduction(comm, count, t, op);
    if (r != ncclSuccess) return r;
    emu_stream_drain(stream);
    size_t all = count * (size_t)comm->size, bytes = type_bytes(t);
    if (t == ncclBfloat16) return reduce_bf16(send, all, recv, count, true, op, comm, stream);
    std::shared_ptr<std::vector<char>> copy;   // in place (NCCL allows it): MPI needs a copy
    if (overlap(send, all * bytes, recv, count * bytes)) {
        copy = std::make_shared<std::vector<char>>((const char *)send,
                                                   (const char *)send + all * bytes);
        send = copy->data();
    }
    MPI_Request req;
    int rc = MPI_Ireduce_scatter_block(send, recv, (int)count, mpi_type(t, true), mpi_op(op),
                                       comm->mpi, &req);
    if (rc == MPI_SUCCESS) queue_wait(stream, req, [copy] { (void)copy; });   // kept until done
    return mpi_result(rc);
}

// recv (size · count) = every rank's send (count), in rank order; in place
// when send is this rank's block of recv.
ncclResult_t ncclAllGather(const void *send, void *recv, size_t count, ncclDataType_t t,
                           ncclComm_t comm, cudaStream_t stream) {
    ncclResult_t r = check_args(comm, count, t);
    if (r != ncclSuccess) return r;
    emu_stream_drain(stream);
    size_t bytes = count * type_bytes(t);
    bool in_place = (const char *)send == (char *)recv + (size_t)comm->rank * bytes;
    MPI_Datatype mt = mpi_type(t, false);
    MPI_Request req;
    int rc = MPI_Iallgather(in_place ? MPI_IN_PLACE : send, (int)count, mt, recv, (int)count, mt,
                            comm->mpi, &req);
    if (rc == MPI_SUCCESS) queue_wait(stream, req);
    return mpi_result(rc);
}

ncclResult_t ncclSend(const void *send, size_t count, ncclDataType_t t, int peer,
                      ncclComm_t comm, cudaStream_t stream) {
    return p2p(true, const_cast<void *>(send), count, t, peer, comm, stream);
}

ncclResult_t ncclRecv(void *recv, size_t count, ncclDataType_t t, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
    return p2p(false, recv, count, t, peer, comm, stream);
}

}   // extern "C"
