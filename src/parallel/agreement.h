// Agreement across ranks at start: every rank must run the same job (options,
// model, dataset).  A rank started differently, or one that sees another copy
// of the data, would otherwise train on, diverge from the others without a
// word, or hang in a collective that the others never enter.
#ifndef LLAMA_AGREEMENT_H
#define LLAMA_AGREEMENT_H

#include "comm/comm.h"

// Every rank's `text` (lines) must equal rank 0's.  Otherwise every rank ends
// with one message naming the first rank that differs, its first differing
// line and rank 0's, then `remedy`.  Collective over c.
void agree_on_text(const Comm *c, const char *what, const char *text, const char *remedy);

// Every rank of c must see the file rank 0 writes into folder dir (which
// exists on rank 0): a folder on each node's own disk, or one missing on
// some, fails.  Otherwise every rank ends with "<what> <dir>: rank N (host H)
// does not see the file rank 0 (host H0) wrote there (<probe>): <why>".  The
// probe file is removed.  Collective over c.
void agree_folder_shared(const Comm *c, const char *what, const char *dir, const char *why);

// Whether every rank of c holds the same value (a digest of what each read
// on its own: the same file must give the same bytes).  Collective over c.
bool agree_same_u64(const Comm *c, uint64_t value);

#endif
