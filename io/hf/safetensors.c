// safetensors reader: header validation, the index of a split model, and
// whole-tensor / sub-block reads converted to fp32.  The writer is in
// safetensors_writer.c.
#include "hf/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bf16.h"
#include "core/file_kind.h"
#include "core/util.h"
#include "fs/paths.h"

// The reference implementation's limit; a real header is a few hundred KB.
#define HEADER_MAX 100000000ull
// Staging buffer for converting reads, in bytes.
#define READ_CHUNK (1u << 20)

// ---- dtypes --------------------------------------------------------------------

typedef struct {
    const char *name;
    int bits;                 // per element
    SafetensorsDtype dtype;   // SAFETENSORS_OTHER: recognised, not converted
} DtypeInfo;

// Every dtype the safetensors format defines (as of safetensors 0.8).
static const DtypeInfo dtype_table[] = {
    {"F32", 32, SAFETENSORS_F32},   {"BF16", 16, SAFETENSORS_BF16}, {"F16", 16, SAFETENSORS_F16},
    {"F64", 64, SAFETENSORS_OTHER}, {"C64", 64, SAFETENSORS_OTHER}, {"I64", 64, SAFETENSORS_OTHER},
    {"U64", 64, SAFETENSORS_OTHER}, {"I32", 32, SAFETENSORS_OTHER}, {"U32", 32, SAFETENSORS_OTHER},
    {"I16", 16, SAFETENSORS_OTHER}, {"U16", 16, SAFETENSORS_OTHER}, {"I8", 8, SAFETENSORS_OTHER},
    {"U8", 8, SAFETENSORS_OTHER},   {"BOOL", 8, SAFETENSORS_OTHER},
    {"F8_E4M3", 8, SAFETENSORS_OTHER},     {"F8_E5M2", 8, SAFETENSORS_OTHER},
    {"F8_E4M3FNUZ", 8, SAFETENSORS_OTHER}, {"F8_E5M2FNUZ", 8, SAFETENSORS_OTHER},
    {"F8_E8M0", 8, SAFETENSORS_OTHER},     {"F6_E2M3", 6, SAFETENSORS_OTHER},
    {"F6_E3M2", 6, SAFETENSORS_OTHER},     {"F4", 4, SAFETENSORS_OTHER},
};
#define N_DTYPES (int)(sizeof dtype_table / sizeof dtype_table[0])

static const DtypeInfo *dtype_lookup(const char *name) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(dtype_table[i].name, name) == 0) return &dtype_table[i];
    return NULL;
}

const char *safetensors_dtype_name(SafetensorsDtype dtype) {
    switch (dtype) {
    case SAFETENSORS_F32: return "F32";
    case SAFETENSORS_BF16: return "BF16";
    case SAFETENSORS_F16: return "F16";
    default: return NULL;
    }
}

static int dtype_bytes(SafetensorsDtype dtype) { return dtype == SAFETENSORS_F32 ? 4 : 2; }

// IEEE half -> fp32, exact (subnormals, ±inf and NaN payloads included).
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1f) u = sign | 0x7f800000u | (man << 13);
    else if (exp != 0) u = sign | ((exp + 112u) << 23) | (man << 13);
    else {                                   // zero or subnormal: man * 2^-24
        float f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// n little-endian elements of dtype at src -> fp32.
static void convert_to_f32(SafetensorsDtype dtype, const unsigned char *src, float *dst,
                           size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (dtype == SAFETENSORS_F32) {
            const unsigned char *p = src + 4 * i;
            uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24;
            memcpy(&dst[i], &u, sizeof u);
        } else {
            uint16_t h = (uint16_t)(src[2 * i] | src[2 * i + 1] << 8);
            dst[i] = dtype == SAFETENSORS_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
        }
    }
}

// ---- small helpers ---------------------------------------------------------------

// "[64, 32]"
static const char *shape_format(int ndim, const int64_t *shape, char *buf, size_t len) {
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
    return buf;
}

