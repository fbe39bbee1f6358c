#include "text/corpus_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/dirs.h"
#include "fs/folder_commit.h"
#include "text/jsonl.h"
#include "core/util.h"

static bool is_corpus_name(const char *name) {
    return name_has_suffix(name, ".jsonl") || name_has_suffix(name, ".jsonl.zst") ||
           name_has_suffix(name, ".json") || name_has_suffix(name, ".json.zst");
}

static int find_file(const CorpusFiles *c, const struct stat *st) {
    for (int i = 0; i < c->n; i++)
        if (c->files[i].dev == (uint64_t)st->st_dev && c->files[i].ino == (uint64_t)st->st_ino)
            return i;
    return -1;
}

const char *corpus_files_find(const CorpusFiles *c, const char *path) {
    struct stat st;
    int i = stat(path, &st) == 0 ? find_file(c, &st) : -1;
    return i >= 0 ? c->files[i].path : NULL;
}

static bool add_file(CorpusFiles *c, const char *path, char *err, int err_len) {
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        snprintf(err, err_len, "cannot read input '%s': %s", path, strerror(errno));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "input '%s' is not a regular file", path);
        return false;
    }
    int same = find_file(c, &st);
    if (same >= 0) {
        snprintf(err, err_len, "input '%s' is the same file as input '%s': each file is "
                 "encoded once; give it once", path, c->files[same].path);
        return false;
    }
    c->files = xrealloc(c->files, (size_t)(c->n + 1) * sizeof *c->files);
    c->files[c->n++] = (CorpusFile){xstrdup(path), (int64_t)st.st_size, jsonl_is_zst(path),
                                    (uint64_t)st.st_dev, (uint64_t)st.st_ino};
    return true;
}

static bool is_visible(const char *name) { return name[0] != '.'; }

