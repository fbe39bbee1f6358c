// The corpus files of a run: --input arguments (files, or folders whose
// *.jsonl / *.jsonl.zst / *.json / *.json.zst files, their subfolders' too, are
// taken depth first in name order; hidden names passed over) expanded into a
// list with sizes; and making the output folder.
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
    int compressed;               // files of the folders that look like a compressed corpus
    char compressed_first[4096];  // (.gz, .bz2, .xz, ...): passed over, not read; the first
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
// Encoding replaces a folder's shards only once every new one is written
// (into a staging folder inside it), so a failed run leaves the old dataset
// as it was.
//
// The shard files already in output folder dir (*.h5, and a failed write's
// *.h5.tmp), which training would mix with the new corpus's: refused without
// overwrite; with it, their names (*n) to delete at the commit.  Only files
// is_shard accepts and "*.train.h5.tmp" / "*.val.h5.tmp" may be; any other
// *.h5 is refused.  NULL with the reason in err.
char **corpus_output_old(const char *dir, bool overwrite, bool (*is_shard)(const char *path),
                         int *n, char *err, int err_len);
void corpus_output_old_free(char **old, int n);
// Moves every *.h5 of folder staging into dir (replacing files of the same
// name), deletes the old files no new one replaced, removes staging.  False
// with the reason.
bool corpus_output_commit(const char *dir, const char *staging, char **old, int n_old, char *err,
                          int err_len);
// Removes folder staging and the files in it; true when it is gone (or was
// never there).
bool corpus_output_discard(const char *staging, char *err, int err_len);

#endif
