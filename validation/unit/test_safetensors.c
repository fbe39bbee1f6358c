// safetensors reader and writer: the golden file written by the reference
// implementation (validation/reference/make_safetensors_golden.py), sub-block
// reads, C writer -> C reader round trips, a model split over files, and bad
// files generated from the golden one (each must give its own clear error),
// sub-byte dtypes that do not fill whole bytes.
#include <ftw.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bf16.h"
#include "check.h"
#include "hf/safetensors.h"

#define GOLDEN_DIR "validation/golden/safetensors"
#define GOLDEN GOLDEN_DIR "/golden.safetensors"

static char tmpdir[64];
static char err[1024];

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// "<tmpdir>/<name>" in a static buffer (one of 4, so a few can be live at once).
static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

// A failure whose message contains `want`.
#define CHECK_FAILS(ok, want)                                                              \
    do {                                                                                   \
        bool ok_ = (ok);                                                                   \
        CHECK(!ok_, "succeeded, expected an error containing '%s'", (want));               \
        CHECK(ok_ || strstr(err, (want)), "message '%s' lacks '%s'", err, (want));         \
        if (!ok_ && getenv("SHOW_ERRORS")) printf("  error: %s\n", err);                  \
    } while (0)

// ---- the expected values file ----------------------------------------------------

typedef struct {
    char name[64], dtype[8];
    int ndim;
    int64_t shape[4];
    int64_t numel;
    uint32_t *bits;   // expected fp32 bit patterns
} Expected;

static Expected expected[32];
static int n_expected;

static bool expected_load(void) {
    FILE *f = fopen(GOLDEN_DIR "/expected.txt", "r");
    if (!f) return false;
    char line[256];
    if (!fgets(line, sizeof line, f)) line[0] = 0;   // the comment line
    Expected e;
    while (n_expected < 32 && fscanf(f, "%63s %7s %d", e.name, e.dtype, &e.ndim) == 3) {
        e.numel = 1;
        for (int d = 0; d < e.ndim; d++) {
            long long v = 0;
            if (fscanf(f, "%lld", &v) != 1) v = 0;
            e.shape[d] = v;
            e.numel *= v;
        }
        e.bits = calloc((size_t)e.numel + 1, sizeof *e.bits);
        for (int64_t i = 0; i < e.numel; i++)
            if (fscanf(f, "%x", &e.bits[i]) != 1) e.bits[i] = 0xdeadbeef;
        expected[n_expected++] = e;
    }
    fclose(f);
    return n_expected > 0;
}

static const Expected *expected_find(const char *name) {
    for (int i = 0; i < n_expected; i++)
        if (strcmp(expected[i].name, name) == 0) return &expected[i];
    return NULL;
}

// ---- golden file ---------------------------------------------------------------------

static void test_golden_open(void) {
    check_begin("safetensors_golden_open");
    Safetensors st;
    bool ok = safetensors_open(GOLDEN, &st, err, sizeof err);
    CHECK(ok, "%s", err);
    if (ok) {
        CHECK(st.n_tensors == 12, "%d tensors, expected 12", st.n_tensors);
        const char *fmt = safetensors_metadata(&st, "format");
        CHECK(fmt && strcmp(fmt, "pt") == 0, "metadata format is %s", fmt ? fmt : "absent");
        const SafetensorsTensor *t = safetensors_find(&st, "bf16.matrix");
        CHECK(t && t->dtype == SAFETENSORS_BF16 && t->ndim == 2 && t->shape[0] == 4 &&
              t->shape[1] == 9, "bf16.matrix described wrongly");
        t = safetensors_find(&st, "i64.ids");
        CHECK(t && t->dtype == SAFETENSORS_OTHER && strcmp(t->dtype_name, "I64") == 0,
              "i64.ids dtype not recognised");
        CHECK(!safetensors_find(&st, "nope"), "found a tensor that is not there");
        safetensors_close(&st);
    }
    check_end();
}

