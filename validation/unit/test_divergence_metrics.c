// The loss-spike window (z-scores against an independent long-double
// computation, the minimum history, the sliding window, an all-equal window)
// and the metrics JSON of bad steps (valid JSON: non-finite numbers as null,
// "skipped" and "spike" keys), read back with jansson; the GPUs' datasheet
// peaks behind MFU.
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "check.h"
#include "train/metrics.h"

// (x − mean) / std (population) of v[0..n), in long double, two passes.
static double reference_z(const double *v, int n, double x) {
    long double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += v[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (v[i] - mean) * (v[i] - mean);
    return (double)((x - mean) / sqrtl(var / n));
}

static void test_known_values(void) {
    check_begin("z-score of 20 over the losses 1..10: (20 − 5.5) / sqrt(8.25)");
    LossWindow w = {0};
    for (int i = 1; i <= 10; i++) loss_window_push(&w, i);
    CHECK_CLOSE(loss_window_z(&w, 20), 14.5 / sqrt(8.25), 1e-12, 1e-12, "z");
    CHECK_CLOSE(loss_window_z(&w, 5.5), 0, 1e-12, 1e-12, "z at the mean");
    check_end();
}

static void test_minimum_history(void) {
    check_begin("no z-score before LOSS_WINDOW_MIN losses, nor over equal losses");
    LossWindow w = {0};
    for (int i = 0; i < LOSS_WINDOW_MIN - 1; i++) loss_window_push(&w, i % 2 ? 3.0 : 3.1);
    CHECK(loss_window_z(&w, 1e9) == 0, "z %g with %d losses", loss_window_z(&w, 1e9), w.n);
    loss_window_push(&w, 3.0);
    CHECK(loss_window_z(&w, 1e9) > 1e9, "z %g with %d losses", loss_window_z(&w, 1e9), w.n);
    LossWindow flat = {0};
    for (int i = 0; i < 50; i++) loss_window_push(&flat, 2.5);
    CHECK(loss_window_z(&flat, 9.0) == 0, "all-equal window: z %g", loss_window_z(&flat, 9.0));
    check_end();
}

static void test_sliding(void) {
    check_begin("the window holds the last LOSS_WINDOW losses: z matches a reference at every push");
    LossWindow w = {0};
    double all[3 * LOSS_WINDOW];
    for (int i = 0; i < 3 * LOSS_WINDOW; i++) {
        all[i] = 4.0 - 0.01 * i + 0.3 * sin(i * 1.7);   // a falling, noisy loss curve
        loss_window_push(&w, all[i]);
        int n = i + 1 < LOSS_WINDOW ? i + 1 : LOSS_WINDOW;
        if (n < LOSS_WINDOW_MIN) continue;
        double want = reference_z(all + i + 1 - n, n, 7.0), got = loss_window_z(&w, 7.0);
        CHECK_CLOSE(got, want, 1e-9, 1e-9, "z after push");
        if (check_case_failed) break;
    }
    CHECK(w.n == LOSS_WINDOW, "window holds %d", w.n);
    check_end();
}

// Parses a metrics line; NULL (and a FAIL) when it is not JSON.
static json_t *parse(const char *line) {
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    CHECK(j != NULL, "not JSON (%s): %s", e.text, line);
    return j;
}

static void test_json(void) {
    check_begin("metrics JSON: a skipped step with NaN loss and norm is valid JSON with null and \"skipped\"");
    StepMetrics s = {.step = 7, .loss = NAN, .lr = 1e-3, .grad_norm = INFINITY, .skipped = true};
    char line[512];
    metrics_json(&s, line, sizeof line);
    json_t *j = parse(line);
    if (j) {
        CHECK(json_is_null(json_object_get(j, "loss")), "loss not null: %s", line);
        CHECK(json_is_null(json_object_get(j, "grad_norm")), "grad_norm not null: %s", line);
        CHECK(json_is_true(json_object_get(j, "skipped")), "no \"skipped\": true: %s", line);
        CHECK(!json_object_get(j, "spike"), "a skipped step is no spike: %s", line);
    }
    json_decref(j);
    check_end();
    check_begin("metrics JSON: a non-finite learning rate, rate or time is null, the line valid JSON");
    StepMetrics inf = {.step = 1, .loss = 3, .lr = -INFINITY, .grad_norm = 1, .tokens_per_s = INFINITY,
                       .tflops = INFINITY, .mfu = NAN, .step_time = 0};
    metrics_json(&inf, line, sizeof line);
    j = parse(line);
    if (j) {
        CHECK(json_is_null(json_object_get(j, "lr")), "lr not null: %s", line);
        CHECK(json_is_null(json_object_get(j, "tokens_per_s")), "tokens_per_s not null: %s", line);
        CHECK(json_is_null(json_object_get(j, "mfu")), "mfu not null: %s", line);
        CHECK(json_real_value(json_object_get(j, "step_time")) == 0, "step_time: %s", line);
    }
    json_decref(j);
    check_end();
    check_begin("metrics JSON: a spike has \"spike\" and \"loss_z\"; a healthy step neither key");
    StepMetrics p = {.step = 8, .loss = 7.25, .lr = 1e-3, .grad_norm = 2, .spike = true, .loss_z = 12.5};
    metrics_json(&p, line, sizeof line);
    j = parse(line);
    if (j) {
        CHECK(json_is_true(json_object_get(j, "spike")), "no spike key: %s", line);
        CHECK(json_real_value(json_object_get(j, "loss_z")) == 12.5, "loss_z: %s", line);
        CHECK(json_real_value(json_object_get(j, "loss")) == 7.25, "loss: %s", line);
    }
    json_decref(j);
    StepMetrics h = {.step = 9, .loss = 3.5, .lr = 1e-3, .grad_norm = 1};
    metrics_json(&h, line, sizeof line);
    j = parse(line);
    if (j) CHECK(!json_object_get(j, "spike") && !json_object_get(j, "skipped"), "extra keys: %s", line);
    json_decref(j);
    check_end();
}

// The datasheet peaks behind MFU on a GPU, for names as cudaGetDeviceProperties
// gives them: dense bf16 tensor-core TFLOP/s for bf16 runs, fp32 (non-tensor)
// for fp32 runs, from NVIDIA's datasheets (H100 SXM 989.4 / 67, PCIe 756 / 51,
// NVL 835 / 60 per GPU; H200 as H100 SXM; A100 312 / 19.5; A10G 70 / 31.2,
// A10 125 / 31.2; L40S 362 / 91.6, L40 181 / 90.5); the longer names matched first.
static void test_gpu_peaks(void) {
    check_begin("GPU datasheet peaks: bf16 and fp32 figures per model, specific names before their prefixes");
    static const struct { const char *name; double bf16, fp32; } want[] = {
        {"NVIDIA H200", 989, 67},          {"NVIDIA GH200 480GB", 989, 67},
        {"NVIDIA H200 NVL", 835, 60},      {"NVIDIA H100 80GB HBM3", 989, 67},
        {"NVIDIA H100 NVL", 835, 60},      {"NVIDIA H100 PCIe", 756, 51},
        {"NVIDIA A100-SXM4-80GB", 312, 19.5}, {"NVIDIA A10G", 70, 31.2},
        {"NVIDIA A10", 125, 31.2},         {"NVIDIA L40S", 362, 91.6},
        {"NVIDIA L40", 181, 90.5},         {"Tesla V100-SXM2-16GB", 0, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double b = metrics_gpu_peak_tflops(want[i].name, true), f = metrics_gpu_peak_tflops(want[i].name, false);
        CHECK(b == want[i].bf16 && f == want[i].fp32, "%s: bf16 %g, fp32 %g; expected %g, %g",
              want[i].name, b, f, want[i].bf16, want[i].fp32);
    }
    CHECK(metrics_gpu_peak_tflops(NULL, true) == 0, "no device name");
    check_end();
}

int main(void) {
    test_known_values();
    test_minimum_history();
    test_sliding();
    test_json();
    test_gpu_peaks();
    return check_exit_code();
}
