// The CUDA backend's library, libllama-cuda.so (cuda/, with cuBLASLt, cuBLAS,
// NCCL, cuDNN and the CUDA runtime), loaded on first use.  The programs do not
// link it: a CPU run, --describe and the tools load none of those libraries
// (about 1 GB of them, mapped and relocated by every rank: 0.1 s of CPU per
// process, a second of an 8-rank start on 2 cores), and they run on nodes
// that lack them.  make builds the library next to the programs ($(BUILD)),
// where their run path ($ORIGIN, and $ORIGIN/.. for the tests) finds it.
//
// These are ops.h's CUDA entry points, forwarded to the library's own
// functions of the same names (dlsym of the library's handle finds its
// definitions, not these; the library binds its own calls to itself,
// -Bsymbolic); src/comm/comm_nccl.c forwards comm.h's NCCL one the same way.
// The library calls back into the program (info, warn, comm_broadcast, ...),
// which exports its symbols for it (-rdynamic).  The emulated backend
// (validation/emu) links cuda/ into its programs directly and leaves both
// files out.
#include "backend/ops.h"

#ifdef LLAMA_CUDA
#include <dlfcn.h>
#include <stdio.h>

#define CUDA_LIBRARY "libllama-cuda.so"

static struct {
    bool tried;             // loading was attempted (once per process)
    void *handle;           // NULL: not loaded, why in error
    char error[1536];
    const Ops *(*create)(Precision, int, char *, int);
    const Ops *(*set_precision)(Precision);
    int (*device_count)(void);
    bool (*set_attention)(Attention, char *, int);
    size_t (*cudnn_version)(void);
    bool (*attention_uses_cudnn)(int, int, int, int, int);
} lib;

// *slot = the library's function name (POSIX's way to store dlsym's result in
// a function pointer); false, with why in lib.error, when it has none.
static bool find(const char *name, void **slot) {
    *slot = dlsym(lib.handle, name);
    if (*slot) return true;
    snprintf(lib.error, sizeof lib.error, "the CUDA backend library %s has no function %s: it "
             "is not this build's (rebuild with make)", CUDA_LIBRARY, name);
    return false;
}

// Loads the library once; false (why in lib.error) when it cannot be.
static bool cuda_library_load(void) {
    if (lib.tried) return lib.handle != NULL;
    lib.tried = true;
    lib.handle = dlopen(CUDA_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!lib.handle) {
        snprintf(lib.error, sizeof lib.error, "cannot load the CUDA backend (%s, built next to "
                 "the programs by make when nvcc is found): %s; the CUDA libraries it was built "
                 "against must be installed on this node (or use --device cpu)", CUDA_LIBRARY,
                 dlerror());
        return false;
    }
    bool ok = find("ops_cuda_create", (void **)&lib.create) &&
              find("ops_cuda_set_precision", (void **)&lib.set_precision) &&
              find("ops_cuda_device_count", (void **)&lib.device_count) &&
              find("ops_cuda_set_attention", (void **)&lib.set_attention) &&
              find("ops_cuda_cudnn_version", (void **)&lib.cudnn_version) &&
              find("ops_cuda_attention_uses_cudnn", (void **)&lib.attention_uses_cudnn);
    if (!ok) {
        dlclose(lib.handle);
        lib.handle = NULL;
    }
    return ok;
}

const Ops *ops_cuda_create(Precision precision, int local_rank, char *err, int err_len) {
    if (cuda_library_load()) return lib.create(precision, local_rank, err, err_len);
    snprintf(err, (size_t)err_len, "%s", lib.error);
    return NULL;
}

// Only after ops_cuda_create succeeded (the library is loaded).
const Ops *ops_cuda_set_precision(Precision precision) {
    return cuda_library_load() ? lib.set_precision(precision) : NULL;
}

int ops_cuda_device_count(void) { return cuda_library_load() ? lib.device_count() : 0; }

bool ops_cuda_set_attention(Attention requested, char *err, int err_len) {
    if (cuda_library_load()) return lib.set_attention(requested, err, err_len);
    snprintf(err, (size_t)err_len, "%s", lib.error);
    return false;
}

// A fact of the build (make found cuDNN for the library), so --describe of a
// GPU run loads nothing.
const char *ops_cuda_attention_default(void) {
#ifdef LLAMA_CUDNN_BUILT
    return "cudnn";
#else
    return "own";
#endif
}

size_t ops_cuda_cudnn_version(void) { return cuda_library_load() ? lib.cudnn_version() : 0; }

bool ops_cuda_attention_uses_cudnn(int B, int T, int nh, int nkv, int hd) {
    return cuda_library_load() && lib.attention_uses_cudnn(B, T, nh, nkv, hd);
}

void *cuda_library_function(const char *name) {
    return cuda_library_load() ? dlsym(lib.handle, name) : NULL;
}
#endif
