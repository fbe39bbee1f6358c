// Folders whose files are replaced one by one: an encode moves its new shards
// into the dataset folder, an export its files into the Hugging Face folder.
// Between the first move and the last the folder mixes two versions, and a
// kill there (the OOM killer, a time limit) would leave the mix for readers
// to take as whole.  The writer marks the folder for that span with
// FOLDER_COMMIT_MARK (fsynced before the first move, removed once the last
// move is durable); readers refuse a marked folder.
#ifndef LLAMA_FOLDER_COMMIT_H
#define LLAMA_FOLDER_COMMIT_H

#include <stdbool.h>

#define FOLDER_COMMIT_MARK ".commit-unfinished"

// Marks dir: the writer (named in the mark, for people) begins moving files in.
bool folder_commit_begin(const char *dir, const char *writer, char *err, int err_len);
// The moves into dir are done: makes them durable, then removes the mark.
bool folder_commit_end(const char *dir, char *err, int err_len);
// Whether dir holds the mark of a commit that never ended.
bool folder_commit_unfinished(const char *dir);

#endif
