#include "hdf5/collective_create.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs/paths.h"

bool collective_create_check(MPI_Comm comm, const char *path, char *err, int err_len) {
    char dir[4096];
    path_parent(path, dir, sizeof dir);
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int mine = access(dir, W_OK | X_OK) == 0 ? INT_MAX : rank, why = errno, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == INT_MAX) return true;
    int code = rank == first ? why : 0, reason;
    MPI_Allreduce(&code, &reason, 1, MPI_INT, MPI_MAX, comm);
    snprintf(err, err_len, "rank %d of %d cannot write in '%s' (%s): the folder must exist, be "
             "writable and be shared by every rank (a parallel or network file system)", first,
             size, dir, strerror(reason));
    return false;
}
