// The host-staged device communication (src/comm/comm_staged.c) on the CPU
// backend, whose "device" memory is host memory: every DeviceCommOps call
// against values computed here rank by rank, with bf16 reduced in fp32 and
// rounded once (not summed in bf16).  Any number of ranks: run.sh runs it on
// one (the single-rank copies), validation/test_comm_staged.sh on 2 and 3.
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
#include "check.h"
#include "comm/comm_mpi.h"
#include "backend/ops.h"

static int P, R;   // ranks, this rank

// Ends a case on every rank: rank 0 prints PASS when no rank failed (a
// failing rank has printed its own FAIL line).
static void case_end(void) {
    int mine = check_case_failed, any;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!any && R == 0) printf("PASS %s\n", check_case);
    fflush(stdout);
}

// Rank r's element i: a multiple of 1/128 in [1, 2): exact in bf16 (8
// significant bits), and sums over ranks exact in fp32 but many not in bf16.
static float value(int r, size_t i, int salt) {
    return 1.0f + (float)((i * 7 + (size_t)r * 37 + (size_t)salt * 11) % 128) / 128.0f;
}

static float want_sum(size_t i, int salt) {
    double s = 0;
    for (int r = 0; r < P; r++) s += value(r, i, salt);
    return (float)s;
}

static float want_max(size_t i, int salt) {
    float m = value(0, i, salt);
    for (int r = 1; r < P; r++) m = value(r, i, salt) > m ? value(r, i, salt) : m;
    return m;
}

static float *f32_values(size_t n, int r, int salt) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = value(r, i, salt);
    return x;
}

static uint16_t *bf16_values(size_t n, int r, int salt) {
    uint16_t *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = bf16_from_f32(value(r, i, salt));
    return x;
}

static void test_allreduce(const Comm *c) {
    const DeviceCommOps *d = comm_device_ops();
    size_t n = 1001;
    check_begin("staged all-reduce: f32 and bf16 sum and max, f64 and i32 sum");
    float *f = f32_values(n, R, 1), *g = f32_values(n, R, 2);
    uint16_t *b = bf16_values(n, R, 1), *bm = bf16_values(n, R, 2);
    d->allreduce(c->dev, f, n, DTYPE_F32, REDUCE_SUM);
    d->allreduce(c->dev, g, n, DTYPE_F32, REDUCE_MAX);
    d->allreduce(c->dev, b, n, DTYPE_BF16, REDUCE_SUM);
    d->allreduce(c->dev, bm, n, DTYPE_BF16, REDUCE_MAX);
    for (size_t i = 0; i < n; i++) {
        CHECK(f[i] == want_sum(i, 1), "f32 sum [%zu]: %g, want %g", i, f[i], want_sum(i, 1));
        CHECK(g[i] == want_max(i, 2), "f32 max [%zu]: %g, want %g", i, g[i], want_max(i, 2));
        CHECK(b[i] == bf16_from_f32(want_sum(i, 1)), "bf16 sum [%zu]: %g, want %g rounded", i,
              bf16_to_f32(b[i]), want_sum(i, 1));
        CHECK(bm[i] == bf16_from_f32(want_max(i, 2)), "bf16 max [%zu]", i);
    }
    double dv[2] = {1.5 + R, 1e10};
    int32_t iv[2] = {R, -7};
    d->allreduce(c->dev, dv, 2, DTYPE_F64, REDUCE_SUM);
    d->allreduce(c->dev, iv, 2, DTYPE_I32, REDUCE_SUM);
    double rs = (double)P * (P - 1) / 2;
    CHECK(dv[0] == 1.5 * P + rs && dv[1] == 1e10 * P, "f64 sum: %g %g", dv[0], dv[1]);
    CHECK(iv[0] == (int32_t)rs && iv[1] == -7 * P, "i32 sum: %d %d", iv[0], iv[1]);
    free(f), free(g), free(b), free(bm);
    case_end();
}

// send (P·n): rank r's block k holds value(r, k·n + i); recv (n) gets block R of the sum.
static void test_reduce_scatter(const Comm *c) {
    size_t n = 513;
    check_begin("staged reduce-scatter: f32 and bf16 (summed in fp32), this rank's block");
    float *f = f32_values(n * P, R, 3), *fr = calloc(n, sizeof *fr);
    uint16_t *b = bf16_values(n * P, R, 3), *br = calloc(n, sizeof *br);
    comm_dev_reduce_scatter(c, f, fr, n, DTYPE_F32);
    comm_dev_reduce_scatter(c, b, br, n, DTYPE_BF16);
    for (size_t i = 0; i < n; i++) {
        float w = want_sum((size_t)R * n + i, 3);
        CHECK(fr[i] == w, "f32 [%zu]: %g, want %g", i, fr[i], w);
        CHECK(br[i] == bf16_from_f32(w), "bf16 [%zu]: %g, want %g rounded", i, bf16_to_f32(br[i]), w);
    }
    free(f), free(fr), free(b), free(br);
    case_end();
}

