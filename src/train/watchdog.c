#define _POSIX_C_SOURCE 200809L
#include "train/watchdog.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;     // watchdog_stop
    pthread_t thread;
    bool running, stopping;
    double timeout, last;    // seconds; the time of the last beat
    const char *what;
    int64_t step;
    int rank;
} w = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static double monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// The message, then _exit: MPI may not be called from this thread, and the
// main thread may be blocked inside MPI.  The launcher ends the other ranks.
static void expire(double idle) {
    fprintf(stderr, "%s: error: rank %d made no progress for %.0f s (--hang-timeout %.0f) while "
            "%s at step %lld: a rank stopped, died or never entered a collective the others wait "
            "in, or the file system stalls; ending the job (resume with --load auto; raise --hang-timeout "
            "if a step really takes this long)\n",
            util_program(), w.rank, idle, w.timeout, w.what, (long long)w.step);
    fflush(stderr);
    fflush(stdout);
    _exit(1);
}

static void *watch(void *arg) {
    (void)arg;
    pthread_mutex_lock(&w.lock);
    while (!w.stopping) {
        struct timespec until;   // wake once a second (or at watchdog_stop)
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&w.wake, &w.lock, &until);
        double idle = monotonic_seconds() - w.last;
        if (!w.stopping && idle > w.timeout) expire(idle);
    }
    pthread_mutex_unlock(&w.lock);
    return NULL;
}

void watchdog_start(double timeout_s, int rank) {
    if (timeout_s <= 0 || w.running) return;
    w.timeout = timeout_s;
    w.rank = rank;
    w.stopping = false;
    watchdog_beat("starting", 0);
    if (pthread_create(&w.thread, NULL, watch, NULL) != 0)
        fatal("cannot start the hang watchdog thread (pthread_create failed); add --hang-timeout 0 "
              "to run without it");
    w.running = true;
}

void watchdog_beat(const char *what, int64_t step) {
    pthread_mutex_lock(&w.lock);
    w.last = monotonic_seconds();
    w.what = what;
    w.step = step;
    pthread_mutex_unlock(&w.lock);
}

void watchdog_alive(void) {
    pthread_mutex_lock(&w.lock);
    w.last = monotonic_seconds();
    pthread_mutex_unlock(&w.lock);
}

void watchdog_stop(void) {
    if (!w.running) return;
    pthread_mutex_lock(&w.lock);
    w.stopping = true;
    pthread_cond_signal(&w.wake);
    pthread_mutex_unlock(&w.lock);
    pthread_join(w.thread, NULL);
    w.running = false;
}
