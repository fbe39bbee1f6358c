// The emulator's runtime (see cuda_emu.h): fibers for the threads of a block,
// barriers, shuffles, and the CUDA runtime calls the backend makes, on host
// memory, with streams that queue the emulated libraries' asynchronous work.
// Single-threaded and deterministic.  A fiber starts on its own
// stack (a stack switch in assembly on x86-64, makecontext/setcontext
// elsewhere); every switch after that is GCC's __builtin_setjmp/longjmp,
// which saves a few registers and makes no system call.
#include "cuda_emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <memory>
#include <vector>

#include <cuda_profiler_api.h>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace {

enum State { READY, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

typedef void *JumpBuf[5];   // __builtin_setjmp's buffer

struct Fiber {
    ucontext_t ctx;   // the first entry (not x86-64)
    JumpBuf resume;   // later ones
    bool started;
    State state;
};

const size_t STACK_BYTES = 256 << 10;
const int MAX_THREADS = 1024;

std::vector<Fiber> fibers(MAX_THREADS);
char *stacks = nullptr;
JumpBuf scheduler;
int current = -1, n_threads = 0;
const std::function<void()> *body = nullptr;
// A shuffle's values, in two slots per lane used in turn (shuffle_slot): a
// lane that finished one shuffle writes its next value into the other slot,
// so no second barrier has to hold it until the others have read.
uint64_t exchange[2][MAX_THREADS];
unsigned char shuffle_slot[MAX_THREADS];
unsigned char *dynamic_smem = nullptr;
size_t dynamic_smem_bytes = 0, block_smem_bytes = 0;

// The PTX primitives: each lane's operands, published for its warp.
uint32_t frag_exchange[2][MAX_THREADS][6];   // two slots used in turn, as exchange's
unsigned char mma_slot[MAX_THREADS];
const unsigned char *row_exchange[MAX_THREADS];

// cp.async: a thread's copies not yet landed, with the group each belongs to
// (groups are numbered by the thread's commits: copy.group < committed[t]
// means committed).
struct AsyncCopy {
    unsigned char *dst;
    unsigned char data[16];
    size_t bytes;
    unsigned group;
};
std::vector<AsyncCopy> async_copies[MAX_THREADS];
unsigned async_committed[MAX_THREADS];

[[noreturn]] void die(const char *what) {
    fprintf(stderr, "cuda emulator: %s (block %u,%u,%u thread %d)\n", what, blockIdx.x, blockIdx.y,
            blockIdx.z, current);
    abort();
}

uint3 thread_index[MAX_THREADS];   // threadIdx of each thread of the block (run_block's)

// Every switch to a fiber sets the globals: no division on that path (it was
// a sixth of an emulated run's time).
void set_thread(int t) {
    current = t;
    threadIdx = thread_index[t];
}

int warp_waiting[MAX_THREADS / 32], block_waiting = 0, done_count = 0;

// Not inlined: __builtin_longjmp may not share a function with __builtin_setjmp.
__attribute__((noinline, noreturn)) void jump(JumpBuf buf) { __builtin_longjmp(buf, 1); }

__attribute__((noreturn)) void fiber_main() {
    (*body)();
    if (!async_copies[current].empty()) die("cp.async copies never waited for (cp_async_wait)");
    fibers[current].state = DONE;
    if (++done_count < n_threads && block_waiting > 0 && block_waiting + done_count == n_threads)
        die("__syncthreads that some threads never reach (they returned)");
    jump(scheduler);
}

// Runs fiber_main on a fresh stack.
__attribute__((noinline, noreturn)) void start_fiber(int t) {
#if defined(__x86_64__)
    char *top = stacks + (size_t)(t + 1) * STACK_BYTES - 64;   // 16-byte aligned
    __asm__ volatile("movq %0, %%rsp\n\tcall *%1\n\tud2" ::"r"(top), "r"(fiber_main) : "memory");
    __builtin_unreachable();
#else
    setcontext(&fibers[t].ctx);
    die("setcontext failed");
#endif
}

// Runs fiber t: from where it waited, or from its start.
__attribute__((noreturn)) void enter(int t) {
    set_thread(t);
    Fiber &f = fibers[t];
    if (f.started) jump(f.resume);
    f.started = true;
    start_fiber(t);
}

// Switches from a fiber that waits to the next ready one after it (in thread
// order, wrapping), without the scheduler in between; to the scheduler when
// none is ready (it then finds the block done, or stuck).
__attribute__((noreturn)) void switch_from(int me) {
    for (int k = 1; k < n_threads; k++) {
        int t = (me + k) % n_threads;
        if (fibers[t].state == READY) enter(t);
    }
    jump(scheduler);
}

// Arrives at a barrier; the last thread to arrive releases the others and
// goes on without a switch.
void yield(State s) {
    if (current < 0) die("a device function ran outside a kernel");
    int me = current;
    Fiber &f = fibers[me];
    if (s == AT_WARP_BARRIER) {
        int w = me / 32;
        if (++warp_waiting[w] == 32) {
            warp_waiting[w] = 0;
            for (int l = 0; l < 32; l++) fibers[32 * w + l].state = READY;
            return;
        }
    } else {
        if (++block_waiting == n_threads) {
            block_waiting = 0;
            for (int t = 0; t < n_threads; t++) fibers[t].state = READY;
            return;
        }
        if (done_count > 0) die("__syncthreads that some threads never reach (they returned)");
    }
    f.state = s;
    if (!__builtin_setjmp(f.resume)) switch_from(me);
    set_thread(me);
}

// The scheduler runs fiber t until some fiber comes back to it.
void switch_to(int t) {
    if (__builtin_setjmp(scheduler)) return;
    enter(t);
}

void run_block() {
    static bool initialised[MAX_THREADS];
    for (int t = 0; t < n_threads; t++) {
        Fiber &f = fibers[t];
        thread_index[t].x = t % blockDim.x;
        thread_index[t].y = (t / blockDim.x) % blockDim.y;
        thread_index[t].z = t / (blockDim.x * blockDim.y);
#if !defined(__x86_64__)
        if (!initialised[t]) getcontext(&f.ctx), initialised[t] = true;   // once: a system call
        f.ctx.uc_stack.ss_sp = stacks + (size_t)t * STACK_BYTES;
        f.ctx.uc_stack.ss_size = STACK_BYTES;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, (void (*)())fiber_main, 0);
#else
        (void)initialised;
#endif
        f.started = false;
        f.state = READY;
        async_copies[t].clear();
        async_committed[t] = 0;
        shuffle_slot[t] = mma_slot[t] = 0;
    }
    for (int w = 0; w < n_threads / 32; w++) warp_waiting[w] = 0;
    block_waiting = done_count = 0;
    for (;;) {
        bool ran = false;
        for (int t = 0; t < n_threads; t++)
            if (fibers[t].state == READY) switch_to(t), ran = true;
        current = -1;
        if (done_count == n_threads) return;
        if (!ran)
            die("threads wait at a barrier or warp collective that others never reach "
                "(divergence or an early return)");
    }
}

}   // namespace

