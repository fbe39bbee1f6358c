#include "text/jsonl.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/util.h"

#define READ_CHUNK ((size_t)1 << 20)
#define MAX_WARNINGS 10

struct JsonlReader {
    char *path;
    char stem[256];
    char source[JSONL_SOURCE_MAX + 1];   // a shortened source name (source_name)
    FILE *f;
    bool zst;
    ZSTD_DCtx *dctx;
    ZSTD_inBuffer zin;
    char *zbuf;
    size_t zlast;        // last ZSTD_decompressStream result: 0 = between frames
    bool in_eof;         // the underlying file is exhausted
    uint64_t zbytes;     // compressed bytes read so far
    bool eof;            // no more decompressed bytes
    char *buf;           // unread bytes are buf[lo, hi)
    size_t cap, lo, hi, scanned;
    int64_t buf_offset;  // file offset of buf[lo]
    int64_t begin, end;
    int64_t first_line;  // offset of the range's first line
    int64_t line_base;   // newlines before it; -1 until needed
    int64_t line_index;  // lines of the range started before the current one
    json_t *doc;
    JsonlOptions opt;
    JsonlCounts counts;
    int warnings;
};

bool jsonl_is_zst(const char *path) {
    size_t n = strlen(path);
    return n >= 4 && strcmp(path + n - 4, ".zst") == 0;
}

void jsonl_stem(const char *path, char *out, size_t len) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, len, "%s", base);
    const char *suffixes[] = {".zst", ".jsonl", ".json", ".txt"};
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(out), s = strlen(suffixes[i]);
        if (n > s && strcmp(out + n - s, suffixes[i]) == 0) out[n - s] = 0;
    }
}

// ---- byte sources -------------------------------------------------------------

static int64_t plain_read(JsonlReader *r, char *dst, size_t cap, char *err, int err_len) {
    size_t n = fread(dst, 1, cap, r->f);
    if (n == 0 && ferror(r->f)) {
        snprintf(err, err_len, "%s: read error: %s", r->path, strerror(errno));
        return -1;
    }
    return (int64_t)n;
}

static int64_t zst_read(JsonlReader *r, char *dst, size_t cap, char *err, int err_len) {
    ZSTD_outBuffer out = {dst, cap, 0};
    while (out.pos == 0) {
        if (r->zin.pos == r->zin.size) {
            if (!r->in_eof) {
                size_t n = fread(r->zbuf, 1, ZSTD_DStreamInSize(), r->f);
                if (n == 0 && ferror(r->f)) {
                    snprintf(err, err_len, "%s: read error: %s", r->path, strerror(errno));
                    return -1;
                }
                r->in_eof = n == 0;
                r->zbytes += n;
                r->zin = (ZSTD_inBuffer){r->zbuf, n, 0};
            }
            if (r->zin.pos == r->zin.size && r->zlast == 0) break;  // clean end between frames
        }
        size_t in_before = r->zin.pos;
        size_t ret = ZSTD_decompressStream(r->dctx, &out, &r->zin);
        if (ZSTD_isError(ret)) {
            snprintf(err, err_len, "%s: corrupt zstd data (%s); check or re-download the file",
                     r->path, ZSTD_getErrorName(ret));
            return -1;
        }
        r->zlast = ret;
        if (out.pos == 0 && r->in_eof && r->zin.pos == in_before) break;  // no progress
    }
    if (out.pos == 0 && r->zlast != 0 && r->zbytes == 0) {
        snprintf(err, err_len, "%s is empty (0 bytes): no zstd data; compress the corpus file "
                 "again, or leave it out", r->path);
        return -1;
    }
    if (out.pos == 0 && r->zlast != 0) {
        snprintf(err, err_len, "%s: truncated zstd file (it ends inside a compressed frame); "
                 "the copy is incomplete, fetch or compress it again", r->path);
        return -1;
    }
    return (int64_t)out.pos;
}

