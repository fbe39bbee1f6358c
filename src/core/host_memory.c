#include "core/host_memory.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The first number of a file (a cgroup value), or -1 ("max" or unreadable).
static double read_number(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[64] = "";
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    char *end;
    double v = ok ? strtod(line, &end) : -1;
    return ok && end != line ? v : -1;
}

// The value of `key` in a "key value" file (/proc/meminfo's kB: scale 1024).
static double read_key(const char *path, const char *key, double scale) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    double v = -1;
    size_t n = strlen(key);
    while (v < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && (line[n] == ' ' || line[n] == ':'))
            v = strtod(line + n + 1, NULL) * scale;
    fclose(f);
    return v;
}

// The memory cgroup's folder: v2 ("0::/path") or v1 ("N:memory:/path"), as
// mounted (inside a container the mount is the cgroup itself: the root).
static bool cgroup_dir(char *out, size_t len, bool *v2) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return false;
    char line[1024], path[1024] = "";
    *v2 = false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        bool mem = strncmp(a + 1, "memory:", 7) == 0, unified = a[1] == ':';
        if (mem || (unified && !path[0])) {
            snprintf(path, sizeof path, "%s", b + 1);
            *v2 = !mem;
        }
    }
    fclose(f);
    const char *root = *v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
    char probe[2200];
    snprintf(probe, sizeof probe, "%s%s/%s", root, path, *v2 ? "memory.max" : "memory.limit_in_bytes");
    FILE *p = fopen(probe, "r");
    if (p) fclose(p);
    snprintf(out, len, "%s%s", root, p ? path : "");
    return true;
}

// What the cgroup allows beyond its use (its reclaimable page cache counted
// as free); -1 without a limit.
static double cgroup_available(char *dir, size_t len) {
    bool v2;
    if (!cgroup_dir(dir, len, &v2)) return -1;
    char p[2400];
    snprintf(p, sizeof p, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    double limit = read_number(p);
    if (limit < 0 || limit > 1e18) return -1;   // "max", or v1's "unlimited" page count
    snprintf(p, sizeof p, "%s/%s", dir, v2 ? "memory.current" : "memory.usage_in_bytes");
    double used = read_number(p);
    snprintf(p, sizeof p, "%s/memory.stat", dir);
    double cache = read_key(p, v2 ? "inactive_file" : "total_inactive_file", 1);
    if (used < 0) return -1;
    if (cache > 0 && cache < used) used -= cache;
    return limit > used ? limit - used : 0;
}

double host_memory_available(char *source, size_t len) {
    double avail = read_key("/proc/meminfo", "MemAvailable", 1024);
    snprintf(source, len, "MemAvailable in /proc/meminfo");
    char dir[2200];
    double group = cgroup_available(dir, sizeof dir);
    if (group >= 0 && (avail < 0 || group < avail)) {
        avail = group;
        snprintf(source, len, "the limit of the memory cgroup %.200s less its use", dir);
    }
    return avail > 0 ? avail : 0;
}
