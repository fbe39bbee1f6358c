#include "fs/paths.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void path_parent(const char *path, char *out, size_t len) {
    snprintf(out, len, "%s", path);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') out[--n] = 0;
    char *slash = strrchr(out, '/');
    if (!slash) snprintf(out, len, ".");
    else if (slash == out) out[1] = 0;
    else *slash = 0;
}

void path_lexical(const char *path, char *out, size_t len) {
    char cwd[4096] = "", raw[8400];
    if (path[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    snprintf(raw, sizeof raw, "%s/%s", cwd, path);
    size_t at = 0;
    for (char *save, *c = strtok_r(raw, "/", &save); c && at + 1 < len; c = strtok_r(NULL, "/", &save))
        if (strcmp(c, ".") != 0) at += (size_t)snprintf(out + at, len - at, "/%s", c);
    if (at == 0) snprintf(out, len, "/");
}

void path_resolved(const char *path, char *out, size_t len) {
    char abs[8400], head[8400], real[PATH_MAX];
    path_lexical(path, abs, sizeof abs);
    snprintf(head, sizeof head, "%s", abs);
    while (!realpath(head, real)) {   // the deepest prefix that exists ("/" at least)
        char *slash = strrchr(head, '/');
        if (!slash || strcmp(head, "/") == 0) {
            snprintf(out, len, "%s", abs);
            return;
        }
        slash[slash == head] = 0;
    }
    // The rest does not exist yet: its ".." take back the component before
    // them, as they will once make_dirs has made it ("//" from "/" + rest
    // falls away with the other empty components).
    char joined[8400];
    snprintf(joined, sizeof joined, "%s/%s", real, abs + strlen(head));
    size_t at = 0;
    out[0] = 0;
    for (char *save, *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, "..") == 0) {
            while (at > 0 && out[--at] != '/') {}
            out[at] = 0;
        } else if (at + strlen(c) + 2 < len) {
            at += (size_t)snprintf(out + at, len - at, "/%s", c);
        }
    }
    if (at == 0) snprintf(out, len, "/");
}

bool path_within(const char *path, const char *dir) {
    char p[8400], d[8400];
    path_resolved(path, p, sizeof p);
    path_resolved(dir, d, sizeof d);
    size_t n = strlen(d);
    return strncmp(p, d, n) == 0 && (p[n] == 0 || p[n] == '/' || n == 1);
}

bool path_folder_usable(const char *what, const char *dir, char *err, int len) {
    char at[4096];
    struct stat st;
    snprintf(at, sizeof at, "%s", dir);
    while (stat(at, &st) != 0) {
        bool top = !strcmp(at, ".") || !strcmp(at, "/");
        if ((errno != ENOENT && errno != ENOTDIR) || top) {
            snprintf(err, len, "%s %s: cannot look at '%s': %s", what, dir, at, strerror(errno));
            return false;
        }
        char up[4096];
        path_parent(at, up, sizeof up);
        snprintf(at, sizeof at, "%s", up);
    }
    if (!S_ISDIR(st.st_mode))
        snprintf(err, len, "%s %s cannot be a folder: '%s' is a file; give another path", what,
                 dir, at);
    else if (access(at, W_OK | X_OK) != 0)
        snprintf(err, len, "%s %s: cannot write in '%s' (%s); give a folder you can write to",
                 what, dir, at, strerror(errno));
    else return true;
    return false;
}

bool path_file_usable(const char *what, const char *path, char *err, int len) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            snprintf(err, len, "%s %s is a folder; give a file name", what, path);
        else if (access(path, W_OK) != 0)
            snprintf(err, len, "%s %s: cannot write it (%s)", what, path, strerror(errno));
        else return true;
        return false;
    }
    char dir[4096];
    path_parent(path, dir, sizeof dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        snprintf(err, len, "%s %s: the folder '%s' does not exist; create it or give another "
                 "path", what, path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        snprintf(err, len, "%s %s: cannot write in '%s' (%s)", what, path, dir, strerror(errno));
    else return true;
    return false;
}