// Reads more bytes into buf[hi, cap), compacting and growing as needed.
static int read_more(JsonlReader *r, char *err, int err_len) {
    if (r->lo > 0) {
        memmove(r->buf, r->buf + r->lo, r->hi - r->lo);
        r->hi -= r->lo;
        r->scanned -= r->lo;
        r->lo = 0;
    }
    if (r->cap - r->hi < READ_CHUNK) {
        r->cap = r->hi + READ_CHUNK;
        r->buf = xrealloc(r->buf, r->cap);
    }
    int64_t n = r->zst ? zst_read(r, r->buf + r->hi, r->cap - r->hi, err, err_len)
                       : plain_read(r, r->buf + r->hi, r->cap - r->hi, err, err_len);
    if (n < 0) return -1;
    if (n == 0) r->eof = true;
    r->hi += (size_t)n;
    return 0;
}

// ---- lines --------------------------------------------------------------------

static void consume(JsonlReader *r, size_t n) {
    r->lo += n;
    r->buf_offset += (int64_t)n;
    r->scanned = r->lo;
}

// Discards bytes up to and including the next '\n' (or to the end of the file).
static int skip_line(JsonlReader *r, char *err, int err_len) {
    for (;;) {
        char *nl = memchr(r->buf + r->lo, '\n', r->hi - r->lo);
        if (nl) {
            consume(r, (size_t)(nl - (r->buf + r->lo)) + 1);
            return 0;
        }
        consume(r, r->hi - r->lo);
        if (r->eof) return 0;
        if (read_more(r, err, err_len) < 0) return -1;
    }
}

static int64_t count_newlines_before(const char *path, int64_t end) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char *chunk = xmalloc(READ_CHUNK);
    int64_t lines = 0, at = 0;
    while (at < end) {
        size_t want = (size_t)(end - at) < READ_CHUNK ? (size_t)(end - at) : READ_CHUNK;
        size_t n = fread(chunk, 1, want, f);
        if (n == 0) break;
        for (char *p = chunk; (p = memchr(p, '\n', n - (size_t)(p - chunk))); p++) lines++;
        at += (int64_t)n;
    }
    free(chunk);
    fclose(f);
    return lines;
}

// The 1-based line number of the current line (resolved lazily: only error
// messages need it, and a range far into a big file would have to count).
static long long line_number(JsonlReader *r) {
    if (r->line_base < 0) r->line_base = count_newlines_before(r->path, r->first_line);
    return (long long)(r->line_base + r->line_index + 1);
}

enum { LINE_OK = 1, LINE_END = 0, LINE_ERROR = -1, LINE_TOO_LONG = -2 };

// Finds the next line of the range: *line (not NUL-terminated) and *len.
static int next_line(JsonlReader *r, char **line, size_t *len, char *err, int err_len) {
    if (r->end >= 0 && r->buf_offset >= r->end) return LINE_END;
    for (;;) {
        char *nl = memchr(r->buf + r->scanned, '\n', r->hi - r->scanned);
        if (nl || (r->eof && r->hi > r->lo)) {
            *line = r->buf + r->lo;
            *len = nl ? (size_t)(nl - *line) : r->hi - r->lo;
            return *len > r->opt.max_record_bytes ? LINE_TOO_LONG : LINE_OK;
        }
        if (r->eof) return LINE_END;
        r->scanned = r->hi;
        if (r->hi - r->lo > r->opt.max_record_bytes) return LINE_TOO_LONG;
        if (read_more(r, err, err_len) < 0) return LINE_ERROR;
    }
}

// ---- records ------------------------------------------------------------------

// Byte index of the first invalid UTF-8 sequence in s, or -1 when valid.
static int64_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
                 : (c & 0xf8) == 0xf0 ? 3 : 4;
        if (k == 4 || n - i <= k) return (int64_t)i;
        uint32_t cp = k == 0 ? c : k == 1 ? c & 0x1f : k == 2 ? c & 0x0f : c & 0x07;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return (int64_t)i;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return (int64_t)i;
        i += k + 1;
    }
    return -1;
}

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    default: return "a string";
    }
}

static const char *text_key(const JsonlReader *r) {
    return r->opt.text_key ? r->opt.text_key : "text";
}

// Whether a line is only "{" or "[" (blanks around): the start of a JSON
// document printed over many lines.
static bool opens_document(const char *line, size_t len) {
    size_t a = 0, b = len;
    while (a < b && isspace((unsigned char)line[a])) a++;
    while (b > a && isspace((unsigned char)line[b - 1])) b--;
    return b == a + 1 && (line[a] == '{' || line[a] == '[');
}

