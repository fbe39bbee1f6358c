#include "hdf5/shards.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file_kind.h"
#include "core/util.h"
#include "fs/dirs.h"
#include "fs/folder_commit.h"
#include "hdf5/collective_create.h"
#include "hdf5/h5_attr.h"

static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// One integer, stored as one (HDF5 would round a float into it silently).
static bool read_attr_i64(hid_t file, const char *name, int64_t *out) {
    return h5_attr_read(file, name, H5T_NATIVE_INT64, out, 1);
}

// The length of one-dimensional dataset d; -1 when it has another rank or
// cannot be read (the reads below select one dimension).
static int64_t length_1d(hid_t d) {
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    bool one = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1;
    int64_t n = one ? (int64_t)H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    return n;
}

// A string attribute (fixed- or variable-length), cut to len - 1 bytes.
static bool read_attr_str(hid_t file, const char *name, char *out, size_t len) {
    char *v = h5_attr_string(file, name);
    snprintf(out, len, "%s", v ? v : "");
    free(v);
    return v != NULL;
}

// ---- token checksums ----

static int64_t n_blocks_of(int64_t n_tokens, int64_t block) {
    return block > 0 ? (n_tokens + block - 1) / block : 0;
}

// Rows [row0, row0 + rows) of a 2-D (·, 32) uint8 dataset.
static bool read_hash_rows(hid_t d, int64_t row0, int64_t rows, unsigned char *out) {
    hid_t fspace = H5Dget_space(d);
    hsize_t off[2] = {(hsize_t)row0, 0}, cnt[2] = {(hsize_t)rows, 32};
    hid_t mspace = H5Screate_simple(2, cnt, NULL);
    bool ok = fspace >= 0 && mspace >= 0 &&
              H5Sselect_hyperslab(fspace, H5S_SELECT_SET, off, NULL, cnt, NULL) >= 0 &&
              H5Dread(d, H5T_NATIVE_UINT8, mspace, fspace, H5P_DEFAULT, out) >= 0;
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    return ok;
}

static bool read_slab(hid_t dset, hid_t memtype, int64_t start, int64_t count, void *out);

// Tokens of blocks [b0, b0 + nb) (as uint32) into buf, and each block's
// SHA-256 into md (nb × 32 bytes).
static bool hash_blocks(hid_t tokens, int64_t n_tokens, int64_t block, int64_t b0, int64_t nb,
                        uint32_t *buf, unsigned char *md) {
    int64_t a = b0 * block, e = (b0 + nb) * block < n_tokens ? (b0 + nb) * block : n_tokens;
    if (e > a && !read_slab(tokens, H5T_NATIVE_UINT32, a, e - a, buf)) return false;
    for (int64_t b = 0; b < nb; b++) {
        int64_t s = b * block, len = a + s + block <= e ? block : e - a - s;
        sha256_digest(buf + s, (size_t)len * sizeof(uint32_t), md + 32 * b);
    }
    return true;
}

// Blocks [b0, b0 + nb) into buf, each checked against its stored hash.
static bool read_blocks(const Shard *s, int64_t b0, int64_t nb, uint32_t *buf, char *err,
                        int err_len) {
    const ShardInfo *i = &s->info;
    unsigned char *md = xmalloc((size_t)nb * 64), *want = md + 32 * nb;
    bool ok = hash_blocks((hid_t)s->tokens, i->n_tokens, i->token_block, b0, nb, buf, md) &&
              read_hash_rows((hid_t)s->sums, b0, nb, want);
    if (!ok)
        snprintf(err, err_len, "%s: reading token blocks %lld to %lld failed (truncated or corrupt "
                 "file?)", s->path, (long long)b0, (long long)(b0 + nb - 1));
    for (int64_t b = 0; ok && b < nb; b++)
        if (memcmp(md + 32 * b, want + 32 * b, 32) != 0) {
            int64_t t0 = (b0 + b) * i->token_block, t1 = t0 + i->token_block;
            snprintf(err, err_len, "%s: tokens [%lld, %lld) (block %lld) do not match their "
                     "SHA-256: the shard's token data is corrupt; encode it again "
                     "(llama-tokenize verify lists every damaged block)", s->path,
                     (long long)t0, (long long)(t1 < i->n_tokens ? t1 : i->n_tokens),
                     (long long)(b0 + b));
            ok = false;
        }
    free(md);
    return ok;
}

