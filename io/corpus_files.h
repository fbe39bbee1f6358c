// The corpus files of a run: --input arguments (files, or folders whose
// *.jsonl / *.jsonl.zst / *.json files are taken in name order) expanded into a list
// with sizes; and making the output folder.
#ifndef LLAMA_CORPUS_FILES_H
#define LLAMA_CORPUS_FILES_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *path;
    int64_t size;   // bytes on disk (compressed size for .zst)
    bool whole;     // cannot be split by byte ranges (.zst)
} CorpusFile;

typedef struct {
    CorpusFile *files;
    int n;
} CorpusFiles;

// Expands the inputs in order.  False with a reason (a missing or unreadable
// path, a folder without corpus files) in err.
bool corpus_files_expand(char **inputs, int n_inputs, CorpusFiles *out, char *err, int err_len);
void corpus_files_free(CorpusFiles *c);
// Makes a folder and its parents (like mkdir -p).
bool corpus_make_dir(const char *path, char *err, int err_len);

#endif
