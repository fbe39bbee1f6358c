#include "comm/comm_mpi.h"

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

// The MPI communicator of a Comm.
#define MPI_OF(c) (*(MPI_Comm *)(c)->handle)

static const DeviceCommOps *device_ops = NULL;

void comm_set_device_ops(const DeviceCommOps *ops) { device_ops = ops; }
const DeviceCommOps *comm_device_ops(void) { return device_ops; }

void comm_init(Comm *c, MPI_Comm mpi) {
    MPI_Comm *h = xmalloc(sizeof *h);
    check(MPI_Comm_dup(mpi, h), "Comm_dup");
    c->handle = h;
    MPI_Comm_rank(*h, &c->rank);
    MPI_Comm_size(*h, &c->size);
    c->dev = device_ops ? device_ops->create(c) : NULL;
}

void comm_free(Comm *c) {
    if (c->dev) device_ops->destroy(c->dev);
    c->dev = NULL;
    if (c->handle) {
        MPI_Comm_free((MPI_Comm *)c->handle);
        free(c->handle);
    }
    c->handle = NULL;
}

void comm_allreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op) {
    if (c->size == 1) return;
    MPI_Op mop = comm_mpi_op(op);
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        check(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + i * dtype_bytes(t), (int)k, reduce_type(t),
                            mop, MPI_OF(c)), "Allreduce");
    }
}

void comm_reduce_scatter(const Comm *c, const void *send, void *recv, size_t n, DType t) {
    if (c->size == 1) {
        memmove(recv, send, n * dtype_bytes(t));
        return;
    }
    if (n > (size_t)INT_MAX) fatal("comm: reduce-scatter of %zu elements per rank is too large", n);
    check(MPI_Reduce_scatter_block(send, recv, (int)n, reduce_type(t), MPI_SUM, MPI_OF(c)),
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
                        comm_mpi_type(t), MPI_OF(c)), "Allgather");
}

void comm_broadcast(const Comm *c, void *buf, size_t n, DType t, int root) {
    if (c->size == 1) return;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        check(MPI_Bcast((char *)buf + i * dtype_bytes(t), (int)k, comm_mpi_type(t), root, MPI_OF(c)),
              "Bcast");
    }
}

void comm_barrier(const Comm *c) { check(MPI_Barrier(MPI_OF(c)), "Barrier"); }

// A request of comm.c's own: the MPI request lives on the heap until its wait.
static CommRequest host_request(MPI_Request **req) {
    *req = xmalloc(sizeof **req);
    return (CommRequest){*req, NULL};
}

CommRequest comm_isend(const Comm *c, const void *buf, size_t n, DType t, int peer, int tag) {
    if (n > (size_t)INT_MAX) fatal("comm: send of %zu elements is too large", n);
    MPI_Request *req;
    CommRequest r = host_request(&req);
    check(MPI_Isend(buf, (int)n, comm_mpi_type(t), peer, tag, MPI_OF(c), req), "Isend");
    return r;
}

CommRequest comm_irecv(const Comm *c, void *buf, size_t n, DType t, int peer, int tag) {
    if (n > (size_t)INT_MAX) fatal("comm: receive of %zu elements is too large", n);
    MPI_Request *req;
    CommRequest r = host_request(&req);
    check(MPI_Irecv(buf, (int)n, comm_mpi_type(t), peer, tag, MPI_OF(c), req), "Irecv");
    return r;
}

void comm_wait(CommRequest *r) {
    if (!r->host) return;
    check(MPI_Wait((MPI_Request *)r->host, MPI_STATUS_IGNORE), "Wait");
    free(r->host);
    r->host = NULL;
}

static void agree_or_end(const Comm *c, bool ok, const char *message, int status) {
    int mine = ok ? c->size : c->rank, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_OF(c));
    if (first == c->size) return;
    if (c->rank == first) {
        fprintf(stderr, "%s: error: %s\n", util_program(), message);
        fflush(stderr);
    }
    MPI_Barrier(MPI_OF(c));
    MPI_Finalize();
    exit(status);
}

void comm_agree(const Comm *c, bool ok, const char *message) { agree_or_end(c, ok, message, 1); }
void agree_or_exit(bool ok, const char *message) { comm_agree(comm_job(), ok, message); }
void agree_on_usage(bool ok, const char *message) {
    agree_or_end(comm_job(), ok, message, EXIT_USAGE);
}