// The checksum table of an open shard, when it has one: shape and attributes.
static bool open_checksums(Shard *s, char *err, int err_len) {
    ShardInfo *i = &s->info;
    if (H5Lexists((hid_t)s->file, "token_sha256", H5P_DEFAULT) <= 0) return true;
    s->sums = H5Dopen2((hid_t)s->file, "token_sha256", H5P_DEFAULT);
    hid_t sp = s->sums >= 0 ? H5Dget_space((hid_t)s->sums) : -1;
    hsize_t dims[2] = {0, 0};
    bool ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 2 &&
              H5Sget_simple_extent_dims(sp, dims, NULL) == 2 &&
              read_attr_i64((hid_t)s->file, "token_block", &i->token_block) &&
              i->token_block > 0 && i->token_block <= ((int64_t)1 << 20) && dims[1] == 32 &&
              (int64_t)dims[0] == n_blocks_of(i->n_tokens, i->token_block) &&
              read_attr_str((hid_t)s->file, "token_sha256_root", i->token_sha256_root,
                            sizeof i->token_sha256_root);
    if (sp >= 0) H5Sclose(sp);
    if (!ok) {
        snprintf(err, err_len, "%s: the token checksum table /token_sha256 does not fit the "
                 "shard's %lld tokens (or token_block/token_sha256_root are missing): the shard "
                 "is damaged, encode it again", s->path, (long long)i->n_tokens);
        i->token_block = 0;
    }
    return ok;
}

bool shard_verify(const Shard *s, int64_t first, int64_t stride, int64_t *checked, char *err,
                  int err_len) {
    const ShardInfo *i = &s->info;
    int64_t nb = n_blocks_of(i->n_tokens, i->token_block);
    *checked = 0;
    if (s->sums < 0) {
        snprintf(err, err_len, "%s has no token checksums (written before llama-tokenize kept "
                 "them): encode it again to have it verified", s->path);
        return false;
    }
    if (first == 0) {   // the table against its root
        unsigned char *table = xmalloc((size_t)(nb > 0 ? nb : 1) * 32);
        char root[72];
        bool ok = read_hash_rows((hid_t)s->sums, 0, nb, table);
        sha256_hex(table, (size_t)nb * 32, root);
        free(table);
        if (!ok || strcmp(root, i->token_sha256_root) != 0) {
            snprintf(err, err_len, "%s: the checksum table does not match token_sha256_root: the "
                     "shard is damaged, encode it again", s->path);
            return false;
        }
    }
    uint32_t *buf = xmalloc((size_t)i->token_block * sizeof(uint32_t));
    bool ok = true;
    for (int64_t b = first; ok && b < nb; b += stride) {
        ok = read_blocks(s, b, 1, buf, err, err_len);
        *checked += ok;
    }
    free(buf);
    return ok;
}

// Token ids are integers of at most 4 bytes: HDF5 would silently convert
// floats (id + 0.7 → id) and clip wider integers.
static bool check_token_type(const Shard *s, char *err, int err_len) {
    hid_t t = H5Dget_type((hid_t)s->tokens);
    bool ok = t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) <= 4;
    size_t size = t >= 0 ? H5Tget_size(t) : 0;
    const char *kind = t < 0 ? "unreadable" : H5Tget_class(t) == H5T_FLOAT ? "floating-point"
                                            : H5Tget_class(t) == H5T_INTEGER ? "integer" : "non-integer";
    if (t >= 0) H5Tclose(t);
    if (!ok)
        snprintf(err, err_len, "%s: /tokens is a %zu-byte %s dataset; token ids must be integers "
                 "of at most 4 bytes (uint16 or uint32, as llama-tokenize encode writes)",
                 s->path, size, kind);
    return ok;
}

