// The host memory a run can still use: the kernel's MemAvailable, or less
// where the process's memory cgroup (a Slurm job step's, a container's) has a
// lower limit.  Read before the model's buffers are allocated, so a run that
// cannot fit ends with a message instead of the kernel's OOM killer.
#ifndef LLAMA_HOST_MEMORY_H
#define LLAMA_HOST_MEMORY_H

#include <stddef.h>

// Bytes available; *source (len bytes) names where the figure comes from
// ("MemAvailable", "the memory cgroup's limit ..."). 0 when nothing can be
// read (not Linux): then no check can be made.
double host_memory_available(char *source, size_t len);

#endif
