// What a path is, for the files a program opens by name: opening a FIFO
// blocks until another process opens its other end (a run that would never
// start, deaf to SIGTERM), and a device or folder is no input file.
#ifndef LLAMA_FILE_KIND_H
#define LLAMA_FILE_KIND_H

#include <stdbool.h>

// NULL when path is absent or a regular file (links followed); else what it
// is instead: "a FIFO", "a folder", "a device", "a socket".
const char *file_kind_irregular(const char *path);
// True when path is absent or a regular file; else false with "'<path>' is
// <kind>, not <what>" in err (what: "a checkpoint file", ...).  Checked
// before opening a file for reading: opening a FIFO blocks.
bool file_kind_check(const char *path, const char *what, char *err, int err_len);
// Whether a and b name the same existing file or folder (device and inode).
bool file_kind_same(const char *a, const char *b);

#endif