// /doc_offsets holds n_documents + 1 entries (n_documents is read from an
// attribute: a damaged value must not size a read).
static bool check_doc_offsets(const Shard *s, char *err, int err_len) {
    hid_t d = H5Lexists((hid_t)s->file, "doc_offsets", H5P_DEFAULT) > 0
                  ? H5Dopen2((hid_t)s->file, "doc_offsets", H5P_DEFAULT) : -1;
    int64_t n = length_1d(d);
    if (d >= 0) H5Dclose(d);
    if (n >= 1 && n - 1 == s->info.n_documents) return true;
    if (n < 0)
        snprintf(err, err_len, "%s has no readable one-dimensional /doc_offsets dataset: the "
                 "shard is damaged, write it again", s->path);
    else
        snprintf(err, err_len, "%s: /doc_offsets holds %lld entries but n_documents is %lld "
                 "(want n_documents + 1): the shard is damaged, write it again", s->path,
                 (long long)n, (long long)s->info.n_documents);
    return false;
}

static bool shard_check(Shard *s, char *err, int err_len) {
    int64_t n = length_1d((hid_t)s->tokens);
    if (n < 0) {
        snprintf(err, err_len, "%s: /tokens is not a one-dimensional dataset of token ids; the "
                 "shard is damaged, or written by another tool: write it again", s->path);
        return false;
    }
    ShardInfo *i = &s->info;
    if (!read_attr_i64(s->file, "vocab_size", &i->vocab_size) ||
        !read_attr_i64(s->file, "n_tokens", &i->n_tokens) ||
        !read_attr_i64(s->file, "n_documents", &i->n_documents)) {
        snprintf(err, err_len, "%s: shard lacks the attributes vocab_size/n_tokens/n_documents, "
                 "or one of them is not a single integer", s->path);
        return false;
    }
    const char *ids[2] = {"bos_id", "eos_id"};   // absent: none (-1); present: one integer
    int64_t *id_of[2] = {&i->bos_id, &i->eos_id};
    for (int k = 0; k < 2; k++)
        if (!read_attr_i64(s->file, ids[k], id_of[k])) {
            *id_of[k] = -1;
            if (H5Aexists(s->file, ids[k]) > 0) {
                snprintf(err, err_len, "%s: its '%s' attribute is not a single integer; the shard "
                         "is damaged, or written by another tool: write it again", s->path, ids[k]);
                return false;
            }
        }
    const char *names[3] = {"tokenizer_sha256", "source", "split"};
    char *values[3] = {i->tokenizer_sha256, i->source, i->split};
    size_t sizes[3] = {sizeof i->tokenizer_sha256, sizeof i->source, sizeof i->split};
    for (int k = 0; k < 3; k++)   // absent: unknown ("" and train); present: must read
        if (!read_attr_str(s->file, names[k], values[k], sizes[k]) &&
            H5Aexists(s->file, names[k]) > 0) {
            snprintf(err, err_len, "%s: its '%s' attribute cannot be read as a string; the "
                     "shard is damaged, or written by another tool: write it again", s->path,
                     names[k]);
            return false;
        }
    if (!i->split[0]) strcpy(i->split, "train");
    if (strcmp(i->split, "train") != 0 && strcmp(i->split, "val") != 0) {
        snprintf(err, err_len, "%s: split attribute '%s' is neither 'train' nor 'val'", s->path,
                 i->split);
        return false;
    }
    if (i->vocab_size <= 0) {
        snprintf(err, err_len, "%s: vocab_size attribute %lld is not positive; the shard is "
                 "damaged, write it again", s->path, (long long)i->vocab_size);
        return false;
    }
    if (n != i->n_tokens) {
        snprintf(err, err_len, "%s: /tokens holds %lld tokens but the n_tokens attribute says "
                 "%lld; the shard is damaged, write it again", s->path, (long long)n,
                 (long long)i->n_tokens);
        return false;
    }
    return check_token_type(s, err, err_len) && check_doc_offsets(s, err, err_len) &&
           open_checksums(s, err, err_len);
}

