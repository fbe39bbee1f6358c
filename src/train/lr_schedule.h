// The learning-rate schedule: linear warm-up, then a decay of one of
// Megatron-LM's styles (--lr-decay-style) to lr·min_lr_ratio at decay_end
// (--lr-decay-steps, counted from step 0 like Megatron's --lr-decay-iters;
// default: the run's last step), lr·min_lr_ratio after it.
#ifndef LLAMA_LR_SCHEDULE_H
#define LLAMA_LR_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    LR_DECAY_COSINE,     // half a cosine from lr to the minimum
    LR_DECAY_LINEAR,     // a straight line from lr to the minimum
    LR_DECAY_CONSTANT,   // lr after the warm-up, no decay
    LR_DECAY_WSD,        // warm-up, stable at lr, then a linear decay to the minimum over
                         // the last wsd_decay_steps before decay_end
} LrDecayStyle;

typedef struct {
    double lr, min_lr_ratio;   // peak; the floor as a fraction of it
    int64_t warmup_steps;      // steps 0..warmup_steps-1 ramp to lr: (step + 1) / warmup_steps
    int64_t decay_end;         // the step at which the decay reaches lr·min_lr_ratio
    LrDecayStyle style;
    int64_t wsd_decay_steps;   // LR_DECAY_WSD: length of the final decay
} LrSchedule;

// The learning rate of optimizer step `step` (0-based).
double lr_schedule_at(const LrSchedule *s, int64_t step);
// Whether the schedule can run: a decay that ends after the warm-up, a WSD
// decay that fits between them (and only with WSD).  False with the reason
// in err, naming the options.
bool lr_schedule_check(const LrSchedule *s, char *err, int len);
// One line saying what the schedule does, for the start of a run of
// total_steps steps, numbered as the step lines number them (from 1).
void lr_schedule_describe(const LrSchedule *s, int64_t total_steps, char *out, int len);

#endif
