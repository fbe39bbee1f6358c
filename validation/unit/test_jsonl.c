// The corpus reader: byte ranges tile a file at line boundaries, the work
// split reads every document once and in order for any rank count, .zst
// equals plain, source tags, empty documents, bad records named by file and
// line (also from a range that starts mid-file), --skip-bad, long lines.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "check.h"
#include "text/corpus_files.h"
#include "core/hashmap.h"
#include "text/jsonl.h"
#include "tokenize/work_split.h"

static char dir[] = "/tmp/llama-test-jsonl-XXXXXX";

static char *fixture(const char *name, const char *data, size_t len) {
    static char path[8][512];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    return p;
}

// Records of a range, as (hash of text ^ source, offset) pairs appended to out.
typedef struct {
    uint64_t *v;
    size_t n;
} Recs;

static int read_range(const char *path, int64_t b, int64_t e, const JsonlOptions *o, Recs *out,
                      char *err, int err_len) {
    JsonlReader *r = jsonl_open(path, b, e, o, err, err_len);
    if (!r) return -1;
    JsonlRecord rec;
    int s;
    while ((s = jsonl_next(r, &rec, err, err_len)) == 1) {
        out->v = realloc(out->v, (out->n + 2) * sizeof *out->v);
        out->v[out->n++] = hash_bytes(rec.text, rec.len) ^ hash_bytes(rec.source, strlen(rec.source));
        out->v[out->n++] = (uint64_t)rec.offset;
    }
    jsonl_close(r);
    return s;
}

static bool same(const Recs *a, const Recs *b) {
    return a->n == b->n && memcmp(a->v, b->v, a->n * sizeof *a->v) == 0;
}

static const char *FILES[] = {"inputs/redpajama-mini/c4_sample.jsonl",
                              "inputs/redpajama-mini/github_sample.jsonl",
                              "inputs/redpajama-mini/wikipedia_sample.jsonl"};

static void test_ranges_tile(void) {
    check_begin("jsonl_byte_ranges_tile_a_file");
    char err[1024];
    Recs whole = {0};
    read_range(FILES[1], 0, -1, NULL, &whole, err, sizeof err);
    CHECK(whole.n == 2 * 180, "github_sample: %zu records, want 180", whole.n / 2);
    FILE *f = fopen(FILES[1], "rb");
    fseek(f, 0, SEEK_END);
    int64_t size = ftell(f);
    fclose(f);
    uint64_t seed = 7;
    for (int trial = 0; trial < 12; trial++) {
        int k = 1 + trial % 9;
        int64_t cut[11];
        cut[0] = 0;
        for (int i = 1; i < k; i++) {
            seed = seed * 6364136223846793005ULL + 1;
            cut[i] = (int64_t)((seed >> 20) % (uint64_t)size);
        }
        for (int i = 1; i < k; i++)  // sort the cut points
            for (int j = i; j > 1 && cut[j] < cut[j - 1]; j--) {
                int64_t t = cut[j]; cut[j] = cut[j - 1]; cut[j - 1] = t;
            }
        cut[k] = size;
        Recs parts = {0};
        for (int i = 0; i < k; i++) read_range(FILES[1], cut[i], cut[i + 1], NULL, &parts, err, sizeof err);
        CHECK(same(&whole, &parts), "trial %d with %d ranges: %zu records, whole file %zu", trial,
              k, parts.n / 2, whole.n / 2);
        free(parts.v);
    }
    free(whole.v);
    check_end();
}

static char *compress_file(const char *path, size_t *zlen, int frames) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *raw = malloc(n);
    if (fread(raw, 1, n, f) != n) n = 0;
    fclose(f);
    char *z = malloc(ZSTD_compressBound(n) * 2 + 64);
    size_t half = frames > 1 ? n / 2 : n;
    while (frames > 1 && half < n && raw[half - 1] != '\n') half++;  // a frame per half
    *zlen = ZSTD_compress(z, ZSTD_compressBound(n), raw, half, 3);
    if (half < n) *zlen += ZSTD_compress(z + *zlen, ZSTD_compressBound(n), raw + half, n - half, 3);
    free(raw);
    return z;
}

