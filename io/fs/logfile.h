// Append-only output files of a run: the metrics JSON Lines log and the
// --dump-batches token dump.  Each write is flushed, so a killed run keeps
// every line it finished.
#ifndef LLAMA_LOGFILE_H
#define LLAMA_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct LogFile LogFile;

// Opens for appending (creating the folder is the caller's business).
// NULL with a reason in err when it cannot be opened.
LogFile *logfile_open(const char *path, char *err, int err_len);
// Appends bytes; fatal (naming the file) when the write fails.
void logfile_write(LogFile *f, const void *data, size_t bytes);
void logfile_line(LogFile *f, const char *line);   // line + '\n'
void logfile_close(LogFile *f);

#endif
