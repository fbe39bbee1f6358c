// Dividing a corpus over ranks so that rank order is document order: the
// files, laid end to end, are cut into equal byte spans, one per rank.  A
// plain file is read by every rank whose span overlaps it, each taking the
// lines that start in its part (jsonl_open's byte ranges); a file that cannot
// be split (.zst) goes whole to the rank whose span holds its first byte.
#ifndef LLAMA_WORK_SPLIT_H
#define LLAMA_WORK_SPLIT_H

#include <stdint.h>

#include "text/corpus_files.h"

typedef struct {
    int file;              // index into the corpus files
    int64_t begin, end;    // byte range of that file
} WorkRange;

// The ranges of `rank` among `ranks`, in file order; returns their count
// (out has room for n files).
int work_split(const CorpusFiles *c, int rank, int ranks, WorkRange *out);

#endif
