#include "fs/logfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"

struct LogFile {
    FILE *f;
    char *path;
};

LogFile *logfile_open(const char *path, char *err, int err_len) {
    FILE *f = fopen(path, "ab");
    if (!f) {
        snprintf(err, err_len, "cannot open '%s' for writing: %s", path, strerror(errno));
        return NULL;
    }
    LogFile *l = xmalloc(sizeof *l);
    l->f = f;
    l->path = xstrdup(path);
    return l;
}

void logfile_write(LogFile *l, const void *data, size_t bytes) {
    if (fwrite(data, 1, bytes, l->f) != bytes || fflush(l->f) != 0)
        fatal("writing '%s' failed: %s (disk full?)", l->path, strerror(errno));
}

void logfile_line(LogFile *l, const char *line) {
    logfile_write(l, line, strlen(line));
    logfile_write(l, "\n", 1);
}

void logfile_close(LogFile *l) {
    if (!l) return;
    fclose(l->f);
    free(l->path);
    free(l);
}