// Parses one line into r->doc; false with the reason (no file:line prefix).
static bool parse_record(JsonlReader *r, const char *line, size_t len, char *why, int why_len) {
    json_error_t e;
    // Numbers as doubles: an integer past int64 in a field nobody reads (an id)
    // must not make the record "not valid JSON".
    r->doc = json_loadb(line, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    if (!r->doc) {
        int64_t bad = utf8_invalid_at((const unsigned char *)line, len);
        if (bad >= 0)
            snprintf(why, why_len, "invalid UTF-8 (byte 0x%02x at byte %lld of the line); the "
                     "corpus must be UTF-8", (unsigned char)line[bad], (long long)bad + 1);
        else if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)   // invisible in the message
            snprintf(why, why_len, "the line starts with a byte order mark (U+FEFF, bytes EF BB "
                     "BF), which JSON Lines does not allow; save the file as UTF-8 without BOM");
        else if (opens_document(line, len))
            snprintf(why, why_len, "not valid JSON (%s): the file looks like one JSON document "
                     "over many lines, not JSON Lines (one object per line); metadata "
                     "(dataset_info.json, ...) belongs outside the corpus folder", e.text);
        else
            snprintf(why, why_len, "not valid JSON (%s, column %d)", e.text, e.column);
        return false;
    }
    if (!json_is_object(r->doc)) {
        snprintf(why, why_len, "the line is %s, not a JSON object", json_kind(r->doc));
        return false;
    }
    json_t *t = json_object_get(r->doc, text_key(r));
    if (!t) {
        snprintf(why, why_len, "no \"%s\" field (documents under another key: use --text-key)",
                 text_key(r));
        return false;
    }
    if (!json_is_string(t)) {
        snprintf(why, why_len, "the \"%s\" field is %s, not a string", text_key(r), json_kind(t));
        return false;
    }
    return true;
}

// A source name of at most JSONL_SOURCE_MAX bytes without NUL, as given;
// else its first bytes (to the first NUL, whole UTF-8 characters) + "~" + 16
// hex digits of the SHA-256 of all its bytes: distinct names stay distinct.
static const char *source_name(JsonlReader *r, const char *s, size_t len) {
    if (len <= JSONL_SOURCE_MAX && strlen(s) == len) return s;
    size_t keep = strnlen(s, JSONL_SOURCE_MAX - 17);
    while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80) keep--;   // a character's start
    char hex[65];
    sha256_hex(s, len, hex);
    snprintf(r->source, sizeof r->source, "%.*s~%.16s", (int)keep, s, hex);
    return r->source;
}

static const char *record_source(JsonlReader *r) {
    json_t *meta = json_object_get(r->doc, "meta");
    const char *keys[] = {"redpajama_set_name", "source"};
    for (int i = 0; meta && json_is_object(meta) && i < 2; i++) {
        json_t *s = json_object_get(meta, keys[i]);
        if (json_is_string(s) && json_string_length(s) > 0)
            return source_name(r, json_string_value(s), json_string_length(s));
    }
    return source_name(r, r->stem, strlen(r->stem));
}

// A bad record: an error, or (skip_bad) counted, reported while few, skipped.
static int bad_record(JsonlReader *r, const char *why, char *err, int err_len) {
    snprintf(err, err_len, "%s:%lld: %s", r->path, line_number(r), why);
    if (!r->opt.skip_bad) {
        snprintf(err + strlen(err), err_len - strlen(err), "; fix the record, or pass "
                 "--skip-bad to skip bad records");
        return -1;
    }
    r->counts.bad++;
    if (r->warnings++ < MAX_WARNINGS) warn("skipping bad record %s", err);
    if (r->warnings == MAX_WARNINGS + 1) warn("%s: more bad records skipped silently", r->path);
    return 0;
}

static void drop_doc(JsonlReader *r) {
    if (r->doc) json_decref(r->doc);
    r->doc = NULL;
}

