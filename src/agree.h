// Collective verdicts: every rank checks something itself, and all of them
// stop together with one message when any failed (no rank left waiting).
#ifndef LLAMA_AGREE_H
#define LLAMA_AGREE_H

#include <stdbool.h>

// Collective over MPI_COMM_WORLD.  When ok is false on some rank, the message
// of the lowest such rank is printed once (by rank 0) and every rank exits 1.
void agree_or_exit(bool ok, const char *message);

#endif
