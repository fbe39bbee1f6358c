#include "fs/logfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

struct LogFile {
    FILE *f;
    char *path;
    bool failed;        // a write failed: nothing more is written
    bool tail_checked;  // logfile_line: a partial last line was ended
};

LogFile *logfile_open(const char *path, char *err, int err_len) {
    // Non-blocking: a FIFO that no process reads fails now (ENXIO) instead of
    // blocking the start-up; a pipe being read (/dev/stdout) is fine.
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open '%s' for writing: %s", path,
                 errno == ENXIO ? "a FIFO that no process reads" : strerror(errno));
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    FILE *f = flags >= 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 ? fdopen(fd, "ab") : NULL;
    if (!f) {
        snprintf(err, err_len, "cannot open '%s' for writing: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    LogFile *l = xcalloc(1, sizeof *l);
    l->f = f;
    l->path = xstrdup(path);
    return l;
}

void logfile_write(LogFile *l, const void *data, size_t bytes) {
    if (l->failed) return;
    if (fwrite(data, 1, bytes, l->f) == bytes && fflush(l->f) == 0) return;
    warn("writing '%s' failed: %s (disk full?); the run goes on without it (checkpoints are "
         "written as before)", l->path, strerror(errno));
    l->failed = true;
}

// Whether the file's last byte is a newline (or it is empty).
static bool ends_with_newline(const char *path) {
    FILE *f = fopen(path, "rb");
    bool yes = !f || fseek(f, -1, SEEK_END) != 0 || fgetc(f) == '\n';
    if (f) fclose(f);
    return yes;
}

void logfile_line(LogFile *l, const char *line) {
    if (!l->tail_checked && !ends_with_newline(l->path))   // a run killed mid-line, a full disk
        logfile_write(l, "\n", 1);
    l->tail_checked = true;
    logfile_write(l, line, strlen(line));
    logfile_write(l, "\n", 1);
}

long long logfile_align(LogFile *l, size_t record) {
    struct stat st;
    int fd = fileno(l->f);
    if (record == 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    long long cut = (long long)(st.st_size % (off_t)record);
    if (cut > 0 && ftruncate(fd, st.st_size - cut) != 0) {
        warn("cannot cut the partial record at the end of '%s': %s; the run goes on without "
             "writing it", l->path, strerror(errno));
        l->failed = true;
        return 0;
    }
    return cut;
}

void logfile_close(LogFile *l) {
    if (!l) return;
    fclose(l->f);
    free(l->path);
    free(l);
}
