// Append-only output files of a run: the metrics JSON Lines log and the
// --dump-batches token dump.  Each write is flushed, so a killed run keeps
// every line it finished.
#ifndef LLAMA_LOGFILE_H
#define LLAMA_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct LogFile LogFile;

// Opens for appending (creating the folder is the caller's business); a FIFO
// that no process reads is refused, not waited on.  NULL with a reason in err
// when it cannot be opened.
LogFile *logfile_open(const char *path, char *err, int err_len);
// Appends bytes.  A failed write (a full disk) warns once, naming the file,
// and the file takes no more: a run does not end for its log (Megatron's
// writers do the same).
void logfile_write(LogFile *f, const void *data, size_t bytes);
// line + '\n'; the first one ends a partial line left at the file's end (a
// run killed mid-write) so that every line stays one JSON object.
void logfile_line(LogFile *f, const char *line);
// A file of fixed-size records (the token dump): a partial record at its end
// (a run killed mid-write, a full disk) is cut off before the first append,
// so that the records after it stay aligned.  The bytes cut, or 0.
long long logfile_align(LogFile *f, size_t record);
void logfile_close(LogFile *f);

#endif
