#include "shards.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static bool read_attr_i64(hid_t file, const char *name, int64_t *out) {
    if (H5Aexists(file, name) <= 0) return false;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    if (a < 0) return false;
    herr_t r = H5Aread(a, H5T_NATIVE_INT64, out);
    H5Aclose(a);
    return r >= 0;
}

static bool read_attr_str(hid_t file, const char *name, char *out, size_t len) {
    out[0] = 0;
    if (H5Aexists(file, name) <= 0) return false;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    bool ok = false;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t)) {
        size_t n = H5Tget_size(t);
        char *buf = xcalloc(n + 1, 1);
        hid_t mt = H5Tcopy(t);
        ok = H5Aread(a, mt, buf) >= 0;
        H5Tclose(mt);
        snprintf(out, len, "%s", buf);
        free(buf);
    }
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return ok;
}

static bool shard_check(Shard *s, char *err, int err_len) {
    hid_t space = H5Dget_space((hid_t)s->tokens);
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0) H5Sclose(space);
    ShardInfo *i = &s->info;
    if (!read_attr_i64(s->file, "vocab_size", &i->vocab_size) ||
        !read_attr_i64(s->file, "n_tokens", &i->n_tokens) ||
        !read_attr_i64(s->file, "n_documents", &i->n_documents)) {
        snprintf(err, err_len, "%s: shard lacks the attributes vocab_size/n_tokens/n_documents",
                 s->path);
        return false;
    }
    if (!read_attr_i64(s->file, "bos_id", &i->bos_id)) i->bos_id = -1;
    if (!read_attr_i64(s->file, "eos_id", &i->eos_id)) i->eos_id = -1;
    read_attr_str(s->file, "tokenizer_sha256", i->tokenizer_sha256, sizeof i->tokenizer_sha256);
    read_attr_str(s->file, "source", i->source, sizeof i->source);
    if (!read_attr_str(s->file, "split", i->split, sizeof i->split)) strcpy(i->split, "train");
    if (n != i->n_tokens || i->vocab_size <= 0) {
        snprintf(err, err_len, "%s: /tokens holds %lld tokens but the n_tokens attribute says "
                 "%lld; the shard is damaged, write it again", s->path, (long long)n,
                 (long long)i->n_tokens);
        return false;
    }
    return true;
}

bool shard_open(const char *path, Shard *s, char *err, int err_len) {
    quiet_hdf5();
    memset(s, 0, sizeof *s);
    s->file = s->tokens = -1;
    s->path = xstrdup(path);
    if (access(path, R_OK) != 0) {
        snprintf(err, err_len, "cannot read dataset '%s': no such file or not readable", path);
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

bool shard_read_tokens(const Shard *s, int64_t start, int64_t count, int32_t *out, char *err,
                       int err_len) {
    if (start < 0 || count < 0 || start + count > s->info.n_tokens) {
        snprintf(err, err_len, "%s: token range [%lld, %lld) is outside the shard's %lld tokens",
                 s->path, (long long)start, (long long)(start + count),
                 (long long)s->info.n_tokens);
        return false;
    }
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
    if (s->tokens >= 0) H5Dclose((hid_t)s->tokens);
    if (s->file >= 0) H5Fclose((hid_t)s->file);
    free(s->path);
    memset(s, 0, sizeof *s);
    s->file = s->tokens = -1;
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

static bool write_datasets(hid_t f, MPI_Comm comm, const ShardMeta *meta, const uint32_t *tokens,
                           int64_t n_tokens, const uint64_t *doc_lengths, int64_t n_docs) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int64_t local[2] = {n_tokens, n_docs}, base[2] = {0, 0}, total[2];
    MPI_Exscan(local, base, 2, MPI_INT64_T, MPI_SUM, comm);
    if (rank == 0) base[0] = base[1] = 0;  // MPI_Exscan leaves rank 0's result undefined
    MPI_Allreduce(local, total, 2, MPI_INT64_T, MPI_SUM, comm);

    bool wide = meta->vocab_size > 65536;
    hid_t ftype = wide ? H5T_STD_U32LE : H5T_STD_U16LE;
    bool ok = write_slab(f, "tokens", ftype, H5T_NATIVE_UINT32, total[0], base[0], n_tokens,
                         tokens);
    int64_t n_off;
    uint64_t *off = local_doc_offsets(doc_lengths, n_docs, base[0], rank == size - 1, &n_off);
    ok = write_slab(f, "doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, total[1] + 1, base[1],
                    n_off, off) && ok;
    free(off);
    return write_attrs(f, meta, total[1], total[0]) && ok;
}

bool shard_write_collective(MPI_Comm comm, const char *path, const ShardMeta *meta,
                            const uint32_t *tokens, int64_t n_tokens,
                            const uint64_t *doc_lengths, int64_t n_docs, char *err, int err_len) {
    quiet_hdf5();
    int rank;
    MPI_Comm_rank(comm, &rank);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
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
    bool ok = write_datasets(f, comm, meta, tokens, n_tokens, doc_lengths, n_docs);
    ok = H5Fclose(f) >= 0 && ok;
    ok = all_ok(comm, ok);
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

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int shards_list(const char *path, char ***files, char *err, int err_len) {
    struct stat st;
    *files = NULL;
    if (stat(path, &st) != 0) {
        snprintf(err, err_len, "dataset '%s' does not exist (make shards with llama-tokenize "
                 "encode, or train with --bench)", path);
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        *files = xmalloc(sizeof **files);
        (*files)[0] = xstrdup(path);
        return 1;
    }
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, err_len, "cannot list dataset folder '%s'", path);
        return 0;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".h5") != 0) continue;
        *files = xrealloc(*files, (size_t)(n + 1) * sizeof **files);
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        (*files)[n++] = xstrdup(full);
    }
    closedir(d);
    if (n == 0) snprintf(err, err_len, "dataset folder '%s' holds no *.h5 shards", path);
    else qsort(*files, (size_t)n, sizeof **files, compare_names);
    return n;
}

void shards_list_free(char **files, int n) {
    for (int i = 0; i < n; i++) free(files[i]);
    free(files);
}