// Every float tensor, whole, bit-exact.
static void test_golden_values(void) {
    check_begin("safetensors_golden_values");
    Safetensors st;
    bool ok = safetensors_open(GOLDEN, &st, err, sizeof err);
    CHECK(ok, "%s", err);
    for (int i = 0; ok && i < n_expected; i++) {
        const Expected *e = &expected[i];
        float *out = malloc(((size_t)e->numel + 1) * sizeof *out);
        bool r = safetensors_read(&st, e->name, e->ndim, e->shape, out, err, sizeof err);
        CHECK(r, "%s: %s", e->name, err);
        for (int64_t k = 0; r && k < e->numel; k++)
            CHECK(bits_of(out[k]) == e->bits[k], "%s[%lld] = %08x, expected %08x", e->name,
                  (long long)k, bits_of(out[k]), e->bits[k]);
        free(out);
    }
    if (ok) safetensors_close(&st);
    check_end();
}

// One block read against the expected values.
static void block_compare(const Safetensors *st, const Expected *e, int64_t r0, int64_t nr,
                          int64_t c0, int64_t nc, float *out) {
    int64_t cols = e->ndim == 2 ? e->shape[1] : 1;
    bool r = safetensors_read_block(st, e->name, e->ndim, e->shape, r0, nr, c0, nc, out, err,
                                    sizeof err);
    CHECK(r, "%s: %s", e->name, err);
    for (int64_t i = 0; r && i < nr; i++)
        for (int64_t j = 0; j < nc; j++) {
            uint32_t want = e->bits[(r0 + i) * cols + c0 + j];
            CHECK(bits_of(out[i * nc + j]) == want, "%s block r0 %lld c0 %lld: [%lld, %lld] = "
                  "%08x, expected %08x", e->name, (long long)r0, (long long)c0, (long long)i,
                  (long long)j, bits_of(out[i * nc + j]), want);
        }
}

// Every sub-block of every 1-D and 2-D tensor.
static void test_golden_blocks(void) {
    check_begin("safetensors_golden_blocks");
    Safetensors st;
    bool ok = safetensors_open(GOLDEN, &st, err, sizeof err);
    CHECK(ok, "%s", err);
    float out[256];
    for (int i = 0; ok && i < n_expected; i++) {
        const Expected *e = &expected[i];
        if (e->ndim < 1 || e->ndim > 2 || e->numel > 256) continue;
        int64_t rows = e->shape[0], cols = e->ndim == 2 ? e->shape[1] : 1;
        for (int64_t r0 = 0; r0 <= rows; r0++)
            for (int64_t nr = 0; r0 + nr <= rows; nr++)
                for (int64_t c0 = 0; c0 <= cols; c0++)
                    for (int64_t nc = 0; c0 + nc <= cols; nc++)
                        block_compare(&st, e, r0, nr, c0, nc, out);
    }
    if (ok) safetensors_close(&st);
    check_end();
}

static void test_golden_refusals(void) {
    check_begin("safetensors_read_refusals");
    Safetensors st;
    bool ok = safetensors_open(GOLDEN, &st, err, sizeof err);
    CHECK(ok, "%s", err);
    float out[64];
    if (ok) {
        CHECK_FAILS(safetensors_read(&st, "i64.ids", 1, (int64_t[]){3}, out, err, sizeof err),
                    "tensor 'i64.ids' has dtype I64; only F32, BF16 and F16");
        CHECK_FAILS(safetensors_read(&st, "f32.matrix", 2, (int64_t[]){3, 5}, out, err,
                                     sizeof err),
                    "golden.safetensors: tensor 'f32.matrix' has shape [5, 3], expected [3, 5]");
        CHECK_FAILS(safetensors_read(&st, "f32.matrix", 1, (int64_t[]){15}, out, err, sizeof err),
                    "has shape [5, 3], expected [15]");
        CHECK_FAILS(safetensors_read(&st, "model.norm.weight", 1, (int64_t[]){8}, out, err,
                                     sizeof err),
                    "no tensor named 'model.norm.weight'");
        CHECK_FAILS(safetensors_read_block(&st, "f16.cube", 3, (int64_t[]){2, 3, 2}, 0, 1, 0, 1,
                                           out, err, sizeof err),
                    "blocks can be read only from 1-D and 2-D");
        CHECK_FAILS(safetensors_read_block(&st, "f32.matrix", 2, (int64_t[]){5, 3}, 4, 2, 0, 3,
                                           out, err, sizeof err),
                    "block rows [4, 6) x cols [0, 3) lies outside tensor 'f32.matrix'");
        CHECK_FAILS(safetensors_read_block(&st, "f32.vector", 1, (int64_t[]){7}, 0, 7, 0, 2,
                                           out, err, sizeof err),
                    "lies outside");
        safetensors_close(&st);
    }
    check_end();
}

