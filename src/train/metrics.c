#include "train/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sgemm.h"
#include "core/util.h"

// v with `digits` significant digits, or null (JSON has no inf or NaN).
static const char *json_number(double v, int digits, char *buf) {
    if (isfinite(v)) snprintf(buf, 32, "%.*g", digits, v);
    else snprintf(buf, 32, "null");
    return buf;
}

const char *metrics_json_number(double v, char *buf) { return json_number(v, 9, buf); }

// The keys a bad step adds (both JSON and console forms).
static void bad_step_json(const StepMetrics *s, char *out, int len) {
    char z[32];
    if (s->skipped) snprintf(out, (size_t)len, ", \"skipped\": true");
    else if (s->spike)
        snprintf(out, (size_t)len, ", \"spike\": true, \"loss_z\": %s", metrics_json_number(s->loss_z, z));
    else out[0] = 0;
}

static void bad_step_console(const StepMetrics *s, char *out, int len) {
    if (s->skipped)
        snprintf(out, (size_t)len, " | SKIPPED: non-finite %s, no update (%d bad in a row)",
                 isfinite(s->loss) ? "gradient norm" : "loss", s->bad_in_a_row);
    else if (s->spike)
        snprintf(out, (size_t)len, " | SPIKE: loss z-score %.1f (%d bad in a row)", s->loss_z,
                 s->bad_in_a_row);
    else out[0] = 0;
}

static const char *json6(double v, char *buf) { return json_number(v, 6, buf); }

void metrics_json(const StepMetrics *s, char *out, int len) {
    char loss[32], lr[32], norm[32], rate[32], tflops[32], mfu[32], el[32], dt[32], mem[32], bad[96];
    bad_step_json(s, bad, sizeof bad);
    snprintf(out, (size_t)len,
             "{\"step\": %lld, \"loss\": %s, \"lr\": %s, \"grad_norm\": %s, "
             "\"tokens_per_s\": %s, \"tflops\": %s, \"mfu\": %s, \"elapsed\": %s, "
             "\"step_time\": %s, \"peak_mem_gib\": %s%s}",
             (long long)s->step, metrics_json_number(s->loss, loss), metrics_json_number(s->lr, lr),
             metrics_json_number(s->grad_norm, norm), json6(s->tokens_per_s, rate),
             json6(s->tflops, tflops), json6(s->mfu, mfu), json6(s->elapsed, el),
             json6(s->step_time, dt), json6(s->peak_mem / 1073741824.0, mem), bad);
}

void metrics_console(const StepMetrics *s, char *out, int len) {
    char mem[32], bad[96];
    bad_step_console(s, bad, sizeof bad);
    snprintf(out, (size_t)len,
             "step %lld/%lld | loss %.4f | lr %.3e | grad norm %.3f | %.0f tok/s | "
             "%.3f TFLOP/s/dev | MFU %.1f%% | %.2f s | peak mem %s%s",
             (long long)s->step, (long long)s->total_steps, s->loss, s->lr, s->grad_norm,
             s->tokens_per_s, s->tflops, 100.0 * s->mfu, s->step_time,
             format_bytes(s->peak_mem, mem, sizeof mem), bad);
}

void metrics_throughput(StepMetrics *s, double tokens, double seconds, double flops_per_token,
                        int devices, double peak_tflops) {
    s->tokens_per_s = seconds > 0 ? tokens / seconds : 0;
    s->tflops = s->tokens_per_s * flops_per_token / devices / 1e12;
    s->mfu = peak_tflops > 0 ? s->tflops / peak_tflops : 0;
}

// One 1536³ product on the CPU, fp32 or bf16 operands.
static void peak_product(bool bf16, int n, const float *a, const float *b, float *c) {
    if (bf16) sgemm_bf16(false, false, n, n, n, a, n, b, n, 0, c, n);
    else sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
}

double metrics_sgemm_tflops(bool bf16) {
    const int n = 1536, reps = 3;
    float *a = xmalloc((size_t)n * n * sizeof(float)), *b = xmalloc((size_t)n * n * sizeof(float));
    float *c = xcalloc((size_t)n * n, sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.01f;
    peak_product(bf16, n, a, b, c);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        peak_product(bf16, n, a, b, c);
        double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * n / best / 1e12;
}

// Datasheet figures, dense; the first entry whose key the name contains wins,
// so the more specific names come first.
static const struct {
    const char *key;
    double bf16, fp32;
} gpu_peaks[] = {
    {"GH200", 989, 67},      {"H200 NVL", 835, 60},   {"H200", 989, 67},
    {"H100 PCIe", 756, 51},  {"H100 NVL", 835, 60},   {"H100", 989, 67},
    {"H800 PCIe", 756, 51},  {"H800", 989, 67},       {"B200", 2250, 80},
    {"B100", 1750, 60},      {"A100", 312, 19.5},     {"A800", 312, 19.5},
    {"A10G", 70, 31.2},      {"A10", 125, 31.2},      {"A30", 165, 10.3},
    {"A40", 150, 37.4},      {"L40S", 362, 91.6},     {"L40", 181, 90.5},
    {"L4", 121, 30.3},       {"RTX 6000 Ada", 364, 91.1}, {"RTX 4090", 165, 82.6},
    {"RTX 3090", 71, 35.6},  {"RTX A6000", 155, 38.7},
};

double metrics_gpu_peak_tflops(const char *name, bool bf16) {
    if (!name) return 0;
    for (size_t i = 0; i < sizeof gpu_peaks / sizeof gpu_peaks[0]; i++)
        if (strstr(name, gpu_peaks[i].key)) return bf16 ? gpu_peaks[i].bf16 : gpu_peaks[i].fp32;
    return 0;
}

double loss_window_z(const LossWindow *w, double loss) {
    if (w->n < LOSS_WINDOW_MIN) return 0;
    double mean = 0, var = 0;
    for (int i = 0; i < w->n; i++) mean += w->v[i];
    mean /= w->n;
    for (int i = 0; i < w->n; i++) var += (w->v[i] - mean) * (w->v[i] - mean);
    double sd = sqrt(var / w->n);
    return sd > 0 ? (loss - mean) / sd : 0;
}

void loss_window_push(LossWindow *w, double loss) {
    w->v[w->next] = loss;
    w->next = (w->next + 1) % LOSS_WINDOW;
    if (w->n < LOSS_WINDOW) w->n++;
}
