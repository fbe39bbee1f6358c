#include "hf/hf_tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file_kind.h"
#include "core/util.h"
#include "fs/atomic_file.h"
#include "hf/hf_config.h"

// The whole of path (malloc'ed, length in *n), or NULL with the reason.
static char *read_all(const char *path, size_t *n, char *err, int err_len) {
    if (!file_kind_check(path, "a tokenizer file", err, err_len)) return NULL;
    errno = 0;
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = xmalloc((size_t)size + 1);
        if (fread(data, 1, (size_t)size, f) != (size_t)size) {
            free(data);
            data = NULL;
        }
    }
    if (!data)
        snprintf(err, err_len, "cannot read the tokenizer file '%s': %s", path,
                 errno ? strerror(errno) : "short read");
    if (f) fclose(f);
    *n = data ? (size_t)size : 0;
    return data;
}

// A tokenizer.json starts with '{' (after any white space); anything else is
// taken for a SentencePiece model (a protobuf).
static bool is_json(const char *data, size_t n) {
    size_t i = 0;
    while (i < n && strchr(" \t\r\n", data[i])) i++;
    return i < n && data[i] == '{';
}

static json_t *token_or_null(const char *text) { return text ? json_string(text) : json_null(); }

static bool write_config(const char *dir, const HfTokenizerFiles *t, bool json, char *err,
                         int err_len) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:i, s:b, s:b}", "tokenizer_class",
                          json ? "PreTrainedTokenizerFast" : "LlamaTokenizer", "bos_token",
                          token_or_null(t->bos), "eos_token", token_or_null(t->eos),
                          "pad_token", token_or_null(t->pad), "model_max_length", t->max_length,
                          "add_bos_token", t->bos != NULL, "clean_up_tokenization_spaces", 0);
    bool ok = hf_json_write(path, o, 17, err, err_len);
    json_decref(o);
    return ok;
}

// The files a tokenizer may leave in a model folder (transformers' names).
static const char *const tokenizer_files[] = {"tokenizer.json", "tokenizer.model",
                                              "tokenizer_config.json", "special_tokens_map.json"};

// Removes dir's tokenizer files, left by an earlier export, except `keep`
// and tokenizer_config.json (NULL: all of them).
static bool remove_stale(const char *dir, const char *keep, char *err, int err_len) {
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++) {
        char path[4200];
        const char *f = tokenizer_files[i];
        if (keep && (strcmp(f, keep) == 0 || strcmp(f, "tokenizer_config.json") == 0)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, f);
        if (unlink(path) != 0 && errno != ENOENT) {
            snprintf(err, err_len, "cannot remove the earlier export's %s: %s", path,
                     strerror(errno));
            return false;
        }
    }
    return true;
}

bool hf_tokenizer_is_file(const char *name) {
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++)
        if (strcmp(name, tokenizer_files[i]) == 0) return true;
    return false;
}

bool hf_tokenizer_remove(const char *dir, char *err, int err_len) {
    return remove_stale(dir, NULL, err, err_len);
}

bool hf_tokenizer_write(const char *dir, const HfTokenizerFiles *t, char *err, int err_len) {
    size_t n;
    char *data = read_all(t->file, &n, err, err_len);
    if (!data) return false;
    bool json = is_json(data, n);
    const char *name = json ? "tokenizer.json" : "tokenizer.model";
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    bool ok = atomic_file_write(path, data, n, err, err_len) &&
              write_config(dir, t, json, err, err_len);
    ok = ok && remove_stale(dir, name, err, err_len);
    free(data);
    return ok;
}