// bf16_from_f32 agrees bit for bit with PyTorch's rounding (rne.src -> rne.bf16).
static void test_bf16_matches_torch(void) {
    check_begin("bf16_rounding_matches_reference");
    const Expected *src = expected_find("rne.src"), *ref = expected_find("rne.bf16");
    CHECK(src && ref && src->numel == ref->numel, "rne tensors missing from expected.txt");
    for (int64_t i = 0; src && ref && i < src->numel; i++) {
        uint32_t mine = (uint32_t)bf16_from_f32(float_of(src->bits[i])) << 16;
        CHECK(mine == ref->bits[i], "bf16(%08x) = %08x, reference %08x", src->bits[i], mine,
              ref->bits[i]);
    }
    check_end();
}

static void test_bf16_nan(void) {
    check_begin("bf16_nan_and_specials");
    CHECK(bf16_from_f32(float_of(0x7f800001)) == 0x7fc0, "signalling NaN must stay NaN (quiet)");
    CHECK(bf16_from_f32(float_of(0xffc12345)) == 0xffc1, "-NaN lost sign or payload");
    CHECK(bf16_from_f32(float_of(0x7fa00000)) == 0x7fe0, "NaN payload top bits lost");
    CHECK(bf16_from_f32(float_of(0x7f800000)) == 0x7f80, "inf");
    CHECK(bf16_from_f32(-0.0f) == 0x8000, "-0");
    CHECK(bits_of(bf16_to_f32(0x3f80)) == 0x3f800000, "1.0");
    CHECK(bf16_round(1.0f + 0x1p-8f) == 1.0f, "tie to even (down)");
    CHECK(bf16_round(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f, "tie to even (up)");
    check_end();
}

// ---- writer round trips ------------------------------------------------------------

static float sample_value(int64_t i, int salt) {
    static const uint32_t specials[] = {0x00000000, 0x80000000, 0x7f800000, 0xff800000,
                                        0x7fc00000, 0x00000001, 0x7f7fffff, 0x3f808000};
    if (i < 8 && salt == 0) return float_of(specials[i]);
    return (float)((i * 7919 + salt * 104729) % 20011 - 10005) / 97.0f;
}

typedef struct {
    const char *name;
    SafetensorsDtype dtype;
    int ndim;
    int64_t shape[3];
} Decl;

static int64_t decl_numel(const Decl *d) {
    int64_t n = 1;
    for (int i = 0; i < d->ndim; i++) n *= d->shape[i];
    return n;
}

// Writes every decl (values from sample_value), tensors put in reverse order.
static bool write_decls(const char *path, const Decl *d, int n) {
    SafetensorsWriter *w = safetensors_writer_create(path, err, sizeof err);
    bool ok = w != NULL;
    for (int i = 0; ok && i < n; i++)
        ok = safetensors_writer_declare(w, d[i].name, d[i].dtype, d[i].ndim, d[i].shape, err,
                                        sizeof err) == i;
    ok = ok && safetensors_writer_metadata(w, "producer", "test_safetensors", err, sizeof err);
    for (int i = n - 1; ok && i >= 0; i--) {
        int64_t numel = decl_numel(&d[i]);
        float *v = malloc(((size_t)numel + 1) * sizeof *v);
        for (int64_t k = 0; k < numel; k++) v[k] = sample_value(k, i);
        ok = safetensors_writer_put(w, i, v, err, sizeof err);
        free(v);
    }
    if (w) ok = ok ? safetensors_writer_close(w, err, sizeof err)
                   : (safetensors_writer_abort(w), false);
    return ok;
}

// Reads every decl back: F32 bit-exact, BF16 == bf16_round(input) bit-exact.
static void read_decls(const char *path, const Decl *d, int n) {
    Safetensors st;
    bool ok = safetensors_open(path, &st, err, sizeof err);
    CHECK(ok, "%s", err);
    for (int i = 0; ok && i < n; i++) {
        int64_t numel = decl_numel(&d[i]);
        float *v = malloc(((size_t)numel + 1) * sizeof *v);
        bool r = safetensors_read(&st, d[i].name, d[i].ndim, d[i].shape, v, err, sizeof err);
        CHECK(r, "%s", err);
        int bad = 0;
        for (int64_t k = 0; r && k < numel && bad < 3; k++) {
            float in = sample_value(k, i);
            float want = d[i].dtype == SAFETENSORS_BF16 ? bf16_round(in) : in;
            if (bits_of(v[k]) != bits_of(want)) bad++;
            CHECK(bits_of(v[k]) == bits_of(want), "%s[%lld] = %08x, expected %08x", d[i].name,
                  (long long)k, bits_of(v[k]), bits_of(want));
            if (d[i].dtype == SAFETENSORS_BF16 && isfinite(want) && fabsf(in) > 1e-30f)
                CHECK(fabsf(v[k] - in) <= fabsf(in) * 0x1p-8f, "%s[%lld]: %g beyond bf16 "
                      "rounding of %g", d[i].name, (long long)k, v[k], in);
        }
        free(v);
    }
    if (ok) safetensors_close(&st);
}

static void test_roundtrip(void) {
    check_begin("safetensors_roundtrip_f32_bf16");
    const Decl d[] = {
        {"model.embed_tokens.weight", SAFETENSORS_BF16, 2, {13, 8}},   // + odd.bf16: 107 values
        {"model.norm.weight", SAFETENSORS_F32, 1, {7}},
        {"odd.bf16", SAFETENSORS_BF16, 1, {3}},
        {"cube", SAFETENSORS_F32, 3, {2, 3, 5}},
        {"scalar", SAFETENSORS_F32, 0, {0}},
        {"empty", SAFETENSORS_BF16, 2, {0, 4}},
        {"specials.f32", SAFETENSORS_F32, 1, {8}},
        {"lm_head.weight", SAFETENSORS_F32, 2, {5, 11}},
    };
    const char *path = tmp_path("roundtrip.safetensors");
    bool ok = write_decls(path, d, 8);
    CHECK(ok, "%s", err);
    if (ok) read_decls(path, d, 8);
    Safetensors st;
    if (ok && safetensors_open(path, &st, err, sizeof err)) {
        const char *fmt = safetensors_metadata(&st, "format"),
                   *prod = safetensors_metadata(&st, "producer");
        CHECK(fmt && !strcmp(fmt, "pt") && prod && !strcmp(prod, "test_safetensors"),
              "metadata lost");
        for (int i = 0; i < st.n_tensors; i++) {
            const SafetensorsTensor *t = &st.tensors[i];
            CHECK(t->begin % (t->dtype == SAFETENSORS_F32 ? 4 : 2) == 0, "%s misaligned", t->name);
        }
        CHECK((st.files[0].data_start - 8) % 8 == 0, "header length not a multiple of 8");
        safetensors_close(&st);
    }
    CHECK(access(tmp_path("roundtrip.safetensors.tmp"), F_OK) != 0, "temporary file left");
    check_end();
}

// A tensor bigger than the 1 MiB conversion buffers, put in row pieces; blocks read back.
static void test_put_rows_large(void) {
    check_begin("safetensors_put_rows_and_large_blocks");
    const int64_t rows = 1100, cols = 501, n = rows * cols;
    float *v = malloc((size_t)n * sizeof *v), *out = malloc((size_t)n * sizeof *out);
    for (int64_t k = 0; k < n; k++) v[k] = sample_value(k, 3);
    const char *path = tmp_path("large.safetensors");
    SafetensorsWriter *w = safetensors_writer_create(path, err, sizeof err);
    bool ok = w != NULL;
    int a = ok ? safetensors_writer_declare(w, "a", SAFETENSORS_F32, 2, (int64_t[]){rows, cols},
                                            err, sizeof err) : -1;
    int b = ok ? safetensors_writer_declare(w, "b", SAFETENSORS_BF16, 2, (int64_t[]){rows, cols},
                                            err, sizeof err) : -1;
    ok = ok && a == 0 && b == 1;
    for (int64_t r0 = 0; ok && r0 < rows; r0 += 300) {
        int64_t nr = rows - r0 < 300 ? rows - r0 : 300;
        ok = safetensors_writer_put_rows(w, b, r0, nr, v + r0 * cols, err, sizeof err);
    }
    ok = ok && safetensors_writer_put(w, a, v, err, sizeof err);
    if (w) ok = ok ? safetensors_writer_close(w, err, sizeof err)
                   : (safetensors_writer_abort(w), false);
    CHECK(ok, "%s", err);
    Safetensors st;
    if (ok && safetensors_open(path, &st, err, sizeof err)) {
        int64_t shape[2] = {rows, cols};
        // the right half of columns of b (a row-parallel slice), then all of a
        bool r = safetensors_read_block(&st, "b", 2, shape, 0, rows, 250, 251, out, err,
                                        sizeof err);
        CHECK(r, "%s", err);
        for (int64_t i = 0; r && i < rows; i++)
            for (int64_t j = 0; j < 251; j++)
                if (bits_of(out[i * 251 + j]) != bits_of(bf16_round(v[i * cols + 250 + j]))) {
                    CHECK(0, "b[%lld, %lld] wrong", (long long)i, (long long)(250 + j));
                    i = rows;
                    break;
                }
        r = safetensors_read_block(&st, "a", 2, shape, 0, rows, 0, cols, out, err, sizeof err);
        CHECK(r && memcmp(out, v, (size_t)n * sizeof *v) == 0, "a read back wrong: %s", err);
        safetensors_close(&st);
    }
    free(v);
    free(out);
    check_end();
}

static void test_writer_refusals(void) {
    check_begin("safetensors_writer_refusals");
    const char *path = tmp_path("refused.safetensors");
    FILE *f = fopen(path, "w");   // an older file that a failed write must leave alone
    if (f) fputs("old", f), fclose(f);
    float v[8] = {0};
    SafetensorsWriter *w = safetensors_writer_create(path, err, sizeof err);
    CHECK(w, "%s", err);
    if (w) {
        CHECK(safetensors_writer_declare(w, "x", SAFETENSORS_F32, 1, (int64_t[]){8}, err,
                                         sizeof err) == 0, "%s", err);
        CHECK(safetensors_writer_declare(w, "y", SAFETENSORS_BF16, 2, (int64_t[]){2, 4}, err,
                                         sizeof err) == 1, "%s", err);
        CHECK_FAILS(safetensors_writer_declare(w, "x", SAFETENSORS_F32, 1, (int64_t[]){1}, err,
                                               sizeof err) >= 0, "declared twice");
        CHECK_FAILS(safetensors_writer_declare(w, "h", SAFETENSORS_F16, 1, (int64_t[]){1}, err,
                                               sizeof err) >= 0, "only F32 and BF16");
        CHECK_FAILS(safetensors_writer_declare(w, "n", SAFETENSORS_F32, 2, (int64_t[]){2, -4}, err,
                                               sizeof err) >= 0, "tensor 'n': negative dimension");
        CHECK_FAILS(safetensors_writer_put_rows(w, 1, 1, 1, v, err, sizeof err), "out of order");
        CHECK_FAILS(safetensors_writer_put(w, 7, v, err, sizeof err), "no tensor number 7");
        CHECK(safetensors_writer_put(w, 0, v, err, sizeof err), "%s", err);
        // the header is written: metadata would be lost, so it is refused
        CHECK_FAILS(safetensors_writer_metadata(w, "late", "x", err, sizeof err),
                    "cannot add metadata 'late' (tensors are already being written)");
        CHECK_FAILS(safetensors_writer_declare(w, "z", SAFETENSORS_F32, 1, (int64_t[]){1}, err,
                                               sizeof err) >= 0, "before the first put");
        CHECK(safetensors_writer_put_rows(w, 1, 0, 1, v, err, sizeof err), "%s", err);
        CHECK_FAILS(safetensors_writer_close(w, err, sizeof err),
                    "tensor 'y' got 1 of its 2 rows; nothing was written");
    }
    char buf[8] = {0};
    f = fopen(path, "r");
    CHECK(f && fread(buf, 1, 7, f) == 3 && strcmp(buf, "old") == 0, "the old file was touched");
    if (f) fclose(f);
    CHECK(access(tmp_path("refused.safetensors.tmp"), F_OK) != 0, "temporary file left");
    CHECK_FAILS(safetensors_writer_create("/nonexistent-dir/m.safetensors", err, sizeof err),
                "cannot create '/nonexistent-dir/m.safetensors.tmp'");
    check_end();
}

// ---- a model split over two files ------------------------------------------------

static bool index_write(const char *path, const char *extra_name, const char *extra_file) {
    json_t *root = json_pack("{s:{s:i}, s:{s:s, s:s, s:s}}", "metadata", "total_size", 0,
                             "weight_map", "p.a", "part-1.safetensors", "p.b",
                             "part-2.safetensors", "p.c", "part-2.safetensors");
    if (extra_name)
        json_object_set_new(json_object_get(root, "weight_map"), extra_name,
                            json_string(extra_file));
    int r = json_dump_file(root, path, JSON_INDENT(2));
    json_decref(root);
    return r == 0;
}

static void test_index(void) {
    check_begin("safetensors_index_split_model");
    const Decl p1[] = {{"p.a", SAFETENSORS_F32, 2, {3, 4}}};
    const Decl p2[] = {{"p.b", SAFETENSORS_BF16, 1, {5}}, {"p.c", SAFETENSORS_F32, 1, {2}}};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/split", tmpdir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    bool ok = write_decls(tmp_path("split/part-1.safetensors"), p1, 1) &&
              write_decls(tmp_path("split/part-2.safetensors"), p2, 2) &&
              index_write(tmp_path("split/model.safetensors.index.json"), NULL, NULL);
    CHECK(ok, "writing the parts: %s", err);
    Safetensors st;
    if (ok && safetensors_open(dir, &st, err, sizeof err)) {
        CHECK(st.n_files == 2 && st.n_tensors == 3, "%d files, %d tensors", st.n_files,
              st.n_tensors);
        safetensors_close(&st);
        read_decls(tmp_path("split/part-1.safetensors"), p1, 1);
        read_decls(tmp_path("split/model.safetensors.index.json"), p2, 2);   // via the index
    } else CHECK(0, "open: %s", err);
    index_write(tmp_path("split/bad.index.json"), "p.ghost", "part-1.safetensors");
    CHECK_FAILS(safetensors_open(tmp_path("split/bad.index.json"), &st, err, sizeof err),
                "weight_map puts tensor 'p.ghost' in");
    index_write(tmp_path("split/bad2.index.json"), "p.x", "part-9.safetensors");
    CHECK_FAILS(safetensors_open(tmp_path("split/bad2.index.json"), &st, err, sizeof err),
                "part-9.safetensors': No such file");
    index_write(tmp_path("split/bad3.index.json"), "p.c", "part-1.safetensors");
    CHECK_FAILS(safetensors_open(tmp_path("split/bad3.index.json"), &st, err, sizeof err),
                "part-1.safetensors, but it is in another file");
    CHECK_FAILS(safetensors_open(tmpdir, &st, err, sizeof err),
                "holds neither model.safetensors nor model.safetensors.index.json");
    check_end();
}

// ---- bad files generated from the golden one -----------------------------------------

static unsigned char *golden_bytes;
static size_t golden_size;

static bool golden_slurp(void) {
    FILE *f = fopen(GOLDEN, "rb");
    if (!f) return false;
    golden_bytes = malloc(1 << 16);
    golden_size = fread(golden_bytes, 1, 1 << 16, f);
    fclose(f);
    return golden_size > 8;
}

static uint64_t golden_header_len(void) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | golden_bytes[i];
    return n;
}

