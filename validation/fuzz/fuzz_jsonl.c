// libFuzzer harness: the JSON Lines corpus reader (io/text/jsonl.c).  The input is
// a .jsonl file, read whole and as two byte ranges split in its middle, with
// --skip-bad and without; or, when it starts with zstd's magic number, a
// .jsonl.zst read whole.  Besides the sanitizers it checks the reader's
// promise that ranges which tile a file read every line once: the two halves
// give the same documents, bad records and empty documents as the whole.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "text/jsonl.h"

typedef struct {
    int status;          // jsonl_next's last: 0 done, -1 error
    JsonlCounts counts;
    uint64_t text_sum;   // a sum over documents of their bytes (weighted) and sources
} RangeResult;

static RangeResult read_range(const char *path, int64_t begin, int64_t end,
                              const JsonlOptions *o) {
    RangeResult res = {-1, {0}, 0};
    char err[1024];
    JsonlReader *r = jsonl_open(path, begin, end, o, err, sizeof err);
    if (!r) return res;
    JsonlRecord rec;
    while ((res.status = jsonl_next(r, &rec, err, sizeof err)) == 1) {
        for (size_t i = 0; i < rec.len; i++) res.text_sum += (uint8_t)rec.text[i] * (i + 1);
        for (const char *s = rec.source; *s; s++) res.text_sum += (uint8_t)*s;
        if (rec.offset < begin || (end >= 0 && rec.offset >= end)) abort();  // outside its range
    }
    res.counts = *jsonl_counts(r);
    jsonl_close(r);
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t ZSTD_MAGIC[4] = {0x28, 0xb5, 0x2f, 0xfd};
    JsonlOptions skip = {NULL, 512, true}, strict = {"text", 512, false};
    if (size >= 4 && memcmp(data, ZSTD_MAGIC, 4) == 0) {  // a .jsonl.zst: read whole only
        const char *path = fuzz_file(data, size, "fuzz.jsonl.zst");
        read_range(path, 0, -1, &skip);
        read_range(path, 0, -1, &strict);
        return 0;
    }
    const char *path = fuzz_file(data, size, "fuzz.jsonl");
    RangeResult whole = read_range(path, 0, -1, &skip);
    int64_t mid = (int64_t)size / 2;
    RangeResult a = read_range(path, 0, mid, &skip), b = read_range(path, mid, -1, &skip);
    if (whole.status == 0 && a.status == 0 && b.status == 0 &&
        (whole.counts.records != a.counts.records + b.counts.records ||
         whole.counts.bad != a.counts.bad + b.counts.bad ||
         whole.counts.empty != a.counts.empty + b.counts.empty ||
         whole.counts.text_bytes != a.counts.text_bytes + b.counts.text_bytes ||
         whole.text_sum != a.text_sum + b.text_sum))
        abort();  // the halves disagree with the whole
    read_range(path, 0, -1, &strict);
    return 0;
}