void __syncthreads() { yield(AT_BLOCK_BARRIER); }

void __syncwarp(unsigned mask) { emu_warp_barrier(mask); }

void emu_warp_barrier(unsigned mask) {
    if (mask != 0xffffffffu) die("partial-warp masks are not emulated");
    yield(AT_WARP_BARRIER);
}

// The lanes of a warp make the same shuffles in the same order (a shuffle is
// a warp collective), so each lane's slot turn matches the others': the one
// barrier of shuffle k+1 keeps a lane from writing the slot of shuffle k
// again (at k+2) before every lane has read it.
uint64_t emu_shuffle(unsigned mask, uint64_t value, int arg, bool xor_mode) {
    int lane = current & 31, base = current & ~31, slot = shuffle_slot[current];
    exchange[slot][current] = value;
    emu_warp_barrier(mask);
    int src = xor_mode ? (lane ^ arg) : arg;
    if (src < 0 || src > 31) die("shuffle from a lane outside the warp");
    shuffle_slot[current] = (unsigned char)(slot ^ 1);
    return exchange[slot][base + src];
}

unsigned char *emu_dynamic_smem() { return dynamic_smem; }

// ---- the PTX primitives of cuda/mma.cuh ----

namespace {

float bf16_bits_to_float(uint32_t bits16) {
    uint32_t u = bits16 << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// Half `half` (0: low) of a published 32-bit register.
float frag_half(int slot, int thread, int reg, int half) {
    return bf16_bits_to_float((frag_exchange[slot][thread][reg] >> (16 * half)) & 0xffffu);
}

// Elements of the warp's A (16 × 16) and B (16 × 8) operands, read from the
// registers the lanes published (mma.cuh gives the layouts).
float mma_a(int slot, int warp_base, int row, int k) {
    int lane = 4 * (row & 7) + ((k & 7) >> 1), reg = (row >> 3) + 2 * (k >> 3);
    return frag_half(slot, warp_base + lane, reg, k & 1);
}

float mma_b(int slot, int warp_base, int k, int n) {
    int lane = 4 * n + ((k & 7) >> 1), reg = 4 + (k >> 3);
    return frag_half(slot, warp_base + lane, reg, k & 1);
}

void check_smem(const void *p, size_t bytes, const char *what) {
    const unsigned char *c = (const unsigned char *)p;
    if ((uintptr_t)c % bytes) die(what);
    if (c < dynamic_smem || c + bytes > dynamic_smem + block_smem_bytes)
        die("ldmatrix/cp.async outside the dynamic shared memory");
}

}   // namespace

// Operands published in the lane's slot of this turn (see emu_shuffle): one barrier.
void emu_mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    int me = current, base = current & ~31, g = (me & 31) >> 2, t = me & 3, slot = mma_slot[me];
    memcpy(frag_exchange[slot][me], a, 4 * sizeof(uint32_t));
    memcpy(frag_exchange[slot][me] + 4, b, 2 * sizeof(uint32_t));
    emu_warp_barrier(0xffffffffu);
    for (int e = 0; e < 4; e++) {   // D[g + 8·(e / 2)][2t + e % 2]
        int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        float s = 0.0f;   // the products of bf16 values are exact in fp32
        for (int k = 0; k < 16; k++) s += mma_a(slot, base, row, k) * mma_b(slot, base, k, col);
        d[e] += s;
    }
    mma_slot[me] = (unsigned char)(slot ^ 1);
}

