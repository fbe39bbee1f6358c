#include "metrics.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "util.h"

void metrics_json(const StepMetrics *s, char *out, int len) {
    snprintf(out, (size_t)len,
             "{\"step\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, "
             "\"tokens_per_s\": %.6g, \"tflops\": %.6g, \"mfu\": %.6g, \"elapsed\": %.6g, "
             "\"step_time\": %.6g, \"peak_mem_gib\": %.6g}",
             (long long)s->step, s->loss, s->lr, s->grad_norm, s->tokens_per_s, s->tflops,
             s->mfu, s->elapsed, s->step_time, s->peak_mem / 1073741824.0);
}

void metrics_console(const StepMetrics *s, char *out, int len) {
    char mem[32];
    snprintf(out, (size_t)len,
             "step %lld/%lld | loss %.4f | lr %.3e | grad norm %.3f | %.0f tok/s | "
             "%.3f TFLOP/s/dev | MFU %.1f%% | %.2f s | peak mem %s",
             (long long)s->step, (long long)s->total_steps, s->loss, s->lr, s->grad_norm,
             s->tokens_per_s, s->tflops, 100.0 * s->mfu, s->step_time,
             format_bytes(s->peak_mem, mem, sizeof mem));
}

void metrics_throughput(StepMetrics *s, double tokens, double seconds, double flops_per_token,
                        int devices, double peak_tflops) {
    s->tokens_per_s = seconds > 0 ? tokens / seconds : 0;
    s->tflops = s->tokens_per_s * flops_per_token / devices / 1e12;
    s->mfu = peak_tflops > 0 ? s->tflops / peak_tflops : 0;
}

double metrics_sgemm_tflops(void) {
    const int n = 1536, reps = 3;
    float *a = xmalloc((size_t)n * n * sizeof(float)), *b = xmalloc((size_t)n * n * sizeof(float));
    float *c = xcalloc((size_t)n * n, sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.01f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * n / best / 1e12;
}

double metrics_peak_rss(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}