// Reads exactly n bytes at off.  Returns 0, or an errno (EIO when the file ends early).
static int pread_full(int fd, void *buf, size_t n, uint64_t off) {
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno;
        if (r == 0) return EIO;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

// dir + "/" + name, malloc'd.
static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

// ---- one file's header -------------------------------------------------------------

// Opens f->path, checks the header length against the file and parses the JSON.
static bool header_load(SafetensorsFile *f, json_t **root, char *err, int err_len) {
    if (!file_kind_check(f->path, "a safetensors file", err, err_len)) return false;
    f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        snprintf(err, err_len, "cannot open '%s': %s", f->path, strerror(errno));
        return false;
    }
    struct stat sb;
    if (fstat(f->fd, &sb) != 0) {
        snprintf(err, err_len, "%s: cannot stat: %s", f->path, strerror(errno));
        return false;
    }
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char lenbuf[8];
    if (size < 8) {
        snprintf(err, err_len, "%s: file is only %llu bytes, too short for a safetensors file "
                 "(truncated, or not safetensors)", f->path, (unsigned long long)size);
        return false;
    }
    int e = pread_full(f->fd, lenbuf, 8, 0);
    if (e) {
        snprintf(err, err_len, "%s: cannot read the header length: %s", f->path, strerror(e));
        return false;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lenbuf[i];
    if (n > HEADER_MAX) {
        snprintf(err, err_len, "%s: header length %llu is implausible (limit %llu bytes): "
                 "not a safetensors file, or corrupt", f->path, (unsigned long long)n, HEADER_MAX);
        return false;
    }
    if (n > size - 8) {
        snprintf(err, err_len, "%s: header of %llu bytes runs past the end of the file "
                 "(%llu bytes): the file is truncated", f->path, (unsigned long long)n,
                 (unsigned long long)size);
        return false;
    }
    char *text = malloc(n ? n : 1);
    if (!text) {
        snprintf(err, err_len, "%s: out of memory for a %llu-byte header", f->path,
                 (unsigned long long)n);
        return false;
    }
    e = pread_full(f->fd, text, n, 8);
    json_error_t je;
    *root = e ? NULL : json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (e) {
        snprintf(err, err_len, "%s: cannot read the header: %s", f->path, strerror(e));
        return false;
    }
    if (!*root || !json_is_object(*root)) {
        snprintf(err, err_len, "%s: header is not a JSON object (%s at byte %d): not a "
                 "safetensors file, or corrupt", f->path, *root ? "wrong type" : je.text,
                 *root ? 0 : je.position);
        return false;
    }
    f->data_start = 8 + n;
    f->data_len = size - 8 - n;
    return true;
}

static bool shape_parse(const char *path, const char *name, json_t *js, SafetensorsTensor *t,
                        char *err, int err_len) {
    size_t nd = json_is_array(js) ? json_array_size(js) : 0;
    bool ok = json_is_array(js) && nd <= SAFETENSORS_MAX_DIMS;
    t->ndim = (int)nd;
    t->numel = 1;
    for (size_t i = 0; ok && i < nd; i++) {
        json_t *d = json_array_get(js, i);
        ok = json_is_integer(d) && json_integer_value(d) >= 0;
        if (ok) t->shape[i] = (int64_t)json_integer_value(d);
        if (ok && __builtin_mul_overflow(t->numel, t->shape[i], &t->numel)) ok = false;
    }
    if (!ok)
        snprintf(err, err_len, "%s: tensor '%s' has a bad shape (want an array of at most %d "
                 "non-negative integers of sane product)", path, name, SAFETENSORS_MAX_DIMS);
    return ok;
}

static bool offsets_parse(const char *path, const char *name, json_t *js, SafetensorsTensor *t,
                          char *err, int err_len) {
    json_t *b = json_array_get(js, 0), *e = json_array_get(js, 1);
    if (!json_is_array(js) || json_array_size(js) != 2 || !json_is_integer(b) ||
        !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b)) {
        snprintf(err, err_len, "%s: tensor '%s' has bad data_offsets (want [begin, end] with "
                 "0 <= begin <= end)", path, name);
        return false;
    }
    t->begin = (uint64_t)json_integer_value(b);
    t->end = (uint64_t)json_integer_value(e);
    return true;
}