static void file_put(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(a, 1, na, f);
    if (nb) fwrite(b, 1, nb, f);
    fclose(f);
}

// The golden file with its header JSON edited by `edit`, re-padded to 8 bytes.
static const char *golden_edited(const char *name, void (*edit)(json_t *root)) {
    uint64_t n = golden_header_len();
    json_t *root = json_loadb((const char *)golden_bytes + 8, n, 0, NULL);
    edit(root);
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    unsigned char *h = malloc(8 + padded);
    for (int i = 0; i < 8; i++) h[i] = (unsigned char)(padded >> (8 * i));
    memcpy(h + 8, text, len);
    memset(h + 8 + len, ' ', padded - len);
    const char *path = tmp_path(name);
    file_put(path, h, 8 + padded, golden_bytes + 8 + n, golden_size - 8 - n);
    free(h);
    free(text);
    return path;
}

static void set_offsets(json_t *root, const char *name, long long b, long long e) {
    json_object_set_new(json_object_get(root, name), "data_offsets", json_pack("[I, I]", b, e));
}
static void edit_past_end(json_t *r) { set_offsets(r, "f16.vector", 1456, 1474); }
static void edit_size(json_t *r) { set_offsets(r, "f16.vector", 456, 470); }
static void edit_overlap(json_t *r) { set_offsets(r, "f32.vector", 60, 88); }
static void edit_dtype(json_t *r) {
    json_object_set_new(json_object_get(r, "bf16.vector"), "dtype", json_string("Q7"));
}
static void edit_no_shape(json_t *r) { json_object_del(json_object_get(r, "f32.matrix"), "shape"); }
static void edit_bad_shape(json_t *r) {
    json_object_set_new(json_object_get(r, "f32.matrix"), "shape", json_pack("[i, i]", 5, -3));
}

