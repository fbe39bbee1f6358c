// One pass over this rank's share of the corpus (work_split), in document
// order, calling a function for every document.  A bad record or an
// unreadable file ends every rank with a message naming file and line
// (fatal), unless skip_bad, which skips and counts bad records.
#ifndef LLAMA_CORPUS_WALK_H
#define LLAMA_CORPUS_WALK_H

#include "text/corpus_files.h"
#include "text/jsonl.h"

typedef void (*RecordFn)(void *ctx, const JsonlRecord *rec, int file);

// A note (rank 0) when the input folders held compressed corpus files that
// are not read (.jsonl.gz, ...): a whole source would be missing silently.
void corpus_note_passed_over(const CorpusFiles *c);

// Returns this rank's counts in *counts.
void corpus_walk(const CorpusFiles *c, const JsonlOptions *opt, double progress_every,
                 RecordFn fn, void *ctx, JsonlCounts *counts);

#endif