bool shard_open(const char *path, Shard *s, char *err, int err_len) {
    quiet_hdf5();
    memset(s, 0, sizeof *s);
    s->file = s->tokens = s->sums = -1;
    s->path = xstrdup(path);
    if (access(path, R_OK) != 0) {
        snprintf(err, err_len, "cannot read dataset '%s': no such file or not readable", path);
        shard_close(s);
        return false;
    }
    if (!file_kind_check(path, "a token shard (an HDF5 file)", err, err_len)) {
        shard_close(s);
        return false;
    }
    s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (s->file < 0) {
        snprintf(err, err_len, "'%s' is not a readable HDF5 file (truncated or corrupt?)", path);
        shard_close(s);
        return false;
    }
    if (H5Lexists(s->file, "tokens", H5P_DEFAULT) <= 0 ||
        (s->tokens = H5Dopen2(s->file, "tokens", H5P_DEFAULT)) < 0) {
        snprintf(err, err_len, "'%s' has no /tokens dataset: not a token shard (make one with "
                 "llama-tokenize encode)", path);
        shard_close(s);
        return false;
    }
    if (!shard_check(s, err, err_len)) {
        shard_close(s);
        return false;
    }
    return true;
}

bool shard_is_complete(const char *path) {
    Shard s;
    char err[512];
    bool ok = shard_open(path, &s, err, sizeof err);
    if (ok) shard_close(&s);
    return ok;
}

static bool read_slab(hid_t dset, hid_t memtype, int64_t start, int64_t count, void *out) {
    hid_t fspace = H5Dget_space(dset);
    hsize_t off = (hsize_t)start, cnt = (hsize_t)count;
    hid_t mspace = H5Screate_simple(1, &cnt, NULL);
    bool ok = fspace >= 0 && mspace >= 0 &&
              H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &off, NULL, &cnt, NULL) >= 0 &&
              H5Dread(dset, memtype, mspace, fspace, H5P_DEFAULT, out) >= 0;
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    return ok;
}

// The whole blocks around [start, start + count), checked, then the range.
static bool read_checked(const Shard *s, int64_t start, int64_t count, int32_t *out, char *err,
                         int err_len) {
    int64_t k = s->info.token_block, b0 = start / k, b1 = (start + count - 1) / k + 1;
    uint32_t *buf = xmalloc((size_t)((b1 - b0) * k) * sizeof(uint32_t));
    bool ok = read_blocks(s, b0, b1 - b0, buf, err, err_len);
    for (int64_t i = 0; ok && i < count; i++) out[i] = (int32_t)buf[start - b0 * k + i];
    free(buf);
    return ok;
}

bool shard_read_tokens(const Shard *s, int64_t start, int64_t count, int32_t *out, char *err,
                       int err_len) {
    if (start < 0 || count < 0 || start + count > s->info.n_tokens) {
        snprintf(err, err_len, "%s: token range [%lld, %lld) is outside the shard's %lld tokens",
                 s->path, (long long)start, (long long)(start + count),
                 (long long)s->info.n_tokens);
        return false;
    }
    if (s->sums >= 0 && count > 0) return read_checked(s, start, count, out, err, err_len);
    if (!read_slab((hid_t)s->tokens, H5T_NATIVE_INT32, start, count, out)) {
        snprintf(err, err_len, "%s: reading tokens [%lld, %lld) failed (truncated or corrupt "
                 "file?)", s->path, (long long)start, (long long)(start + count));
        return false;
    }
    return true;
}

bool shard_read_doc_offsets(const Shard *s, int64_t start, int64_t count, uint64_t *out,
                            char *err, int err_len) {
    hid_t d = H5Dopen2((hid_t)s->file, "doc_offsets", H5P_DEFAULT);
    bool ok = d >= 0 && start >= 0 && start + count <= s->info.n_documents + 1 &&
              read_slab(d, H5T_NATIVE_UINT64, start, count, out);
    if (d >= 0) H5Dclose(d);
    if (!ok)
        snprintf(err, err_len, "%s: cannot read /doc_offsets [%lld, %lld)", s->path,
                 (long long)start, (long long)(start + count));
    return ok;
}

void shard_close(Shard *s) {
    if (s->sums >= 0) H5Dclose((hid_t)s->sums);
    if (s->tokens >= 0) H5Dclose((hid_t)s->tokens);
    if (s->file >= 0) H5Fclose((hid_t)s->file);
    free(s->path);
    memset(s, 0, sizeof *s);
    s->file = s->tokens = s->sums = -1;
}