static void test_zst(void) {
    check_begin("jsonl_zst_equals_plain");
    char err[1024];
    for (int frames = 1; frames <= 2; frames++) {
        size_t zlen;
        char *z = compress_file(FILES[0], &zlen, frames);
        char *path = fixture("c4_sample.jsonl.zst", z, zlen);
        Recs a = {0}, b = {0};
        int s1 = read_range(FILES[0], 0, -1, NULL, &a, err, sizeof err);
        int s2 = read_range(path, 0, -1, NULL, &b, err, sizeof err);
        CHECK(s1 == 0 && s2 == 0 && same(&a, &b) && a.n == 2 * 746, "%d frame(s): %zu records "
              "from .zst, %zu plain (%s)", frames, b.n / 2, a.n / 2, s2 ? err : "");
        free(a.v), free(b.v);
        if (frames == 2) {  // cut inside the second frame: truncated
            char *cut = fixture("cut.jsonl.zst", z, zlen - 100);
            Recs c = {0};
            int s3 = read_range(cut, 0, -1, NULL, &c, err, sizeof err);
            CHECK(s3 < 0 && strstr(err, "truncated") && strstr(err, cut), "truncated .zst: %s",
                  s3 < 0 ? err : "no error");
            free(c.v);
        }
        free(z);
    }
    char *junk = fixture("junk.jsonl.zst", "this is not zstd data\n", 22);
    Recs d = {0};
    CHECK(read_range(junk, 0, -1, NULL, &d, err, sizeof err) < 0 && strstr(err, "zstd"),
          "not-zstd data: %s", err);
    free(d.v);
    check_end();
}

static void test_work_split(void) {
    check_begin("work_split_reads_every_document_once_in_order");
    char err[1024];
    size_t zlen;
    char *z = compress_file(FILES[0], &zlen, 1);
    char *inputs[4] = {(char *)FILES[1], fixture("c4.jsonl.zst", z, zlen), (char *)FILES[2],
                       (char *)FILES[0]};
    free(z);
    CorpusFiles c;
    CHECK(corpus_files_expand(inputs, 4, &c, err, sizeof err), "%s", err);
    Recs one = {0};
    WorkRange w[8];
    for (int ranks = 1; ranks <= 5; ranks++) {
        Recs all = {0};
        for (int r = 0; r < ranks; r++) {
            int n = work_split(&c, r, ranks, w);
            for (int i = 0; i < n; i++)
                read_range(c.files[w[i].file].path, w[i].begin, w[i].end, NULL, &all, err, sizeof err);
        }
        if (ranks == 1) one = all;
        else {
            CHECK(same(&one, &all), "%d ranks read %zu records, 1 rank %zu", ranks, all.n / 2,
                  one.n / 2);
            free(all.v);
        }
    }
    CHECK(one.n == 2 * (180 + 746 + 130 + 746), "1 rank: %zu records", one.n / 2);
    free(one.v);
    corpus_files_free(&c);
    check_end();
}

static const char BAD[] =
    "{\"text\": \"one\", \"meta\": {\"redpajama_set_name\": \"RedPajamaC4\", \"source\": \"x\"}}\n"
    "\n"
    "{\"text\": \"two\", \"meta\": {\"source\": \"github\"}}\r\n"
    "{\"text\": \"\"}\n"
    "this is not json\n"
    "{\"txt\": \"no text field\"}\n"
    "{\"text\": 42}\n"
    "[1, 2]\n"
    "{\"text\": \"bad \xff utf8\"}\n"
    "{\"text\": \"three\"}";