// recv (P·n): block r is rank r's send (n), out of place and in place; bf16 moves bit-exact.
static void test_allgather(const Comm *c) {
    size_t n = 257;
    check_begin("staged all-gather: bf16 bits out of place and in place, blocks in rank order");
    uint16_t *mine = bf16_values(n, R, 4), *out = calloc(n * P, sizeof *out);
    uint16_t *in = calloc(n * P, sizeof *in);
    mine[0] = 0x7fc1;   // a NaN's payload survives the trip
    memcpy(in + (size_t)R * n, mine, n * sizeof *mine);
    comm_dev_allgather(c, mine, out, n, DTYPE_BF16);
    comm_dev_allgather(c, in + (size_t)R * n, in, n, DTYPE_BF16);
    for (int r = 0; r < P; r++)
        for (size_t i = 0; i < n; i++) {
            uint16_t w = i == 0 ? 0x7fc1 : bf16_from_f32(value(r, i, 4));
            CHECK(out[(size_t)r * n + i] == w && in[(size_t)r * n + i] == w,
                  "block %d [%zu]: %#x and %#x, want %#x", r, i, out[(size_t)r * n + i],
                  in[(size_t)r * n + i], w);
        }
    free(mine), free(out), free(in);
    case_end();
}

// Three all-reduces outstanding at once (as the overlapped gradient reduction
// posts them), waited for in reverse order; a second wait is a no-op.
static void test_iallreduce(const Comm *c) {
    size_t n[3] = {300, 1000, 7};
    check_begin("staged non-blocking all-reduce: 3 outstanding, f32 and bf16, waited out of order");
    float *a = f32_values(n[0], R, 5), *z = f32_values(n[2], R, 7);
    uint16_t *b = bf16_values(n[1], R, 6);
    CommRequest q[3] = {comm_dev_iallreduce(c, a, n[0], DTYPE_F32, REDUCE_SUM),
                        comm_dev_iallreduce(c, b, n[1], DTYPE_BF16, REDUCE_SUM),
                        comm_dev_iallreduce(c, z, n[2], DTYPE_F32, REDUCE_MAX)};
    for (int k = 2; k >= 0; k--) comm_dev_wait(c, &q[k]);
    comm_dev_wait(c, &q[0]);
    for (size_t i = 0; i < n[0]; i++) CHECK(a[i] == want_sum(i, 5), "f32 [%zu]", i);
    for (size_t i = 0; i < n[1]; i++) CHECK(b[i] == bf16_from_f32(want_sum(i, 6)), "bf16 [%zu]", i);
    for (size_t i = 0; i < n[2]; i++) CHECK(z[i] == want_max(i, 7), "max [%zu]", i);
    free(a), free(b), free(z);
    case_end();
}

// ZeRO's traffic: a reduce-scatter (f32; bf16 where `bf16`) and an all-gather
// out of place and in place, all in flight at once, waited out of order; the
// results are the blocking calls' (checked above against the same values).
static void test_nonblocking(const Comm *c, const char *label, bool bf16) {
    size_t n = 389;
    char name[160];
    snprintf(name, sizeof name, "%s: non-blocking reduce-scatter and all-gather, 4 in flight, waited out of order", label);
    check_begin(name);
    float *f = f32_values(n * P, R, 11), *fr = calloc(n, sizeof *fr);
    uint16_t *b = bf16_values(n * P, R, 12), *br = calloc(n, sizeof *br);
    uint16_t *mine = bf16_values(n, R, 13), *out = calloc(n * P, sizeof *out), *in = calloc(n * P, sizeof *in);
    memcpy(in + (size_t)R * n, mine, n * sizeof *mine);
    CommRequest q[4] = {comm_dev_ireduce_scatter(c, f, fr, n, DTYPE_F32),
                        bf16 ? comm_dev_ireduce_scatter(c, b, br, n, DTYPE_BF16) : comm_request_none(),
                        comm_dev_iallgather(c, mine, out, n, DTYPE_BF16),
                        comm_dev_iallgather(c, in + (size_t)R * n, in, n, DTYPE_BF16)};
    for (int k = 3; k >= 0; k--) comm_dev_wait(c, &q[k]);
    CommRequest none[2] = {comm_dev_ireduce_scatter(c, f, fr, 0, DTYPE_F32),
                           comm_dev_iallgather(c, mine, out, 0, DTYPE_BF16)};
    for (int k = 0; k < 2; k++)
        CHECK(!none[k].host && !none[k].event, "a count of 0 left something to wait for (%d)", k);
    for (size_t i = 0; i < n; i++) {
        float w = want_sum((size_t)R * n + i, 11), wb = want_sum((size_t)R * n + i, 12);
        CHECK(fr[i] == w, "f32 [%zu]: %g, want %g", i, fr[i], w);
        CHECK(!bf16 || br[i] == bf16_from_f32(wb), "bf16 [%zu]: %g, want %g rounded", i, bf16_to_f32(br[i]), wb);
    }
    for (int r = 0; r < P; r++)
        for (size_t i = 0; i < n; i++) {
            uint16_t w = bf16_from_f32(value(r, i, 13));
            CHECK(out[(size_t)r * n + i] == w && in[(size_t)r * n + i] == w, "gathered block %d [%zu]", r, i);
        }
    free(f), free(fr), free(b), free(br), free(mine), free(out), free(in);
    case_end();
}