void emu_ldmatrix_x4(uint32_t r[4], const void *p, bool trans) {
    int me = current, base = current & ~31, g = (me & 31) >> 2, t = me & 3;
    check_smem(p, 16, "ldmatrix row address not 16-byte aligned");
    row_exchange[me] = (const unsigned char *)p;
    emu_warp_barrier(0xffffffffu);
    for (int i = 0; i < 4; i++) {   // matrix i: rows at lanes 8i .. 8i + 7
        uint16_t lo, hi;
        if (!trans) {               // [g][2t], [g][2t + 1]
            memcpy(&lo, row_exchange[base + 8 * i + g] + 4 * t, 2);
            memcpy(&hi, row_exchange[base + 8 * i + g] + 4 * t + 2, 2);
        } else {                    // [2t][g], [2t + 1][g]
            memcpy(&lo, row_exchange[base + 8 * i + 2 * t] + 2 * g, 2);
            memcpy(&hi, row_exchange[base + 8 * i + 2 * t + 1] + 2 * g, 2);
        }
        r[i] = (uint32_t)lo | (uint32_t)hi << 16;
    }
    emu_warp_barrier(0xffffffffu);
}

void emu_cp_async(void *dst, const void *src, size_t bytes, bool valid) {
    if (current < 0) die("a device function ran outside a kernel");
    if (bytes != 4 && bytes != 16) die("cp.async of other than 4 or 16 bytes");
    check_smem(dst, bytes, "cp.async destination not aligned to its size");
    if ((uintptr_t)src % bytes) die("cp.async source not aligned to its size");
    AsyncCopy c;
    c.dst = (unsigned char *)dst;
    c.bytes = bytes;
    c.group = async_committed[current];
    if (valid) memcpy(c.data, src, bytes);
    else memset(c.data, 0, bytes);
    async_copies[current].push_back(c);
}

void emu_cp_async_commit() {
    if (current < 0) die("a device function ran outside a kernel");
    async_committed[current]++;
}

void emu_cp_async_wait(int n) {
    if (current < 0) die("a device function ran outside a kernel");
    std::vector<AsyncCopy> &q = async_copies[current];
    unsigned committed = async_committed[current];
    size_t kept = 0;
    for (size_t i = 0; i < q.size(); i++) {
        if (q[i].group + (unsigned)n < committed) memcpy(q[i].dst, q[i].data, q[i].bytes);
        else q[kept++] = q[i];
    }
    q.resize(kept);
}

void emu_run(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
             const std::function<void()> &kernel) {
    emu_stream_drain(stream);
    n_threads = (int)(block.x * block.y * block.z);
    if (n_threads < 1 || n_threads > MAX_THREADS || n_threads % 32)
        die("block size must be a multiple of 32, at most 1024 (emulator rule)");
    if (!stacks) {
        stacks = (char *)mmap(nullptr, STACK_BYTES * MAX_THREADS, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (stacks == MAP_FAILED) die("no memory for fiber stacks");
    }
    if (smem > dynamic_smem_bytes) {
        free(dynamic_smem);
        dynamic_smem = (unsigned char *)aligned_alloc(128, (smem + 127) / 128 * 128);
        dynamic_smem_bytes = smem;
    }
    blockDim = block;
    gridDim = grid;
    body = &kernel;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx.x = x, blockIdx.y = y, blockIdx.z = z;
                if (smem) memset(dynamic_smem, 0xff, smem);   // NaN until written
                block_smem_bytes = smem;
                run_block();
            }
    body = nullptr;
}