static bool mpi_running(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

void agree_on_choice(int choice, const char *what) {
    if (!mpi_running()) return;
    int range[2] = {choice, -choice};   // the largest choice, minus the smallest
    MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (range[0] != -range[1])
        fatal_usage("%s was given to some ranks only: start every rank with the same command "
                    "line", what);
}

// ---- the job and its communicators ----

static int world_rank(void) {
    int r = 0;
    if (mpi_running()) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

static int world_size(void) {
    int n = 1;
    if (mpi_running()) MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

static void world_abort(void) {
    if (mpi_running()) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static void world_leave(void) {
    if (mpi_running()) MPI_Finalize();
}

static const UtilWorld mpi_world = {world_rank, world_size, world_abort, world_leave};

int comm_launched_ranks(void) {
    // Open MPI, MPICH/Hydra (and Intel MPI), Slurm's srun for its job step.
    static const char *const names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = getenv(names[i]);
        char *end;
        long n = v ? strtol(v, &end, 10) : 0;
        if (v && *v && !*end && n > 0 && n <= INT_MAX) return (int)n;
    }
    return 1;
}

void comm_world_start(int *argc, char ***argv) {
    // Open MPI 4's OMPIO queries its "lockedfile" shared-file-pointer
    // component on every MPI_File_open, which overflows a fixed buffer
    // (abort: "buffer overflow detected") for paths of about 215 characters
    // or more; HDF5 uses no shared file pointer.  Unless the user chose.
    setenv("OMPI_MCA_sharedfp", "^lockedfile", 0);
    int provided;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "Init_thread");
    util_set_world(&mpi_world);
}

void comm_world_end(void) {
    world_leave();
    util_set_world(NULL);
}

void comm_world(Comm *c) { comm_init(c, MPI_COMM_WORLD); }

const Comm *comm_job(void) {
    static MPI_Comm world;
    static Comm job;
    world = MPI_COMM_WORLD;
    job = (Comm){&world, world_rank(), world_size(), NULL};
    return &job;
}

void comm_split(const Comm *parent, int color, int key, Comm *out) {
    MPI_Comm c;
    check(MPI_Comm_split(MPI_OF(parent), color, key, &c), "Comm_split (building the process grid)");
    comm_init(out, c);
    MPI_Comm_free(&c);
}

// Neighbouring links of a ring differ in colour: parity, and a third colour
// for the last link of an odd ring.
static int link_colour(int link, int n) { return n % 2 && link == n - 1 ? 2 : link % 2; }

// A rank sits on two links, so each colour's links are split off in a round
// of their own; a rank with no link of the round's colour gets a group of its
// own and frees it.
void comm_ring_links(const Comm *parent, int ring, int rings, int pos, int n, int kinds,
                     CommRing *out) {
    memset(out, 0, (size_t)kinds * sizeof *out);
    if (n == 1) return;
    int down = pos, up = (pos + n - 1) % n;   // the links to the next and from the previous
    for (int colour = 0; colour < (n % 2 ? 3 : 2); colour++) {
        int link = link_colour(down, n) == colour ? down : link_colour(up, n) == colour ? up : -1;
        int group = link < 0 ? rings * n + parent->rank : ring * n + link;
        for (int k = 0; k < kinds; k++) {
            Comm c;
            comm_split(parent, group, link == pos ? 0 : 1, &c);
            if (link == down) out[k].next = c;
            else if (link == up) out[k].prev = c;
            else comm_free(&c);
        }
    }
}

void comm_ring_free(CommRing *r) {
    comm_free(&r->next);
    comm_free(&r->prev);
}

void comm_node_rank(int *rank, int *size) {
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank(), MPI_INFO_NULL,
                              &node), "Comm_split_type (the ranks of this node)");
    MPI_Comm_rank(node, rank);
    MPI_Comm_size(node, size);
    MPI_Comm_free(&node);
}

double comm_node_sum(double v) {
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank(), MPI_INFO_NULL,
                              &node), "Comm_split_type (the ranks of this node)");
    double sum = 0;
    check(MPI_Allreduce(&v, &sum, 1, MPI_DOUBLE, MPI_SUM, node), "Allreduce (this node's ranks)");
    MPI_Comm_free(&node);
    return sum;
}

char *comm_allgather_bytes(const Comm *c, const void *mine, size_t n, size_t *total) {
    if (n > (size_t)INT_MAX) fatal("comm: all-gather of %zu bytes from one rank is too large", n);
    int count = (int)n, *sizes = xmalloc((size_t)c->size * sizeof *sizes);
    int *displs = xmalloc((size_t)c->size * sizeof *displs);
    check(MPI_Allgather(&count, 1, MPI_INT, sizes, 1, MPI_INT, MPI_OF(c)), "Allgather");
    size_t sum = 0;
    for (int r = 0; r < c->size; r++) {
        if (sum + (size_t)sizes[r] > (size_t)INT_MAX)
            fatal("comm: all-gather of more than 2 GiB in all is too large");
        displs[r] = (int)sum;
        sum += (size_t)sizes[r];
    }
    char *all = xmalloc(sum + 1);
    check(MPI_Allgatherv(mine, count, MPI_CHAR, all, sizes, displs, MPI_CHAR, MPI_OF(c)), "Allgatherv");
    all[sum] = 0;
    free(sizes);
    free(displs);
    *total = sum;
    return all;
}

