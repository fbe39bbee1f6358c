#include "fs/dirs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"

bool make_dirs(const char *path, char *err, int err_len) {
    char *buf = xstrdup(path);
    bool ok = true;
    for (char *p = buf + 1; ok; p++) {
        char c = *p;
        if (c != '/' && c != 0) continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            snprintf(err, err_len, "cannot create folder '%s': %s", buf, strerror(errno));
            ok = false;
        }
        *p = c;
        if (!c) break;
    }
    free(buf);
    return ok;
}
