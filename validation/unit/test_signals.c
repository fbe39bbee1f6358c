// Preemption signals (src/core/signals.c): after signals_install, SIGTERM and
// SIGUSR1 have the handler, and the calling thread and a thread it starts
// afterwards (as OpenMP and the BLAS start theirs) block them, so a signal
// never interrupts the computation; one sent to the process is still taken
// (by the signal thread) and reported by signals_pending.  SIGINT (Ctrl-C)
// likewise, and a second one ends the process.  SIGPIPE is ignored, so a write
// to a closed pipe fails instead of killing the process.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/signals.h"

static bool blocked_here(void) {
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    return sigismember(&now, SIGTERM) == 1 && sigismember(&now, SIGUSR1) == 1;
}

static void *report_mask(void *out) {
    *(bool *)out = blocked_here();
    return NULL;
}

// The child of the SIGINT check: 130 when the second SIGINT ends it.  One
// right after the first is the same Ctrl-C delivered twice (GNU timeout
// sends it to the process and to its group): it must not end the process.
static int sigint_child(void) {
    signals_install();
    kill(getpid(), SIGINT);
    for (int i = 0; i < 10000 && signals_pending() != SIGINT; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    if (signals_pending() != SIGINT) return 3;
    kill(getpid(), SIGINT);   // the duplicate
    nanosleep(&(struct timespec){1, 200000000}, NULL);
    printf("survived the duplicate\n");   // to the parent's pipe
    fflush(stdout);
    kill(getpid(), SIGINT);   // a second Ctrl-C
    for (int i = 0; i < 10000; i++) nanosleep(&(struct timespec){0, 1000000}, NULL);
    return 4;   // still alive 10 s after it
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--sigint-child") == 0) return sigint_child();
    // SIGPIPE: whatever the disposition this process inherited, signals_install sets it.
    signal(SIGPIPE, SIG_DFL);
    check_begin("SIGTERM and SIGUSR1 handled, and blocked in the computing threads");
    signals_install();
    struct sigaction term, usr1;
    sigaction(SIGTERM, NULL, &term);
    sigaction(SIGUSR1, NULL, &usr1);
    CHECK(term.sa_handler != SIG_DFL && term.sa_handler != SIG_IGN &&
              term.sa_handler == usr1.sa_handler,
          "SIGTERM and SIGUSR1 do not share an installed handler");
    CHECK(blocked_here(), "the thread that installed the signals does not block them");
    bool child = false;
    pthread_t t;
    pthread_create(&t, NULL, report_mask, &child);
    pthread_join(t, NULL);
    CHECK(child, "a thread started afterwards does not block them");
    check_end();

    // llama-train ... | head: a write to the closed pipe fails (EPIPE), the
    // run is not killed by SIGPIPE before it saves.
    check_begin("SIGPIPE ignored: a write to a pipe without a reader fails with EPIPE");
    struct sigaction pipe_action;
    sigaction(SIGPIPE, NULL, &pipe_action);
    CHECK(pipe_action.sa_handler == SIG_IGN, "SIGPIPE is not ignored");
    int closed[2];
    if (pipe(closed) == 0) {
        close(closed[0]);
        errno = 0;
        ssize_t n = write(closed[1], "x", 1);   // without the ignore, SIGPIPE ends the test here
        CHECK(n == -1 && errno == EPIPE, "write returned %zd (%s)", n, strerror(errno));
        close(closed[1]);
    } else CHECK(false, "pipe: %s", strerror(errno));
    check_end();

    check_begin("a SIGUSR1 sent to the process is taken and reported");
    kill(getpid(), SIGUSR1);
    // Taken asynchronously by the signal thread: wait for it (bounded at 10 s).
    for (int i = 0; i < 10000 && signals_pending() == 0; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    CHECK(signals_pending() == SIGUSR1, "signals_pending() is %d, not SIGUSR1", signals_pending());
    check_end();

    // A closed terminal or ssh session: saved and stopped like SIGTERM, not
    // killed (which left the lock and lost the steps since the last save).
    check_begin("a SIGHUP sent to the process is taken and reported");
    kill(getpid(), SIGHUP);
    for (int i = 0; i < 10000 && signals_pending() != SIGHUP; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    CHECK(signals_pending() == SIGHUP, "signals_pending() is %d, not SIGHUP", signals_pending());
    check_end();

    // Ctrl-C: the first asks for a stop like SIGTERM, a second ends the process
    // at once with 130.  In a child process, which the second one ends.
    check_begin("SIGINT: the first is reported like SIGTERM, its duplicate ignored, a second a second later ends the process (exit 130)");
    int out[2];
    if (pipe(out) != 0) out[0] = out[1] = -1;
    pid_t pid = fork();
    if (pid == 0) {   // a fresh process (a fork has no signal thread): this test again
        dup2(out[1], STDOUT_FILENO);
        execl("/proc/self/exe", "test_signals", "--sigint-child", (char *)NULL);
        _exit(5);
    }
    close(out[1]);
    char said[64] = "";
    ssize_t n = read(out[0], said, sizeof said - 1);
    said[n > 0 ? n : 0] = 0;
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(strstr(said, "survived the duplicate"), "the SIGINT right after the first ended the "
          "process (it is the same Ctrl-C delivered twice)");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 130, "the child ended with status %d "
          "(3: the first SIGINT not reported, 4: the second did not end it, 5: no exec)",
          WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
    check_end();
    return check_exit_code();
}
