#include "hdf5/ckpt_file.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "hdf5/collective_create.h"
#include "hdf5/h5_attr.h"
#include "core/file_kind.h"
#include "core/util.h"

struct CkptFile {
    hid_t file;
    bool collective;
    MPI_Comm comm;
    char *path;
};

int slabs_of_range(int64_t cols, int64_t e0, int64_t e1, Slab out[3]) {
    int n = 0;
    if (e0 >= e1) return 0;
    int64_t r = e0 / cols, c = e0 % cols;
    if (c != 0) {   // partial first row
        int64_t end = e1 < (r + 1) * cols ? e1 : (r + 1) * cols;
        out[n++] = (Slab){r, 1, c, end - e0};
        e0 = end;
        r++;
    }
    int64_t full = (e1 - e0) / cols;
    if (full > 0) {
        out[n++] = (Slab){r, full, 0, cols};
        e0 += full * cols;
        r += full;
    }
    if (e0 < e1) out[n++] = (Slab){r, 1, 0, e1 - e0};
    return n;
}

static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static bool unclean;   // a close failed or was skipped: HDF5 holds a dangling file handle

CkptFile *ckpt_file_create(MPI_Comm comm, const char *path, char *err, int err_len) {
    quiet();
    char why[4096];
    if (!collective_create_check(comm, path, why, sizeof why)) {
        snprintf(err, err_len, "cannot create checkpoint file '%s': %s", path, why);
        return NULL;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    H5Pset_all_coll_metadata_ops(fapl, true);
    H5Pset_coll_metadata_write(fapl, true);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    int rank, size, failed = f < 0, first, count;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int mine = failed ? rank : INT_MAX;
    MPI_Allreduce(&failed, &count, 1, MPI_INT, MPI_SUM, comm);
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (count > 0) {
        // Closing is collective over the ranks that opened it: with some
        // ranks out it would wait for them forever.  The handle is left
        // (unclean: the caller ends the job without HDF5's clean-up).
        if (f >= 0) unclean = true;
        snprintf(err, err_len, "cannot create checkpoint file '%s' on %d of %d ranks (rank %d "
                 "first): is the folder writable there, on a filesystem every rank shares?",
                 path, count, size, first);
        return NULL;
    }
    CkptFile *c = xcalloc(1, sizeof *c);
    *c = (CkptFile){f, true, comm, xstrdup(path)};
    return c;
}

CkptFile *ckpt_file_open(const char *path, char *err, int err_len) {
    quiet();
    if (!file_kind_check(path, "a checkpoint file", err, err_len)) return NULL;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(err, err_len, "cannot open checkpoint file '%s': missing, truncated or not HDF5",
                 path);
        return NULL;
    }
    CkptFile *c = xcalloc(1, sizeof *c);
    *c = (CkptFile){f, false, MPI_COMM_NULL, xstrdup(path)};
    return c;
}

bool ckpt_file_unclean(void) { return unclean; }

bool ckpt_file_close(CkptFile *f) {
    if (!f) return true;
    bool ok = H5Fclose(f->file) >= 0;
    if (!ok) unclean = true;
    if (f->collective) {
        int mine = ok, all;
        MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, f->comm);
        ok = all;
    }
    free(f->path);
    free(f);
    return ok;
}

const char *ckpt_file_path(const CkptFile *f) { return f->path; }

bool ckpt_file_sync(const char *path, char *err, int err_len) {
    int fd = open(path, O_RDONLY);
    bool ok = fd >= 0 && fsync(fd) == 0;
    int saved = errno;
    if (fd >= 0) close(fd);
    if (!ok) snprintf(err, err_len, "cannot flush '%s' to disk: %s", path, strerror(saved));
    return ok;
}

uint64_t ckpt_file_checksum(int64_t cols, const Slab *s, int n, const float *data) {
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        for (int64_t r = 0; r < s[i].nr; r++)
            for (int64_t c = 0; c < s[i].nc; c++) {
                uint32_t bits;
                memcpy(&bits, data++, sizeof bits);
                uint64_t k = (uint64_t)((s[i].r0 + r) * cols + s[i].c0 + c);
                sum += rng_mix(k * 0x9e3779b97f4a7c15ULL ^ bits);
            }
    return sum;
}

