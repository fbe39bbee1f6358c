// What the libFuzzer harnesses share: the parsers take file paths, so each
// input is written to one file per process (in /dev/shm when there is one)
// and the parser opens that.  A harness that cannot write its file aborts:
// that is the machine, not a finding.
#ifndef LLAMA_FUZZ_INPUT_H
#define LLAMA_FUZZ_INPUT_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

// The folder this process's files go in, made once: /dev/shm or /tmp.
static const char *fuzz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0
                               ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/llama-fuzz-%d", base, (int)getpid());
        if (mkdir(dir, 0700) != 0 && access(dir, W_OK) != 0) {
            perror(dir);
            abort();
        }
    }
    return dir;
}

// Writes data to <fuzz_dir>/<name> and returns that path (static storage).
static const char *fuzz_file(const uint8_t *data, size_t size, const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            perror(path);
            abort();
        }
        done += (size_t)n;
    }
    close(fd);
    return path;
}

#endif
