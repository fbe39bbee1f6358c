// llama-calibrate: measures a machine profile (train/machine.h) for CPU ranks
// on the machine it runs on and prints it; jobs/calibrate.sh runs it under
// mpirun with one rank per core.  Every rank measures at once (the figures of
// a loaded node), and the slowest rank's figure is kept.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/ops.h"
#include "comm/comm.h"
#include "core/config.h"
#include "core/host_memory.h"
#include "core/util.h"
#include "model/params.h"
#include "train/calibrate.h"
#include "train/metrics.h"

// The smallest of the ranks' rates.
static double slowest(const Comm *c, double rate) {
    double inverse = 1 / rate;
    comm_allreduce(c, &inverse, 1, DTYPE_F64, REDUCE_MAX);
    return 1 / inverse;
}

// The linears of a step of model c on N tokens (Q/K/V, output, gate/up, down,
// LM head), forward and backward: their FLOPs over their summed seconds, as a
// step meets them (each shape's rate alone differs by up to a third).
static double linears_tflops(const Ops *ops, const ModelConfig *c, int N) {
    LinearShape s[LINEAR_COUNT];
    params_linear_shapes(c, 1, s);
    double flops = 0, seconds = 0;
    for (int i = 0; i < LINEAR_COUNT; i++) {
        double f = 6.0 * N * s[i].in * s[i].out;
        flops += f;
        seconds += f / (calibrate_matmul(ops, N, s[i].in, s[i].out) * 1e12);
    }
    return flops / seconds / 1e12;
}

static void compute_lines(const Comm *w, const Ops *ops) {
    ModelConfig tiny, small;
    config_preset("tiny", &tiny);
    config_preset("small", &small);
    int hd = config_head_dim(&small);
    double peak = slowest(w, metrics_sgemm_tflops(false));
    double big = slowest(w, linears_tflops(ops, &small, 1024));
    double little = slowest(w, linears_tflops(ops, &tiny, 512));
    double fwd, bwd;
    calibrate_attention(ops, 4, 256, small.n_heads, small.n_kv_heads, hd, &fwd, &bwd);
    fwd = slowest(w, fwd);
    bwd = slowest(w, bwd);
    double el = slowest(w, calibrate_elementwise(ops, 2048, small.dim, small.ffn_dim));
    double opt = slowest(w, calibrate_optimizer(ops, (size_t)16 << 20));
    double op = 1 / slowest(w, 1 / calibrate_op_overhead(ops));
    if (w->rank != 0) return;
    printf("peak_tflops = %.4g              # measured: fp32 sgemm 1536^3, the peak llama-train's MFU uses on CPU ranks\n", peak);
    printf("matmul_tflops = %.4g            # measured: the small preset's linears (Q/K/V, output, gate/up, down, LM head), forward + backward, N 1024\n", big);
    printf("matmul_small_tflops = %.4g      # measured: the same for the tiny preset's linears, N 512\n", little);
    printf("matmul_small_dim = 256          # chosen: between the two shapes measured\n");
    printf("attention_fwd_tflops = %.4g     # measured: CPU flash attention, B 4, T 256, %d heads (%d KV) of %d; causal FLOPs 2·B·T²·heads·hd\n", fwd, small.n_heads, small.n_kv_heads, hd);
    printf("attention_bwd_tflops = %.4g     # measured: its backward pass, counted as 2.5 times the forward FLOPs\n", bwd);
    printf("attention_head_dim = %d         # the head dim measured (the planner scales the rates to others)\n", hd);
    printf("elementwise_gbs = %.4g          # measured: RMSNorm + residual add (2048 × %d) and SwiGLU (2048 × %d), bytes read and written once\n", el, small.dim, small.ffn_dim);
    printf("optimizer_gbs = %.4g            # measured: gradient norm, AdamW and zeroing of 16 M fp32 parameters, 40 bytes each\n", opt);
    printf("host_link_gbs = %.4g            # CPU ranks: no device link; set to the element-wise rate (unused)\n", el);
    printf("op_overhead_us = %.3g           # measured: an add of 64 elements, 1000 times\n", op);
}

static void comm_lines(const Comm *w) {
    double ar, ar_lat, p2p, p2p_lat;
    size_t bytes = 16u << 20;
    calibrate_allreduce(w, bytes, &ar, &ar_lat);
    calibrate_p2p(w, bytes, &p2p, &p2p_lat);
    if (w->rank != 0) return;
    printf("intra_node_gbs = %.4g           # measured: MPI all-reduce of 16 MiB over %d ranks, bus bandwidth 2(n-1)/n·bytes/s\n", ar, w->size);
    printf("intra_node_p2p_gbs = %.4g       # measured: MPI ping-pong of 16 MiB between ranks 0 and 1, one way\n", p2p);
    printf("intra_node_latency_us = %.3g    # measured: MPI all-reduce of 8 bytes (ping-pong one way: %.3g µs)\n", ar_lat, p2p_lat);
    printf("inter_node_gbs = %.4g           # not measured (one node): the intra-node figure\n", ar);
    printf("inter_node_latency_us = %.3g    # not measured (one node): the intra-node figure\n", ar_lat);
}

static void usage(void) {
    printf("usage: mpirun -np N llama-calibrate > cpu.machine   (N ≥ 2: one rank per core)\n\n"
           "Measures a machine profile for CPU ranks on this machine (sgemm and linear rates,\n"
           "attention, AdamW, MPI bandwidth and latency between the ranks, free memory) and\n"
           "prints it for llama-plan --machine.  jobs/calibrate.sh runs it.  No options.\n");
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    util_set_program("llama-calibrate");
    bool help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    agree_on_choice(help, "--help");
    if (help) {
        if (util_world_rank() == 0) usage();
        comm_world_end();
        return 0;
    }
    if (argc > 1) fatal_usage("llama-calibrate takes no arguments (see --help; jobs/calibrate.sh runs it)");
    Comm world;
    comm_world(&world);
    if (world.size < 2) fatal_usage("run llama-calibrate under mpirun with 2 or more ranks (one per core): "
                                  "it measures MPI between them");
    int local, node_ranks;
    comm_node_rank(&local, &node_ranks);
    char err[256];
    const Ops *ops = ops_select(DEVICE_CPU, PRECISION_FP32, local, err, sizeof err);
    agree_or_exit(ops != NULL, err);
    const char *threads = getenv("OMP_NUM_THREADS");
    if (world.rank == 0) {
        printf("name = CPU rank (%s OpenMP thread%s)\ndevice = cpu\nprecision = fp32\n",
               threads ? threads : "default", threads && !strcmp(threads, "1") ? "" : "s");
        printf("devices_per_node = %d            # measured: the ranks mpirun started on this node\n", node_ranks);
        printf("nodes = 1                       # this machine: more ranks than devices_per_node share its cores\n");
        char source[400];
        double avail = host_memory_available(source, sizeof source);
        printf("device_memory_gib = %.3g          # measured: the memory available now / %d ranks "
               "(%s)\n", avail / node_ranks / 1073741824.0, node_ranks, source);
        printf("usable_memory = 0.9             # assumed: the rest for MPI, the OS and the allocator\n");
        printf("comm_overlap = 0                # assumed: MPI progresses a non-blocking collective only inside MPI calls\n");
    }
    compute_lines(&world, ops);
    comm_lines(&world);
    comm_free(&world);
    comm_world_end();
    return 0;
}
