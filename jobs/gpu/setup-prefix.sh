#!/usr/bin/env bash
# On a machine without MPI/HDF5 (the GPU machine): unpacks the .debs that
# jobs/gpu/fetch-debs.sh downloaded into a prefix with dpkg -x (never into /),
# makes the links the packages' install scripts would have made, and prints
# the environment under which `make DEPS=$PREFIX` builds and mpirun runs:
#     eval "$(bash jobs/gpu/setup-prefix.sh [DEBS_DIR] [PREFIX])"
# Idempotent: an unpacked prefix is reused.  Also finds NCCL when the CUDA
# toolkit has none (the PyTorch wheel's nvidia-nccl) and exports NCCL_HOME.
set -euo pipefail
DEBS=$(cd "${1:-$(dirname "$0")/../../.gpu/debs}" && pwd)
PREFIX=${2:-/tmp/llama-deps}
ML=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
if [ ! -f "$PREFIX/.unpacked" ]; then
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX/bin"
  for d in "$DEBS"/*.deb; do dpkg -x "$d" "$PREFIX"; done
  # update-alternatives' links
  for t in mpicc mpicxx mpirun mpiexec; do
    [ -e "$PREFIX/usr/bin/$t.openmpi" ] && ln -sf "$PREFIX/usr/bin/$t.openmpi" "$PREFIX/bin/$t"
  done
  for f in "$PREFIX"/usr/lib/libpsm1/libpsm_infinipath.so.1.*; do
    [ -e "$f" ] && ln -sf "$f" "$PREFIX/usr/lib/$ML/libpsm_infinipath.so.1"
  done
  touch "$PREFIX/.unpacked"
fi
U=$PREFIX/usr
LIBS=$U/lib/$ML:$PREFIX/lib/$ML:$U/lib/$ML/openblas-openmp:$U/lib/$ML/hdf5/openmpi:$U/lib/$ML/openmpi/lib
echo "export DEPS=$PREFIX"
echo "export PATH=$PREFIX/bin:$U/bin:\$PATH"
echo "export LD_LIBRARY_PATH=$LIBS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
# Open MPI and PMIx look for their plugins, help texts and settings under the
# prefix they were built for (/usr, /etc): point them at this one.
echo "export OPAL_PREFIX=$U OPAL_SYSCONFDIR=$PREFIX/etc/openmpi OPAL_PKGDATADIR=$U/share/openmpi"
echo "export OPAL_LIBDIR=$U/lib/$ML/openmpi/lib OPAL_INCLUDEDIR=$U/lib/$ML/openmpi/include"
echo "export PMIX_INSTALL_PREFIX=$U/lib/$ML/pmix2 PMIX_MCA_mca_base_component_path=$U/lib/$ML/pmix2/lib/pmix"
echo "export OMPI_MCA_mca_base_component_show_load_errors=0"
# NCCL: in the CUDA toolkit, else from a Python wheel (nvidia-nccl-cu*) or
# any libnccl.so.2 on the machine, with the header fetch-debs.sh carried when
# that one has none.
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if ! ls "$CUDA_HOME"/include/nccl.h >/dev/null 2>&1 || ! ls "$CUDA_HOME"/lib*/libnccl.so >/dev/null 2>&1; then
  lib=$(python3 -c 'import nvidia.nccl as n, os; d = list(n.__path__)[0]; print(os.path.join(d, "lib", "libnccl.so.2"))' 2>/dev/null || true)
  [ -e "$lib" ] || lib=$(find / -xdev -name libnccl.so.2 -not -path "$PREFIX/*" 2>/dev/null | head -1)
  if [ -n "$lib" ] && [ -e "$lib" ]; then
    N=$PREFIX/nccl
    mkdir -p "$N/lib" "$N/include"
    ln -sf "$lib" "$N/lib/libnccl.so"
    ln -sf "$lib" "$N/lib/libnccl.so.2"
    inc=$(dirname "$(dirname "$lib")")/include/nccl.h
    [ -e "$inc" ] || inc=$DEBS/../nccl/nccl.h
    ln -sf "$inc" "$N/include/nccl.h"
    echo "export NCCL_HOME=$N"
    echo "export LD_LIBRARY_PATH=$(dirname "$lib"):\$LD_LIBRARY_PATH"
  else
    echo "echo 'setup-prefix: no NCCL (libnccl.so.2) on this machine' >&2"
  fi
fi
# cuDNN (flash attention): in the CUDA toolkit, else from the PyTorch wheel
# nvidia-cudnn-cu* (headers and libcudnn.so.9), exported as CUDNN_HOME for make.
if ! ls "$CUDA_HOME"/include/cudnn.h "$CUDA_HOME"/lib*/libcudnn.so.9 >/dev/null 2>&1; then
  dir=$(python3 -c 'import nvidia.cudnn as c; print(list(c.__path__)[0])' 2>/dev/null || true)
  if [ -n "$dir" ] && [ ! -e "$dir/include/cudnn.h" ] && [ -e "$dir/lib/libcudnn.so.9" ] &&
     [ -e "$DEBS/../cudnn/include/cudnn.h" ]; then   # a wheel without headers: fetch-debs.sh's
    C=$PREFIX/cudnn
    mkdir -p "$C"
    ln -sfn "$(cd "$DEBS/../cudnn/include" && pwd)" "$C/include"
    ln -sfn "$dir/lib" "$C/lib"
    dir=$C
  fi
  if [ -n "$dir" ] && [ -e "$dir/include/cudnn.h" ] && [ -e "$dir/lib/libcudnn.so.9" ]; then
    echo "export CUDNN_HOME=$dir"
    echo "export LD_LIBRARY_PATH=$dir/lib:\$LD_LIBRARY_PATH"
  else
    echo "echo 'setup-prefix: no cuDNN (cudnn.h and libcudnn.so.9): the own attention kernels only' >&2"
  fi
fi

