// Per-step metrics: throughput, model FLOPs and MFU (PaLM/Megatron
// convention: recomputation is not useful work), peak memory; their console
// and JSON Lines forms.
#ifndef LLAMA_METRICS_H
#define LLAMA_METRICS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t step, total_steps;
    double loss, lr, grad_norm;
    double tokens_per_s;     // whole job
    double tflops;           // model TFLOP/s per device
    double mfu;              // tflops / peak, 0..1
    double step_time, elapsed;   // seconds
    double peak_mem;         // bytes, the largest over ranks
    bool skipped;            // non-finite loss or gradient norm: the update was not applied
    bool spike;              // the loss's z-score over the recent window passed --spike-threshold
    double loss_z;           // that z-score (when spike)
    int bad_in_a_row;        // consecutive skipped or spiking steps, this one included
} StepMetrics;

// One JSON object: step, loss (%.9g, round-trips a float), lr, grad_norm,
// tokens_per_s, tflops, mfu, elapsed, step_time, peak_mem_gib; then
// "skipped": true, or "spike": true and "loss_z", on such steps.  Non-finite
// numbers are written as null (JSON has no NaN).
void metrics_json(const StepMetrics *s, char *out, int len);
void metrics_console(const StepMetrics *s, char *out, int len);
// Fills throughput figures from tokens processed in `seconds`.
void metrics_throughput(StepMetrics *s, double tokens, double seconds, double flops_per_token,
                        int devices, double peak_tflops);
// Measured sgemm rate of this process's threads (TFLOP/s), on fp32 or (bf16)
// bf16-rounded operands: the CPU backend's peak for MFU.
double metrics_sgemm_tflops(bool bf16);
// A GPU's dense (no sparsity) tensor-core peak in TFLOP/s for bf16, or its
// fp32 (non-tensor) peak, from the device name (cudaGetDeviceProperties /
// nvidia-smi); 0 when the table does not know the card.
double metrics_gpu_peak_tflops(const char *device_name, bool bf16);
// v as a JSON number (%.9g), or null when it is NaN or infinite; buf has 32 bytes.
const char *metrics_json_number(double v, char *buf);

// Loss-spike detection: the losses of the last LOSS_WINDOW healthy steps.
#define LOSS_WINDOW 100
#define LOSS_WINDOW_MIN 10   // fewer losses than this give no z-score
typedef struct {
    double v[LOSS_WINDOW];
    int n, next;             // losses held; where the next one goes
} LossWindow;
// (loss − mean) / std over the window (population std); 0 while the window
// holds fewer than LOSS_WINDOW_MIN losses or they are all equal.
double loss_window_z(const LossWindow *w, double loss);
// Adds a loss, dropping the oldest when full.
void loss_window_push(LossWindow *w, double loss);

#endif
