// Errors, allocation and strict number parsing shared by every program.
#ifndef LLAMA_UTIL_H
#define LLAMA_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

// The program name that prefixes every message ("llama-train", ...).
void util_set_program(const char *name);
const char *util_program(void);

// A fatal error that only this rank knows about: prints "<program>: error: ..."
// (with the rank when the world has more than one) and ends every rank
// (the world's abort_all: MPI_Abort under MPI; exit(1) otherwise).
void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

// A fatal error every rank has detected together (bad options, impossible
// layout): rank 0 prints it once, every rank leaves the job (finalizes MPI)
// and exits 1.
void fatal_all(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

// A bad command line every rank has found together (unknown option, bad or
// missing value): as fatal_all, with exit status EXIT_USAGE, as getopt-style
// tools and Python's argparse use.
#define EXIT_USAGE 2
void fatal_usage(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

// ok, and when it is false: what and ": " put in front of the reason in err
// (for a check whose message does not name the option it checks).
bool prefix_error(const char *what, bool ok, char *err, int len);

// Informational line from rank 0 only, to stdout.
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// A warning from this rank, to stderr.
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// The job this process belongs to, as the communicator installs it when MPI
// starts (comm_world_start): this rank, the number of ranks, how to end every
// rank at once (does not return) and how to leave the job before exit.
// Until then, and after MPI ends: rank 0 of 1, exit.
typedef struct {
    int (*rank)(void);
    int (*size)(void);
    void (*abort_all)(void);
    void (*leave)(void);
} UtilWorld;
void util_set_world(const UtilWorld *w);   // NULL: alone again

int util_world_rank(void);
int util_world_size(void);

void *xmalloc(size_t bytes);            // fatal on failure; 64-byte aligned
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t bytes);
char *xstrdup(const char *s);

// Strict parsers: the whole string must be a number in range.  Return false
// (and leave *out untouched) otherwise.
bool parse_int64(const char *s, int64_t *out);
bool parse_int(const char *s, int *out);
bool parse_double(const char *s, double *out);
// Whether a comma-separated list has an empty item ("2,,2", "2,", ",2"),
// which splitting with strtok would pass over without a word.
bool list_has_empty_item(const char *list);

double now_seconds(void);    // monotonic clock
// Human-readable byte count into buf ("1.50 GiB").
const char *format_bytes(double bytes, char *buf, size_t len);
// The SHA-256 of len bytes (libcrypto; fatal if it fails).
void sha256_digest(const void *data, size_t len, unsigned char md[32]);
// n bytes as 2n lowercase hex digits and a NUL into out.
void hex_encode(const unsigned char *bytes, size_t n, char *out);
// The SHA-256 of len bytes as 64 hex digits and a NUL.
void sha256_hex(const void *data, size_t len, char out[65]);
// A count with a K/M/B suffix ("6.74 B").
const char *format_count(double n, char *buf, size_t len);

#endif