static void test_records(void) {
    check_begin("jsonl_sources_empty_and_bad_records");
    char err[1024];
    char *path = fixture("mixed.jsonl", BAD, sizeof BAD - 1);
    JsonlOptions skip = {NULL, 0, true};
    JsonlReader *r = jsonl_open(path, 0, -1, &skip, err, sizeof err);
    JsonlRecord rec;
    const char *want_text[] = {"one", "two", "three"};
    const char *want_src[] = {"RedPajamaC4", "github", "mixed"};
    int n = 0, s;
    while ((s = jsonl_next(r, &rec, err, sizeof err)) == 1) {
        CHECK(n < 3 && rec.len == strlen(want_text[n]) && memcmp(rec.text, want_text[n], rec.len) == 0 &&
              strcmp(rec.source, want_src[n]) == 0, "record %d: '%.*s' from %s", n,
              (int)rec.len, rec.text, rec.source);
        n++;
    }
    const JsonlCounts *k = jsonl_counts(r);
    CHECK(s == 0 && n == 3 && k->records == 3 && k->bad == 5 && k->empty == 1,
          "--skip-bad: %d records, %lld bad, %lld empty", n, (long long)k->bad, (long long)k->empty);
    jsonl_close(r);
    // Without skip_bad: the first bad record (line 5) is an error naming it.
    const char *want[] = {":5: not valid JSON", ":6: no \"text\" field", ":7: the \"text\" field is a number",
                          ":8: the line is an array", ":9: invalid UTF-8"};
    for (int bad = 0; bad < 5; bad++) {
        // Start each read just past the previous bad line: the line number must
        // still count from the start of the file.
        const char *line = BAD;
        for (int i = 0; i < 4 + bad; i++) line = strchr(line, '\n') + 1;
        r = jsonl_open(path, line - BAD - 2, -1, NULL, err, sizeof err);
        while ((s = jsonl_next(r, &rec, err, sizeof err)) == 1) {}
        CHECK(s < 0 && strstr(err, path) && strstr(err, want[bad]), "bad record %d: '%s'", bad, err);
        jsonl_close(r);
    }
    check_end();
}

static void test_long_lines(void) {
    check_begin("jsonl_long_line_is_bounded");
    char err[1024];
    size_t big = 3 << 20;
    char *data = malloc(big + 200);
    size_t n = (size_t)sprintf(data, "{\"text\": \"");
    memset(data + n, 'a', big);
    n += big;
    n += (size_t)sprintf(data + n, "\"}\n{\"text\": \"after\"}\n");
    char *path = fixture("long.jsonl", data, n);
    free(data);
    JsonlOptions small = {NULL, 1 << 20, false}, skip = {NULL, 1 << 20, true};
    Recs a = {0};
    int s = read_range(path, 0, -1, &small, &a, err, sizeof err);
    CHECK(s < 0 && strstr(err, ":1: the line is longer than --max-record-bytes"), "limit: %s", err);
    JsonlReader *r = jsonl_open(path, 0, -1, &skip, err, sizeof err);
    JsonlRecord rec;
    s = jsonl_next(r, &rec, err, sizeof err);
    CHECK(s == 1 && rec.len == 5 && jsonl_counts(r)->bad == 1, "skip the long line, read the next");
    jsonl_close(r);
    r = jsonl_open(path, 0, -1, NULL, err, sizeof err);  // the default limit takes it
    s = jsonl_next(r, &rec, err, sizeof err);
    CHECK(s == 1 && rec.len == big, "default limit: %zu bytes", s == 1 ? rec.len : 0);
    jsonl_close(r);
    free(a.v);
    check_end();
}

static void test_missing(void) {
    check_begin("jsonl_unreadable_file");
    char err[1024];
    CHECK(!jsonl_open("/nonexistent/x.jsonl", 0, -1, NULL, err, sizeof err) &&
          strstr(err, "/nonexistent/x.jsonl"), "message: %s", err);
    char *inputs[1] = {"/nonexistent/dir"};
    CorpusFiles c;
    CHECK(!corpus_files_expand(inputs, 1, &c, err, sizeof err) && strstr(err, "/nonexistent/dir"),
          "expand: %s", err);
    check_end();
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    test_ranges_tile();
    test_zst();
    test_work_split();
    test_records();
    test_long_lines();
    test_missing();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);
    return check_exit_code();
}
