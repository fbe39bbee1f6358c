// Files that appear complete or not at all: write "<path>.tmp", fsync it,
// rename it over path, fsync the directory.  A crash or a failed write leaves
// path as it was (at worst a stray "<path>.tmp").
#ifndef LLAMA_ATOMIC_FILE_H
#define LLAMA_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>

// Creates (truncates) "<path>.tmp" for writing; returns its descriptor and the
// malloc'd temporary name in *tmp, or -1 with a reason in err.
int atomic_file_create(const char *path, char **tmp, char *err, int err_len);
// fsyncs and closes fd, renames tmp to path and fsyncs the directory.  On
// failure removes tmp.  fd is closed either way.
bool atomic_file_commit(int fd, const char *tmp, const char *path, char *err, int err_len);
// Closes fd (if >= 0) and removes tmp: the write is abandoned.
void atomic_file_discard(int fd, const char *tmp);
// The whole of data[0, n) to path, atomically.
bool atomic_file_write(const char *path, const void *data, size_t n, char *err, int err_len);

#endif
