// The hang watchdog (--hang-timeout): a thread per rank that ends the job
// when the rank has made no progress for the timeout, naming the rank, the
// step and what it was doing.  A stopped or dead rank, a collective one rank
// never entered, or a stuck file system would otherwise hold every rank (and
// the allocation) until the scheduler's time limit.  Open MPI, and srun with
// --kill-on-bad-exit, end the other ranks when one exits.
#ifndef LLAMA_WATCHDOG_H
#define LLAMA_WATCHDOG_H

#include <stdint.h>

// Starts the thread; timeout_s <= 0 leaves the watchdog off.
void watchdog_start(double timeout_s, int rank);
// Progress: the rank now does `what` (a string that outlives the call) at step.
void watchdog_beat(const char *what, int64_t step);
// Progress within what it does: one tensor of a save, load or export, one
// micro-batch of a step.  A 65B step, save or load takes longer than the
// timeout in all, but no one of these parts should.
void watchdog_alive(void);
void watchdog_stop(void);

#endif
