#include "hdf5/h5_attr.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

// Whether attribute a holds one value (a scalar or one element): an array
// would be read whole into room for one.
static bool h5_attr_is_single(hid_t a) {
    hid_t s = H5Aget_space(a);
    bool one = s >= 0 && H5Sget_simple_extent_npoints(s) == 1;
    if (s >= 0) H5Sclose(s);
    return one;
}

static bool readable_as(hid_t stored, hid_t wanted) {
    H5T_class_t s = H5Tget_class(stored), w = H5Tget_class(wanted);
    return s == w || (s == H5T_INTEGER && w == H5T_FLOAT);
}

bool h5_attr_read(hid_t obj, const char *name, hid_t type, void *v, hssize_t n) {
    if (H5Aexists(obj, name) <= 0) return false;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t s = a >= 0 ? H5Aget_space(a) : -1, t = a >= 0 ? H5Aget_type(a) : -1;
    bool ok = s >= 0 && t >= 0 && readable_as(t, type) && H5Sget_simple_extent_npoints(s) == n &&
              H5Aread(a, type, v) >= 0;
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    if (a >= 0) H5Aclose(a);
    return ok;
}

// A variable-length string, read in the character set it was written in
// (h5py writes UTF-8: an ASCII read of it fails).
static char *read_variable(hid_t a, hid_t t) {
    char *v = NULL, *out = NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    if (H5Aread(a, mt, &v) >= 0 && v) out = xstrdup(v);
    if (v) H5free_memory(v);
    H5Tclose(mt);
    return out;
}

static char *read_fixed(hid_t a, hid_t t) {
    char *out = xcalloc(H5Tget_size(t) + 1, 1);
    if (H5Aread(a, t, out) >= 0) return out;
    free(out);
    return NULL;
}

char *h5_attr_string(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = a >= 0 && h5_attr_is_single(a) ? H5Aget_type(a) : -1;
    char *out = NULL;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING)
        out = H5Tis_variable_str(t) > 0 ? read_variable(a, t) : read_fixed(a, t);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return out;
}
