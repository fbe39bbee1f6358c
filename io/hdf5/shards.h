// HDF5 token shards: the format, a reader for windows of tokens, and the
// collective (parallel HDF5) writer.
//
// A shard holds the packed token stream of one source (corpus slice) and one
// split:
//   /tokens       uint16 (vocab_size <= 65536) or uint32, (n_tokens,)
//   /doc_offsets  uint64, (n_documents + 1,): document d is tokens[off[d], off[d+1])
//   attributes on "/": vocab_size, bos_id, eos_id (int64, -1 when none),
//   n_documents, n_tokens (int64), tokenizer_sha256, source, split ("train"
//   or "val"), source_files (newline-separated input paths) (strings).
//   /token_sha256 uint8, (n_blocks, 32): the SHA-256 of each block of
//                 token_block (attribute, int64: 4096) tokens as little-endian
//                 uint32 values, the last block shorter; token_sha256_root
//                 (string): the hex SHA-256 of that table, one value standing
//                 for the whole token stream.  Every token read is checked
//                 against its block's hash (shards written before the table
//                 existed are read unchecked, with a notice).
#ifndef LLAMA_SHARDS_H
#define LLAMA_SHARDS_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t vocab_size, bos_id, eos_id;
    int64_t n_documents, n_tokens;
    char tokenizer_sha256[72];
    char source[128];
    char split[16];
    int64_t token_block;         // tokens per checksum block; 0: no checksums
    char token_sha256_root[72];  // "" without checksums
} ShardInfo;

#define SHARD_TOKEN_BLOCK 4096

typedef struct {
    char *path;
    int64_t file;     // hid_t
    int64_t tokens;   // hid_t of /tokens
    int64_t sums;     // hid_t of /token_sha256, -1 without checksums
    ShardInfo info;
} Shard;

// Opens a shard read-only on this rank alone.  Fails with a reason naming the
// file for anything that is not a complete shard of this format.
bool shard_open(const char *path, Shard *s, char *err, int err_len);
// True when path opens as a complete shard (shard_open succeeds).
bool shard_is_complete(const char *path);
// Reads tokens [start, start + count) into out as int32 (a hyperslab read of
// the whole blocks around them, each checked against its SHA-256).
bool shard_read_tokens(const Shard *s, int64_t start, int64_t count, int32_t *out, char *err,
                       int err_len);
// Checks blocks first, first + stride, ... of the shard against their hashes
// and the table against token_sha256_root (when first == 0).  False with the
// first bad block in err; *checked: the blocks checked.
bool shard_verify(const Shard *s, int64_t first, int64_t stride, int64_t *checked, char *err,
                  int err_len);
// Reads document offsets [start, start + count) (n_documents + 1 entries in all).
bool shard_read_doc_offsets(const Shard *s, int64_t start, int64_t count, uint64_t *out,
                            char *err, int err_len);
void shard_close(Shard *s);

typedef struct {
    int64_t vocab_size, bos_id, eos_id;
    const char *tokenizer_sha256;
    const char *source;
    const char *split;
    const char *source_files;
} ShardMeta;

// Collective over comm: every rank contributes its tokens and the lengths of
// its documents, in rank order.  Counts are exclusive-scanned and each rank
// writes its own hyperslab.  The file is written under "<path>.tmp" and
// renamed when complete, so a failed write never leaves a shard behind.
// Returns the same verdict on every rank.
bool shard_write_collective(MPI_Comm comm, const char *path, const ShardMeta *meta,
                            const uint32_t *tokens, int64_t n_tokens,
                            const uint64_t *doc_lengths, int64_t n_docs, char *err, int err_len);

// The shard files a dataset path names: the file itself, or every "*.h5" in
// the folder, sorted by name.  Returns the count (0 with err set on failure).
int shards_list(const char *path, char ***files, char *err, int err_len);
void shards_list_free(char **files, int n);
#endif
