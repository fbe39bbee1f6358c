#define _POSIX_C_SOURCE 200809L
#include "core/signals.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"

static volatile sig_atomic_t received = 0;

// A second Ctrl-C ends the process at once (the user does not want to wait
// for the step and the save); one within a second of the first is the same
// Ctrl-C delivered twice (GNU timeout and some launchers pass a signal on
// to the process and again to its group).
static volatile double first_sigint = 0;   // now_seconds: clock_gettime, async-signal-safe

static void on_signal(int sig) {
    if (sig == SIGINT && received == SIGINT && now_seconds() - first_sigint > 1.0)
        _exit(128 + SIGINT);
    if (sig == SIGINT && received != SIGINT) first_sigint = now_seconds();
    received = sig;
}

static void preemption_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

// The one thread of this process that takes the signals: it only waits.
static void *signal_thread(void *arg) {
    (void)arg;
    sigset_t set;
    preemption_signals(&set);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    for (;;) pause();
    return NULL;
}

// The handler, then the calling thread (and every thread it starts from now
// on: OpenMP's workers, the BLAS's) blocks the signals and a thread of their
// own takes them, so a signal never interrupts the computation: with oneDNN's
// JIT kernels interrupted by SIGTERM the heap was corrupted now and then.
// llama-train calls this first thing, before MPI starts its threads.
void signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    // A closed pipe on stdout (llama-train ... | head) makes writes fail
    // instead of killing the run before it saves; the exit says so.
    signal(SIGPIPE, SIG_IGN);
    static bool started = false;
    if (started) return;
    sigset_t set;
    preemption_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, signal_thread, NULL) != 0)
        fatal("cannot start the thread that takes SIGTERM, SIGUSR1, SIGINT and SIGHUP "
              "(pthread_create failed)");
    pthread_detach(t);
    started = true;
}

int signals_pending(void) { return received; }
