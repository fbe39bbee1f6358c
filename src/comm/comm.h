// The communication interface: collectives and point-to-point transfers over
// one dimension of the process grid.  MPI implementation here; the CUDA
// backend puts NCCL (or host-staged MPI, comm_staged.c) behind the same
// calls.  Buffers are device memory of the active backend; every call is
// blocking unless it returns a CommRequest.
#ifndef LLAMA_COMM_H
#define LLAMA_COMM_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { DTYPE_F32, DTYPE_F64, DTYPE_I32, DTYPE_I64, DTYPE_U64, DTYPE_U8, DTYPE_BF16 } DType;
typedef enum { REDUCE_SUM, REDUCE_MAX } ReduceOp;

typedef struct Comm {
    MPI_Comm mpi;
    int rank, size;
    void *dev;          // the device communicator (NCCL, staged MPI), NULL on the CPU
} Comm;

typedef struct {
    MPI_Request mpi;
    void *event;        // device backends: what comm_dev_wait waits for
} CommRequest;

// Collectives on device buffers (activations, gradients, parameters, and the
// pipeline's point-to-point transfers).  The CPU backend uses the MPI calls
// above; a device backend (CUDA: NCCL) installs its own with
// comm_set_device_ops before the grid is built (llama-train then swaps in
// comm_staged_device_ops for --device-comm mpi), and every Comm created
// afterwards gets a device communicator.  Device calls are ordered with the
// backend's compute: a device collective sees every kernel queued before it,
// and kernels queued after it see its result.
typedef struct {
    const char *name;                 // what moves the data, for the start-up line
    void *(*create)(const Comm *c);   // collective over c
    void (*destroy)(void *dev);
    void (*allreduce)(void *dev, void *buf, size_t n, DType t, ReduceOp op);
    void (*reduce_scatter)(void *dev, const void *send, void *recv, size_t n, DType t);
    void (*allgather)(void *dev, const void *send, void *recv, size_t n, DType t);
    CommRequest (*iallreduce)(void *dev, void *buf, size_t n, DType t, ReduceOp op);
    CommRequest (*isend)(void *dev, const void *buf, size_t n, DType t, int peer);
    CommRequest (*irecv)(void *dev, void *buf, size_t n, DType t, int peer);
    void (*wait)(void *dev, CommRequest *r);
} DeviceCommOps;

void comm_set_device_ops(const DeviceCommOps *ops);
const DeviceCommOps *comm_device_ops(void);   // NULL on the CPU
// Host-staged MPI (comm_staged.c, --device-comm mpi): each call copies the
// device data to host memory with ops->to_host, runs MPI there and copies the
// result back with ops->to_device; bf16 is reduced in fp32.  Slower than
// NCCL, but any number of ranks may share one GPU.
const DeviceCommOps *comm_staged_device_ops(void);

void comm_dev_allreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op);
void comm_dev_reduce_scatter(const Comm *c, const void *send, void *recv, size_t n, DType t);
void comm_dev_allgather(const Comm *c, const void *send, void *recv, size_t n, DType t);
// Non-blocking all-reduce in place: it sees what was queued before it; buf is
// the sum after comm_dev_wait.  Between the two, no other collective of c may
// be posted, and buf must not be touched.
CommRequest comm_dev_iallreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op);
// Point-to-point: a pair's messages match in the order they are posted (the
// tag is used by MPI only).  comm_dev_wait: the transfer is complete (send:
// the buffer may be reused; receive: the data may be used).
CommRequest comm_dev_isend(const Comm *c, const void *buf, size_t n, DType t, int peer, int tag);
CommRequest comm_dev_irecv(const Comm *c, void *buf, size_t n, DType t, int peer, int tag);
void comm_dev_wait(const Comm *c, CommRequest *r);

// Wraps an MPI communicator (the Comm keeps a duplicate of it).
void comm_init(Comm *c, MPI_Comm mpi);
void comm_free(Comm *c);

void comm_allreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op);
// send (size·n) → recv (n): this rank's block of the elementwise sum.
void comm_reduce_scatter(const Comm *c, const void *send, void *recv, size_t n, DType t);
// send (n) → recv (size·n), blocks in rank order.  send may be recv + rank·n.
void comm_allgather(const Comm *c, const void *send, void *recv, size_t n, DType t);
void comm_broadcast(const Comm *c, void *buf, size_t n, DType t, int root);
void comm_barrier(const Comm *c);

CommRequest comm_isend(const Comm *c, const void *buf, size_t n, DType t, int peer, int tag);
CommRequest comm_irecv(const Comm *c, void *buf, size_t n, DType t, int peer, int tag);
void comm_wait(CommRequest *r);

size_t dtype_bytes(DType t);
// The MPI type that moves t (bf16 moves as its 16-bit pattern; reduce it
// through fp32) and the MPI reduction of op.
MPI_Datatype comm_mpi_type(DType t);
MPI_Op comm_mpi_op(ReduceOp op);

// Collective agreement on an outcome: when any rank has ok == false, the
// lowest such rank prints its message and every rank exits 1 (no hang, one
// message).  Returns only when every rank is ok.
void comm_agree(const Comm *c, bool ok, const char *message);
// comm_agree over MPI_COMM_WORLD.
void agree_or_exit(bool ok, const char *message);

#endif
