// Progress of a long pass over the corpus, shown by rank 0 for its own share
// (every rank has an equal share of the bytes): documents, MB/s, ETA.  A live
// line rewritten with '\r' on a terminal, a plain line every interval
// otherwise.
#ifndef LLAMA_PROGRESS_H
#define LLAMA_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    bool active, tty, shown;
    double start, last, every;
    int64_t total;      // bytes of this rank's share
    int ranks;
} Progress;

// every: seconds between lines when not on a terminal (0: no progress).
void progress_init(Progress *p, int64_t total_bytes, double every);
// done: bytes of the share read so far; docs: documents so far.  Cheap.
void progress_update(Progress *p, int64_t done, int64_t docs);
// Ends a live line.
void progress_finish(Progress *p);

#endif