// Expects safetensors_open(path) to fail with `want` in the message.
static void open_fails(const char *path, const char *want) {
    Safetensors st;
    CHECK_FAILS(safetensors_open(path, &st, err, sizeof err), want);
    CHECK(st.n_tensors == 0 && st.files == NULL, "failed open left state behind");
}

static void test_bad_files(void) {
    check_begin("safetensors_bad_files");
    uint64_t n = golden_header_len();
    const char *p = tmp_path("bad.safetensors");
    file_put(p, golden_bytes, golden_size - 10, NULL, 0);
    open_fails(p, "tensor 'f16.vector' data [456, 474) runs past the end of the data section "
                  "(464 bytes): the file is truncated");
    file_put(p, golden_bytes, 8 + n / 2, NULL, 0);
    open_fails(p, "header of 864 bytes runs past the end of the file (440 bytes): the file is "
                  "truncated");
    file_put(p, golden_bytes, 5, NULL, 0);
    open_fails(p, "file is only 5 bytes, too short for a safetensors file");
    file_put(p, golden_bytes, 0, NULL, 0);
    open_fails(p, "file is only 0 bytes");
    unsigned char *junk = malloc(golden_size);
    memcpy(junk, golden_bytes, golden_size);
    memset(junk + 8, 'x', n);
    file_put(p, junk, golden_size, NULL, 0);
    open_fails(p, "header is not a JSON object");
    uint64_t big = golden_size + 100;
    for (int i = 0; i < 8; i++) junk[i] = (unsigned char)(big >> (8 * i));
    file_put(p, junk, golden_size, NULL, 0);
    open_fails(p, "runs past the end of the file");
    big = 1ull << 40;
    for (int i = 0; i < 8; i++) junk[i] = (unsigned char)(big >> (8 * i));
    file_put(p, junk, golden_size, NULL, 0);
    open_fails(p, "header length 1099511627776 is implausible");
    free(junk);
    open_fails(golden_edited("past.safetensors", edit_past_end),
               "tensor 'f16.vector' data [1456, 1474) runs past the end of the data section");
    open_fails(golden_edited("size.safetensors", edit_size),
               "tensor 'f16.vector' has data_offsets [456, 470) = 14 bytes, but shape [9] of "
               "F16 needs 18 bytes");
    open_fails(golden_edited("overlap.safetensors", edit_overlap), "overlap");
    open_fails(golden_edited("dtype.safetensors", edit_dtype),
               "tensor 'bf16.vector' has unknown dtype 'Q7'");
    open_fails(golden_edited("noshape.safetensors", edit_no_shape),
               "header entry 'f32.matrix' lacks dtype, shape or data_offsets");
    open_fails(golden_edited("badshape.safetensors", edit_bad_shape),
               "tensor 'f32.matrix' has a bad shape");
    open_fails(tmp_path("absent.safetensors"), "No such file or directory");
    check_end();
}