// The byte size the shape needs must match data_offsets, inside the data section.
static bool extent_check(const SafetensorsFile *f, const SafetensorsTensor *t, int bits,
                         char *err, int err_len) {
    char sh[160];
    uint64_t bitsize;
    if (__builtin_mul_overflow((uint64_t)t->numel, (uint64_t)bits, &bitsize) || bitsize % 8) {
        snprintf(err, err_len, "%s: tensor '%s' of shape %s and dtype %s does not fill whole "
                 "bytes", f->path, t->name, shape_format(t->ndim, t->shape, sh, sizeof sh),
                 t->dtype_name);
        return false;
    }
    if (t->end - t->begin != bitsize / 8) {
        snprintf(err, err_len, "%s: tensor '%s' has data_offsets [%llu, %llu) = %llu bytes, but "
                 "shape %s of %s needs %llu bytes", f->path, t->name,
                 (unsigned long long)t->begin, (unsigned long long)t->end,
                 (unsigned long long)(t->end - t->begin),
                 shape_format(t->ndim, t->shape, sh, sizeof sh), t->dtype_name,
                 (unsigned long long)(bitsize / 8));
        return false;
    }
    if (t->end > f->data_len) {
        snprintf(err, err_len, "%s: tensor '%s' data [%llu, %llu) runs past the end of the data "
                 "section (%llu bytes): the file is truncated", f->path, t->name,
                 (unsigned long long)t->begin, (unsigned long long)t->end,
                 (unsigned long long)f->data_len);
        return false;
    }
    return true;
}

// One header entry -> t (t->name already set).
static bool entry_parse(const SafetensorsFile *f, json_t *e, SafetensorsTensor *t, char *err,
                        int err_len) {
    json_t *dt = json_object_get(e, "dtype");
    if (!json_is_object(e) || !json_is_string(dt) || !json_object_get(e, "shape") ||
        !json_object_get(e, "data_offsets")) {
        snprintf(err, err_len, "%s: header entry '%s' lacks dtype, shape or data_offsets: "
                 "corrupt file", f->path, t->name);
        return false;
    }
    const DtypeInfo *info = dtype_lookup(json_string_value(dt));
    if (!info) {
        snprintf(err, err_len, "%s: tensor '%s' has unknown dtype '%.32s'", f->path, t->name,
                 json_string_value(dt));
        return false;
    }
    t->dtype = info->dtype;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", info->name);
    return shape_parse(f->path, t->name, json_object_get(e, "shape"), t, err, err_len) &&
           offsets_parse(f->path, t->name, json_object_get(e, "data_offsets"), t, err,
                         err_len) &&
           extent_check(f, t, info->bits, err, err_len);
}

static void metadata_keep(Safetensors *st, json_t *meta) {
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        if (!json_is_string(v)) continue;
        st->meta_keys = xrealloc(st->meta_keys, (size_t)(st->n_meta + 1) * sizeof(char *));
        st->meta_values = xrealloc(st->meta_values, (size_t)(st->n_meta + 1) * sizeof(char *));
        st->meta_keys[st->n_meta] = xstrdup(key);
        st->meta_values[st->n_meta++] = xstrdup(json_string_value(v));
    }
}

typedef struct { uint64_t begin, end; int index; } Range;

