// Folders: mkdir -p, and their entries by name.
#ifndef LLAMA_DIRS_H
#define LLAMA_DIRS_H

#include <stdbool.h>

// Makes path and every missing folder above it (mode 0777 less the umask);
// false with the folder that could not be made and why.
bool make_dirs(const char *path, char *err, int err_len);
// Removes folder path (or a link to one: the link) and everything in it,
// links inside removed, not followed; a path that is no folder is left alone.
void remove_tree(const char *path);
// The names in folder dir that keep accepts, sorted by strcmp; the count in
// *n.  NULL (errno set) when the folder cannot be read.  Free with
// dir_names_free.
char **dir_names(const char *dir, bool (*keep)(const char *name), int *n);
void dir_names_free(char **names, int n);
// fsync of folder dir, so the renames and removals in it survive a crash (a
// power loss); false with errno set.
bool folder_sync(const char *dir);
// Whether name is one of the n names (dir_names' list).
bool names_contain(char **names, int n, const char *name);
// Whether name is longer than suffix and ends with it (a filter's test:
// "a.h5" ends with ".h5", ".h5" alone does not).
bool name_has_suffix(const char *name, const char *suffix);

#endif
