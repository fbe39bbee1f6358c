// RedPajama JSON Lines corpus reader: one JSON object per line,
// {"text": ..., "meta": {...}}, plain (.jsonl) or zstd-compressed (.jsonl.zst).
//
// Streaming: memory is bounded by the longest line (at most max_record_bytes)
// plus a fixed read buffer, whatever the file size.  A plain file can be read
// in byte ranges [begin, end): the reader takes every line whose first byte
// lies in the range (a line starts at offset 0 or right after a '\n'), so
// ranges that tile a file read every line exactly once.  A .zst file is read
// whole (begin 0, end -1).
//
// Records that are not usable (not JSON, not an object, no string text field,
// invalid UTF-8, longer than max_record_bytes) are errors naming file and
// line; with skip_bad they are skipped, counted, and the first few reported as
// warnings.  Empty documents ("text": "") are always skipped and counted, as
// Megatron's preprocessing does; blank lines are ignored.
#ifndef LLAMA_JSONL_H
#define LLAMA_JSONL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONL_DEFAULT_MAX_RECORD_BYTES ((size_t)64 << 20)
// The longest source name a record carries (a shard's `source` attribute and
// the loader keep 127 bytes and a NUL).
#define JSONL_SOURCE_MAX 127

typedef struct {
    const char *text_key;     // field holding the document; NULL means "text"
    size_t max_record_bytes;  // a longer line is a bad record; 0 means the default
    bool skip_bad;            // skip and count bad records instead of failing
} JsonlOptions;

typedef struct {
    const char *text;    // the document, valid UTF-8 (may hold NUL bytes); valid
    size_t len;          //   until the next jsonl_next or jsonl_close
    const char *source;  // meta.redpajama_set_name, else meta.source, else the file's stem;
                         //   one longer than JSONL_SOURCE_MAX bytes or holding NUL is
                         //   shortened to its start + "~" + 16 hex digits of its SHA-256
    int64_t offset;      // byte offset of the line in the (decompressed) file
} JsonlRecord;

typedef struct {
    int64_t records;     // documents returned
    int64_t bad;         // bad records skipped (skip_bad)
    int64_t empty;       // empty documents skipped
    int64_t text_bytes;  // bytes of the documents returned
} JsonlCounts;

typedef struct JsonlReader JsonlReader;

// True for names ending in ".zst".
bool jsonl_is_zst(const char *path);
// The file's stem: its base name without .zst and .jsonl/.json ("c4_sample").
void jsonl_stem(const char *path, char *out, size_t len);

// Opens path for the records whose lines start in [begin, end); end < 0 means
// the end of the file.  NULL with a reason in err when the file cannot be read.
JsonlReader *jsonl_open(const char *path, int64_t begin, int64_t end, const JsonlOptions *opt,
                        char *err, int err_len);
// 1: *rec holds the next document; 0: the range is done; -1: a bad record or
// a read error, described in err as "<file>:<line>: what; what to do".
int jsonl_next(JsonlReader *r, JsonlRecord *rec, char *err, int err_len);
const JsonlCounts *jsonl_counts(const JsonlReader *r);
// Bytes of the file (compressed bytes for .zst) consumed so far in the range.
int64_t jsonl_progress(const JsonlReader *r);
void jsonl_close(JsonlReader *r);

#endif