static int range_cmp(const void *a, const void *b) {
    const Range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

// No two non-empty tensors of one file may share a byte.
static bool overlap_check(const Safetensors *st, int first, const char *path, char *err,
                          int err_len) {
    int n = 0;
    Range *r = xmalloc((size_t)(st->n_tensors - first + 1) * sizeof *r);
    for (int i = first; i < st->n_tensors; i++)
        if (st->tensors[i].end > st->tensors[i].begin)
            r[n++] = (Range){st->tensors[i].begin, st->tensors[i].end, i};
    qsort(r, (size_t)n, sizeof *r, range_cmp);
    bool ok = true;
    for (int i = 1; ok && i < n; i++)
        if (r[i].begin < r[i - 1].end) {
            const SafetensorsTensor *a = &st->tensors[r[i - 1].index];
            const SafetensorsTensor *b = &st->tensors[r[i].index];
            snprintf(err, err_len, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap "
                     "in the data section: corrupt file", path, a->name,
                     (unsigned long long)a->begin, (unsigned long long)a->end, b->name,
                     (unsigned long long)b->begin, (unsigned long long)b->end);
            ok = false;
        }
    free(r);
    return ok;
}

// Opens one .safetensors file and appends its tensors.
static bool file_open(Safetensors *st, const char *path, char *err, int err_len) {
    st->files = xrealloc(st->files, (size_t)(st->n_files + 1) * sizeof *st->files);
    SafetensorsFile *f = &st->files[st->n_files];
    *f = (SafetensorsFile){.path = xstrdup(path), .fd = -1};
    int file_index = st->n_files++;
    json_t *root = NULL;
    if (!header_load(f, &root, err, err_len)) return false;
    int first = st->n_tensors;
    bool ok = true;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!ok) break;
        if (strcmp(key, "__metadata__") == 0) {
            if (file_index == 0 && json_is_object(v)) metadata_keep(st, v);
            continue;
        }
        st->tensors = xrealloc(st->tensors, (size_t)(st->n_tensors + 1) * sizeof *st->tensors);
        SafetensorsTensor *t = &st->tensors[st->n_tensors++];
        *t = (SafetensorsTensor){.name = xstrdup(key), .file = file_index};
        ok = entry_parse(f, v, t, err, err_len);
    }
    json_decref(root);
    return ok && overlap_check(st, first, path, err, err_len);
}

// ---- the name index ----------------------------------------------------------------

typedef struct { const char *name; int index; } NameRef;

static int nameref_cmp(const void *a, const void *b) {
    return strcmp(((const NameRef *)a)->name, ((const NameRef *)b)->name);
}

// Sorts tensor names for lookup; a name in two files is an error.
static bool names_index(Safetensors *st, char *err, int err_len) {
    NameRef *r = xmalloc((size_t)(st->n_tensors + 1) * sizeof *r);
    for (int i = 0; i < st->n_tensors; i++) r[i] = (NameRef){st->tensors[i].name, i};
    qsort(r, (size_t)st->n_tensors, sizeof *r, nameref_cmp);
    st->by_name = xmalloc((size_t)(st->n_tensors + 1) * sizeof(int));
    bool ok = true;
    for (int i = 0; i < st->n_tensors; i++) {
        st->by_name[i] = r[i].index;
        if (ok && i > 0 && strcmp(r[i].name, r[i - 1].name) == 0) {
            snprintf(err, err_len, "%s: tensor '%s' appears in both %s and %s", st->path,
                     r[i].name, st->files[st->tensors[r[i - 1].index].file].path,
                     st->files[st->tensors[r[i].index].file].path);
            ok = false;
        }
    }
    free(r);
    return ok;
}

