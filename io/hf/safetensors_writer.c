// safetensors writer: declare every tensor, then put them (whole or in row
// pieces, any tensor order) into "<path>.tmp"; close renames it to path once
// every tensor is complete.  Memory: one conversion buffer, never a tensor.
#include "hf/safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/atomic_file.h"
#include "core/bf16.h"
#include "core/util.h"

#define WRITE_CHUNK (1u << 20)   // conversion buffer, bytes

typedef struct {
    char *name;
    SafetensorsDtype dtype;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    int64_t numel;
    int64_t rows, row_elems;   // shape[0] and the product of the rest (1, 1 for a scalar)
    int64_t rows_done;
    uint64_t begin;            // byte offset in the data section
} WriterTensor;

struct SafetensorsWriter {
    char *path, *tmp;
    int fd;
    bool started;              // header written
    bool failed;               // a write failed: close refuses
    int n;
    WriterTensor *t;
    json_t *meta;              // __metadata__
    uint64_t data_start, data_len;
    unsigned char *buf;        // WRITE_CHUNK bytes
};

static int elem_bytes(SafetensorsDtype dtype) { return dtype == SAFETENSORS_F32 ? 4 : 2; }

static int pwrite_full(int fd, const void *buf, size_t n, uint64_t off) {
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = pwrite(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

SafetensorsWriter *safetensors_writer_create(const char *path, char *err, int err_len) {
    char *tmp;
    int fd = atomic_file_create(path, &tmp, err, err_len);
    if (fd < 0) return NULL;
    SafetensorsWriter *w = xcalloc(1, sizeof *w);
    w->path = xstrdup(path);
    w->tmp = tmp;
    w->fd = fd;
    w->meta = json_object();
    json_object_set_new(w->meta, "format", json_string("pt"));
    w->buf = xmalloc(WRITE_CHUNK);
    return w;
}

static bool utf8_valid(const char *s) {
    json_t *j = json_string(s);   // NULL unless valid UTF-8
    json_decref(j);
    return j != NULL;
}

static bool declare_check(const SafetensorsWriter *w, const char *name, SafetensorsDtype dtype,
                          int ndim, const int64_t *shape, char *err, int err_len) {
    const char *why = NULL;
    if (w->started) why = "every tensor must be declared before the first put";
    else if (!name || !name[0] || strcmp(name, "__metadata__") == 0) why = "bad tensor name";
    else if (!utf8_valid(name)) why = "the name is not valid UTF-8";
    else if (dtype != SAFETENSORS_F32 && dtype != SAFETENSORS_BF16)
        why = "only F32 and BF16 tensors can be written";
    else if (ndim < 0 || ndim > SAFETENSORS_MAX_DIMS) why = "too many dimensions";
    for (int i = 0; !why && i < ndim; i++)
        if (shape[i] < 0) why = "negative dimension";
    for (int i = 0; !why && i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) why = "declared twice";
    if (why)
        snprintf(err, err_len, "%s: cannot declare tensor '%s': %s", w->path, name ? name : "",
                 why);
    return !why;
}

int safetensors_writer_declare(SafetensorsWriter *w, const char *name, SafetensorsDtype dtype,
                               int ndim, const int64_t *shape, char *err, int err_len) {
    if (!declare_check(w, name, dtype, ndim, shape, err, err_len)) return -1;
    WriterTensor t = {.dtype = dtype, .ndim = ndim, .numel = 1, .rows = 1, .row_elems = 1};
    bool overflow = false;
    for (int i = 0; i < ndim; i++) {
        t.shape[i] = shape[i];
        overflow |= __builtin_mul_overflow(t.numel, shape[i], &t.numel);
        if (i > 0) overflow |= __builtin_mul_overflow(t.row_elems, shape[i], &t.row_elems);
    }
    if (overflow || t.numel > INT64_MAX / 4) {
        snprintf(err, err_len, "%s: cannot declare tensor '%s': shape too large", w->path, name);
        return -1;
    }
    if (ndim > 0) t.rows = shape[0];
    t.name = xstrdup(name);
    w->t = xrealloc(w->t, (size_t)(w->n + 1) * sizeof *w->t);
    w->t[w->n] = t;
    return w->n++;
}

bool safetensors_writer_metadata(SafetensorsWriter *w, const char *key, const char *value,
                                 char *err, int err_len) {
    json_t *v = w->started ? NULL : json_string(value);
    if (!v || json_object_set_new(w->meta, key, v) != 0) {
        snprintf(err, err_len, "%s: cannot add metadata '%s' (%s)", w->path, key,
                 w->started ? "tensors are already being written" : "not valid UTF-8");
        return false;
    }
    return true;
}

// Data layout: F32 tensors first, then BF16, each group in declaration order,
// so every tensor starts at a multiple of its element size.
static void writer_layout(SafetensorsWriter *w) {
    uint64_t off = 0;
    for (int es = 4; es >= 2; es -= 2)
        for (int i = 0; i < w->n; i++)
            if (elem_bytes(w->t[i].dtype) == es) {
                w->t[i].begin = off;
                off += (uint64_t)w->t[i].numel * (uint64_t)es;
            }
    w->data_len = off;
}

static json_t *header_json(const SafetensorsWriter *w) {
    json_t *root = json_object();
    json_object_set(root, "__metadata__", w->meta);
    for (int i = 0; i < w->n; i++) {
        const WriterTensor *t = &w->t[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        uint64_t end = t->begin + (uint64_t)t->numel * (uint64_t)elem_bytes(t->dtype);
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", safetensors_dtype_name(t->dtype),
                              "shape", shape, "data_offsets", (json_int_t)t->begin,
                              (json_int_t)end);
        if (!e || json_object_set_new(root, t->name, e) != 0) {
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

// Lays out the data and writes the length + JSON header, space-padded to a
// multiple of 8 bytes.
static bool writer_start(SafetensorsWriter *w, char *err, int err_len) {
    writer_layout(w);
    json_t *root = header_json(w);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text) {
        snprintf(err, err_len, "%s: cannot encode the header (tensor names must be UTF-8)",
                 w->path);
        w->failed = true;
        return false;
    }
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    unsigned char *h = xmalloc(8 + padded);
    for (int i = 0; i < 8; i++) h[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(h + 8, text, n);
    memset(h + 8 + n, ' ', padded - n);
    free(text);
    int e = pwrite_full(w->fd, h, 8 + padded, 0);
    free(h);
    w->started = true;
    w->data_start = 8 + padded;
    if (e) {
        snprintf(err, err_len, "%s: writing the header failed: %s", w->tmp, strerror(e));
        w->failed = true;
    }
    return !e;
}

// n fp32 values -> little-endian bytes of dtype.
static void convert_from_f32(SafetensorsDtype dtype, const float *src, unsigned char *dst,
                             size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (dtype == SAFETENSORS_F32) {
            uint32_t u;
            memcpy(&u, &src[i], sizeof u);
            for (int b = 0; b < 4; b++) dst[4 * i + b] = (unsigned char)(u >> (8 * b));
        } else {
            uint16_t h = bf16_from_f32(src[i]);
            dst[2 * i] = (unsigned char)h;
            dst[2 * i + 1] = (unsigned char)(h >> 8);
        }
    }
}

static bool put_check(const SafetensorsWriter *w, int index, int64_t r0, int64_t nr, char *err,
                      int err_len) {
    if (w->failed) {
        snprintf(err, err_len, "%s: an earlier write failed; abort this writer", w->path);
        return false;
    }
    if (index < 0 || index >= w->n) {
        snprintf(err, err_len, "%s: no tensor number %d was declared", w->path, index);
        return false;
    }
    const WriterTensor *t = &w->t[index];
    if (r0 != t->rows_done || nr < 0 || nr > t->rows - r0) {
        snprintf(err, err_len, "%s: tensor '%s': rows [%lld, %lld) out of order or range "
                 "(%lld of %lld rows written so far)", w->path, t->name, (long long)r0,
                 (long long)(r0 + nr), (long long)t->rows_done, (long long)t->rows);
        return false;
    }
    return true;
}

bool safetensors_writer_put_rows(SafetensorsWriter *w, int index, int64_t r0, int64_t nr,
                                 const float *data, char *err, int err_len) {
    if (!put_check(w, index, r0, nr, err, err_len)) return false;
    if (!w->started && !writer_start(w, err, err_len)) return false;
    WriterTensor *t = &w->t[index];
    size_t es = (size_t)elem_bytes(t->dtype), cap = WRITE_CHUNK / es;
    int64_t count = nr * t->row_elems;
    uint64_t base = w->data_start + t->begin + (uint64_t)(r0 * t->row_elems) * es;
    for (int64_t done = 0; done < count;) {
        size_t n = (size_t)(count - done) < cap ? (size_t)(count - done) : cap;
        convert_from_f32(t->dtype, data + done, w->buf, n);
        int e = pwrite_full(w->fd, w->buf, n * es, base + (uint64_t)done * es);
        if (e) {
            snprintf(err, err_len, "%s: writing tensor '%s' failed: %s (disk full?)", w->tmp,
                     t->name, strerror(e));
            w->failed = true;
            return false;
        }
        done += (int64_t)n;
    }
    t->rows_done += nr;
    return true;
}

bool safetensors_writer_put(SafetensorsWriter *w, int index, const float *data, char *err,
                            int err_len) {
    int64_t rows = index >= 0 && index < w->n ? w->t[index].rows : 0;
    return safetensors_writer_put_rows(w, index, 0, rows, data, err, err_len);
}

static void writer_free(SafetensorsWriter *w) {
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    json_decref(w->meta);
    free(w->buf);
    free(w->tmp);
    free(w->path);
    free(w);
}

void safetensors_writer_abort(SafetensorsWriter *w) {
    if (!w) return;
    atomic_file_discard(w->fd, w->tmp);
    writer_free(w);
}

// Every tensor has all its rows, and the file has exactly the size the header promises.
static bool writer_complete(SafetensorsWriter *w, char *err, int err_len) {
    for (int i = 0; i < w->n; i++)
        if (w->t[i].rows_done != w->t[i].rows) {
            snprintf(err, err_len, "%s: tensor '%s' got %lld of its %lld rows; nothing was "
                     "written", w->path, w->t[i].name, (long long)w->t[i].rows_done,
                     (long long)w->t[i].rows);
            return false;
        }
    if (!w->started && !writer_start(w, err, err_len)) return false;
    struct stat sb;
    if (fstat(w->fd, &sb) != 0) {
        snprintf(err, err_len, "%s: cannot stat: %s", w->tmp, strerror(errno));
        return false;
    }
    if ((uint64_t)sb.st_size != w->data_start + w->data_len) {
        snprintf(err, err_len, "%s: file is %lld bytes, expected %llu", w->tmp,
                 (long long)sb.st_size, (unsigned long long)(w->data_start + w->data_len));
        return false;
    }
    return true;
}

bool safetensors_writer_close(SafetensorsWriter *w, char *err, int err_len) {
    if (w->failed) {
        snprintf(err, err_len, "%s: an earlier write failed; nothing was written", w->path);
        safetensors_writer_abort(w);
        return false;
    }
    if (!writer_complete(w, err, err_len)) {
        safetensors_writer_abort(w);
        return false;
    }
    bool ok = atomic_file_commit(w->fd, w->tmp, w->path, err, err_len);
    writer_free(w);
    return ok;
}
