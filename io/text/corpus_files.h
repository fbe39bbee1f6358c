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
    uint64_t dev, ino;  // the file itself, whatever name it was given by
} CorpusFile;

typedef struct {
    CorpusFile *files;
    int n;
} CorpusFiles;

// Expands the inputs in order.  False with a reason (a missing or unreadable
// path, a folder without corpus files, a file given twice: by two names,
// links, or as itself and in its folder) in err.
bool corpus_files_expand(char **inputs, int n_inputs, CorpusFiles *out, char *err, int err_len);
void corpus_files_free(CorpusFiles *c);
// The input that is the file path names (device and inode: by any name or
// link), as the input was given; NULL when none is.
const char *corpus_files_find(const CorpusFiles *c, const char *path);
// Makes a folder and its parents (like mkdir -p).
bool corpus_make_dir(const char *path, char *err, int err_len);
// An output folder must not hold shards of another run (*.h5, or the *.h5.tmp
// of a failed one): training would read them with the new ones.  False with a
// reason naming them, or with overwrite true, deletes them: only files
// is_shard accepts and "*.train.h5.tmp" / "*.val.h5.tmp"; any other *.h5 is
// refused before anything is deleted.
bool corpus_clear_output(const char *dir, bool overwrite, bool (*is_shard)(const char *path),
                         char *err, int err_len);

#endif
