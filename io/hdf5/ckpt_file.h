// The HDF5 file of a checkpoint: 2-D fp32 datasets (1-D tensors are (n, 1))
// in groups, each with its full logical shape, written collectively by every
// rank (each its own hyperslab union, possibly empty) and read back by any
// rank independently; scalar and array attributes on "/".
#ifndef LLAMA_CKPT_FILE_H
#define LLAMA_CKPT_FILE_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

// A rectangle of a dataset: rows [r0, r0 + nr) × cols [c0, c0 + nc).
typedef struct {
    int64_t r0, nr, c0, nc;
} Slab;

// The rectangles covering flat (row-major) elements [e0, e1) of a
// (rows, cols) matrix, in order: at most 3.  Returns how many.
int slabs_of_range(int64_t cols, int64_t e0, int64_t e1, Slab out[3]);

typedef struct CkptFile CkptFile;

// Collective over comm: creates path (truncating).  NULL on every rank with a
// reason when it cannot.
CkptFile *ckpt_file_create(MPI_Comm comm, const char *path, char *err, int err_len);
// Read-only, this rank alone.
CkptFile *ckpt_file_open(const char *path, char *err, int err_len);
// Closes; for a created file collective, and false when the data could not
// be flushed.  After a failed close HDF5 (1.10) keeps a dangling handle that
// crashes its clean-up in MPI_Finalize or at exit: ckpt_file_unclean() then
// says the process must end by MPI_Abort.
bool ckpt_file_close(CkptFile *f);
bool ckpt_file_unclean(void);
// fsync of the closed file at path from this rank, so what this rank's node
// wrote is on disk (a write error the MPI-IO layer lost shows up here or in
// a re-read).  False with a reason in err.
bool ckpt_file_sync(const char *path, char *err, int err_len);

// Order-independent checksum of the elements of a (rows, cols) tensor held in
// slabs (data: the slabs' elements in order): the sum over elements of a
// 64-bit mix of (global flat index, value bits), so ranks can add their parts.
uint64_t ckpt_file_checksum(int64_t cols, const Slab *slabs, int n_slabs, const float *data);

// Collective: creates group (if needed) and dataset group/name of (rows,
// cols) fp32 and writes this rank's slabs from data (the slabs' elements
// concatenated in order).  Same verdict on every rank.
bool ckpt_file_write(CkptFile *f, const char *group, const char *name, int64_t rows,
                     int64_t cols, const Slab *slabs, int n_slabs, const float *data, char *err,
                     int err_len);
// Reads slabs of group/name (whose shape must be rows × cols) into data.
bool ckpt_file_read(CkptFile *f, const char *group, const char *name, int64_t rows,
                    int64_t cols, const Slab *slabs, int n_slabs, float *data, char *err,
                    int err_len);

// Attributes on "/" (collective when writing: same value on every rank).
bool ckpt_file_set_i64(CkptFile *f, const char *name, const int64_t *v, int n);
bool ckpt_file_set_u64_on(CkptFile *f, const char *group, const char *dataset,
                          const char *name, uint64_t v);
bool ckpt_file_set_str(CkptFile *f, const char *name, const char *v);
bool ckpt_file_set_f64(CkptFile *f, const char *name, double v);
bool ckpt_file_set_f64s(CkptFile *f, const char *name, const double *v, int n);
// Reading: false when missing or of another kind; n is the array length expected.
bool ckpt_file_get_i64(CkptFile *f, const char *name, int64_t *v, int n);
// The number of elements of attribute name on "/"; -1 when it is missing.
int ckpt_file_attr_len(CkptFile *f, const char *name);
bool ckpt_file_get_u64_on(CkptFile *f, const char *group, const char *dataset,
                          const char *name, uint64_t *v);
bool ckpt_file_get_f64(CkptFile *f, const char *name, double *v);
bool ckpt_file_get_f64s(CkptFile *f, const char *name, double *v, int n);
// One string attribute, fixed- or variable-length (an h5py edit's), malloc'd;
// NULL when missing, not one string, or unreadable.
char *ckpt_file_get_str(CkptFile *f, const char *name);
// Shape of group/name; false when it does not exist.
bool ckpt_file_shape(CkptFile *f, const char *group, const char *name, int64_t *rows,
                     int64_t *cols);
const char *ckpt_file_path(const CkptFile *f);

#endif
