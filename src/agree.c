#include "agree.h"

#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

void agree_or_exit(bool ok, const char *message) {
    int rank = util_world_rank(), first = ok ? util_world_size() : rank, lowest;
    MPI_Allreduce(&first, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (lowest == util_world_size()) return;
    char msg[2048] = "";
    if (rank == lowest) snprintf(msg, sizeof msg, "%s", message ? message : "failed");
    if (lowest != 0) {
        if (rank == lowest) MPI_Send(msg, (int)sizeof msg, MPI_CHAR, 0, 7, MPI_COMM_WORLD);
        if (rank == 0) MPI_Recv(msg, (int)sizeof msg, MPI_CHAR, lowest, 7, MPI_COMM_WORLD,
                                MPI_STATUS_IGNORE);
    }
    fatal_all("%s", msg);
}
