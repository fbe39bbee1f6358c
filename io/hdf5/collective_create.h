// Before a file is created collectively (parallel HDF5 over MPI-IO): every
// rank must be able to write in its folder.  A rank that cannot fails the
// create at once while the others wait in it for that rank, forever; a folder
// that is not shared (each node's own disk) is the usual cause.
#ifndef LLAMA_COLLECTIVE_CREATE_H
#define LLAMA_COLLECTIVE_CREATE_H

#include <mpi.h>
#include <stdbool.h>

// Collective over comm: true when every rank can write in the folder of path
// (the same path on every rank); else false on every rank, with the first
// such rank, its reason and the advice in err.
bool collective_create_check(MPI_Comm comm, const char *path, char *err, int err_len);

#endif
