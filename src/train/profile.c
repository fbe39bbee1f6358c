#include "train/profile.h"

#include <stdio.h>

#include "backend/ops_profile.h"
#include "core/util.h"

enum { MAX_ROWS = 128 };

// "256 -> 768" for a matmul of in 256, out 768; "-" for other ops.
static void shape_text(const OpProfileRow *r, char *out, int len) {
    if (r->in > 0) snprintf(out, (size_t)len, "%d -> %d", r->in, r->out);
    else snprintf(out, (size_t)len, "-");
}

static void log_row(LogFile *log, const char *kind, const OpProfileRow *r, double seconds,
                    int steps) {
    if (!log) return;
    char line[320];
    snprintf(line, sizeof line, "{\"profile\": \"%.40s\", \"in\": %d, \"out\": %d, \"calls_per_step\": "
             "%.6g, \"seconds_per_step\": %.6g, \"gflops\": %.6g}", kind, r ? r->in : 0,
             r ? r->out : 0, r ? (double)r->calls / steps : 0, seconds / steps,
             r && r->flops > 0 && seconds > 0 ? r->flops / seconds / 1e9 : 0);
    logfile_line(log, line);
}

// One line of the table: kind, shape, calls and ms per step (calls < 0: not
// counted), share of the step, GFLOP/s.
static void print_line(const char *kind, const char *shape, double calls, double seconds,
                       double flops, const ProfileTotals *p) {
    char rate[32] = "", n[32] = "-";
    if (flops > 0 && seconds > 0) snprintf(rate, sizeof rate, "%9.2f", flops / seconds / 1e9);
    if (calls >= 0) snprintf(n, sizeof n, "%.1f", calls / p->steps);
    info("  %-26s %-13s %8s %10.2f %6.1f%% %s", kind, shape, n, 1e3 * seconds / p->steps,
         100 * seconds / p->step_seconds, rate);
}

void profile_report(const ProfileTotals *p, LogFile *log) {
    if (p->steps < 1 || p->step_seconds <= 0) {
        info("profile: no measured steps (raise --steps above --bench-warmup)");
        return;
    }
    OpProfileRow rows[MAX_ROWS];
    int n = ops_profile_rows(rows, MAX_ROWS);
    info("profile (this rank, %d steps after the warm-up, %.2f ms per step; ops timed "
         "synchronously):", p->steps, 1e3 * p->step_seconds / p->steps);
    info("  %-26s %-13s %8s %10s %7s %9s", "op", "in -> out", "calls", "ms/step", "share",
         "GFLOP/s");
    double ops = 0;
    for (int i = 0; i < n; i++) {
        char shape[32];
        shape_text(&rows[i], shape, sizeof shape);
        print_line(rows[i].kind, shape, (double)rows[i].calls, rows[i].seconds, rows[i].flops, p);
        log_row(log, rows[i].kind, &rows[i], rows[i].seconds, p->steps);
        ops += rows[i].seconds;
    }
    double rest = p->step_seconds - ops - p->comm_seconds - p->data_seconds;
    print_line("communication (exposed)", "-", -1, p->comm_seconds, 0, p);
    print_line("data (loader)", "-", -1, p->data_seconds, 0, p);
    print_line("rest of the host's time", "-", -1, rest, 0, p);
    log_row(log, "communication (exposed)", NULL, p->comm_seconds, p->steps);
    log_row(log, "data (loader)", NULL, p->data_seconds, p->steps);
    log_row(log, "rest of the host's time", NULL, rest, p->steps);
}
