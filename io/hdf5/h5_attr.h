// Attribute readers the HDF5 files of this program share (checkpoints and
// token shards), for attributes as this program writes them and as h5py
// writes them after an edit.
#ifndef LLAMA_H5_ATTR_H
#define LLAMA_H5_ATTR_H

#include <hdf5.h>
#include <stdbool.h>

// n values of the numeric attribute name of obj into v, read as type
// (H5T_NATIVE_INT64, H5T_NATIVE_DOUBLE, ...): integers as integers or floats,
// floats only as floats (HDF5 would round a float into an integer silently).
// False when it is missing, holds another count, or another kind of value.
bool h5_attr_read(hid_t obj, const char *name, hid_t type, void *v, hssize_t n);
// The string attribute name of obj, fixed-length (what this program writes)
// or variable-length (h5py's default), as a malloc'd string; NULL when it is
// missing, not one string, or unreadable.
char *h5_attr_string(hid_t obj, const char *name);

#endif
