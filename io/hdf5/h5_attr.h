// Attribute readers the HDF5 files of this program share (checkpoints and
// token shards), for attributes as this program writes them and as h5py
// writes them after an edit.
#ifndef LLAMA_H5_ATTR_H
#define LLAMA_H5_ATTR_H

#include <hdf5.h>
#include <stdbool.h>

// Whether attribute a holds one value (a scalar or one element): an array
// would be read whole into room for one.
bool h5_attr_is_single(hid_t a);
// The string attribute name of obj, fixed-length (what this program writes)
// or variable-length (h5py's default), as a malloc'd string; NULL when it is
// missing, not one string, or unreadable.
char *h5_attr_string(hid_t obj, const char *name);

#endif
