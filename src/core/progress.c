#include "core/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "core/util.h"

void progress_init(Progress *p, int64_t total_bytes, double every) {
    *p = (Progress){0};
    p->active = util_world_rank() == 0 && every > 0;
    p->tty = isatty(STDOUT_FILENO);
    p->every = p->tty && every > 0.5 ? 0.5 : every;
    p->start = p->last = now_seconds();
    p->total = total_bytes;
    p->ranks = util_world_size();
}

void progress_update(Progress *p, int64_t done, int64_t docs) {
    if (!p->active) return;
    double now = now_seconds();
    if (now - p->last < p->every) return;
    p->last = now;
    double secs = now - p->start, rate = secs > 0 ? (double)done / secs : 0;
    // A rank reads on to the end of the line its share ends in: past its total.
    double frac = p->total > 0 && done < p->total ? (double)done / (double)p->total : 1;
    double eta = rate > 0 && done < p->total ? (double)(p->total - done) / rate : 0;
    char total[32];
    format_bytes((double)p->total, total, sizeof total);
    printf("%s[rank 0 of %d] %lld documents, %.0f%% of its %s, %.2f MB/s per rank, ETA %.0f s%s",
           p->tty ? "\r" : "", p->ranks, (long long)docs, 100 * frac, total, rate / 1e6, eta,
           p->tty ? "   " : "\n");
    fflush(stdout);
    p->shown = true;
}

void progress_finish(Progress *p) {
    if (p->active && p->tty && p->shown) printf("\n");
    fflush(stdout);
}
