// The communication interface: collectives and point-to-point transfers over
// one dimension of the process grid.  MPI implementation here; the CUDA
// backend puts NCCL (or host-staged MPI, comm_staged.c) behind the same
// calls.  Buffers are device memory of the active backend; every call is
// blocking unless it returns a CommRequest.
#ifndef LLAMA_COMM_H
#define LLAMA_COMM_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/ops.h"

typedef enum { DTYPE_F32, DTYPE_F64, DTYPE_I32, DTYPE_I64, DTYPE_U64, DTYPE_U8, DTYPE_BF16 } DType;
typedef enum { REDUCE_SUM, REDUCE_MAX } ReduceOp;

typedef struct Comm {
    void *handle;       // the MPI communicator (comm/comm_mpi.h); opaque here
    int rank, size;
    void *dev;          // the device communicator (NCCL, staged MPI), NULL on the CPU
} Comm;

typedef struct {
    void *host;         // comm.c's MPI request (freed by the wait); NULL: none
    void *event;        // device backends: what comm_dev_wait waits for
} CommRequest;

// Collectives on device buffers (activations, gradients, parameters, and the
// pipeline's point-to-point transfers).  The CPU backend uses the MPI calls
// above; with a device backend the program's main installs the device
// communication (comm_nccl_device_ops, or comm_staged_device_ops for
// --device-comm mpi) with comm_set_device_ops before the grid is built, and
// every Comm created afterwards gets a device communicator.  Device calls are ordered with the
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
    CommRequest (*ireduce_scatter)(void *dev, const void *send, void *recv, size_t n, DType t);
    CommRequest (*iallgather)(void *dev, const void *send, void *recv, size_t n, DType t);
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
const DeviceCommOps *comm_staged_device_ops(const Ops *backend);
#ifdef LLAMA_CUDA
// NCCL (cuda/comm_nccl.cu): one GPU per rank; buffers of the CUDA backend.
const DeviceCommOps *comm_nccl_device_ops(void);
#endif

void comm_dev_allreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op);
void comm_dev_reduce_scatter(const Comm *c, const void *send, void *recv, size_t n, DType t);
void comm_dev_allgather(const Comm *c, const void *send, void *recv, size_t n, DType t);
// Non-blocking collectives, the blocking ones' results after comm_dev_wait:
// each sees what was queued before it; until the wait its buffers must not be
// touched.  Several may be in flight on one Comm when every rank posts them in
// the same order (waits may come in any order).
CommRequest comm_dev_iallreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op);
// send (size·n) → recv (n), summed; recv apart from send; n may be 0.
CommRequest comm_dev_ireduce_scatter(const Comm *c, const void *send, void *recv, size_t n, DType t);
// send (n) → recv (size·n) in rank order; send may be recv + rank·n (in place); n may be 0.
CommRequest comm_dev_iallgather(const Comm *c, const void *send, void *recv, size_t n, DType t);
// Point-to-point: a pair's messages match in the order they are posted (the
// tag is used by MPI only).  comm_dev_wait: the transfer is complete (send:
// the buffer may be reused; receive: the data may be used).
CommRequest comm_dev_isend(const Comm *c, const void *buf, size_t n, DType t, int peer, int tag);
CommRequest comm_dev_irecv(const Comm *c, void *buf, size_t n, DType t, int peer, int tag);
void comm_dev_wait(const Comm *c, CommRequest *r);
// Seconds the host has spent inside the blocking device calls and the waits
// above (a device backend's collectives: the time to queue them; CPU ranks:
// the exposed communication, including waiting for the other ranks).
double comm_dev_busy_seconds(void);
// A request with nothing to wait for.
CommRequest comm_request_none(void);

// The job: starts MPI (threads: funneled) and installs this rank's place in
// the job for util.h's messages and fatal errors; comm_world_end finalizes.
void comm_world_start(int *argc, char ***argv);
// The number of ranks a launcher (mpirun, mpiexec, srun) started, read from
// its environment before MPI starts; 1 when none did or none says.
int comm_launched_ranks(void);
void comm_world_end(void);
// Every rank of the job, as a communicator of its own (comm_free it).
void comm_world(Comm *c);
// Every rank of the job on host memory, without a communicator of its own
// (agreement on options and outcomes; valid while MPI runs).
const Comm *comm_job(void);
// The ranks of parent with the same color, ordered by key (collective over parent).
void comm_split(const Comm *parent, int color, int key, Comm *out);
// A rank's two links round a ring of ranks, link i joining positions i and
// i + 1 mod n: communicators of two ranks, position i first, so the peer is
// comm_link_peer.  Point-to-point transfers round a ring go on its links: a
// device backend that runs a communicator's transfers in order (NCCL, one
// stream each) never queues a send to the next rank behind a receive from the
// previous one, and a ring per kind of data keeps the kinds apart.
typedef struct {
    Comm next;   // the link to the next position (this rank is its rank 0)
    Comm prev;   // the link from the previous position (this rank is its rank 1)
} CommRing;
// `kinds` rings over the same ranks, one per kind of data (collective over
// parent): this rank is at position pos of ring number `ring` (the same number
// on every member; 0 ≤ ring < rings) of n positions.  n = 1: zeroed rings
// (nothing is sent).  Built in two rounds of splits (three for an odd ring).
void comm_ring_links(const Comm *parent, int ring, int rings, int pos, int n, int kinds,
                     CommRing *out);
void comm_ring_free(CommRing *r);
// The other rank on a link.
static inline int comm_link_peer(const Comm *link) { return 1 - link->rank; }
// This rank's index among the ranks sharing its node's memory, and their number
// (collective over every rank).
void comm_node_rank(int *rank, int *size);
// The sum of v over the ranks sharing this rank's node (collective over every
// rank).
double comm_node_sum(double v);

// Every rank's n bytes, concatenated in rank order (malloc'ed, NUL-terminated;
// *total: their length).  Collective.
char *comm_allgather_bytes(const Comm *c, const void *mine, size_t n, size_t *total);
// Rank 0 receives every other rank's n bytes, one rank after the other, and
// hands each to take (its own stay where they are).  Collective.
typedef void (*CommTake)(void *ctx, const void *buf, size_t n, int rank);
void comm_gather_to_root(const Comm *c, const void *mine, size_t n, CommTake take, void *ctx);

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
// comm_agree over every rank (comm_job).
void agree_or_exit(bool ok, const char *message);
// agree_or_exit for the command line: a failure exits EXIT_USAGE (2).
void agree_on_usage(bool ok, const char *message);
// A rank that leaves early with status 0 (--help, --describe) while the
// others go on would leave them waiting in their first collective: every
// rank must make that choice alike.  Ends every rank with "<what> was given
// to some ranks only: start every rank with the same command line" unless
// every rank of the job holds the same `choice` (exit 2: bad usage).  Collective over the job
// (nothing when MPI is not running).
void agree_on_choice(int choice, const char *what);

#endif