// A corpus file in a compression this program does not read (a.jsonl.gz, b.json.xz).
static bool looks_compressed(const char *name) {
    static const char *const kinds[] = {".jsonl.gz", ".json.gz", ".jsonl.bz2", ".json.bz2",
                                        ".jsonl.xz", ".json.xz", ".jsonl.lz4", ".jsonl.zip"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (name_has_suffix(name, kinds[i])) return true;
    return false;
}

// The folders of an input's walk: all of them (a folder reached twice through
// links is refused, as a file is: its files would be read twice, and links
// that fan out would make the walk exponential), those still open being the
// ancestors of the one being read (a link back up would never end).
#define MAX_FOLDER_DEPTH 64
typedef struct {
    struct {
        dev_t dev;
        ino_t ino;
        char *path;
        bool open;
    } *seen;
    int n, depth;
} FolderWalk;

// The folder's place in w->seen, or -1 (err says why it is not walked).
static int enter_folder(FolderWalk *w, const char *dir, const struct stat *st, char *err,
                        int err_len) {
    for (int i = 0; i < w->n; i++) {
        if (w->seen[i].dev != st->st_dev || w->seen[i].ino != st->st_ino) continue;
        if (w->seen[i].open)
            snprintf(err, err_len, "input folder '%s' is a link to a folder above it: the "
                     "walk would never end; remove the link or give the folders one by one", dir);
        else
            snprintf(err, err_len, "input folder '%s' is '%s' again (through a link): its files "
                     "would be read twice; remove the link", dir, w->seen[i].path);
        return -1;
    }
    if (w->depth == MAX_FOLDER_DEPTH) {
        snprintf(err, err_len, "input folder '%s' is more than %d folders deep", dir,
                 MAX_FOLDER_DEPTH);
        return -1;
    }
    w->seen = xrealloc(w->seen, (size_t)(w->n + 1) * sizeof *w->seen);
    w->seen[w->n].dev = st->st_dev, w->seen[w->n].ino = st->st_ino;
    w->seen[w->n].path = xstrdup(dir), w->seen[w->n].open = true;
    w->depth++;
    return w->n++;
}

// One entry of a folder: a subfolder walked, a corpus file added, anything
// else passed over; an entry that cannot be looked at is an error (it may be
// a folder of corpus files).
static bool add_tree(CorpusFiles *c, const char *dir, const struct stat *st, FolderWalk *w,
                     char *err, int err_len);

static bool add_entry(CorpusFiles *c, const char *dir, const char *name, FolderWalk *w, char *err,
                      int err_len) {
    char path[4096];
    struct stat sub;
    int n = snprintf(path, sizeof path, "%s%s%s", dir, name_has_suffix(dir, "/") ? "" : "/", name);
    if (n >= (int)sizeof path) {
        snprintf(err, err_len, "input '%.200s/%.200s...': path longer than %zu bytes", dir, name,
                 sizeof path - 1);
        return false;
    }
    bool exists = stat(path, &sub) == 0;
    if (!exists && errno != ENOENT) {   // ENOENT: a dangling link, passed over as a file
        snprintf(err, err_len, "cannot look at input '%s': %s", path, strerror(errno));
        return false;
    }
    if (exists && S_ISDIR(sub.st_mode)) return add_tree(c, path, &sub, w, err, err_len);
    if (is_corpus_name(name)) return add_file(c, path, err, err_len);
    if (looks_compressed(name) && c->compressed++ == 0)
        snprintf(c->compressed_first, sizeof c->compressed_first, "%s", path);
    return true;
}

// The corpus files of folder dir and of every folder below it (not hidden
// ones), depth first in name order; other files are passed over.
static bool add_tree(CorpusFiles *c, const char *dir, const struct stat *st, FolderWalk *w,
                     char *err, int err_len) {
    int at = enter_folder(w, dir, st, err, err_len);
    if (at < 0) return false;
    int n = 0;
    char **names = dir_names(dir, is_visible, &n);
    if (!names) {
        snprintf(err, err_len, "cannot read input folder '%s': %s", dir, strerror(errno));
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < n; i++) ok = add_entry(c, dir, names[i], w, err, err_len);
    dir_names_free(names, n);
    w->seen[at].open = false;
    w->depth--;
    return ok;
}

static bool add_dir(CorpusFiles *c, const char *dir, const struct stat *st, char *err,
                    int err_len) {
    FolderWalk w = {NULL, 0, 0};
    int before = c->n;
    bool ok = add_tree(c, dir, st, &w, err, err_len);
    for (int i = 0; i < w.n; i++) free(w.seen[i].path);
    free(w.seen);
    if (ok && c->n == before)
        snprintf(err, err_len, "input folder '%s' holds no .jsonl, .jsonl.zst, .json or "
                 ".json.zst file, nor do its subfolders", dir);
    return ok && c->n > before;
}

bool corpus_files_expand(char **inputs, int n_inputs, CorpusFiles *out, char *err, int err_len) {
    *out = (CorpusFiles){0};
    for (int i = 0; i < n_inputs; i++) {
        struct stat st;
        bool ok = stat(inputs[i], &st) == 0 && S_ISDIR(st.st_mode)
                      ? add_dir(out, inputs[i], &st, err, err_len)
                      : add_file(out, inputs[i], err, err_len);
        if (!ok) {
            corpus_files_free(out);
            return false;
        }
    }
    return true;
}

void corpus_files_free(CorpusFiles *c) {
    for (int i = 0; i < c->n; i++) free(c->files[i].path);
    free(c->files);
    *c = (CorpusFiles){0};
}

bool corpus_make_dir(const char *path, char *err, int err_len) {
    if (!make_dirs(path, err, err_len)) return false;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode) || access(path, W_OK) != 0) {
        snprintf(err, err_len, "output '%s' is not a writable folder", path);
        return false;
    }
    return true;
}

static bool is_shard_name(const char *name) {
    return name_has_suffix(name, ".h5") || name_has_suffix(name, ".h5.tmp");
}

// The temporary file of an interrupted shard write: "<source>.<split>.h5.tmp".
static bool is_shard_tmp_name(const char *name) {
    return name_has_suffix(name, ".train.h5.tmp") || name_has_suffix(name, ".val.h5.tmp");
}

// Deletes dir/name; false with a reason.
static bool remove_in(const char *dir, const char *name, char *err, int err_len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (unlink(path) == 0) return true;
    snprintf(err, err_len, "cannot delete '%s': %s", path, strerror(errno));
    return false;
}

// --overwrite deletes only what a tokenizer run wrote: complete shards and
// its temporary files.  False naming the first other file, before anything
// is deleted.
static bool all_deletable(const char *dir, char **names, int n, bool (*is_shard)(const char *),
                          char *err, int err_len) {
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (is_shard_tmp_name(names[i]) || (!name_has_suffix(names[i], ".tmp") && is_shard(path)))
            continue;
        snprintf(err, err_len, "--overwrite: output folder '%s' holds '%s', which is not a "
                 "token shard this program wrote (it deletes only those); training would read "
                 "it too: move it away or give another folder", dir, names[i]);
        return false;
    }
    return true;
}

