#include "train/lr_schedule.h"

#include <math.h>
#include <stdio.h>

// How far step is through [from, to): 0 at from, 1 at to and after.
static double progress(int64_t step, int64_t from, int64_t to) {
    if (to <= from || step >= to) return 1.0;
    return step <= from ? 0.0 : (double)(step - from) / (double)(to - from);
}

double lr_schedule_at(const LrSchedule *s, int64_t step) {
    if (step < s->warmup_steps) return s->lr * (double)(step + 1) / (double)s->warmup_steps;
    double min_lr = s->lr * s->min_lr_ratio, keep;   // keep: the share of lr − min_lr left
    switch (s->style) {
    case LR_DECAY_CONSTANT: return s->lr;
    case LR_DECAY_LINEAR: keep = 1.0 - progress(step, s->warmup_steps, s->decay_end); break;
    case LR_DECAY_WSD:
        keep = 1.0 - progress(step, s->decay_end - s->wsd_decay_steps, s->decay_end);
        break;
    default: keep = 0.5 * (1.0 + cos(M_PI * progress(step, s->warmup_steps, s->decay_end)));
    }
    return min_lr + (s->lr - min_lr) * keep;
}

bool lr_schedule_check(const LrSchedule *s, char *err, int len) {
    bool wsd = s->style == LR_DECAY_WSD;
    if (s->decay_end < s->warmup_steps && s->style != LR_DECAY_CONSTANT)
        snprintf(err, len, "--lr-decay-steps %lld ends the decay before the warm-up's %lld steps "
                 "do: give at least --warmup-steps (it counts from step 0, like Megatron's "
                 "--lr-decay-iters)", (long long)s->decay_end, (long long)s->warmup_steps);
    else if (wsd && s->wsd_decay_steps < 1)
        snprintf(err, len, "--lr-decay-style wsd needs --lr-wsd-decay-steps N: the steps of the "
                 "final decay (before --lr-decay-steps, default the last step)");
    else if (wsd && s->wsd_decay_steps > s->decay_end - s->warmup_steps)
        snprintf(err, len, "--lr-wsd-decay-steps %lld is longer than the %lld steps between the "
                 "warm-up's end (%lld) and the decay's (%lld)", (long long)s->wsd_decay_steps,
                 (long long)(s->decay_end - s->warmup_steps), (long long)s->warmup_steps,
                 (long long)s->decay_end);
    else if (!wsd && s->wsd_decay_steps != 0)
        snprintf(err, len, "--lr-wsd-decay-steps belongs to --lr-decay-style wsd");
    else return true;
    return false;
}

// Steps as the step lines number them (from 1): index i is step i + 1.
void lr_schedule_describe(const LrSchedule *s, int64_t total_steps, char *out, int len) {
    double min_lr = s->lr * s->min_lr_ratio;
    long long w = (long long)s->warmup_steps, end = (long long)s->decay_end + 1;
    int n = 0;
    switch (s->style) {
    case LR_DECAY_CONSTANT:
        n = snprintf(out, len, "warm-up %lld steps, then constant %g", w, s->lr);
        break;
    case LR_DECAY_WSD:
        n = snprintf(out, len, "warm-up %lld steps, stable at %g through step %lld, then linear to "
                     "%g, reached at step %lld", w, s->lr, end - (long long)s->wsd_decay_steps,
                     min_lr, end);
        break;
    default:
        n = snprintf(out, len, "warm-up %lld steps to %g, then %s decay to %g, reached at step %lld",
                     w, s->lr, s->style == LR_DECAY_LINEAR ? "linear" : "cosine", min_lr, end);
    }
    if (n > 0 && n < len && total_steps > 0)
        snprintf(out + n, (size_t)(len - n), "; step %lld, this run's last, uses %.4g",
                 (long long)total_steps, lr_schedule_at(s, total_steps - 1));
}
