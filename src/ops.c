#include <stdio.h>
#include <string.h>

#include "ops.h"

const Ops *ops = &ops_cpu;

bool ops_select(const char *device, const char *precision, int local_rank, char *err,
                int err_len) {
    if (strcmp(device, "cpu") == 0) {
        if (strcmp(precision, "fp32") != 0) {
            snprintf(err, err_len, "--mixed-precision %s needs --device cuda; the CPU backend "
                     "computes in fp32", precision);
            return false;
        }
        ops = &ops_cpu;
        return true;
    }
    if (strcmp(device, "cuda") == 0) {
#ifdef LLAMA_CUDA
        const Ops *o = ops_cuda_create(precision, local_rank, err, err_len);
        if (o) ops = o;
        return o != NULL;
#else
        (void)local_rank;
        snprintf(err, err_len, "this build has no CUDA backend (nvcc was not found when it was "
                 "built); rebuild with nvcc on the PATH, or use --device cpu");
        return false;
#endif
    }
    snprintf(err, err_len, "unknown --device '%s' (expected cpu or cuda)", device);
    return false;
}
