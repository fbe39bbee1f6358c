// SIGTERM and SIGUSR1 (what Slurm sends before a time limit or preemption)
// and SIGINT (a terminal's Ctrl-C) ask the run to finish its step, save a
// checkpoint and exit 0, as SIGHUP (the terminal or ssh session closed) does;
// a second SIGINT (a second after the first) ends the process at once (exit
// 130).  SIGPIPE is ignored: a closed stdout does not
// kill the run before it saves.
#ifndef LLAMA_SIGNALS_H
#define LLAMA_SIGNALS_H

void signals_install(void);
// The signal received since start-up (SIGTERM, SIGUSR1, SIGINT or SIGHUP), or 0.
int signals_pending(void);

#endif