char **corpus_output_old(const char *dir, bool overwrite, bool (*is_shard)(const char *path),
                         int *n, char *err, int err_len) {
    char **names = dir_names(dir, is_shard_name, n);
    if (!names) {
        snprintf(err, err_len, "cannot read output folder '%s': %s", dir, strerror(errno));
        return NULL;
    }
    bool ok = true;
    if (*n > 0 && !overwrite) {
        snprintf(err, err_len, "output folder '%s' already holds %d shard file%s (%s%s), which "
                 "training would mix with this corpus's: give an empty or new folder, or "
                 "--overwrite to replace them", dir, *n, *n > 1 ? "s" : "", names[0],
                 *n > 1 ? ", ..." : "");
        ok = false;
    }
    if (ok && all_deletable(dir, names, *n, is_shard, err, err_len)) return names;
    dir_names_free(names, *n);
    *n = 0;
    return NULL;
}

void corpus_output_old_free(char **old, int n) { dir_names_free(old, n); }

static bool is_h5_name(const char *name) { return name_has_suffix(name, ".h5"); }

static bool any_name(const char *name) { return strcmp(name, ".") && strcmp(name, ".."); }

// Renames dir_from/name to dir_to/name; false with the reason.
static bool move_in(const char *from, const char *to, const char *name, char *err, int err_len) {
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/%s", from, name);
    snprintf(b, sizeof b, "%s/%s", to, name);
    if (rename(a, b) == 0) return true;
    snprintf(err, err_len, "cannot move the new shard '%s' to '%s': %s", a, b, strerror(errno));
    return false;
}

bool corpus_output_commit(const char *dir, const char *staging, char **old, int n_old, char *err,
                          int err_len) {
    int n = 0;
    char **fresh = dir_names(staging, is_h5_name, &n);
    if (!fresh) {
        snprintf(err, err_len, "cannot read the new shards' folder '%s': %s", staging,
                 strerror(errno));
        return false;
    }
    bool ok = folder_commit_begin(dir, "llama-tokenize encode", err, err_len);
    for (int i = 0; ok && i < n; i++) ok = move_in(staging, dir, fresh[i], err, err_len);
    for (int i = 0; ok && i < n_old; i++)
        if (!names_contain(fresh, n, old[i])) ok = remove_in(dir, old[i], err, err_len);
    dir_names_free(fresh, n);
    return ok && folder_commit_end(dir, err, err_len) &&
           corpus_output_discard(staging, err, err_len);
}

// Only a real folder holding shard files is the staging folder this program
// makes: a link (its target's files would go), a file, or a folder holding
// anything else is left alone, with the reason.
static bool staging_is_own(const char *staging, const struct stat *at, char **names, int n,
                           char *err, int err_len) {
    struct stat st;
    bool ok = S_ISDIR(at->st_mode);
    for (int i = 0; ok && i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", staging, names[i]);
        ok = is_shard_name(names[i]) && lstat(path, &st) == 0 && S_ISREG(st.st_mode);
    }
    if (!ok)
        snprintf(err, err_len, "'%s' is not the staging folder llama-tokenize makes (a link, a "
                 "file, or a folder holding other things than shard files): move it away", staging);
    return ok;
}

bool corpus_output_discard(const char *staging, char *err, int err_len) {
    struct stat st;
    if (lstat(staging, &st) != 0) {
        if (errno == ENOENT) return true;
        snprintf(err, err_len, "cannot look at '%s': %s", staging, strerror(errno));
        return false;
    }
    int n = 0;
    char **names = S_ISDIR(st.st_mode) ? dir_names(staging, any_name, &n) : NULL;
    if (!names && S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "cannot read '%s': %s", staging, strerror(errno));
        return false;
    }
    bool ok = staging_is_own(staging, &st, names, n, err, err_len);
    for (int i = 0; ok && i < n; i++) ok = remove_in(staging, names[i], err, err_len);
    dir_names_free(names, n);
    if (ok && rmdir(staging) != 0) {
        snprintf(err, err_len, "cannot remove the folder '%s': %s", staging, strerror(errno));
        ok = false;
    }
    return ok;
}
