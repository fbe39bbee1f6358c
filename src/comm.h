// The communication interface: collectives and point-to-point transfers over
// one dimension of the process grid.  MPI implementation here; the CUDA
// backend puts NCCL behind the same calls.  Buffers are device memory of the
// active backend; every call is blocking unless it returns a CommRequest.
#ifndef LLAMA_COMM_H
#define LLAMA_COMM_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { DTYPE_F32, DTYPE_F64, DTYPE_I32, DTYPE_I64, DTYPE_U64, DTYPE_U8 } DType;
typedef enum { REDUCE_SUM, REDUCE_MAX } ReduceOp;

typedef struct Comm {
    MPI_Comm mpi;
    int rank, size;
} Comm;

typedef struct {
    MPI_Request mpi;
} CommRequest;

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

// Collective agreement on an outcome: when any rank has ok == false, the
// lowest such rank prints its message and every rank exits 1 (no hang, one
// message).  Returns only when every rank is ok.
void comm_agree(const Comm *c, bool ok, const char *message);
// comm_agree over MPI_COMM_WORLD.
void agree_or_exit(bool ok, const char *message);

#endif