void comm_gather_to_root(const Comm *c, const void *mine, size_t n, CommTake take, void *ctx) {
    if (n > (size_t)INT_MAX) fatal("comm: gather of %zu bytes from one rank is too large", n);
    int count = (int)n, *sizes = c->rank == 0 ? xmalloc((size_t)c->size * sizeof *sizes) : NULL;
    check(MPI_Gather(&count, 1, MPI_INT, sizes, 1, MPI_INT, 0, MPI_OF(c)), "Gather");
    for (int r = 1; r < c->size; r++) {
        if (c->rank == r) check(MPI_Send(mine, count, MPI_CHAR, 0, 11, MPI_OF(c)), "Send");
        if (c->rank != 0) continue;
        char *buf = xmalloc((size_t)sizes[r] + 1);
        check(MPI_Recv(buf, sizes[r], MPI_CHAR, r, 11, MPI_OF(c), MPI_STATUS_IGNORE), "Recv");
        take(ctx, buf, (size_t)sizes[r], r);
        free(buf);
    }
    free(sizes);
}

// ---- device buffers ----

CommRequest comm_request_none(void) { return (CommRequest){NULL, NULL}; }

// The host's time inside the blocking device calls and the waits.
static double dev_busy;
double comm_dev_busy_seconds(void) { return dev_busy; }

void comm_dev_allreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op) {
    if (c->size == 1) return;
    double t0 = now_seconds();
    if (c->dev) device_ops->allreduce(c->dev, buf, n, t, op);
    else comm_allreduce(c, buf, n, t, op);
    dev_busy += now_seconds() - t0;
}

// A device communicator also serves one rank: its buffers are device memory,
// which the host-side copies of the MPI versions cannot touch.
void comm_dev_reduce_scatter(const Comm *c, const void *send, void *recv, size_t n, DType t) {
    double t0 = now_seconds();
    if (c->dev) device_ops->reduce_scatter(c->dev, send, recv, n, t);
    else comm_reduce_scatter(c, send, recv, n, t);
    dev_busy += now_seconds() - t0;
}

void comm_dev_allgather(const Comm *c, const void *send, void *recv, size_t n, DType t) {
    double t0 = now_seconds();
    if (c->dev) device_ops->allgather(c->dev, send, recv, n, t);
    else comm_allgather(c, send, recv, n, t);
    dev_busy += now_seconds() - t0;
}

CommRequest comm_dev_iallreduce(const Comm *c, void *buf, size_t n, DType t, ReduceOp op) {
    if (c->size == 1) return comm_request_none();
    if (c->dev) return device_ops->iallreduce(c->dev, buf, n, t, op);
    if (n > (size_t)INT_MAX) {   // MPI counts are int: blocking, in chunks
        comm_allreduce(c, buf, n, t, op);
        return comm_request_none();
    }
    MPI_Request *req;
    CommRequest r = host_request(&req);
    check(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, reduce_type(t), comm_mpi_op(op), MPI_OF(c),
                         req), "Iallreduce");
    return r;
}

CommRequest comm_dev_ireduce_scatter(const Comm *c, const void *send, void *recv, size_t n,
                                     DType t) {
    if (n == 0) return comm_request_none();   // every rank's n is the same: nothing moves
    if (c->dev) return device_ops->ireduce_scatter(c->dev, send, recv, n, t);
    if (c->size == 1 || n > (size_t)INT_MAX) {   // a copy; or refused by the blocking call
        comm_reduce_scatter(c, send, recv, n, t);
        return comm_request_none();
    }
    MPI_Request *req;
    CommRequest r = host_request(&req);
    check(MPI_Ireduce_scatter_block(send, recv, (int)n, reduce_type(t), MPI_SUM, MPI_OF(c), req),
          "Ireduce_scatter_block");
    return r;
}

CommRequest comm_dev_iallgather(const Comm *c, const void *send, void *recv, size_t n, DType t) {
    if (n == 0) return comm_request_none();
    if (c->dev) return device_ops->iallgather(c->dev, send, recv, n, t);
    bool in_place = (const char *)send == (char *)recv + (size_t)c->rank * n * dtype_bytes(t);
    if (c->size == 1 || n > (size_t)INT_MAX) {   // a copy; or refused by the blocking call
        comm_allgather(c, send, recv, n, t);
        return comm_request_none();
    }
    MPI_Request *req;
    CommRequest r = host_request(&req);
    check(MPI_Iallgather(in_place ? MPI_IN_PLACE : send, (int)n, comm_mpi_type(t), recv, (int)n,
                         comm_mpi_type(t), MPI_OF(c), req), "Iallgather");
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
    double t0 = now_seconds();
    if (c->dev) device_ops->wait(c->dev, r);
    else comm_wait(r);
    dev_busy += now_seconds() - t0;
}

MPI_Comm comm_mpi(const Comm *c) { return MPI_OF(c); }
