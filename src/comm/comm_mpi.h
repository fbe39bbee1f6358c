// The MPI side of a Comm, for the code that hands a communicator to an MPI
// library (parallel HDF5: io/hdf5) or implements a device communicator over
// MPI (comm_staged.c).  Everything else uses comm/comm.h, which names no MPI
// type.
#ifndef LLAMA_COMM_MPI_H
#define LLAMA_COMM_MPI_H

#include <mpi.h>

#include "comm/comm.h"

// Wraps an MPI communicator (the Comm keeps a duplicate of it).
void comm_init(Comm *c, MPI_Comm mpi);
// The MPI communicator behind c (valid until comm_free).
MPI_Comm comm_mpi(const Comm *c);
// The MPI type that moves t (bf16 moves as its 16-bit pattern; reduce it
// through fp32) and the MPI reduction of op.
MPI_Datatype comm_mpi_type(DType t);
MPI_Op comm_mpi_op(ReduceOp op);

#endif
