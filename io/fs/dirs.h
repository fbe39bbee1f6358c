// Folders: mkdir -p.
#ifndef LLAMA_DIRS_H
#define LLAMA_DIRS_H

#include <stdbool.h>

// Makes path and every missing folder above it (mode 0777 less the umask);
// false with the folder that could not be made and why.
bool make_dirs(const char *path, char *err, int err_len);

#endif
