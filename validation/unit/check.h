// A minimal test harness for the C unit tests.  Each case prints one line,
// "PASS <name>" or "FAIL <name>: <why>"; validation/run.sh counts them.
#ifndef LLAMA_CHECK_H
#define LLAMA_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *check_case = NULL;
static int check_case_failed = 0;
static int check_failures = 0;

static inline void check_begin(const char *name) {
    check_case = name;
    check_case_failed = 0;
}

static inline void check_end(void) {
    if (!check_case_failed) printf("PASS %s\n", check_case);
    fflush(stdout);
}

static inline void check_skip(const char *why) {
    printf("SKIP %s: %s\n", check_case, why);
    check_case_failed = 1;  // so check_end prints nothing more
    fflush(stdout);
}

__attribute__((format(printf, 3, 4)))
static inline void check_failed(const char *file, int line, const char *fmt, ...) {
    if (!check_case_failed) {
        va_list ap;
        va_start(ap, fmt);
        printf("FAIL %s: %s:%d: ", check_case ? check_case : "?", file, line);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        fflush(stdout);
    }
    check_case_failed = 1;
    check_failures++;
}

#define CHECK(cond, ...) \
    do { if (!(cond)) check_failed(__FILE__, __LINE__, __VA_ARGS__); } while (0)

// |a - b| <= tol * max(|b|, floor): relative with an absolute floor near zero.
static inline int check_close(double a, double b, double tol, double floor_) {
    double scale = fabs(b) > floor_ ? fabs(b) : floor_;
    return fabs(a - b) <= tol * scale && !isnan(a);
}

#define CHECK_CLOSE(a, b, tol, floor_, what)                                          \
    CHECK(check_close((a), (b), (tol), (floor_)), "%s: %.9g vs %.9g (tolerance %g)", \
          (what), (double)(a), (double)(b), (double)(tol))

static inline int check_exit_code(void) { return check_failures ? 1 : 0; }

#endif
