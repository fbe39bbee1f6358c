#define _POSIX_C_SOURCE 200809L
#include "core/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received = 0;

static void on_signal(int sig) { received = sig; }

void signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int signals_pending(void) { return received; }