const SafetensorsTensor *safetensors_find(const Safetensors *st, const char *name) {
    int lo = 0, hi = st->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const SafetensorsTensor *t = &st->tensors[st->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *safetensors_metadata(const Safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

// ---- a model split over several files ------------------------------------------------

static int file_index_of(const Safetensors *st, const char *path) {
    for (int i = 0; i < st->n_files; i++)
        if (strcmp(st->files[i].path, path) == 0) return i;
    return -1;
}

// Opens every file the weight map names (files in first-mention order).
static bool index_files_open(Safetensors *st, const char *dir, json_t *map, char *err,
                             int err_len) {
    const char *name;
    json_t *v;
    json_object_foreach(map, name, v) {
        if (!json_is_string(v) || !json_string_value(v)[0]) {
            snprintf(err, err_len, "%s: weight_map entry '%s' is not a file name", st->path, name);
            return false;
        }
        char *p = path_join(dir, json_string_value(v));
        bool ok = file_index_of(st, p) >= 0 || file_open(st, p, err, err_len);
        free(p);
        if (!ok) return false;
    }
    return true;
}

// Every tensor the weight map names must be in the file it names.
static bool index_map_check(const Safetensors *st, const char *dir, json_t *map, char *err,
                            int err_len) {
    const char *name;
    json_t *v;
    json_object_foreach(map, name, v) {
        char *p = path_join(dir, json_string_value(v));
        const SafetensorsTensor *t = safetensors_find(st, name);
        bool ok = t && t->file == file_index_of(st, p);
        if (!ok)
            snprintf(err, err_len, "%s: weight_map puts tensor '%s' in %s, but %s", st->path,
                     name, p, t ? "it is in another file" : "no file holds it");
        free(p);
        if (!ok) return false;
    }
    return true;
}

static bool index_open(Safetensors *st, const char *index_path, char *err, int err_len) {
    json_error_t je;
    if (!file_kind_check(index_path, "a safetensors index", err, err_len)) return false;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, err_len, "%s: not a readable JSON file (%s, line %d)", index_path, je.text,
                 je.line);
        return false;
    }
    json_t *map = json_object_get(root, "weight_map");
    bool ok = json_is_object(map) && json_object_size(map) > 0;
    if (!ok)
        snprintf(err, err_len, "%s: no \"weight_map\" object: not a safetensors index",
                 index_path);
    char dir[4096];
    path_parent(index_path, dir, sizeof dir);
    ok = ok && index_files_open(st, dir, map, err, err_len) &&
         names_index(st, err, err_len) && index_map_check(st, dir, map, err, err_len);
    json_decref(root);
    return ok;
}

// ---- open / close ------------------------------------------------------------------

static bool path_exists(const char *path) { return access(path, F_OK) == 0; }

static bool dir_open(Safetensors *st, const char *dir, char *err, int err_len) {
    char *single = path_join(dir, "model.safetensors");
    char *index = path_join(dir, "model.safetensors.index.json");
    bool ok;
    if (path_exists(single))
        ok = file_open(st, single, err, err_len) && names_index(st, err, err_len);
    else if (path_exists(index)) ok = index_open(st, index, err, err_len);
    else {
        snprintf(err, err_len, "%s: holds neither model.safetensors nor "
                 "model.safetensors.index.json", dir);
        ok = false;
    }
    free(single);
    free(index);
    return ok;
}

bool safetensors_open(const char *path, Safetensors *st, char *err, int err_len) {
    memset(st, 0, sizeof *st);
    st->path = xstrdup(path);
    struct stat sb;
    bool ok;
    if (stat(path, &sb) != 0) {
        snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno));
        ok = false;
    } else if (S_ISDIR(sb.st_mode)) ok = dir_open(st, path, err, err_len);
    else if (ends_with(path, ".json")) ok = index_open(st, path, err, err_len);
    else ok = file_open(st, path, err, err_len) && names_index(st, err, err_len);
    if (!ok) safetensors_close(st);
    return ok;
}

void safetensors_close(Safetensors *st) {
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].fd >= 0) close(st->files[i].fd);
        free(st->files[i].path);
    }
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->files);
    free(st->tensors);
    free(st->by_name);
    free(st->path);
    memset(st, 0, sizeof *st);
}

// ---- reads ---------------------------------------------------------------------------

// The tensor, if it exists, is readable as fp32 and has the expected shape.
static const SafetensorsTensor *tensor_for_read(const Safetensors *st, const char *name,
                                                int ndim, const int64_t *shape, char *err,
                                                int err_len) {
    const SafetensorsTensor *t = safetensors_find(st, name);
    char have[160], want[160];
    if (!t) {
        snprintf(err, err_len, "%s: no tensor named '%s'", st->path, name);
        return NULL;
    }
    const char *path = st->files[t->file].path;
    if (t->dtype == SAFETENSORS_OTHER) {
        snprintf(err, err_len, "%s: tensor '%s' has dtype %s; only F32, BF16 and F16 tensors "
                 "can be read", path, name, t->dtype_name);
        return NULL;
    }
    bool same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i];
    if (!same) {
        if (ndim < 0 || ndim > SAFETENSORS_MAX_DIMS) ndim = 0;
        snprintf(err, err_len, "%s: tensor '%s' has shape %s, expected %s", path, name,
                 shape_format(t->ndim, t->shape, have, sizeof have),
                 shape_format(ndim, shape, want, sizeof want));
        return NULL;
    }
    return t;
}

