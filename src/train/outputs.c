#include "train/outputs.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file_kind.h"
#include "core/util.h"
#include "fs/ckpt_dir.h"
#include "fs/dirs.h"
#include "fs/paths.h"
#include "train/hf.h"

// Whether out is a file in folder dir (or dir itself).
static bool in_folder(const char *out, const char *dir) {
    if (file_kind_same(out, dir)) return true;
    DIR *d = dir[0] ? opendir(dir) : NULL;
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        found = e->d_name[0] != '.' && file_kind_same(out, path);
    }
    if (d) closedir(d);
    return found;
}

// An existing file the run appends to (--log, --dump-batches) is none of its
// inputs: appending would destroy the run deck, model file, tokenizer, an
// --init-hf file or a shard.
static bool output_not_input(const char *what, const char *out, const TrainOptions *o,
                             const char *deck, char *err, int len) {
    const char *load = strcmp(o->load, "auto") != 0 ? o->load : "";
    const char *inputs[] = {deck ? deck : "", o->config, o->tokenizer, o->init_hf, o->dataset, load};
    const char *names[] = {"the run deck", "the model file (-c)", "--tokenizer",
                           "--init-hf or a file in it", "--dataset or a file in it",
                           "--load or a file in it"};
    for (int i = 0; i < 6; i++)
        if (i < 3 ? file_kind_same(out, inputs[i]) : in_folder(out, inputs[i])) {
            snprintf(err, len, "%s %s is %s (%s): the run appends to it, which would destroy "
                     "it; give another file", what, out, names[i], inputs[i]);
            return false;
        }
    return true;
}

// A new file the run makes (--log, --dump-batches) is no *.h5 in the
// --dataset folder (or the folder of a --dataset shard): every later run on
// the folder would read it as a shard.
static bool not_a_shard(const char *what, const char *out, const TrainOptions *o, char *err,
                        int len) {
    char folder[8400], data[8400], a[8400], b[8400];
    struct stat st;
    if (!o->dataset[0] || stat(o->dataset, &st) != 0) return true;
    if (S_ISDIR(st.st_mode)) snprintf(data, sizeof data, "%s", o->dataset);
    else path_parent(o->dataset, data, sizeof data);
    path_parent(out, folder, sizeof folder);
    path_resolved(folder, a, sizeof a);
    path_resolved(data, b, sizeof b);
    if (strcmp(a, b) != 0 || !name_has_suffix(out, ".h5")) return true;
    snprintf(err, len, "%s %s would be a .h5 file in the --dataset folder %s, which later runs "
             "read as a shard: give another file", what, out, data);
    return false;
}

// A file the run appends to (--log, --dump-batches) lies under none of the
// names --save-dir's rules write or move: the lock is deleted at the end,
// latest replaced at each save, step_N folders renamed and pruned.
static bool outside_ckpt_names(const char *what, const char *out, const TrainOptions *o,
                               char *err, int len) {
    if (!o->save_dir[0] || o->eval_only || !path_within(out, o->save_dir)) return true;
    char p[8400], d[8400], first[256];
    path_resolved(out, p, sizeof p);
    path_resolved(o->save_dir, d, sizeof d);
    const char *rel = p + strlen(d) + (strcmp(d, "/") != 0);
    snprintf(first, sizeof first, "%.*s", (int)strcspn(rel, "/"), rel);
    if (!first[0] || !ckpt_dir_owns_name(first)) return true;
    snprintf(err, len, "%s %s is '%s' in --save-dir %s, a name the checkpoint folder's rules "
             "write, replace or delete: give another file", what, out, first, o->save_dir);
    return false;
}

// --export-hf's folder holds the export alone: the checkpoints, the log or
// the dump inside it would fail the export after the whole run (an export
// inside the checkpoint folder is fine: its rules see only step_N names).
static bool export_apart(const TrainOptions *o, char *err, int len) {
    const char *x = o->export_hf, *what = NULL;
    if (!x[0]) return true;
    if (o->save_dir[0] && !o->eval_only && path_within(o->save_dir, x)) what = "--save-dir";
    else if (o->log[0] && path_within(o->log, x)) what = "--log";
    else if (o->dump_batches[0] && path_within(o->dump_batches, x)) what = "--dump-batches";
    if (!what) return true;
    snprintf(err, len, "--export-hf %s and %s share a folder: an export's folder holds the export "
             "alone (it would be refused after training); give separate folders", x, what);
    return false;
}