// ---- collective writer ------------------------------------------------------

static bool write_attr_i64(hid_t file, const char *name, int64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, H5T_NATIVE_INT64, sp, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok;
}

static bool write_attr_str(hid_t file, const char *name, const char *v) {
    if (!v) v = "";
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = a >= 0 && H5Awrite(a, t, v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return ok;
}

// Writes this rank's slab [offset, offset + count) of a new 1-D dataset of
// `total` elements, collectively.
static bool write_slab(hid_t file, const char *name, hid_t filetype, hid_t memtype,
                       int64_t total, int64_t offset, int64_t count, const void *data) {
    hsize_t dims = (hsize_t)total, off = (hsize_t)offset, cnt = (hsize_t)count;
    hid_t fspace = H5Screate_simple(1, &dims, NULL);
    hid_t d = H5Dcreate2(file, name, filetype, fspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t mspace = H5Screate_simple(1, &cnt, NULL);
    hid_t xfer = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
    bool ok = d >= 0;
    if (ok && count > 0)
        ok = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &off, NULL, &cnt, NULL) >= 0;
    else if (ok) {
        H5Sselect_none(fspace);
        H5Sselect_none(mspace);
    }
    if (ok) ok = H5Dwrite(d, memtype, mspace, fspace, xfer, data) >= 0;
    H5Pclose(xfer);
    H5Sclose(mspace);
    if (d >= 0) H5Dclose(d);
    H5Sclose(fspace);
    return ok;
}

static bool write_attrs(hid_t f, const ShardMeta *m, int64_t n_docs, int64_t n_tokens) {
    return write_attr_i64(f, "vocab_size", m->vocab_size) &&
           write_attr_i64(f, "bos_id", m->bos_id) && write_attr_i64(f, "eos_id", m->eos_id) &&
           write_attr_i64(f, "n_documents", n_docs) && write_attr_i64(f, "n_tokens", n_tokens) &&
           write_attr_str(f, "tokenizer_sha256", m->tokenizer_sha256) &&
           write_attr_str(f, "source", m->source) && write_attr_str(f, "split", m->split) &&
           write_attr_str(f, "source_files", m->source_files);
}

// Document offsets for this rank's documents, plus the final end offset on the
// last rank: (n_docs [+ 1]) values starting at token_base.
static uint64_t *local_doc_offsets(const uint64_t *lengths, int64_t n_docs, int64_t token_base,
                                   bool last_rank, int64_t *count) {
    *count = n_docs + (last_rank ? 1 : 0);
    uint64_t *off = xmalloc((size_t)(*count + 1) * sizeof *off);
    uint64_t at = (uint64_t)token_base;
    for (int64_t d = 0; d < n_docs; d++) {
        off[d] = at;
        at += lengths[d];
    }
    if (last_rank) off[n_docs] = at;
    return off;
}

static bool all_ok(MPI_Comm comm, bool ok) {
    int mine = ok, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, comm);
    return all;
}

// Reserves the shard's size on disk before anything is written (rank 0,
// fallocate without changing the file's size): a collective write that runs
// out of space on one rank leaves HDF5's close waiting for it on the others,
// a hang.  False on every rank when the space is not there; a file system
// without fallocate is written unreserved.
static bool reserve_space(MPI_Comm comm, const char *tmp, int64_t bytes) {
    int rank, ok = 1;
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) {
        int fd = open(tmp, O_WRONLY);
        if (fd >= 0 && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)bytes) != 0 &&
            (errno == ENOSPC || errno == EDQUOT || errno == EFBIG))
            ok = 0;
        if (fd >= 0) close(fd);
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, comm);
    return ok;
}