typedef struct {
    const Safetensors *st;
    const SafetensorsTensor *t;
    unsigned char *buf;   // staging for raw bytes
    size_t cap;           // its size in elements
} TensorReader;

static void reader_init(TensorReader *r, const Safetensors *st, const SafetensorsTensor *t,
                        int64_t max_elems) {
    size_t es = (size_t)dtype_bytes(t->dtype);
    r->st = st;
    r->t = t;
    r->cap = READ_CHUNK / es;
    if ((uint64_t)max_elems < r->cap) r->cap = max_elems > 0 ? (size_t)max_elems : 1;
    r->buf = xmalloc(r->cap * es);
}

// Elements [first, first + count) of the tensor, in storage order, as fp32.
static bool reader_get(TensorReader *r, int64_t first, int64_t count, float *out, char *err,
                       int err_len) {
    const SafetensorsFile *f = &r->st->files[r->t->file];
    size_t es = (size_t)dtype_bytes(r->t->dtype);
    for (int64_t done = 0; done < count;) {
        size_t n = (size_t)(count - done) < r->cap ? (size_t)(count - done) : r->cap;
        uint64_t off = f->data_start + r->t->begin + (uint64_t)(first + done) * es;
        int e = pread_full(f->fd, r->buf, n * es, off);
        if (e) {
            snprintf(err, err_len, "%s: reading tensor '%s' failed: %s", f->path, r->t->name,
                     e == EIO ? "the file ended early (truncated since it was opened?)"
                              : strerror(e));
            return false;
        }
        convert_to_f32(r->t->dtype, r->buf, out + done, n);
        done += (int64_t)n;
    }
    return true;
}

bool safetensors_read(const Safetensors *st, const char *name, int ndim, const int64_t *shape,
                      float *out, char *err, int err_len) {
    const SafetensorsTensor *t = tensor_for_read(st, name, ndim, shape, err, err_len);
    if (!t) return false;
    TensorReader r;
    reader_init(&r, st, t, t->numel);
    bool ok = reader_get(&r, 0, t->numel, out, err, err_len);
    free(r.buf);
    return ok;
}

static bool block_check(const Safetensors *st, const SafetensorsTensor *t, int64_t r0,
                        int64_t nr, int64_t c0, int64_t nc, char *err, int err_len) {
    const char *path = st->files[t->file].path;
    char sh[160];
    if (t->ndim != 1 && t->ndim != 2) {
        snprintf(err, err_len, "%s: tensor '%s' has %d dimensions; blocks can be read only from "
                 "1-D and 2-D tensors", path, t->name, t->ndim);
        return false;
    }
    int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
    if (r0 < 0 || nr < 0 || c0 < 0 || nc < 0 || r0 > rows - nr || c0 > cols - nc) {
        snprintf(err, err_len, "%s: block rows [%lld, %lld) x cols [%lld, %lld) lies outside "
                 "tensor '%s' of shape %s", path, (long long)r0, (long long)(r0 + nr),
                 (long long)c0, (long long)(c0 + nc), t->name,
                 shape_format(t->ndim, t->shape, sh, sizeof sh));
        return false;
    }
    return true;
}

bool safetensors_read_block(const Safetensors *st, const char *name, int ndim,
                            const int64_t *shape, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                            float *out, char *err, int err_len) {
    const SafetensorsTensor *t = tensor_for_read(st, name, ndim, shape, err, err_len);
    if (!t || !block_check(st, t, r0, nr, c0, nc, err, err_len)) return false;
    int64_t cols = t->ndim == 2 ? t->shape[1] : 1;
    TensorReader r;
    bool ok = true;
    if (nc == cols) {   // whole rows: one contiguous range
        reader_init(&r, st, t, nr * nc);
        ok = reader_get(&r, r0 * cols, nr * nc, out, err, err_len);
    } else {            // a column block: one range per row
        reader_init(&r, st, t, nc);
        for (int64_t i = 0; ok && i < nr; i++)
            ok = reader_get(&r, (r0 + i) * cols + c0, nc, out + i * nc, err, err_len);
    }
    free(r.buf);
    return ok;
}