// --log and --dump-batches are not one file, nor an input.
static bool outputs_apart(const TrainOptions *o, const char *deck, char *err, int len) {
    bool dump = o->dump_batches[0] && !o->eval_only;
    char a[8400], b[8400];
    path_resolved(o->log, a, sizeof a);
    path_resolved(o->dump_batches, b, sizeof b);
    if (dump && o->log[0] && (!strcmp(a, b) || file_kind_same(o->log, o->dump_batches))) {
        snprintf(err, len, "--log and --dump-batches are one file (%s): give two", o->log);
        return false;
    }
    size_t n = strlen(b);   // data-parallel ranks dump into B.dp0, B.dp1, ...
    if (dump && o->log[0] && !strncmp(a, b, n) && !strncmp(a + n, ".dp", 3) && a[n + 3] &&
        strspn(a + n + 3, "0123456789") == strlen(a + n + 3)) {
        snprintf(err, len, "--log %s is a file --dump-batches %s writes under data parallelism "
                 "(one per data-parallel rank: %s.dp0, %s.dp1, ...): give another", o->log,
                 o->dump_batches, o->dump_batches, o->dump_batches);
        return false;
    }
    return (!o->log[0] || (output_not_input("--log", o->log, o, deck, err, len) &&
                           not_a_shard("--log", o->log, o, err, len) &&
                           outside_ckpt_names("--log", o->log, o, err, len))) &&
           (!dump || (output_not_input("--dump-batches", o->dump_batches, o, deck, err, len) &&
                      not_a_shard("--dump-batches", o->dump_batches, o, err, len) &&
                      outside_ckpt_names("--dump-batches", o->dump_batches, o, err, len)));
}

// --export-hf names a folder the export may fill (hf_export_dir_check).
static bool export_usable(const char *dir, char *err, int len) {
    return path_folder_usable("--export-hf", dir, err, len) &&
           prefix_error("--export-hf", hf_export_dir_check(dir, err, len), err, len);
}

// A file the run appends to: path_file_usable, or one directly in the
// --save-dir the run makes (checked as that folder).
static bool appended_usable(const char *what, const char *path, bool saves, const TrainOptions *o,
                            char *err, int len) {
    char folder[4096], a[8400], b[8400];
    path_parent(path, folder, sizeof folder);
    path_resolved(folder, a, sizeof a);
    path_resolved(o->save_dir, b, sizeof b);
    struct stat st;
    if (saves && strcmp(a, b) == 0 && stat(path, &st) != 0) return true;
    return path_file_usable(what, path, err, len);
}

// --save-dir is a folder of checkpoints, not one checkpoint (a run would
// find no checkpoint to resume in it and save inside it).
static bool save_dir_not_checkpoint(const char *dir, char *err, int len) {
    char real[8400], file[8500];
    path_resolved(dir, real, sizeof real);   // zz/../ck/step_2 is ck/step_2 once zz is made
    ckpt_dir_file(real, file, sizeof file);
    struct stat st;
    if (stat(file, &st) != 0) return true;
    snprintf(err, len, "--save-dir %s is a checkpoint (it holds checkpoint.h5), not a folder of "
             "checkpoints: give the folder that holds it", dir);
    return false;
}

bool outputs_check(const TrainOptions *o, const char *deck, char *err, int len) {
    bool saves = !o->eval_only && o->save_dir[0];
    return outputs_apart(o, deck, err, len) && export_apart(o, err, len) &&
           (!saves || (path_folder_usable("--save-dir", o->save_dir, err, len) &&
                       save_dir_not_checkpoint(o->save_dir, err, len))) &&
           (!o->export_hf[0] || export_usable(o->export_hf, err, len)) &&
           (!o->log[0] || appended_usable("--log", o->log, saves, o, err, len)) &&
           (!o->dump_batches[0] || o->eval_only ||
            appended_usable("--dump-batches", o->dump_batches, saves, o, err, len));
}
