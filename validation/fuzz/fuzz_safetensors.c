// libFuzzer harness: the safetensors reader (io/hf/safetensors.c).  The input is
// a .safetensors file; one that opens has every small tensor of a convertible
// dtype read whole and as its first row block, and its metadata looked up.
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_input.h"
#include "hf/safetensors.h"

static void read_tensor(const Safetensors *st, const SafetensorsTensor *t) {
    if (t->dtype == SAFETENSORS_OTHER || t->numel > 1 << 16) return;
    float *out = malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof *out);
    if (!out) abort();
    char err[1024];
    safetensors_read(st, t->name, t->ndim, t->shape, out, err, sizeof err);
    if (t->ndim == 1 || t->ndim == 2) {
        int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
        safetensors_read_block(st, t->name, t->ndim, t->shape, 0, rows > 0 ? 1 : 0, 0, cols,
                               out, err, sizeof err);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, "model.safetensors");
    Safetensors st;
    char err[1024];
    if (!safetensors_open(path, &st, err, sizeof err)) {
        safetensors_close(&st);
        return 0;
    }
    for (int i = 0; i < st.n_tensors && i < 16; i++) {
        if (safetensors_find(&st, st.tensors[i].name) == NULL) abort();  // listed but not found
        read_tensor(&st, &st.tensors[i]);
    }
    safetensors_metadata(&st, "format");
    safetensors_close(&st);
    return 0;
}
