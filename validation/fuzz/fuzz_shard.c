// libFuzzer harness: opening a token shard (io/hdf5/shards.c: shard_open and the
// reads the loader makes).  The input is an HDF5 file; one that opens has its
// first tokens and document offsets read and its checksum table and first
// block verified.
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_input.h"
#include "hdf5/shards.h"

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, "fuzz.train.h5");
    Shard s;
    char err[1024];
    if (!shard_open(path, &s, err, sizeof err)) return 0;
    int64_t n = min64(s.info.n_tokens, 4096), checked;
    int64_t d = s.info.n_documents < 0 ? 0 : min64(s.info.n_documents, 511) + 1;
    int32_t *tokens = malloc((size_t)(n > 0 ? n : 1) * sizeof *tokens);
    uint64_t *offsets = malloc((size_t)(d > 0 ? d : 1) * sizeof *offsets);
    if (!tokens || !offsets) abort();
    if (n > 0) shard_read_tokens(&s, 0, n, tokens, err, sizeof err);
    if (d > 0) shard_read_doc_offsets(&s, 0, d, offsets, err, sizeof err);
    shard_verify(&s, 0, INT64_MAX / 2, &checked, err, sizeof err);  // the table, block 0
    free(tokens);
    free(offsets);
    shard_close(&s);
    return 0;
}
