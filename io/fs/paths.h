// Paths as text and as places to write: a path's folder, a lexical form for
// comparisons, and whether a run can make or append to what a path names.
#ifndef LLAMA_PATHS_H
#define LLAMA_PATHS_H

#include <stdbool.h>
#include <stddef.h>

// The folder holding path: "a/b/" -> "a", "a" -> ".", "/a" -> "/".
void path_parent(const char *path, char *out, size_t len);
// path made absolute (cwd in front), "." components and repeated or trailing
// slashes removed: a lexical form (links are not followed) for comparisons.
void path_lexical(const char *path, char *out, size_t len);
// path_lexical with the longest part that exists resolved (links followed,
// ".." taken), the rest as written but for its ".." (each takes back the
// component before it, as the folders made for it will): one spelling for one
// place, whether it exists yet or not (a file a run will make).
void path_resolved(const char *path, char *out, size_t len);
// Whether path is dir or lies inside it (resolved as path_resolved).
bool path_within(const char *path, const char *dir);
// A folder a program creates (mkdir -p) and writes in: a writable folder, or
// one its nearest existing ancestor is.  False with a reason that starts with
// what (the option naming it).
bool path_folder_usable(const char *what, const char *dir, char *err, int len);
// A file a program appends to: writable if it exists, else its folder exists
// and is writable (the folder is not created).
bool path_file_usable(const char *what, const char *path, char *err, int len);

#endif
