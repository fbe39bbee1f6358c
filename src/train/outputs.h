// The files and folders a training run writes (--save-dir, --export-hf, --log,
// --dump-batches), checked before anything is allocated: a typo or a clash
// ends the job at the start, not after the training.
#ifndef LLAMA_OUTPUTS_H
#define LLAMA_OUTPUTS_H

#include <stdbool.h>

#include "train/options.h"

// Every output is writable (a folder, or what mkdir -p makes one), none is an
// input (the run deck, -c, --tokenizer, --init-hf, --dataset), --log and
// --dump-batches are two files, and the export's folder holds nothing else
// the run writes.  deck: the run deck's path or NULL.  False with the reason.
bool outputs_check(const TrainOptions *o, const char *deck, char *err, int len);

#endif