// A ring: two messages to the right neighbour, posted before the receives
// from the left; they match in posting order.  The send buffers are
// overwritten right after posting (the data left the device already).
static void test_p2p(const Comm *c) {
    size_t n0 = 100, n1 = 2000;
    check_begin("staged send/receive: a ring of 2 messages each, posting order, buffers reusable");
    int right = (R + 1) % P, left = (R + P - 1) % P;
    uint16_t *s0 = bf16_values(n0, R, 8), *r0 = calloc(n0, sizeof *r0);
    float *s1 = f32_values(n1, R, 9), *r1 = calloc(n1, sizeof *r1);
    CommRequest q[4] = {comm_dev_isend(c, s0, n0, DTYPE_BF16, right, 0),
                        comm_dev_isend(c, s1, n1, DTYPE_F32, right, 1)};
    memset(s0, 0, n0 * sizeof *s0);
    memset(s1, 0, n1 * sizeof *s1);
    q[2] = comm_dev_irecv(c, r0, n0, DTYPE_BF16, left, 0);
    q[3] = comm_dev_irecv(c, r1, n1, DTYPE_F32, left, 1);
    for (int k = 3; k >= 0; k--) comm_dev_wait(c, &q[k]);
    for (size_t i = 0; i < n0; i++) CHECK(r0[i] == bf16_from_f32(value(left, i, 8)), "first [%zu]", i);
    for (size_t i = 0; i < n1; i++) CHECK(r1[i] == value(left, i, 9), "second [%zu]", i);
    free(s0), free(r0), free(s1), free(r1);
    case_end();
}

// A Comm of one rank: reduce-scatter and all-gather copy, all-reduce leaves the data.
static void test_single_rank(void) {
    Comm self;
    comm_init(&self, MPI_COMM_SELF);
    size_t n = 50;
    check_begin("staged comm of one rank: copies, no MPI traffic");
    float *x = f32_values(n, R, 10), *y = calloc(n, sizeof *y), *g = calloc(n, sizeof *g);
    comm_dev_allreduce(&self, x, n, DTYPE_F32, REDUCE_SUM);
    comm_dev_reduce_scatter(&self, x, y, n, DTYPE_F32);
    comm_dev_allgather(&self, y, g, n, DTYPE_F32);
    comm_dev_allgather(&self, g, g, n, DTYPE_F32);   // in place
    for (size_t i = 0; i < n; i++)
        CHECK(x[i] == value(R, i, 10) && g[i] == x[i], "[%zu]: %g %g", i, x[i], g[i]);
    free(x), free(y), free(g);
    comm_free(&self);
    case_end();
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    comm_set_device_ops(comm_staged_device_ops(&ops_cpu));
    Comm c;
    comm_init(&c, MPI_COMM_WORLD);
    P = c.size;
    R = c.rank;
    test_allreduce(&c);
    test_reduce_scatter(&c);
    test_allgather(&c);
    test_iallreduce(&c);
    test_nonblocking(&c, "staged", true);
    test_p2p(&c);
    test_single_rank();
    comm_free(&c);
    comm_set_device_ops(NULL);   // the CPU backend's MPI calls on host buffers
    comm_init(&c, MPI_COMM_WORLD);
    test_nonblocking(&c, "MPI", false);
    comm_free(&c);
    int failed = check_exit_code(), any;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    comm_world_end();
    return any;
}
