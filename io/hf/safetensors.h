// Hugging Face safetensors files: a validating reader that reads whole tensors
// or 2-D sub-blocks as fp32 (each rank preads only its own slice), and a
// streaming writer (F32 or BF16) that never holds more than one tensor.
//
// The format: an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {"k": "v", ...},
//    "<name>": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]}, ...}
// (padded with spaces), then the data section; [begin, end) are byte offsets
// into it, every tensor row-major and little-endian.
//
// A model may be split over several files listed by model.safetensors.index.json
// ({"weight_map": {"<name>": "<file>", ...}}); safetensors_open takes either
// layout, or the directory that holds one, and presents one set of tensors.
//
// Every function that can fail returns false (or NULL / -1) with a one-line
// reason in err that names the file and the tensor; none of them exits.
#ifndef LLAMA_SAFETENSORS_H
#define LLAMA_SAFETENSORS_H

#include <stdbool.h>
#include <stdint.h>

#define SAFETENSORS_MAX_DIMS 8

// Element types this code converts.  Every other dtype of the format (I64, F64,
// F8_E4M3, ...) is recognised when a file is opened, kept by name in
// SafetensorsTensor.dtype_name, and refused by name when read.
typedef enum {
    SAFETENSORS_OTHER = 0,
    SAFETENSORS_F32,    // read and write
    SAFETENSORS_BF16,   // read and write (fp32 -> bf16 rounds to nearest even)
    SAFETENSORS_F16,    // read only
} SafetensorsDtype;

typedef struct {
    char *name;
    SafetensorsDtype dtype;
    char dtype_name[16];                 // as in the header: "BF16", "I64", ...
    int ndim;                            // 0 for a scalar
    int64_t shape[SAFETENSORS_MAX_DIMS];
    int64_t numel;                       // product of shape (1 for a scalar)
    uint64_t begin, end;                 // byte range within its file's data section
    int file;                            // index into Safetensors.files
} SafetensorsTensor;

typedef struct {
    char *path;
    int fd;
    uint64_t data_start;                 // file offset of the data section: 8 + N
    uint64_t data_len;                   // bytes from data_start to the end of the file
} SafetensorsFile;

typedef struct {
    char *path;                          // as given to safetensors_open
    int n_files;
    SafetensorsFile *files;
    int n_tensors;
    SafetensorsTensor *tensors;          // file by file, each in header order
    int *by_name;                        // tensor indices sorted by name (lookup)
    int n_meta;
    char **meta_keys, **meta_values;     // the first file's __metadata__ (strings only)
} Safetensors;

// ---- reader ------------------------------------------------------------------

// Opens `path`: a .safetensors file, a model.safetensors.index.json, or a
// directory holding model.safetensors or model.safetensors.index.json.  Reads
// and checks every header (length within the file, valid JSON, each entry with
// a known dtype, a shape and data_offsets, byte size == numel * dtype size,
// ranges inside the data section and not overlapping), so a truncated or
// corrupt file is refused here, before any tensor is read.  Tensor data is
// not read.  Unused bytes between or after tensors are tolerated (the Python
// reference refuses them; no writer makes them).  On failure *st is left
// empty (safetensors_close is harmless).
bool safetensors_open(const char *path, Safetensors *st, char *err, int err_len);
void safetensors_close(Safetensors *st);

// The tensor called `name`, or NULL.
const SafetensorsTensor *safetensors_find(const Safetensors *st, const char *name);
// The value of key in __metadata__, or NULL.
const char *safetensors_metadata(const Safetensors *st, const char *key);

// Reads tensor `name` whole, converted to fp32, into out (numel floats).  The
// caller states the full shape it expects (ndim, shape); a missing tensor, a
// different shape or a dtype other than F32/BF16/F16 is an error that says so.
bool safetensors_read(const Safetensors *st, const char *name, int ndim, const int64_t *shape,
                      float *out, char *err, int err_len);

// Reads the block rows [r0, r0 + nr) x cols [c0, c0 + nc) of tensor `name`,
// whose full shape must be (ndim, shape) with ndim 1 or 2, converted to fp32
// into out, row-major [nr, nc].  A 1-D tensor [n] is a column: c0 = 0, nc = 1.
// Only the block's bytes are read (pread), so each tensor-parallel rank can
// read its own slice: a column-parallel weight [out, in] is a row block, a
// row-parallel one a column block.
bool safetensors_read_block(const Safetensors *st, const char *name, int ndim,
                            const int64_t *shape, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                            float *out, char *err, int err_len);

// "F32", "BF16", "F16" (NULL for SAFETENSORS_OTHER).
const char *safetensors_dtype_name(SafetensorsDtype dtype);

// ---- writer ------------------------------------------------------------------
//
//   SafetensorsWriter *w = safetensors_writer_create("out/model.safetensors", err, n);
//   int q = safetensors_writer_declare(w, "model.embed_tokens.weight", SAFETENSORS_BF16,
//                                      2, (int64_t[]){vocab, dim}, err, n);
//   ... declare every tensor ...
//   safetensors_writer_put(w, q, data, err, n);        // any tensor order; or in row
//   safetensors_writer_put_rows(w, q, r0, nr, rows, err, n);  // pieces, in row order
//   safetensors_writer_close(w, err, n);   // path appears only if every tensor was put
//
// The data goes to "<path>.tmp", which close fsyncs and renames to path; on
// any failure, or if a tensor was not completely written, the temporary file
// is removed and path is left as it was.  The header carries
// __metadata__ {"format": "pt"} (which transformers requires) and is padded
// with spaces to a multiple of 8 bytes; F32 tensors are laid out before BF16
// ones so every tensor is aligned to its element size.

typedef struct SafetensorsWriter SafetensorsWriter;

// Starts a file; NULL with a reason if "<path>.tmp" cannot be created.
SafetensorsWriter *safetensors_writer_create(const char *path, char *err, int err_len);
// Declares the next tensor (dtype F32 or BF16, ndim <= SAFETENSORS_MAX_DIMS);
// returns its index for put, or -1 (duplicate or empty name, bad shape, ...).
// Every declare must come before the first put.
int safetensors_writer_declare(SafetensorsWriter *w, const char *name, SafetensorsDtype dtype,
                               int ndim, const int64_t *shape, char *err, int err_len);
// Adds key: value to __metadata__ (before the first put).
bool safetensors_writer_metadata(SafetensorsWriter *w, const char *key, const char *value,
                                 char *err, int err_len);
// Writes tensor `index` whole from numel fp32 values (rounded to bf16 when
// declared BF16).  The first put writes the header.
bool safetensors_writer_put(SafetensorsWriter *w, int index, const float *data, char *err,
                            int err_len);
// Writes rows [r0, r0 + nr) of tensor `index` (a row = everything below the
// first dimension; a 1-D tensor's rows are its elements, a scalar has one).
// Pieces of a tensor must come in row order, r0 = the rows already written.
bool safetensors_writer_put_rows(SafetensorsWriter *w, int index, int64_t r0, int64_t nr,
                                 const float *data, char *err, int err_len);
// Finishes: checks every tensor is complete, fsyncs, renames "<path>.tmp" to
// path.  Frees w whatever the outcome.
bool safetensors_writer_close(SafetensorsWriter *w, char *err, int err_len);
// Gives up: removes "<path>.tmp" and frees w (NULL is fine).
void safetensors_writer_abort(SafetensorsWriter *w);

#endif