static hid_t group_of(CkptFile *f, const char *group, bool create) {
    if (H5Lexists(f->file, group, H5P_DEFAULT) > 0) return H5Gopen2(f->file, group, H5P_DEFAULT);
    return create ? H5Gcreate2(f->file, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
}

// Selects the union of slabs in the file space; the memory space is their
// element count, contiguous.
static hid_t select_slabs(hid_t fspace, const Slab *slabs, int n, hsize_t *count) {
    *count = 0;
    H5Sselect_none(fspace);
    for (int i = 0; i < n; i++) {
        if (slabs[i].nr <= 0 || slabs[i].nc <= 0) continue;
        hsize_t off[2] = {(hsize_t)slabs[i].r0, (hsize_t)slabs[i].c0};
        hsize_t cnt[2] = {(hsize_t)slabs[i].nr, (hsize_t)slabs[i].nc};
        H5Sselect_hyperslab(fspace, H5S_SELECT_OR, off, NULL, cnt, NULL);
        *count += cnt[0] * cnt[1];
    }
    hsize_t m = *count ? *count : 1;
    hid_t mspace = H5Screate_simple(1, &m, NULL);
    if (*count == 0) H5Sselect_none(mspace);
    return mspace;
}

static bool all_agree(CkptFile *f, bool ok) {
    int mine = ok, all;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, f->comm);
    return all;
}

bool ckpt_file_write(CkptFile *f, const char *group, const char *name, int64_t rows,
                     int64_t cols, const Slab *slabs, int n_slabs, const float *data, char *err,
                     int err_len) {
    hid_t g = group_of(f, group, true);
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols}, count;
    hid_t fspace = H5Screate_simple(2, dims, NULL);
    hid_t d = g >= 0 ? H5Dcreate2(g, name, H5T_IEEE_F32LE, fspace, H5P_DEFAULT, H5P_DEFAULT,
                                  H5P_DEFAULT) : -1;
    hid_t mspace = select_slabs(fspace, slabs, n_slabs, &count);
    hid_t xfer = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
    bool ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, mspace, fspace, xfer, data) >= 0;
    H5Pclose(xfer);
    H5Sclose(mspace);
    H5Sclose(fspace);
    if (d >= 0) H5Dclose(d);
    if (g >= 0) H5Gclose(g);
    ok = all_agree(f, ok);
    if (!ok) snprintf(err, err_len, "writing %s/%s to '%s' failed (disk full?)", group, name, f->path);
    return ok;
}

bool ckpt_file_shape(CkptFile *f, const char *group, const char *name, int64_t *rows,
                     int64_t *cols) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", group, name);
    if (H5Lexists(f->file, group, H5P_DEFAULT) <= 0 || H5Lexists(f->file, path, H5P_DEFAULT) <= 0)
        return false;
    hid_t d = H5Dopen2(f->file, path, H5P_DEFAULT);
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dims[2] = {0, 0};
    bool ok = s >= 0 && H5Sget_simple_extent_ndims(s) == 2 &&
              H5Sget_simple_extent_dims(s, dims, NULL) == 2;
    *rows = (int64_t)dims[0];
    *cols = (int64_t)dims[1];
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return ok;
}