// ---- streams and events: queues of asynchronous work ----

namespace {

struct Work {
    std::function<void()> complete;
    bool done;
};
typedef std::vector<std::shared_ptr<Work>> WorkList;

// Completes the list's work in order, each piece once, and empties it.
void finish(WorkList &list) {
    WorkList todo;
    todo.swap(list);
    for (const std::shared_ptr<Work> &w : todo)
        if (!w->done) {
            w->done = true;
            w->complete();
        }
}

}   // namespace

// The runtime's opaque stream and event types (driver_types.h).
struct CUstream_st {
    WorkList queue;   // started, not yet completed; and the work it waits for
};

struct CUevent_st {
    WorkList recorded;   // the stream's queue when the event was recorded
};

namespace {

CUstream_st default_stream;
std::vector<CUstream_st *> streams;   // created ones, for cudaDeviceSynchronize

// 0, cudaStreamLegacy and cudaStreamPerThread: the default stream.
CUstream_st *stream_of(cudaStream_t s) { return (uintptr_t)s <= 2 ? &default_stream : s; }

void device_synchronize() {
    finish(default_stream.queue);
    for (CUstream_st *s : streams) finish(s->queue);
}

}   // namespace

void emu_stream_drain(cudaStream_t stream) { finish(stream_of(stream)->queue); }

void emu_stream_enqueue(cudaStream_t stream, std::function<void()> complete) {
    stream_of(stream)->queue.push_back(std::make_shared<Work>(Work{std::move(complete), false}));
}

// ---- the runtime API subset, on host memory ----

extern "C" {

static cudaError_t last_error = cudaSuccess;

// Every rank has an emulated device of its own (its host memory): a node has
// as many as it has ranks, up to this many.
static const int EMULATED_DEVICES = 64;

cudaError_t cudaMalloc(void **p, size_t n) {
    *p = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!*p) return last_error = cudaErrorMemoryAllocation;
    memset(*p, 0xff, n);
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) { return cudaMalloc(p, n); }
cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    emu_stream_drain(s);
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *src, size_t n, enum cudaMemcpyKind,
                            cudaStream_t s) {
    emu_stream_drain(s);
    memmove(d, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void *d, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind, cudaStream_t s) {
    emu_stream_drain(s);
    for (size_t r = 0; r < height; r++)
        memmove((char *)d + r * dpitch, (const char *)src + r * spitch, width);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *src, size_t n, enum cudaMemcpyKind) {
    device_synchronize();
    memmove(d, src, n);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    emu_stream_drain(s);
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    device_synchronize();
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = new CUstream_st();
    streams.push_back(*s);
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned flags, int) {
    return cudaStreamCreateWithFlags(s, flags);
}
cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest) {
    if (least) *least = 0;
    if (greatest) *greatest = -1;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {   // its queued work completes first
    if ((uintptr_t)s <= 2) return last_error = cudaErrorInvalidResourceHandle;
    finish(s->queue);
    streams.erase(std::remove(streams.begin(), streams.end(), s), streams.end());
    delete s;
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
    *e = new CUevent_st();
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    WorkList &q = stream_of(s)->queue;
    e->recorded.clear();
    for (const std::shared_ptr<Work> &w : q)
        if (!w->done) e->recorded.push_back(w);
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    finish(e->recorded);
    return cudaSuccess;
}
// Later work on s runs after the event's: s's queue takes it over.
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
    WorkList &q = stream_of(s)->queue;
    q.insert(q.end(), e->recorded.begin(), e->recorded.end());
    return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void *, enum cudaFuncAttribute, int) { return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int *n) {
    *n = EMULATED_DEVICES;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= EMULATED_DEVICES) return last_error = cudaErrorInvalidDevice;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CPU emulator");
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 4;
    p->sharedMemPerBlockOptin = 227 << 10;
    p->totalGlobalMem = (size_t)1 << 32;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory"
                                                                         : "emulated error";
}
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total) {
    *free_b = *total = (size_t)1 << 32;
    return cudaSuccess;
}
cudaError_t cudaProfilerStart(void) { return cudaSuccess; }
cudaError_t cudaProfilerStop(void) { return cudaSuccess; }

}   // extern "C"
