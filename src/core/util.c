#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *program = "llama";

// At exit: output that could not be written (a full disk under "> plan.txt")
// is an error, not a success with a truncated file.
static void check_stdout(void) {
    int failed = fflush(stdout) != 0 ? errno : 0;
    if (!failed && !ferror(stdout)) return;
    if (failed)
        fprintf(stderr, "%s: error: writing the output failed: %s\n", program, strerror(failed));
    else   // an earlier flush failed; errno has moved on since
        fprintf(stderr, "%s: error: writing the output failed (a full disk, or a closed or broken "
                "output?)\n", program);
    _exit(1);
}

void util_set_program(const char *name) {
    static bool registered;
    program = name;
    if (!registered) atexit(check_stdout);
    registered = true;
}
const char *util_program(void) { return program; }

// Outside a job (or before the communicator installs it): rank 0 of 1.
static int alone_rank(void) { return 0; }
static int alone_size(void) { return 1; }
static void alone_abort(void) { exit(1); }
static void alone_leave(void) {}
static const UtilWorld alone = {alone_rank, alone_size, alone_abort, alone_leave};
static const UtilWorld *world = &alone;

void util_set_world(const UtilWorld *w) { world = w ? w : &alone; }

int util_world_rank(void) { return world->rank(); }
int util_world_size(void) { return world->size(); }

static void print_error(const char *fmt, va_list ap, bool with_rank) {
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (with_rank && util_world_size() > 1)
        fprintf(stderr, "%s: error (rank %d): %s\n", program, util_world_rank(), msg);
    else
        fprintf(stderr, "%s: error: %s\n", program, msg);
    fflush(stderr);
}

// The first thread to meet a fatal error ends the process; another thread
// meeting one meanwhile (an OpenMP loop's other iterations) waits for that,
// as two exit()s at once crash.  A fatal error while reporting one ends at once.
static atomic_flag ending = ATOMIC_FLAG_INIT;
static _Thread_local bool this_thread_ending;

static void fatal_begin(void) {
    if (this_thread_ending) _exit(1);
    this_thread_ending = true;
    if (atomic_flag_test_and_set(&ending))
        for (;;) pause();
}

void fatal(const char *fmt, ...) {
    fatal_begin();
    va_list ap;
    va_start(ap, fmt);
    print_error(fmt, ap, true);
    va_end(ap);
    fflush(stdout);
    if (util_world_size() > 1) world->abort_all();
    exit(1);
}

__attribute__((noreturn)) static void fatal_all_v(int status, const char *fmt, va_list ap) {
    fatal_begin();
    if (util_world_rank() == 0) print_error(fmt, ap, false);
    fflush(stdout);
    world->leave();
    exit(status);
}

void fatal_all(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fatal_all_v(1, fmt, ap);
}

void fatal_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fatal_all_v(EXIT_USAGE, fmt, ap);
}

void info(const char *fmt, ...) {
    if (util_world_rank() != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: warning: ", program);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void *xmalloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    if (posix_memalign(&p, 64, (bytes + 63) / 64 * 64) != 0) {
        char b[32];
        fatal("out of memory allocating %s; use a smaller model, batch or sequence, "
              "or more ranks", format_bytes((double)bytes, b, sizeof b));
    }
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = xmalloc(count * size);
    memset(p, 0, count * size);
    return p;
}

void *xrealloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) {
        char b[32];
        fatal("out of memory reallocating %s", format_bytes((double)bytes, b, sizeof b));
    }
    return q;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

// A number as a person writes it: no leading space (strtoll and strtod skip
// it) and, for decimals, no hexadecimal ("0x1p3", which strtod reads).
static bool plain_number(const char *s, bool decimal) {
    if (!s || !*s || isspace((unsigned char)*s)) return false;
    if (*s == '+' || *s == '-') s++;
    return !decimal || !(s[0] == '0' && (s[1] == 'x' || s[1] == 'X'));
}

bool parse_int64(const char *s, int64_t *out) {
    if (!plain_number(s, false)) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool parse_int(const char *s, int *out) {
    int64_t v;
    if (!parse_int64(s, &v) || v < -2147483647LL || v > 2147483647LL) return false;
    *out = (int)v;
    return true;
}

bool parse_double(const char *s, double *out) {
    if (!plain_number(s, true)) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);   // ERANGE with a finite value: an underflow, kept (1e-320)
    if ((errno && errno != ERANGE) || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *format_bytes(double bytes, char *buf, size_t len) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 5) { bytes /= 1024.0; u++; }
    snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", bytes, unit[u]);
    return buf;
}

const char *format_count(double n, char *buf, size_t len) {
    const char *unit[] = {"", " K", " M", " B", " T"};
    int u = 0;
    while (n >= 1000.0 && u < 4) { n /= 1000.0; u++; }
    snprintf(buf, len, "%.3g%s", n, unit[u]);
    return buf;
}

void sha256_digest(const void *data, size_t len, unsigned char md[32]) {
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        fatal("SHA-256 failed (libcrypto)");
}

void hex_encode(const unsigned char *bytes, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

void sha256_hex(const void *data, size_t len, char out[65]) {
    unsigned char md[32];
    sha256_digest(data, len, md);
    hex_encode(md, 32, out);
}

bool prefix_error(const char *what, bool ok, char *err, int len) {
    if (ok) return true;
    char *why = xstrdup(err);
    snprintf(err, (size_t)len, "%s: %s", what, why);
    free(why);
    return false;
}

bool list_has_empty_item(const char *list) {
    size_t n = strlen(list);
    return n > 0 && (list[0] == ',' || list[n - 1] == ',' || strstr(list, ",,") != NULL);
}