static void test_duplicate_key(void) {
    check_begin("safetensors_bad_duplicate_name");
    const char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    unsigned char len[8] = {0};
    len[0] = (unsigned char)(sizeof hdr - 1);
    unsigned char buf[sizeof hdr + 8 + 8] = {0};
    memcpy(buf, len, 8);
    memcpy(buf + 8, hdr, sizeof hdr - 1);
    const char *p = tmp_path("dup.safetensors");
    file_put(p, buf, 8 + sizeof hdr - 1 + 8, NULL, 0);
    open_fails(p, "duplicate object key");
    check_end();
}

// A one-tensor file of header hdr and nbytes of data.
static const char *one_tensor_file(const char *name, const char *hdr, size_t nbytes) {
    size_t n = strlen(hdr);
    unsigned char *buf = calloc(1, 8 + n + nbytes);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, hdr, n);
    const char *p = tmp_path(name);
    file_put(p, buf, 8 + n + nbytes, NULL, 0);
    free(buf);
    return p;
}

// Sub-byte dtypes (F4, F6_E2M3): the format stores whole bytes, so a shape
// whose bits do not fill them is corrupt (the reference implementation
// refuses it too); one that does is a tensor, recognised but not read.
static void test_sub_byte_dtypes(void) {
    check_begin("safetensors_sub_byte_dtypes");
    open_fails(one_tensor_file("f4odd.safetensors", "{\"q\":{\"dtype\":\"F4\",\"shape\":[3],"
                               "\"data_offsets\":[0,1]}}", 1),
               "tensor 'q' of shape [3] and dtype F4 does not fill whole bytes");
    open_fails(one_tensor_file("f6odd.safetensors", "{\"q\":{\"dtype\":\"F6_E2M3\",\"shape\":"
                               "[2,3],\"data_offsets\":[0,4]}}", 4),
               "tensor 'q' of shape [2, 3] and dtype F6_E2M3 does not fill whole bytes");
    Safetensors st;
    const char *p = one_tensor_file("f4.safetensors", "{\"q\":{\"dtype\":\"F4\",\"shape\":[2,3],"
                                    "\"data_offsets\":[0,3]}}", 3);
    bool ok = safetensors_open(p, &st, err, sizeof err);
    CHECK(ok, "F4 of 6 elements in 3 bytes: %s", err);
    if (ok) {
        const SafetensorsTensor *t = safetensors_find(&st, "q");
        CHECK(t && t->dtype == SAFETENSORS_OTHER && t->numel == 6, "F4 tensor described wrongly");
        safetensors_close(&st);
    }
    check_end();
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/llama-safetensors.XXXXXX");
    if (!mkdtemp(tmpdir) || !expected_load() || !golden_slurp()) {
        printf("FAIL safetensors_setup: need a temp dir and %s (run from the repository root)\n",
               GOLDEN_DIR);
        return 1;
    }
    test_golden_open();
    test_golden_values();
    test_golden_blocks();
    test_golden_refusals();
    test_bf16_matches_torch();
    test_bf16_nan();
    test_roundtrip();
    test_put_rows_large();
    test_writer_refusals();
    test_index();
    test_bad_files();
    test_duplicate_key();
    test_sub_byte_dtypes();
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < n_expected; i++) free(expected[i].bits);
    free(golden_bytes);
    return check_exit_code();
}