bool ckpt_file_read(CkptFile *f, const char *group, const char *name, int64_t rows,
                    int64_t cols, const Slab *slabs, int n_slabs, float *data, char *err,
                    int err_len) {
    int64_t r, c;
    if (!ckpt_file_shape(f, group, name, &r, &c) || r != rows || c != cols) {
        snprintf(err, err_len, "%s: tensor %s/%s is missing or not of shape (%lld, %lld)",
                 f->path, group, name, (long long)rows, (long long)cols);
        return false;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", group, name);
    hid_t d = H5Dopen2(f->file, path, H5P_DEFAULT);
    hid_t fspace = H5Dget_space(d);
    hsize_t count;
    hid_t mspace = select_slabs(fspace, slabs, n_slabs, &count);
    bool ok = count == 0 || H5Dread(d, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, data) >= 0;
    H5Sclose(mspace);
    H5Sclose(fspace);
    H5Dclose(d);
    if (!ok) snprintf(err, err_len, "%s: reading %s failed (truncated or corrupt file)", f->path, path);
    return ok;
}

// ---- attributes ----

static bool write_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *v) {
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = a >= 0 && H5Awrite(a, type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok;
}

// A one-dimensional attribute of n values of `type`.
static bool write_array_attr(CkptFile *f, const char *name, hid_t type, const void *v, int n) {
    hsize_t dims = (hsize_t)n;
    hid_t s = H5Screate_simple(1, &dims, NULL);
    bool ok = write_attr(f->file, name, type, s, v);
    H5Sclose(s);
    return ok;
}

bool ckpt_file_set_i64(CkptFile *f, const char *name, const int64_t *v, int n) {
    return write_array_attr(f, name, H5T_NATIVE_INT64, v, n);
}

bool ckpt_file_set_f64(CkptFile *f, const char *name, double v) {
    hid_t s = H5Screate(H5S_SCALAR);
    bool ok = write_attr(f->file, name, H5T_NATIVE_DOUBLE, s, &v);
    H5Sclose(s);
    return ok;
}

bool ckpt_file_set_f64s(CkptFile *f, const char *name, const double *v, int n) {
    return write_array_attr(f, name, H5T_NATIVE_DOUBLE, v, n);
}

bool ckpt_file_set_str(CkptFile *f, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t s = H5Screate(H5S_SCALAR);
    bool ok = write_attr(f->file, name, t, s, v);
    H5Sclose(s);
    H5Tclose(t);
    return ok;
}

bool ckpt_file_set_u64_on(CkptFile *f, const char *group, const char *dataset,
                          const char *name, uint64_t v) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", group, dataset);
    hid_t d = H5Dopen2(f->file, path, H5P_DEFAULT);
    hid_t s = H5Screate(H5S_SCALAR);
    bool ok = d >= 0 && write_attr(d, name, H5T_NATIVE_UINT64, s, &v);
    H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return ok;
}

bool ckpt_file_get_i64(CkptFile *f, const char *name, int64_t *v, int n) {
    return h5_attr_read(f->file, name, H5T_NATIVE_INT64, v, n);
}

int ckpt_file_attr_len(CkptFile *f, const char *name) {
    if (H5Aexists(f->file, name) <= 0) return -1;
    hid_t a = H5Aopen(f->file, name, H5P_DEFAULT);
    hid_t s = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    if (s >= 0) H5Sclose(s);
    if (a >= 0) H5Aclose(a);
    return n >= 0 && n <= INT32_MAX ? (int)n : -1;
}

bool ckpt_file_get_f64(CkptFile *f, const char *name, double *v) {
    return h5_attr_read(f->file, name, H5T_NATIVE_DOUBLE, v, 1);
}

bool ckpt_file_get_f64s(CkptFile *f, const char *name, double *v, int n) {
    return h5_attr_read(f->file, name, H5T_NATIVE_DOUBLE, v, n);
}

bool ckpt_file_get_u64_on(CkptFile *f, const char *group, const char *dataset,
                          const char *name, uint64_t *v) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", group, dataset);
    if (H5Lexists(f->file, group, H5P_DEFAULT) <= 0 || H5Lexists(f->file, path, H5P_DEFAULT) <= 0)
        return false;
    hid_t d = H5Dopen2(f->file, path, H5P_DEFAULT);
    bool ok = d >= 0 && h5_attr_read(d, name, H5T_NATIVE_UINT64, v, 1);
    if (d >= 0) H5Dclose(d);
    return ok;
}

char *ckpt_file_get_str(CkptFile *f, const char *name) { return h5_attr_string(f->file, name); }