static bool write_datasets(hid_t f, MPI_Comm comm, const ShardMeta *meta, const char *tmp,
                           const uint32_t *tokens, int64_t n_tokens, const uint64_t *doc_lengths,
                           int64_t n_docs) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int64_t local[2] = {n_tokens, n_docs}, base[2] = {0, 0}, total[2];
    MPI_Exscan(local, base, 2, MPI_INT64_T, MPI_SUM, comm);
    if (rank == 0) base[0] = base[1] = 0;  // MPI_Exscan leaves rank 0's result undefined
    MPI_Allreduce(local, total, 2, MPI_INT64_T, MPI_SUM, comm);

    bool wide = meta->vocab_size > 65536;
    hid_t ftype = wide ? H5T_STD_U32LE : H5T_STD_U16LE;
    int64_t bytes = total[0] * (wide ? 4 : 2) + (total[1] + 1) * 8 +
                    n_blocks_of(total[0], SHARD_TOKEN_BLOCK) * 32 + ((int64_t)64 << 10);
    if (!reserve_space(comm, tmp, bytes)) return false;
    bool ok = write_slab(f, "tokens", ftype, H5T_NATIVE_UINT32, total[0], base[0], n_tokens,
                         tokens);
    int64_t n_off;
    uint64_t *off = local_doc_offsets(doc_lengths, n_docs, base[0], rank == size - 1, &n_off);
    ok = write_slab(f, "doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, total[1] + 1, base[1],
                    n_off, off) && ok;
    free(off);
    return write_attrs(f, meta, total[1], total[0]) && ok;
}

// This rank's share of the blocks of the closed file `tmp`, hashed from what
// is on disk: blocks [*b0, *b0 + *nb), nb × 32 bytes returned.
static unsigned char *hash_my_blocks(MPI_Comm comm, const char *tmp, int64_t *b0, int64_t *nb,
                                     int64_t *n_blocks) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    hid_t f = H5Fopen(tmp, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, "tokens", H5P_DEFAULT) : -1;
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    int64_t n = sp >= 0 ? (int64_t)H5Sget_simple_extent_npoints(sp) : -1;
    *n_blocks = n_blocks_of(n, SHARD_TOKEN_BLOCK);
    *b0 = *n_blocks * rank / size;
    *nb = *n_blocks * (rank + 1) / size - *b0;
    unsigned char *md = xmalloc((size_t)(*nb > 0 ? *nb : 1) * 32);
    uint32_t *buf = xmalloc((size_t)256 * SHARD_TOKEN_BLOCK * sizeof(uint32_t));
    bool ok = n >= 0;
    for (int64_t b = 0; ok && b < *nb; b += 256)
        ok = hash_blocks(d, n, SHARD_TOKEN_BLOCK, *b0 + b, *nb - b < 256 ? *nb - b : 256, buf,
                         md + 32 * b);
    free(buf);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (f >= 0) H5Fclose(f);
    if (!ok) *nb = -1;
    return md;
}

// The table of block hashes (rows) and its root, into the closed file `tmp`.
static bool write_hash_table(const char *tmp, const unsigned char *table, int64_t n_blocks) {
    hid_t f = H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) return false;
    hsize_t dims[2] = {(hsize_t)n_blocks, 32};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(f, "token_sha256", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    bool ok = d >= 0 && (n_blocks == 0 ||
                         H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, table) >= 0);
    char root[72];
    sha256_hex(table, (size_t)n_blocks * 32, root);
    ok = ok && write_attr_i64(f, "token_block", SHARD_TOKEN_BLOCK) &&
         write_attr_str(f, "token_sha256_root", root);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return H5Fclose(f) >= 0 && ok;
}

// Collective: hashes the written tokens back from disk (each rank a share),
// and rank 0 adds the table.  Reading back also proves the tokens reached the
// file whatever the MPI-IO layer reported.  The same verdict on every rank.
static bool write_checksums(MPI_Comm comm, const char *tmp) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int64_t b0, nb, n_blocks;
    unsigned char *mine = hash_my_blocks(comm, tmp, &b0, &nb, &n_blocks);
    if (!all_ok(comm, nb >= 0 && n_blocks * 32 < INT32_MAX)) {
        free(mine);
        return false;
    }
    int count = (int)(nb * 32), *counts = xmalloc((size_t)size * sizeof(int));
    int *displs = xmalloc((size_t)size * sizeof(int));
    MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, 0, comm);
    for (int r = 0, at = 0; rank == 0 && r < size; at += counts[r], r++) displs[r] = at;
    unsigned char *table = rank == 0 ? xmalloc((size_t)(n_blocks > 0 ? n_blocks : 1) * 32) : NULL;
    MPI_Gatherv(mine, count, MPI_UNSIGNED_CHAR, table, counts, displs, MPI_UNSIGNED_CHAR, 0, comm);
    bool ok = rank != 0 || write_hash_table(tmp, table, n_blocks);
    free(mine), free(table), free(counts), free(displs);
    MPI_Bcast(&ok, 1, MPI_C_BOOL, 0, comm);
    return ok;
}

