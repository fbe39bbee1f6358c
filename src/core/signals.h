// SIGTERM and SIGUSR1 (what Slurm sends before a time limit or preemption)
// ask the run to finish its step, save a checkpoint and exit 0.
#ifndef LLAMA_SIGNALS_H
#define LLAMA_SIGNALS_H

void signals_install(void);
// The signal received since start-up (SIGTERM or SIGUSR1), or 0.
int signals_pending(void);

#endif