// Handles one line: 1 with a document in rec, 0 for a line that yields none.
static int take_line(JsonlReader *r, char *line, size_t len, JsonlRecord *rec, char *err,
                     int err_len) {
    char why[512];
    int64_t offset = r->buf_offset;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (i == len) return 0;  // a blank line
    if (!parse_record(r, line, len, why, sizeof why)) return bad_record(r, why, err, err_len);
    json_t *t = json_object_get(r->doc, text_key(r));
    if (json_string_length(t) == 0) {
        r->counts.empty++;
        return 0;
    }
    *rec = (JsonlRecord){json_string_value(t), json_string_length(t), record_source(r), offset};
    r->counts.records++;
    r->counts.text_bytes += (int64_t)rec->len;
    return 1;
}

int jsonl_next(JsonlReader *r, JsonlRecord *rec, char *err, int err_len) {
    for (;;) {
        drop_doc(r);
        char *line;
        size_t len;
        int s = next_line(r, &line, &len, err, err_len);
        if (s == LINE_END || s == LINE_ERROR) return s == LINE_END ? 0 : -1;
        if (s == LINE_TOO_LONG) {
            char why[160];
            snprintf(why, sizeof why, "the line is longer than --max-record-bytes (%zu bytes); "
                     "raise the limit", r->opt.max_record_bytes);
            if (bad_record(r, why, err, err_len) < 0 || skip_line(r, err, err_len) < 0) return -1;
            r->line_index++;
            continue;
        }
        int got = take_line(r, line, len, rec, err, err_len);
        consume(r, len + (r->lo + len < r->hi ? 1 : 0));
        r->line_index++;
        if (got != 0) return got;
    }
}

// ---- open / close -------------------------------------------------------------

static bool open_range(JsonlReader *r, char *err, int err_len) {
    if (r->zst) {
        if (r->begin != 0) {
            snprintf(err, err_len, "%s: a .zst file can only be read whole", r->path);
            return false;
        }
        r->dctx = ZSTD_createDCtx();
        r->zbuf = xmalloc(ZSTD_DStreamInSize());
        r->zlast = 1;  // a frame is expected: an empty file is truncated
        return r->dctx != NULL;
    }
    if (r->begin == 0) return true;
    if (fseeko(r->f, r->begin - 1, SEEK_SET) != 0) {
        snprintf(err, err_len, "%s: cannot seek to byte %lld: %s", r->path,
                 (long long)r->begin - 1, strerror(errno));
        return false;
    }
    r->buf_offset = r->begin - 1;
    return skip_line(r, err, err_len) == 0;  // the line that started before the range
}

// Whether the file f starts with gzip's magic bytes (f rewound).
static bool starts_gzip(FILE *f) {
    unsigned char magic[2];
    bool gz = fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    rewind(f);
    return gz;
}

JsonlReader *jsonl_open(const char *path, int64_t begin, int64_t end, const JsonlOptions *opt,
                        char *err, int err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "cannot open corpus file '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (starts_gzip(f)) {
        snprintf(err, err_len, "corpus file '%s' is gzip-compressed: give plain JSON Lines or "
                 "zstd (.jsonl.zst); e.g. gunzip -c FILE | zstd -o FILE.jsonl.zst", path);
        fclose(f);
        return NULL;
    }
    JsonlReader *r = xcalloc(1, sizeof *r);
    r->path = xstrdup(path);
    jsonl_stem(path, r->stem, sizeof r->stem);
    r->f = f;
    r->zst = jsonl_is_zst(path);
    r->begin = r->buf_offset = begin;
    r->end = end;
    r->line_base = begin == 0 ? 0 : -1;
    if (opt) r->opt = *opt;
    if (!r->opt.max_record_bytes) r->opt.max_record_bytes = JSONL_DEFAULT_MAX_RECORD_BYTES;
    r->cap = READ_CHUNK;
    r->buf = xmalloc(r->cap);
    if (!open_range(r, err, err_len)) {
        jsonl_close(r);
        return NULL;
    }
    r->first_line = r->buf_offset;
    return r;
}

const JsonlCounts *jsonl_counts(const JsonlReader *r) { return &r->counts; }

int64_t jsonl_progress(const JsonlReader *r) {
    if (r->zst) return (int64_t)ftello(r->f);
    return r->buf_offset - r->begin;
}

void jsonl_close(JsonlReader *r) {
    if (!r) return;
    drop_doc(r);
    if (r->dctx) ZSTD_freeDCtx(r->dctx);
    if (r->f) fclose(r->f);
    free(r->zbuf);
    free(r->buf);
    free(r->path);
    free(r);
}