bool shard_write_collective(MPI_Comm comm, const char *path, const ShardMeta *meta,
                            const uint32_t *tokens, int64_t n_tokens,
                            const uint64_t *doc_lengths, int64_t n_docs, char *err, int err_len) {
    quiet_hdf5();
    int rank;
    MPI_Comm_rank(comm, &rank);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char why[4096];
    if (!collective_create_check(comm, tmp, why, sizeof why)) {
        snprintf(err, err_len, "cannot create shard '%s': %s", tmp, why);
        return false;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (!all_ok(comm, f >= 0)) {
        if (f >= 0) H5Fclose(f);
        snprintf(err, err_len, "cannot create shard '%s' (is the folder there and writable?)",
                 tmp);
        return false;
    }
    bool ok = write_datasets(f, comm, meta, tmp, tokens, n_tokens, doc_lengths, n_docs);
    ok = H5Fclose(f) >= 0 && ok;
    ok = all_ok(comm, ok);
    if (ok) ok = write_checksums(comm, tmp);
    if (ok && rank == 0) ok = rename(tmp, path) == 0;
    MPI_Bcast(&ok, 1, MPI_C_BOOL, 0, comm);
    if (!ok) {
        if (rank == 0) unlink(tmp);
        snprintf(err, err_len, "writing shard '%s' failed (disk full or file system error?)",
                 path);
    }
    return ok;
}

// ---- dataset listing ----

static bool is_h5_name(const char *name) { return name_has_suffix(name, ".h5"); }

// The folder's *.h5 files as paths, sorted; 0 with err set when there are
// none or one is not a regular file.
static int shards_in_folder(const char *path, char ***files, char *err, int err_len) {
    if (folder_commit_unfinished(path)) {
        snprintf(err, err_len, "dataset folder '%s' holds %s: an encode into it was stopped while "
                 "moving its shards in, so they may come from two encodes (a document in both "
                 "splits, a source missing); run llama-tokenize encode into it again with "
                 "--overwrite", path, FOLDER_COMMIT_MARK);
        *files = NULL;
        return 0;
    }
    int n = 0;
    char **names = dir_names(path, is_h5_name, &n);
    if (!names) {
        snprintf(err, err_len, "cannot list dataset folder '%s': %s", path, strerror(errno));
        return 0;
    }
    *files = xmalloc(sizeof **files * (size_t)(n + 1));
    int kept = 0;
    for (int i = 0; i < n; i++) {
        char full[4096];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) {   // opening a FIFO would block
            snprintf(err, err_len, "'%s' in the dataset folder is not a regular file (a FIFO, "
                     "device or dangling link?): remove it or move it out of the folder", full);
            break;
        }
        (*files)[kept++] = xstrdup(full);
    }
    if (n == 0) snprintf(err, err_len, "dataset folder '%s' holds no *.h5 shards", path);
    if (kept < n || n == 0) {
        shards_list_free(*files, kept);
        *files = NULL;
        kept = 0;
    }
    dir_names_free(names, n);
    return kept;
}

int shards_list(const char *path, char ***files, char *err, int err_len) {
    struct stat st;
    *files = NULL;
    if (stat(path, &st) != 0) {
        snprintf(err, err_len, "dataset '%s' does not exist (make shards with llama-tokenize "
                 "encode)", path);
        return 0;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "dataset '%s' is %s, neither a shard file nor a folder", path,
                 file_kind_irregular(path));
        return 0;
    }
    if (S_ISDIR(st.st_mode)) return shards_in_folder(path, files, err, err_len);
    *files = xmalloc(sizeof **files);
    (*files)[0] = xstrdup(path);
    return 1;
}

void shards_list_free(char **files, int n) {
    for (int i = 0; i < n; i++) free(files[i]);
    free(files);
}
